"""Dialogues recorded from real modems, as other projects keep them in their test suites.

Each entry names its source: the project and the file. The modem's lines are copied
verbatim; ``note`` says what we supplied ourselves (the command a bare answer belongs to,
an ``OK``, the order in which two recorded lines are played). gammu's ``.dump`` files keep
the lines with LF endings: :func:`crlf` frames them CR LF as the modem sent them (a dump
that kept its CRs, like ``at-model/06.dump``, is played as it is). python-gsmmodem's
fixtures are its ``responseSequence`` strings (floats there are pauses, as here): the
shapes its users reported from their modems, some with test texts of its own ("Wrong order
test message"); ModemManager's are the C string literals of
``src/tests/test-modem-helpers.c``.

Sources (public test suites; the content stays theirs):

* gammu — https://github.com/gammu/gammu ``tests/``
* python-gsmmodem — https://github.com/faucamp/python-gsmmodem ``test/``
* ModemManager — https://gitlab.freedesktop.org/mobile-broadband/ModemManager
  ``src/tests/test-modem-helpers.c``
"""

from __future__ import annotations

from dataclasses import dataclass


def crlf(dump: str) -> str:
    """A gammu dump's LF-only lines framed CR LF, as a modem prints them."""
    return dump.replace("\r\n", "\n").replace("\n", "\r\n")


@dataclass(frozen=True, slots=True)
class Recording:
    """A command and the modem's recorded answer (text, and pauses in seconds)."""

    source: str
    command: str
    reply: tuple[str | float, ...]
    note: str = ""


# --------------------------------------------------------------------------- USSD
# python-gsmmodem test/test_modem.py, class TestUssd: (code, the modem's answer).

def _gsmmodem_ussd(code: str, *sequence: str | float, note: str = "") -> Recording:
    return Recording("python-gsmmodem test/test_modem.py (TestUssd)",
                     f'AT+CUSD=1,"{code}",15', tuple(sequence), note)


USSD_BALANCE = _gsmmodem_ussd(
    "*101#", "OK\r\n", '+CUSD: 0,"Available Balance: R 96.45 .",15\r\n')
USSD_BALANCE_BEFORE_OK = _gsmmodem_ussd(  # test_sendUssdResponseBeforeOk
    "*101#", '+CUSD: 0,"Available Balance: R 96.45 .",15\r\n', "OK\r\n")
USSD_MENU = _gsmmodem_ussd("*120*500#", "OK\r\n", '+CUSD: 1,"Hallo daar",15\r\n')
USSD_GOODBYE = _gsmmodem_ussd("*130*111#", "OK\r\n", '+CUSD: 2,"Totsiens",15\r\n')
USSD_BALANCES_ON_RELEASE = _gsmmodem_ussd(
    "*111*502#", "OK\r\n",
    '+CUSD: 2,"You have the following remaining balances:\n0 free minutes\n'
    '20 MORE Weekend minutes ",15\r\n')
USSD_MULTILINE_MENU = _gsmmodem_ussd(
    "#100#", "OK\r\n",
    '+CUSD: 1,"Bal:$100.00 *\r\nExp 01 Jan 2013\r\n1. Recharge\r\n2. Balance\r\n'
    '3. My Offer\r\n4. PlusPacks\r\n5. Tones&Extras\r\n6. History\r\n7. CredMe2U\r\n'
    '8. Hlp\r\n00. Home\r\n*charges can take 48hrs",15\r\n')
# test_sendUssdExtraRelease: "Some modems send an extra +CUSD: 2 message when the USSD
# session is released - see issue #14 on github".
USSD_RELEASE_THEN_ANSWER = _gsmmodem_ussd(
    "*100#", '+CUSD: 2,"Initiating Release",15\r\n',
    '+CUSD: 0,"Wrong order test message",15\r\n', "OK\r\n")
USSD_OK_RELEASE_THEN_ANSWER = _gsmmodem_ussd(
    "*101#", "OK\r\n", '+CUSD: 2,"Initiating Release",15\r\n',
    '+CUSD: 0,"Notifications test",15\r\n')
USSD_OTHER_CLIENT_THEN_ANSWER = _gsmmodem_ussd(
    "*101#", "OK\r\n", '+CUSD: 3,"Other local client responded",15\r\n',
    '+CUSD: 0,"Test2",15\r\n')
# test_sendUssdExtraLinesInResponse: stray lines around the answer.
USSD_NOTIFICATION_BEFORE_OK = _gsmmodem_ussd(
    "*101#", "Yet another random notification!\r\n", "OK\r\n", 0.1,
    '+CUSD: 2,"Notification before OK",15\r\n')
USSD_NOTIFICATION_APPENDED = _gsmmodem_ussd(
    "*101#", "OK\r\n", 0.1, '+CUSD: 2,"Notification appended",15\r\n',
    "Some random notification!\r\n")
USSD_NO_NETWORK = _gsmmodem_ussd("*101#", "+CME ERROR: 30\r\n")  # test_sendUssdError

# gammu tests/at-ussd/*.dump hold the +CUSD line alone.
_GAMMU_USSD_NOTE = "the dump holds the +CUSD line only; the command and its OK are ours"


def _gammu_ussd(dump: str, text: str) -> Recording:
    return Recording(f"gammu tests/at-ussd/{dump}", 'AT+CUSD=1,"*100#",15',
                     ("\r\nOK\r\n", crlf(text)), _GAMMU_USSD_NOTE)


USSD_E160_UNQUOTED = _gammu_ussd("01-E160.dump", '+CUSD: 0, 49B41C74ACD3D16171D90D66666666666666666666B45CAC76C3CD6CB41B2D060389CB74F9FE4C07DD5CB91AA85897BF1B\n')
USSD_E160_QUOTED = _gammu_ussd("02-E160.dump", '+CUSD: 0,"49B41C74ACD3D16171D90D32FBE52072BA0C72CA5DB45CAC76C3CD6CB41B2D060389CB74F9FE4C07D55C371CA85897BF1B",15\n')
USSD_GSM_CHARSET_MENU = _gammu_ussd("03-unknown.dump", '+CUSD: 1,"Kontostand: 3.00 EUR Bitte w{hlen Sie: 1 Konto aufladen 2 CallNow Transfer"\n')
USSD_RELEASE_ALONE = _gammu_ussd("04-unknown.dump", '+CUSD: 2,"Maaf, permintaan Anda tidak dapat kami proses. Silakan coba beberapa saat lagi.",0\n')
USSD_UCS2_UNDER_GSM7_DCS = _gammu_ussd(
    "Uissue358-Quectel_M35.dump",
    '+CUSD: 2,"00480061007600690020006B0065007200650074003A0020003000460074002E002000460065006C007400F6006C007400F60074007400200065006700790065006E006C00650067003A0020003700370037003700460074002C002800650062006200F6006C0020007600E0007300E00072006C00E000730072006100200069007300200066006F0072006400EC007400680061007400F2003A00200037003700370037004600740029002E0020004400EC006A00630073006F006D00610067003A002000420065006E0063007300F200200041002E00200055006A002000540065006C0065006B006F006D002000F6006E006B00690073007A006F006C006700E0006C00F2003A0020002A0031003100310023",15\n')
USSD_UCS2_CYRILLIC = _gammu_ussd(
    "issue109-E3276.dump",
    '+CUSD: 0,"0414043B044F00200441043F044004300432043A04380020043E002004310430043B0430043D044104350020043D04300431043504400438044204350020002A0031003000350023002E002004230441043B0443043304300020043104350441043F043B04300442043D0430002E",72\n')
USSD_PLAIN = _gammu_ussd("issue178-dell.dump", '+CUSD: 0,"On DATA Pack u have 3Gb 817Mb 169kb valid until 21/05/2016   upto time of data recharge done by u.",15\n\n')
USSD_UCS2_WITH_LANGUAGE = _gammu_ussd(  # DCS 17, then padding and junk after U+0000
    "issue377-HE910-D.dump",
    '+CUSD: 2,"613906310635064A062F06430020003100300037002E003900330020062F002E0644060C06270644063506440627062D064A0629002000200032003000310038002D00310031002D003000390000FFFF60B16260EEEEFFFFFFFFFFFFFFFFFFFF60B16260EEEEFFFFFFFFFFFFFFFFFFFF60B16260EEEEFFFF00A962600000000000000000EE000000000000000000000068B5626058655F60",17\n')

# --------------------------------------------------------------------------- registration
# gammu tests/at-creg/*.dump and tests/at-creg-corner/*.dump: AT+CREG? with its echo.


def _gammu_creg(dump: str, text: str) -> Recording:
    return Recording(f"gammu tests/{dump}", "AT+CREG?", (crlf(text),))


CREG_HUAWEI_UNQUOTED = _gammu_creg("at-creg/huawei.dump", 'AT+CREG?\n+CREG: 2,1,4CA,81DE445\nOK\n')
CREG_NONE = _gammu_creg("at-creg/none.dump", 'AT+CREG?\n+CREG: 0,0\nOK\n\n')
CREG_SIERRA_ROAMING = _gammu_creg("at-creg/sierra312u.dump", 'AT+CREG?\n+CREG: 2,5,"2AF5","0B88E350",2\nOK\n')
CREG_TELIT = _gammu_creg("at-creg/telit.dump", 'AT+CREG?\n+CREG: 0,1,"5E25","605F",2\nOK\n')
CREG_SIEMENS = _gammu_creg("at-creg/siemens.dump", 'AT+CREG?\n+CREG: 0,1,"5E25","605F"\nOK\n')
CREG_MISMATCHED_QUOTES = _gammu_creg("at-creg-corner/mismatched-quotes.dump",
                                     'AT+CREG?\n+CREG: 2,1,"0B,"0100701",7\nOK\n')
CREG_SINGLE_QUOTE = _gammu_creg("at-creg-corner/single-quote.dump",
                                'AT+CREG?\n+CREG: 2,1,"5E25\nOK\n')
CREG_EMPTY_LAC = _gammu_creg("at-creg-corner/empty-lac.dump", 'AT+CREG?\n+CREG: 2,1,"","605F"\nOK\n')


@dataclass(frozen=True, slots=True)
class MmRegistration:
    """A registration line from ModemManager's ``src/tests/test-modem-helpers.c`` and
    what ModemManager reads from it: ``stat``, ``lac`` and ``ci`` (0 when absent) and the
    AcT number behind its access technology (``None`` for "unknown")."""

    test: str
    line: str
    mm_solicited: bool
    stat: int
    lac: int
    ci: int
    act: int | None

    @property
    def name(self) -> str:
        return self.line.strip().split(":", 1)[0]

    @property
    def args(self) -> str:
        return self.line.strip().split(":", 1)[1]


# Every CREG/CGREG/CEREG case of test-modem-helpers.c but "gobi_weird" (a LAC written
# "  0 5", read as 0 there) and the +C5GREG ones (no 5G here).
MM_REGISTRATION: tuple[MmRegistration, ...] = (
    MmRegistration('test_creg1_solicited', '+CREG: 1,3', True, 3, 0, 0, None),
    MmRegistration('test_creg1_unsolicited', '\r\n+CREG: 3\r\n', False, 3, 0, 0, None),
    MmRegistration('test_creg1_multidigit_stat_unsolicited', '\r\n+CREG: 11\r\n', False, 11, 0, 0, None),
    MmRegistration('test_creg2_mercury_solicited', '+CREG: 1,1,84CD,00D30173', True, 1, 0x84CD, 0xD30173, None),
    MmRegistration('test_creg2_mercury_unsolicited', '\r\n+CREG: 1,84CD,00D30156\r\n', False, 1, 0x84CD, 0xD30156, None),
    MmRegistration('test_creg2_multidigit_stat_unsolicited', '\r\n+CREG: 11,"33FE","a3fb477"\r\n', False, 11, 0x33FE, 0xA3FB477, None),
    MmRegistration('test_creg2_sek850i_solicited', '+CREG: 2,1,"CE00","01CEAD8F"', True, 1, 0xCE00, 0x1CEAD8F, None),
    MmRegistration('test_creg2_sek850i_unsolicited', '\r\n+CREG: 1,"CE00","00005449"\r\n', False, 1, 0xCE00, 0x5449, None),
    MmRegistration('test_creg2_e160g_solicited_unregistered', '+CREG: 2,0,00,0', True, 0, 0, 0, None),
    MmRegistration('test_creg2_e160g_solicited', '+CREG: 2,1,8BE3,2BAF', True, 1, 0x8BE3, 0x2BAF, None),
    MmRegistration('test_creg2_e160g_unsolicited', '\r\n+CREG: 1,8BE3,2BAF\r\n', False, 1, 0x8BE3, 0x2BAF, None),
    MmRegistration('test_creg2_tm506_solicited', '+CREG: 2,1,"8BE3","00002BAF"', True, 1, 0x8BE3, 0x2BAF, None),
    MmRegistration('test_creg2_xu870_unsolicited_unregistered', '\r\n+CREG: 2,,\r\n', False, 2, 0, 0, None),
    MmRegistration('test_creg2_iridium_solicited', '+CREG:002,001,"18d8","ffff"', True, 1, 0x18D8, 0xFFFF, None),
    MmRegistration('test_creg2_no_leading_zeros_solicited', '+CREG:2,1,0001,0010', True, 1, 0x1, 0x10, None),
    MmRegistration('test_creg2_leading_zeros_solicited', '+CREG:002,001,"0001","0010"', True, 1, 0x1, 0x10, None),
    MmRegistration('test_creg2_no_leading_zeros_unsolicited', '\r\n+CREG: 1,0001,0010,0\r\n', False, 1, 0x1, 0x10, 0),
    MmRegistration('test_creg2_leading_zeros_unsolicited', '\r\n+CREG: 001,"0001","0010",000\r\n', False, 1, 0x1, 0x10, 0),
    MmRegistration('test_creg2_multidigit_stat_no_leading_zeros_unsolicited', '\r\n+CREG: 10,0001,0010,0\r\n', False, 10, 0x1, 0x10, 0),
    MmRegistration('test_creg2_multidigit_stat_leading_zeros_unsolicited', '\r\n+CREG: 0011,"0001","0010",000\r\n', False, 11, 0x1, 0x10, 0),
    MmRegistration('test_creg2_ublox_solicited', '\r\n+CREG: 2,6,"8B37","0A265185",7\r\n', True, 6, 0x8B37, 0xA265185, 7),
    MmRegistration('test_creg2_ublox_unsolicited', '\r\n+CREG: 6,"8B37","0A265185",7\r\n', False, 6, 0x8B37, 0xA265185, 7),
    MmRegistration('test_cgreg1_solicited', '+CGREG: 1,3', True, 3, 0, 0, None),
    MmRegistration('test_cgreg1_unsolicited', '\r\n+CGREG: 3\r\n', False, 3, 0, 0, None),
    MmRegistration('test_cgreg2_f3607gw_solicited', '+CGREG: 2,1,"8BE3","00002B5D",3', True, 1, 0x8BE3, 0x2B5D, 3),
    MmRegistration('test_cgreg2_f3607gw_unsolicited', '\r\n+CGREG: 1,"8BE3","00002B5D",3\r\n', False, 1, 0x8BE3, 0x2B5D, 3),
    MmRegistration('test_creg2_md400_unsolicited', '\r\n+CREG: 2,5,"0502","0404736D"\r\n', False, 5, 0x502, 0x404736D, None),
    MmRegistration('test_cgreg2_md400_unsolicited', '\r\n+CGREG: 5,"0502","0404736D",2\r\n', False, 5, 0x502, 0x404736D, 2),
    MmRegistration('test_cgreg2_x220_unsolicited', '\r\n+CGREG: 2,1, 81ED, 1A9CEB\r\n', False, 1, 0x81ED, 0x1A9CEB, None),
    MmRegistration('test_creg2_s8500_wave_unsolicited', '\r\n+CREG: 2,1,000B,2816, B, C2816\r\n', False, 1, 0xB, 0x2816, None),
    MmRegistration('test_creg2_s8500_wave_multidigit_stat_unsolicited', '\r\n+CREG: 2,11,003F,8FE3, B, C2816\r\n', False, 11, 0x3F, 0x8FE3, None),
    MmRegistration('test_cgreg2_unsolicited_with_rac', '\r\n+CGREG: 1,"1422","00000142",3,"00"\r\n', False, 1, 0x1422, 0x142, 3),
    MmRegistration('test_cgreg2_multidigit_stat_with_rac_unsolicited', '\r\n+CGREG: 11,"B092","00000697",3,"00"\r\n', False, 11, 0xB092, 0x697, 3),
    MmRegistration('test_cgreg2_multidigit_stat_no_leading_zeros_solicited', '+CGREG:2,10,ebbd,f025', True, 10, 0xEBBD, 0xF025, None),
    MmRegistration('test_cgreg2_multidigit_stat_leading_zeros_solicited', '+CGREG:002,0011,"0f0d","14c3"', True, 11, 0xF0D, 0x14C3, None),
    MmRegistration('test_cereg1_solicited', '+CEREG: 1,3', True, 3, 0, 0, None),
    MmRegistration('test_cereg1_unsolicited', '\r\n+CEREG: 3\r\n', False, 3, 0, 0, None),
    MmRegistration('test_cereg2_solicited', '\r\n+CEREG: 2,1, 1F00, 79D903 ,7\r\n', True, 1, 0x1F00, 0x79D903, 7),
    MmRegistration('test_cereg2_unsolicited', '\r\n+CEREG: 1, 1F00, 79D903 ,7\r\n', False, 1, 0x1F00, 0x79D903, 7),
    MmRegistration('test_cereg2_multidigit_stat_solicited', '\r\n+CEREG: 2,10,"8d83","671f98a",7\r\n', True, 10, 0x8D83, 0x671F98A, 7),
    MmRegistration('test_cereg2_multidigit_stat_with_rac_solicited', '\r\n+CEREG: 2,10, 2CA8, 20 ,B5583D ,7\r\n', True, 10, 0x2CA8, 0xB5583D, 7),
    MmRegistration('test_cereg2_multidigit_stat_with_rac_unsolicited', '\r\n+CEREG: 11, 78FE, 20 ,14419E ,7\r\n', False, 11, 0x78FE, 0x14419E, 7),
    MmRegistration('test_cereg2_altair_lte_solicited', '\r\n+CEREG: 1, 2, 0001, 00000100, 7\r\n', False, 2, 0x1, 0x100, 7),
    MmRegistration('test_cereg2_altair_lte_unsolicited', '\r\n+CEREG: 2, 0001, 00000100, 7\r\n', False, 2, 0x1, 0x100, 7),
    MmRegistration('test_cereg2_novatel_lte_solicited', '\r\n+CEREG: 2,1, 1F00, 20 ,79D903 ,7\r\n', True, 1, 0x1F00, 0x79D903, 7),
    MmRegistration('test_cereg2_novatel_lte_unsolicited', '\r\n+CEREG: 1, 1F00, 20 ,79D903 ,7\r\n', False, 1, 0x1F00, 0x79D903, 7),
    MmRegistration('test_cgreg2_thuraya_solicited', '+CGREG: 2, 1, "0426", "F00F"', True, 1, 0x426, 0xF00F, None),
    MmRegistration('test_cgreg2_thuraya_unsolicited', '\r\n+CGREG: 1, "0426", "F00F"\r\n', False, 1, 0x426, 0xF00F, None),
)


def mm_case(test: str) -> MmRegistration:
    """The ModemManager case named ``test``."""
    return next(c for c in MM_REGISTRATION if c.test == test)


def registration_urc_then_answer(urc_test: str, answer_test: str) -> Recording:
    """A read of the registration whose URC arrives just before the answer: both lines are
    ModemManager's (the same modem's unsolicited and solicited forms); the order is ours."""
    urc, answer = mm_case(urc_test), mm_case(answer_test)
    return Recording(f"ModemManager src/tests/test-modem-helpers.c ({urc_test}, {answer_test})",
                     f"AT{answer.name}?",
                     (urc.line, "\r\n" + answer.line.strip() + "\r\n", "\r\nOK\r\n"),
                     "URC and answer played back to back; the OK is ours")


# --------------------------------------------------------------------------- storage, signal
# ModemManager test-modem-helpers.c, cpms_query_test[]: answers to AT+CPMS?.
CPMS_READ_ANSWERS: tuple[str, ...] = (
    '+CPMS: "ME",1,100,"MT",5,100,"TA",1,100',
    '+CPMS: "SM",100,100,"SR",5,10,"TA",1,100',
    '+CPMS: "MT", 0, 100, "MT", 0, 100, "MT", 0, 100',
)
# gammu tests/at-cpms/samsung-j700.dump: an empty +CPMS line (recorded for AT+CPMS=?).
CPMS_EMPTY = Recording("gammu tests/at-cpms/samsung-j700.dump", "AT+CPMS?",
                       ("\r\n+CPMS: \r\n\r\nOK\r\n",),
                       "the empty line answered AT+CPMS=?; we play it to the read")
# gammu tests/at-statemachine.c: a Huawei ^NWTIME, and a +CMTI, ahead of an echoed answer.
CPMS_AFTER_NWTIME = Recording("gammu tests/at-statemachine.c (nwtime_test)",
                              'AT+CPMS="SM","SM"', ('^NWTIME: 18/03/09,12:36:21+4,00\r\nAT+CPMS="SM","SM"\r\r\n+CPMS: 0,20,0,20,0,20\r\n\r\nOK\r\n',))
CPMS_AFTER_CMTI = Recording("gammu tests/at-statemachine.c (second_test)",
                            'AT+CPMS="SM","SM"', ('+CMTI: "SM",1\r\nAT+CPMS="SM","SM"\r\r\n+CPMS: 1,20,1,20,1,20\r\n\r\nOK\r\n',))

# python-gsmmodem test/test_modem.py test_signalStrength: (answer, rssi).
CSQ_ANSWERS: tuple[tuple[str, int], ...] = (("+CSQ: 18,99", 18), ("+CSQ:4,0", 4),
                                            ("+CSQ: 99,99", 99))

# --------------------------------------------------------------------------- identity
# python-gsmmodem test/fakemodems.py: each fake modem's answers (CGMR on the Wavecom is
# an ERROR).
IDENTITIES: dict[str, dict[str, tuple[str, ...]]] = {
    "WavecomMultiband900E1800": {
        "AT+CGMI": (" WAVECOM MODEM\r\n", "OK\r\n"),
        "AT+CGMM": (" MULTIBAND  900E  1800\r\n", "OK\r\n"),
        "AT+CGMR": ("ERROR\r\n",),
        "AT+CIMI": ("111111111111111\r\n", "OK\r\n"),
        "AT+CGSN": ("111111111111111\r\n", "OK\r\n"),
    },
    "HuaweiK3715": {
        "AT+CGMI": ("huawei\r\n", "OK\r\n"),
        "AT+CGMM": ("K3715\r\n", "OK\r\n"),
        "AT+CGMR": ("11.104.05.00.00\r\n", "OK\r\n"),
        "AT+CIMI": ("111111111111111\r\n", "OK\r\n"),
        "AT+CGSN": ("111111111111111\r\n", "OK\r\n"),
    },
    "QualcommM6280": {
        "AT+CGMI": ("QUALCOMM INCORPORATED\r\n", "OK\r\n"),
        "AT+CGMM": ("M6280\r\n", "OK\r\n"),
        "AT+CGMR": ("M6280_V1.0.0 M6280_V1.0.0 1 [Sep 4 2008 12:00:00]\r\n", "OK\r\n"),
        "AT+CIMI": ("111111111111111\r\n", "OK\r\n"),
        "AT+CGSN": ("111111111111111\r\n", "OK\r\n"),
    },
    "ZteK3565Z": {
        "AT+CGMI": ("ZTE INCORPORATED\r\n", "OK\r\n"),
        "AT+CGMM": ("K3565-Z\r\n", "OK\r\n"),
        "AT+CGMR": ("BD_P673A2V1.0.0B09\r\n", "OK\r\n"),
        "AT+CIMI": ("111111111111111\r\n", "OK\r\n"),
        "AT+CGSN": ("111111111111111\r\n", "OK\r\n"),
    },
}
# gammu tests/at-model/*.dump: AT+CGMM with its echo (06 kept the modem's CRs).
MODELS: tuple[tuple[Recording, str], ...] = (
    (Recording("gammu tests/at-model/01.dump", "AT+CGMM", (crlf('AT+CGMM\n MULTIBAND  900E  1800 \nOK\n'),)),
     "MULTIBAND  900E  1800"),
    (Recording("gammu tests/at-model/02.dump", "AT+CGMM", (crlf('AT+CGMM\nNokia 5210\nOK\n'),)), "Nokia 5210"),
    (Recording("gammu tests/at-model/03.dump", "AT+CGMM", (crlf('AT+CGMM\nAAB-1022041-BV\nOK\n'),)),
     "AAB-1022041-BV"),
    (Recording("gammu tests/at-model/06.dump", "AT+CGMM", ('AT+CGMM\r\r\n MULTIBAND  900E  1800 \r\n\r\nOK\r\n',)),
     "MULTIBAND  900E  1800"),
)
# Huawei's vendor URCs: the lines gammu's libgammu/protocol/at/at.c quotes for the ^
# URCs it ignores, and ModemManager's src/plugins/huawei/tests/test-modem-helpers-huawei.c
# for ^NWTIME. They are played ahead of the E1752's AT+CGMM answer (python-gsmmodem
# test/fakemodems.py HuaweiE1752); that arrangement is ours.
HUAWEI_URCS: tuple[str, ...] = (
    "^NWTIME: 18/03/09,12:36:21+4,00",
    "^NWTIME: 14/08/05,04:00:21+40,00",
    "^RSSI:18",
    "^BOOT:27710117,0,0,0,75",
    "^MODE:3,3",
    "^SRVST:0",
    "^SIMST:1",
    "^DSFLOWRPT:00000124,00000082,00000EA6,0000000000012325,000000000022771D,0000BB80,0001F400",
    "^HCSQ:\"LTE\",59,50,161,24",
    "^STIN: 7, 0, 0",
)
HUAWEI_E1752_CGMM: tuple[str, ...] = ("E1752\r\n", "OK\r\n")

# --------------------------------------------------------------------------- stored messages
# python-gsmmodem test/test_modem.py TestStoredSms.initFakeModemResponses (PDU mode): the
# answer to AT+CMGL=4, and what python-gsmmodem reads from it (sender, text).
CMGL_GSMMODEM: tuple[str, ...] = (
    "+CMGL: 0,0,,35\r\n",
    "07917248014000F3240B917247587706F400003110824115248012C8329BFD06C9C373B8B82C97E741F034\r\n",
    "+CMGL: 1,1,,161\r\n",
    "07917248010080F020109172480010359099990000312070101344809FCEF21D14769341E8B2BC0CA2BF41737A"
    "381F0211DFEE131DA4AECFE92079798C0ECBCF65D0B40A0D0E9141E9B1080ABBC9A073990ECABFEB7290BC3C46"
    "87E5E73219144ECBE9E976796594168BA06199CD1E82E86FD0B0CC660F41EDB47B0E3281A6CDE97C659497CB20"
    "72981E06D1DFA0FABC0C0ABBF3F474BBEC02514D4350180E67E75DA06199CD060D01\r\n",
    "+CMGL: 2,1,,159\r\n",
    "07917248010080F0240B917248001064F30000312070604220809F537AD84D0ECBC92061D8BDD681B2EFBA1C14"
    "1E8FDF75377D0E0ACBCB20F71BC47EBBCF6539C8981C0641E3771BCE4E87DD741708CA2E87E76590589E769F41"
    "4922C80482CBDF6F33E86D06C9CBF334B9EC1E9741F43728ECCE83C4F2B07B8C06D1DF2079393CA6A7ED617A19"
    "947FD7E5A0F078FCAEBBE97317285A2FCBD3E5F90F04C3D96030D88C2693B900\r\n",
    "OK\r\n",
)
CMGL_GSMMODEM_EXPECTED: tuple[tuple[int, str, str], ...] = (
    (0, "+27748577604", "Hello raspberry pi"),
    (1, "+2784000153099999", "New and here to stay! Don't just recharge SUPACHARGE and get your "
     "recharged airtime+FREE CellC to CellC mins & SMSs+Free data to use anytime. T&C apply. "
     "Cell C"),
    (2, "+27840001463", "Standard Bank: Your accounts are no longer FICA compliant. Please "
     "bring ID & proof of residence to any branch to reactivate your accounts. Queries? "
     "0860003422."),
)
# The same test inserts this line right after the first header ("should be ignored").
CMGL_JUNK_LINE = "AFSDLF SDKFJSKDLFJLKSDJF SJDLKFSKLDJFKSDFS\r\n"

# ModemManager test-modem-helpers.c: test_cmgl_response_generic_multiple and
# test_cmgl_response_pantech_multiple (Pantech omits <alpha>; its last PDU is cut short).
_MM_PDU = ("07914306073011F00405812261F700003130916191314095C27"
           "4D96D2FBBD3E437280CB2BEC961F3DB5D76818EF2F0381D9E83E06F39A8CC2E9FD372F"
           "77BEE0249CBE37A594E0E83E2F532085E2F93CB73D0B93CA7A7DFEEB01C447F93DF731"
           "0BD3E07CDCB727B7A9C7ECF41E432C8FC96B7C32079189E26874179D0F8DD7E93C3A0B"
           "21B246AA641D637396C7EBBCB22D0FD7E77B5D376B3AB3C07")
_PANTECH_PDU = "079100F40D1101000F001000B917118336058F300001954747A0E4ACF41F27298CDCE83C6EF371B0402814020"
CMGL_MM_GENERIC = (f"+CMGL: 0,1,,147\r\n{_MM_PDU}\r\n"
                   f"+CMGL: 1,1,,147\r\n{_MM_PDU}\r\n"
                   f"+CMGL: 2,1,,147\r\n{_MM_PDU}")
CMGL_MM_GENERIC_PDU = _MM_PDU
CMGL_MM_PANTECH = (f"+CMGL: 17,3,35\r\n{_PANTECH_PDU}\r\n"
                   f"+CMGL: 15,3,35\r\n{_PANTECH_PDU}\r\n"
                   f"+CMGL: 13,3,35\r\n{_PANTECH_PDU}\r\n"
                   "+CMGL: 11,3,35\r\n079100F40D1101000F001000B917118336058F300")
CMGL_MM_PANTECH_EXPECTED: tuple[tuple[int, int, str], ...] = (
    (17, 3, _PANTECH_PDU), (15, 3, _PANTECH_PDU), (13, 3, _PANTECH_PDU),
    (11, 3, "079100F40D1101000F001000B917118336058F300"),
)
_MM_NOTE = "ModemManager feeds the parser the lines; the final OK is ours"

# ModemManager test-modem-helpers.c test_cmgr_response_generic (the PDU on the header
# line) and test_cmgr_response_telit (empty quotes in <alpha>).
CMGR_MM_INLINE = Recording("ModemManager src/tests/test-modem-helpers.c "
                           "(test_cmgr_response_generic)", "AT+CMGR=0",
                           (f"\r\n+CMGR: 1,,147 {_MM_PDU}\r\n\r\nOK\r\n",), _MM_NOTE)
CMGR_MM_TELIT_PDU = ("07916163838428F9040B916121021021F7000051905141642"
                     "20A23C4B0BCFD5E8740C4B0BCFD5E83C26E3248196687C9A0301D440DBBC3677918")
CMGR_MM_TELIT = Recording("ModemManager src/tests/test-modem-helpers.c "
                          "(test_cmgr_response_telit)", "AT+CMGR=0",
                          (f'\r\n+CMGR: 0,"",50\r\n{CMGR_MM_TELIT_PDU}\r\n\r\nOK\r\n',), _MM_NOTE)


@dataclass(frozen=True, slots=True)
class StoredRead:
    """A gammu ``tests/at-sms`` dump: ``AT+CMGR=<index>`` with its echo, and the ``stat``
    and PDU it holds."""

    dump: str
    index: int
    stat: int
    text: str

    @property
    def recording(self) -> Recording:
        return Recording(f"gammu tests/{self.dump}", f"AT+CMGR={self.index}",
                         (crlf(self.text),))

    @property
    def pdu(self) -> str:
        return self.text.splitlines()[2].strip()


CMGR_GAMMU: tuple[StoredRead, ...] = (
    StoredRead("at-sms/03.dump", 1, 1, 'AT+CMGR=1\n+CMGR: 1,,25\n0791198948004544040C9119894882006200007050307040042206CF35689E9603\nOK\n'),  # <stat>,,<length>
    StoredRead("at-sms/02.dump", 1, 3, 'AT+CMGR=1\n+CMGR: 3,,29\n0791361907001003B17A0C913619397750320000AD11CD701E340FB3C3F23CC81D0689C3BF\nOK\n'),  # a stored SUBMIT
    StoredRead("at-sms/07.dump", 0, 0, 'AT+CMGR=0\n+CMGR: 0,23\n0791534850020200040C9153486507895500006090608164138004D4F29C0E\nOK\n'),  # <stat>,<length>
    StoredRead("at-sms/26.dump", 4, 1, 'AT+CMGR=4\n+CMGR: 4,1,,151\n0791539111161616640C9153916161755000F54020310164450084831281000615FFFFE7F6E003E193CC0B0000E793D1460000E193D2A00000E793D1400000E1C7D0900000FFFFD2A00000F88FD1400000F047E8806003F007F700D3E6F82C79D06413FC5C7EE809C8FE3FFF7012E4FFFFFFA823E2E0867FB021C2F99E7FA8208289867FB42082899FFF9A2492F9867FDD13E4FFFFFFEE8808FFFFFFED4808\nOK\n'),  # <index>,<stat>,,<length>
    StoredRead("at-sms/38.dump", 1, 0, 'AT+CMGR=1\n+CMGR: 24\n079124602009999006B4098106326906F2212041015554402120410155054000\nOK\n'),  # <length> alone: stat unknown
    StoredRead("at-sms/39.dump", 91, 0, 'AT+CMGR=91\n+CMGR: ,,92\n07914336120011F10404A14949000021807001253040356C76B81D268741F0B29C9C268741E4B20EB49AD16CB19BAD368BD96EA0B71B04BBBD603810284C078162315D2CE70289EBFAE1AC0CB2BFF52C10FC2D0799C3F6B71CC46687DB6550980D8AC962\nOK\n'),  # empty <stat>
)
# gammu tests/at-sms-failing/*.dump: answers gammu must fail on, cleanly.
CMGR_GAMMU_FAILING: tuple[StoredRead, ...] = (
    StoredRead("at-sms-failing/13.dump", 2, 2, 'AT+CMGR=2\n+CMGR: 2,,164\n0BD04259303784=96p331p71160016D02B5AEC86BBDD6E37D80DFF00F19C0AC8F7BA3E87BFD7F539FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF12\nOK\n'),  # not hex
    StoredRead("at-sms-failing/38.dump", 1, 3, 'AT+CMGR=1\n+CMGR: 3,,29\nC474795E968388E9B27B4E07CDE965341D947683926879B90DA286E56933C89D1EA3E9207D5D0EB296E566FFB9EE3EBB40A8220C9602\nOK\n\n'),  # no SMSC field
    StoredRead("at-sms-failing/01.dump", 1, 1, 'AT+CMGR=1\n+CMGR: 1,,78\n0791246030500200110481643000007030427132500047D6B0BEECCE83F4E17558EF4EAFEB2CD09C5DD78BC3207519447E8FC3737719D44EB7DF20B8FC6D7FEB5D2062795D5797DB65903E0C82BFC7E837BCEC4EBB00\nOK\n'),  # user data cut
)
