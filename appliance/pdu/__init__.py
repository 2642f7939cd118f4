"""SMS wire format (3GPP TS 23.040 / 23.038): pure functions and value objects, no I/O.

- :func:`plan` — encoding, shift tables, parts and characters left for a text;
  ``national_languages=("hindi",)`` lets it use 23.038 national shift tables when they save
  parts, and the :class:`Plan` names them (:class:`ShiftTables`);
- :func:`encode_submit` — SMS-SUBMIT PDUs for AT+CMGS, cut as :func:`plan` cuts them;
- :func:`decode` — SMS-DELIVER, SMS-SUBMIT or SMS-STATUS-REPORT from hex;
- :func:`encode_deliver`, :func:`encode_status_report` — for the simulator and tests;
- :func:`gsm7_pack`, :func:`gsm7_unpack` — GSM 7-bit packing (USSD);
- :data:`NATIONAL_LANGUAGES` — the 13 languages of 23.038 §6.2.1.2.4, in identifier order;
  :func:`parse_languages` checks a list of them (e.g. from the settings);
- :class:`PduError` — raised on anything malformed; :class:`TooManyParts`,
  :class:`UnencodableText` and :class:`UnknownLanguage` carry their data as fields.
"""

from __future__ import annotations

from appliance.pdu.decode import decode
from appliance.pdu.deliver import Deliver, encode_deliver
from appliance.pdu.errors import PduError, TooManyParts, UnencodableText, UnknownLanguage
from appliance.pdu.gsm7 import gsm7_pack, gsm7_unpack
from appliance.pdu.national import LANGUAGE_IDS, NATIONAL_LANGUAGES
from appliance.pdu.planner import MAX_PARTS, Plan, ShiftTables, parse_languages, plan
from appliance.pdu.status import StatusReport, encode_status_report
from appliance.pdu.submit import Submit, SubmitPdu, encode_submit

__all__ = [
    "LANGUAGE_IDS",
    "MAX_PARTS",
    "NATIONAL_LANGUAGES",
    "Deliver",
    "PduError",
    "Plan",
    "ShiftTables",
    "StatusReport",
    "Submit",
    "SubmitPdu",
    "TooManyParts",
    "UnencodableText",
    "UnknownLanguage",
    "decode",
    "encode_deliver",
    "encode_status_report",
    "encode_submit",
    "gsm7_pack",
    "gsm7_unpack",
    "parse_languages",
    "plan",
]
