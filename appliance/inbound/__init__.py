"""Inbound messages: keyword (STOP/START/HELP) recognition, reassembly, opt-out handling."""

from appliance.inbound.keywords import ENGLISH, Keyword, KeywordMatch, KeywordTable, Language, normalise
from appliance.inbound.service import InboundService, pdu_digest

__all__ = [
    "ENGLISH",
    "InboundService",
    "Keyword",
    "KeywordMatch",
    "KeywordTable",
    "Language",
    "normalise",
    "pdu_digest",
]
