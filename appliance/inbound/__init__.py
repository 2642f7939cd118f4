"""Inbound messages: keyword (STOP/START/HELP) recognition, reassembly, opt-out handling."""

from appliance.inbound.keywords import ENGLISH, Keyword, KeywordMatch, KeywordTable, Language, normalise

__all__ = ["ENGLISH", "Keyword", "KeywordMatch", "KeywordTable", "Language", "normalise"]
