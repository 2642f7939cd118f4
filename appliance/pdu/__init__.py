"""SMS wire format (3GPP TS 23.040 / 23.038): pure functions and value objects, no I/O.

- :func:`plan` — encoding, parts and characters left for a text;
- :func:`encode_submit` — SMS-SUBMIT PDUs for AT+CMGS;
- :func:`decode` — SMS-DELIVER, SMS-SUBMIT or SMS-STATUS-REPORT from hex;
- :func:`encode_deliver`, :func:`encode_status_report` — for the simulator and tests;
- :func:`gsm7_pack`, :func:`gsm7_unpack` — GSM 7-bit packing (USSD);
- :class:`PduError` — raised on anything malformed.
"""

from __future__ import annotations

from appliance.pdu.decode import decode
from appliance.pdu.deliver import Deliver, encode_deliver
from appliance.pdu.errors import PduError
from appliance.pdu.gsm7 import gsm7_pack, gsm7_unpack
from appliance.pdu.planner import MAX_PARTS, Plan, plan
from appliance.pdu.status import StatusReport, encode_status_report
from appliance.pdu.submit import Submit, SubmitPdu, encode_submit

__all__ = [
    "MAX_PARTS",
    "Deliver",
    "PduError",
    "Plan",
    "StatusReport",
    "Submit",
    "SubmitPdu",
    "decode",
    "encode_deliver",
    "encode_status_report",
    "encode_submit",
    "gsm7_pack",
    "gsm7_unpack",
    "plan",
]
