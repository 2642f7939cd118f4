"""What ``+CMS ERROR`` and ``+CME ERROR`` codes mean, and whether trying again may help.

Sources: 3GPP TS 24.011 Annex E (RP-cause values 0–127, reported by the network for a
mobile-originated SMS), TS 23.040 §9.2.3.22 (TP-FCS values 128–255), TS 27.005 §3.2.5
(``+CMS ERROR`` 300–500, the modem's own failures) and TS 27.007 §9.2 (``+CME ERROR``).

"Temporary" means the same request may succeed later (or on another modem): congestion,
no network, SIM busy. "Permanent" means it will fail again as it is: barred destination,
unknown subscriber, malformed PDU. Unknown codes count as temporary, so a message is only
failed for good on a cause we understand; the queue caps retries anyway.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ErrorCode", "cme_error", "cms_error", "describe"]


@dataclass(frozen=True, slots=True)
class ErrorCode:
    """One error code: which table (``"cms"``/``"cme"``), its number, meaning and class."""

    kind: str
    code: int
    meaning: str
    temporary: bool


_T, _P = True, False

_CMS: dict[int, tuple[str, bool]] = {
    # TS 24.011 Annex E-2, RP-cause (mobile originated)
    1: ("unassigned (unallocated) number", _P),
    8: ("operator determined barring", _P),
    10: ("call barred", _P),
    17: ("network failure", _T),
    21: ("short message transfer rejected", _P),
    22: ("memory capacity exceeded / congestion", _T),
    27: ("destination out of service", _P),
    28: ("unidentified subscriber", _P),
    29: ("facility rejected", _P),
    30: ("unknown subscriber", _P),
    38: ("network out of order", _T),
    41: ("temporary failure", _T),
    42: ("congestion", _T),
    47: ("resources unavailable, unspecified", _T),
    50: ("requested facility not subscribed", _P),
    69: ("requested facility not implemented", _P),
    81: ("invalid short message transfer reference value", _T),
    95: ("invalid message, unspecified", _P),
    96: ("invalid mandatory information", _P),
    97: ("message type non-existent or not implemented", _P),
    98: ("message not compatible with short message protocol state", _T),
    99: ("information element non-existent or not implemented", _P),
    111: ("protocol error, unspecified", _T),
    127: ("interworking, unspecified", _T),
    # TS 23.040 §9.2.3.22, TP-FCS
    128: ("telematic interworking not supported", _P),
    129: ("short message type 0 not supported", _P),
    130: ("cannot replace short message", _P),
    143: ("unspecified TP-PID error", _P),
    144: ("data coding scheme (alphabet) not supported", _P),
    145: ("message class not supported", _P),
    159: ("unspecified TP-DCS error", _P),
    160: ("command cannot be actioned", _P),
    161: ("command unsupported", _P),
    175: ("unspecified TP-Command error", _P),
    176: ("TPDU not supported", _P),
    192: ("SC busy", _T),
    193: ("no SC subscription", _P),
    194: ("SC system failure", _T),
    195: ("invalid SME address", _P),
    196: ("destination SME barred", _P),
    197: ("SM rejected: duplicate SM", _P),
    198: ("TP-VPF not supported", _P),
    199: ("TP-VP not supported", _P),
    208: ("SIM SMS storage full", _T),
    209: ("no SMS storage capability in SIM", _P),
    210: ("error in MS", _T),
    211: ("memory capacity exceeded", _T),
    212: ("SIM application toolkit busy", _T),
    213: ("SIM data download error", _T),
    255: ("unspecified error cause", _T),
    # TS 27.005 §3.2.5, the modem's own errors
    300: ("ME failure", _T),
    301: ("SMS service of ME reserved", _T),
    302: ("operation not allowed", _P),
    303: ("operation not supported", _P),
    304: ("invalid PDU mode parameter", _P),
    305: ("invalid text mode parameter", _P),
    310: ("SIM not inserted", _T),
    311: ("SIM PIN required", _T),
    312: ("PH-SIM PIN required", _T),
    313: ("SIM failure", _T),
    314: ("SIM busy", _T),
    315: ("SIM wrong", _T),
    316: ("SIM PUK required", _T),
    317: ("SIM PIN2 required", _T),
    318: ("SIM PUK2 required", _T),
    320: ("memory failure", _T),
    321: ("invalid memory index", _P),
    322: ("memory full", _T),
    330: ("SMSC address unknown", _T),
    331: ("no network service", _T),
    332: ("network timeout", _T),
    340: ("no +CNMA acknowledgement expected", _P),
    500: ("unknown error", _T),
}

_CME: dict[int, tuple[str, bool]] = {
    0: ("phone failure", _T),
    1: ("no connection to phone", _T),
    2: ("phone-adaptor link reserved", _T),
    3: ("operation not allowed", _P),
    4: ("operation not supported", _P),
    5: ("PH-SIM PIN required", _T),
    6: ("PH-FSIM PIN required", _T),
    7: ("PH-FSIM PUK required", _T),
    10: ("SIM not inserted", _T),
    11: ("SIM PIN required", _T),
    12: ("SIM PUK required", _T),
    13: ("SIM failure", _T),
    14: ("SIM busy", _T),
    15: ("SIM wrong", _T),
    16: ("incorrect password", _P),
    17: ("SIM PIN2 required", _T),
    18: ("SIM PUK2 required", _T),
    20: ("memory full", _T),
    21: ("invalid index", _P),
    22: ("not found", _P),
    23: ("memory failure", _T),
    24: ("text string too long", _P),
    25: ("invalid characters in text string", _P),
    26: ("dial string too long", _P),
    27: ("invalid characters in dial string", _P),
    30: ("no network service", _T),
    31: ("network timeout", _T),
    32: ("network not allowed - emergency calls only", _T),
    40: ("network personalisation PIN required", _T),
    41: ("network personalisation PUK required", _T),
    100: ("unknown", _T),
}


def cms_error(code: int) -> ErrorCode:
    """The meaning and class of ``+CMS ERROR: code`` (unknown codes: temporary)."""
    meaning, temporary = _CMS.get(code, (_unknown(code), True))
    return ErrorCode("cms", code, meaning, temporary)


def cme_error(code: int) -> ErrorCode:
    """The meaning and class of ``+CME ERROR: code`` (unknown codes: temporary)."""
    meaning, temporary = _CME.get(code, (_unknown(code), True))
    return ErrorCode("cme", code, meaning, temporary)


def describe(kind: str, code: int) -> ErrorCode:
    """``cms_error`` or ``cme_error`` by ``kind``."""
    return cms_error(code) if kind == "cms" else cme_error(code)


def _unknown(code: int) -> str:
    if 512 <= code:
        return f"manufacturer-specific error {code}"
    return f"unknown error {code}"
