"""Modem personas for the pty simulator: what each simulated model says and how it differs.

A :class:`Persona` is plain data; :mod:`appliance.modem.simulator` interprets it. The three
personas mirror modems the appliance meets in the field:

``"sim800"`` — SIMCom SIM800 (one UART behind a USB-serial adapter, so one tty).
    ``AT+CCID`` answers a bare digits line; storage indexes start at 1; reading an empty
    slot answers ``OK`` with nothing; USSD replies come as plain text (DCS 15); CNMI
    accepts every mode, default ``2,1,0,0,0``.
``"huawei"`` — Huawei E173 3G stick. Three ttys: port 0 (``if00``, the "modem" port) is the
    AT/SMS port, port 1 (diagnostics) stays silent, port 2 (PCUI) answers identity commands
    only and rejects anything else. Unsupported commands answer ``COMMAND NOT SUPPORT``;
    ICCID via ``AT^ICCID?``; periodic ``^RSSI: <n>`` URCs (``AT^CURC=0`` stops them);
    no ``AT+CEREG``; storage indexes start at 0; empty slot → ``+CMS ERROR: 321``; USSD
    replies are GSM-7 packed hex (DCS 15); CNMI defaults to ``0,0,0,0,0`` (nothing is
    indicated until the driver sets it) and rejects ``ds=2`` (status reports stored with
    ``+CDSI``) and ``mode=3``, so a driver asking ``2,1,0,2,0`` must fall back to
    ``2,1,0,1,0`` (``+CDS`` routed directly).
``"quectel"`` — Quectel EC25 LTE module. Four ttys: port 0 (DM) and port 1 (NMEA) stay
    silent, port 2 is the AT/SMS port, port 3 (PPP modem port) answers identity commands
    only. ICCID via ``AT+QCCID``; ``+QIND`` boot lines; ``AT+QPOWD`` powers down (the
    device vanishes until ``replug()``); storage indexes start at 0; empty slot →
    ``+CMS ERROR: 321``; USSD replies are UCS-2 hex (DCS 72).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class CnmiSupport:
    """Values a persona accepts for each ``AT+CNMI`` parameter (mode, mt, bm, ds, bfr)."""

    mode: tuple[int, ...]
    mt: tuple[int, ...]
    bm: tuple[int, ...]
    ds: tuple[int, ...]
    bfr: tuple[int, ...]

    def accepts(self, values: tuple[int, int, int, int, int]) -> bool:
        allowed = (self.mode, self.mt, self.bm, self.ds, self.bfr)
        return all(v in ok for v, ok in zip(values, allowed, strict=True))

    def test_response(self) -> str:
        def fmt(vals: tuple[int, ...]) -> str:
            if len(vals) > 2 and list(vals) == list(range(vals[0], vals[-1] + 1)):
                return f"({vals[0]}-{vals[-1]})"
            return "(" + ",".join(str(v) for v in vals) + ")"

        return "+CNMI: " + ",".join(fmt(v) for v in (self.mode, self.mt, self.bm, self.ds, self.bfr))


@dataclass(frozen=True, slots=True)
class Persona:
    """Everything that distinguishes one simulated modem model from another."""

    key: str
    manufacturer: str
    model: str
    firmware: str
    ati_lines: tuple[str, ...]
    usb_vendor: str
    usb_product: str
    tac: str
    """First 8 IMEI digits (type allocation code)."""
    port_roles: tuple[str, ...]
    """One role per tty: ``"at"`` (the AT/SMS port), ``"ident"`` (answers identity
    commands only) or ``"silent"``. Exactly one ``"at"``."""
    iccid_command: str
    """``"+CCID"``, ``"^ICCID?"`` or ``"+QCCID"``: the one ICCID command this model knows."""
    iccid_prefix: str
    """How the ICCID line starts (``""`` for a bare digits line)."""
    unsupported: str
    """The final result for an unknown command (``"ERROR"`` or ``"COMMAND NOT SUPPORT"``)."""
    boot_lines: tuple[str, ...]
    """Lines sent at power-up before the SIM is checked (``+CPIN`` follows)."""
    sim_ready_lines: tuple[str, ...]
    """Lines sent once the SIM is ready (at boot, or after the PIN is entered)."""
    first_index: int
    """Index of the first storage slot (SIMCom counts from 1, others from 0)."""
    empty_read_error: bool
    """``AT+CMGR`` on an empty slot: True → ``+CMS ERROR: 321``, False → bare ``OK``."""
    cnmi: CnmiSupport
    cnmi_default: tuple[int, int, int, int, int]
    ussd_encoding: str
    """``"text"`` (plain, DCS 15), ``"gsm7-packed"`` (hex, DCS 15) or ``"ucs2"`` (hex, DCS 72)."""
    default_ussd: dict[str, str] = field(default_factory=dict)
    act: int | None = None
    """Access technology shown by ``AT+COPS?`` (``None``: not shown, as SIM800 does)."""
    has_cereg: bool = False
    rssi_urc: bool = False
    """Periodic ``^RSSI: <n>`` URCs (Huawei)."""
    can_power_down: bool = False
    """``AT+QPOWD`` powers the module off (Quectel)."""
    cpin_urc: bool = True
    """Whether ``+CPIN: <state>`` is announced at power-up (Huawei sticks say nothing)."""
    storage_sizes: tuple[tuple[str, int], ...] = (("SM", 30), ("ME", 100))
    storage_full_urc: str = '+CIEV: "SMSFULL",1'
    """The indication sent when the receive storage becomes full (``{mem}``: its name):
    the 27.007 indicator event by name ``+CIEV: "SMSFULL",1`` (the sim800 persona's),
    Huawei's ``^SMMEMFULL: "SM"``, Quectel's ``+QIND: "smsfull","SM"``."""

    @property
    def at_port(self) -> int:
        return self.port_roles.index("at")


PERSONAS: dict[str, Persona] = {
    "sim800": Persona(
        key="sim800",
        manufacturer="SIMCOM_Ltd",
        model="SIMCOM_SIM800L",
        firmware="Revision:1418B04SIM800L24",
        ati_lines=("SIM800 R14.18",),
        usb_vendor="SIMCOM",
        usb_product="SIM800",
        tac="86147703",
        port_roles=("at",),
        iccid_command="+CCID",
        iccid_prefix="",
        unsupported="ERROR",
        boot_lines=("RDY", "+CFUN: 1"),
        sim_ready_lines=("Call Ready", "SMS Ready"),
        first_index=1,
        empty_read_error=False,
        cnmi=CnmiSupport(mode=(0, 1, 2, 3), mt=(0, 1, 2, 3), bm=(0, 2), ds=(0, 1, 2), bfr=(0, 1)),
        cnmi_default=(2, 1, 0, 0, 0),
        ussd_encoding="text",
        default_ussd={"*100#": "Your balance is 12.50 USD. Valid until 31/12."},
        act=None,
        storage_sizes=(("SM", 30), ("ME", 50)),
    ),
    "huawei": Persona(
        key="huawei",
        manufacturer="huawei",
        model="E173",
        firmware="11.126.85.00.209",
        ati_lines=("Manufacturer: huawei", "Model: E173", "Revision: 11.126.85.00.209",
                   "IMEI: {imei}", "+GCAP: +CGSM,+DS,+ES"),
        usb_vendor="HUAWEI",
        usb_product="HUAWEI_Mobile",
        tac="35167404",
        port_roles=("at", "silent", "ident"),
        iccid_command="^ICCID?",
        iccid_prefix="^ICCID: ",
        unsupported="COMMAND NOT SUPPORT",
        boot_lines=("^SYSSTART",),
        sim_ready_lines=(),
        first_index=0,
        empty_read_error=True,
        cnmi=CnmiSupport(mode=(0, 1, 2), mt=(0, 1, 2, 3), bm=(0, 2), ds=(0, 1), bfr=(0, 1)),
        cnmi_default=(0, 0, 0, 0, 0),
        ussd_encoding="gsm7-packed",
        default_ussd={"*100#": "Balance: 7.25 EUR"},
        act=2,
        rssi_urc=True,
        cpin_urc=False,
        storage_sizes=(("SM", 30), ("ME", 100)),
        storage_full_urc='^SMMEMFULL: "{mem}"',
    ),
    "quectel": Persona(
        key="quectel",
        manufacturer="Quectel",
        model="EC25",
        firmware="EC25EFAR06A06M4G",
        ati_lines=("Quectel", "EC25", "Revision: EC25EFAR06A06M4G"),
        usb_vendor="Quectel",
        usb_product="EC25",
        tac="86767804",
        port_roles=("silent", "silent", "at", "ident"),
        iccid_command="+QCCID",
        iccid_prefix="+QCCID: ",
        unsupported="ERROR",
        boot_lines=("RDY", "+CFUN: 1"),
        sim_ready_lines=("+QUSIM: 1", "+QIND: SMS DONE", "+QIND: PB DONE"),
        first_index=0,
        empty_read_error=True,
        cnmi=CnmiSupport(mode=(0, 1, 2), mt=(0, 1, 2, 3), bm=(0, 2), ds=(0, 1, 2), bfr=(0, 1)),
        cnmi_default=(2, 1, 0, 0, 0),
        ussd_encoding="ucs2",
        default_ussd={"*100#": "Ihr Guthaben beträgt 5,00 €"},
        act=7,
        has_cereg=True,
        can_power_down=True,
        storage_sizes=(("SM", 50), ("ME", 255)),
        storage_full_urc='+QIND: "smsfull","{mem}"',
    ),
}
"""The personas by key."""
