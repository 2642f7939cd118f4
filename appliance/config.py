"""Settings: a TOML file plus ``APPLIANCE_*`` environment variables (pydantic-settings).

Environment variables override the file; nested keys use ``__``, e.g.
``APPLIANCE_API__PORT=9000`` or ``APPLIANCE_APPLIANCE__DEFAULT_REGION=GB``.
A wrong setting raises :class:`ConfigError` naming the key and the file.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    AnyHttpUrl,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from appliance.errors import ApplianceError

CONFIG_ENV = "APPLIANCE_CONFIG"


class ConfigError(ApplianceError):
    """The configuration file or environment holds a wrong or missing setting."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ApplianceSection(_Section):
    # Four slashes: an absolute path (three would be relative to the working directory).
    database_url: str = "sqlite:////var/lib/appliance/appliance.db"
    default_region: str = "US"
    max_parts: int = Field(default=10, ge=1, le=255)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    @field_validator("default_region")
    @classmethod
    def _known_region(cls, value: str) -> str:
        import phonenumbers

        region = value.upper()
        if region not in phonenumbers.SUPPORTED_REGIONS:
            raise ValueError(f"{value!r} is not a region code phonenumbers knows (e.g. US, GB, KE)")
        return region

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value


class ApiSection(_Section):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)


class ModemConfig(_Section):
    """One modem: bound by ``port``, or by ``imei``/``iccid`` (found by scanning ports)."""

    name: str = Field(min_length=1, max_length=64)
    port: str | None = None
    imei: str | None = None
    iccid: str | None = None
    baudrate: int = Field(default=115200, gt=0)
    rtscts: bool = False
    pin: SecretStr = SecretStr("")
    min_interval_s: float = Field(default=2.0, ge=0)
    max_parts_per_minute: int = Field(default=6, ge=1)
    max_parts_per_hour: int = Field(default=200, ge=1)
    max_parts_per_day: int = Field(default=1000, ge=1)
    # Parts per calendar month (local time), counted from the send log; none by default.
    max_parts_per_month: int | None = Field(default=None, ge=1)
    # Distinct recipients per calendar month: at the cap the SIM only texts numbers it
    # already texted this month (other numbers wait for another modem or the next month).
    max_recipients_per_month: int | None = Field(default=None, ge=1)
    # The SIM's own number (E.164): what the Twilio-compatible API accepts as ``From``.
    number: str | None = Field(default=None, pattern=r"^\+[1-9][0-9]{6,14}$")
    # Where this modem's inbound SMS go as Twilio webhooks (overrides [twilio] sms_url).
    sms_url: AnyHttpUrl | None = None
    # Prepaid balance (README, "Prepaid balance"): read by USSD every ``balance_every_h``
    # hours; the first number ``balance_pattern`` captures in the answer is the amount.
    balance_ussd: str | None = Field(default=None, pattern=r"^[0-9*#+]{1,32}$")
    balance_pattern: str = r"([0-9]+(?:[.,][0-9]+)?)"
    balance_low: float | None = None
    balance_every_h: float = Field(default=24.0, gt=0)

    @field_validator("balance_pattern")
    @classmethod
    def _one_group(cls, value: str) -> str:
        import re

        try:
            groups = re.compile(value).groups
        except re.error as exc:
            raise ValueError(f"not a regular expression: {exc}") from None
        if groups < 1:
            raise ValueError("needs a group capturing the number, e.g. ([0-9]+(?:[.,][0-9]+)?)")
        return value

    @model_validator(mode="after")
    def _needs_a_binding(self) -> "ModemConfig":
        if not (self.port or self.imei or self.iccid):
            raise ValueError("a modem needs one of port, imei or iccid")
        return self


class DiscoverySection(_Section):
    """Where ``modems scan`` and modems bound by ``imei``/``iccid`` look for ports (globs)."""

    # The same as appliance.modem.discovery.DEFAULT_PATTERNS (not imported: config stays light).
    patterns: list[Annotated[str, Field(min_length=1)]] = Field(
        default=["/dev/serial/by-id/*", "/dev/ttyUSB*", "/dev/ttyACM*"], min_length=1)


class TwilioSection(_Section):
    """The Twilio-compatible API's inbound webhooks (README, "Twilio-compatible API").

    ``sms_url`` receives every modem's inbound SMS (a modem's own ``sms_url`` wins), signed
    with the Auth Token of ``account_sid`` (a credential from ``keys create --twilio``).
    ``numbers`` maps modem names to their SIM's number where ``[[modems]] number`` cannot
    say it (simulated modems)."""

    sms_url: AnyHttpUrl | None = None
    account_sid: str = Field(default="", pattern=r"^(AC[0-9a-f]{32})?$")
    numbers: dict[str, str] = {}
    timeout_s: float = Field(default=10.0, gt=0, le=120)


class WebhookConfig(_Section):
    """A receiver of JSON events, signed with HMAC-SHA256 over ``timestamp.body``."""

    url: AnyHttpUrl
    # "modem.balance_low" (a SIM's prepaid balance fell below balance_low), "modem.paused"
    # and "modem.resumed" (SIM health, [health.sim]) only when listed.
    events: list[Literal["inbound", "status", "modem.balance_low", "modem.paused", "modem.resumed"]] = [
        "inbound", "status"]
    secret: SecretStr = SecretStr("")
    timeout_s: float = Field(default=10.0, gt=0, le=120)


class KeywordLanguage(_Section):
    """One language's opt-out keywords and replies (docs/architecture.md, "Interfaces")."""

    name: str = Field(min_length=1)
    stop: list[str] = []
    start: list[str] = []
    help: list[str] = []
    stop_reply: str | None = None
    start_reply: str | None = None
    help_reply: str | None = None


class KeywordsSection(_Section):
    """Keyword handling. English is always on unless ``english = false``."""

    english: bool = True
    stop_reply: str | None = None
    start_reply: str | None = None
    help_reply: str | None = None
    languages: list[KeywordLanguage] = []


class InboundSection(_Section):
    """Inbound messages: how long to wait for the missing parts of a multipart SMS."""

    reassembly_timeout_s: float = Field(default=600.0, gt=0)


class BroadcastsSection(_Section):
    """Broadcasts: the appliance's timezone, the quiet hours of marketing messages (a
    window ``quiet_hours_start``–``quiet_hours_end`` in that timezone, which may cross
    midnight; both empty = none), the opt-out footer appended to marketing texts
    (empty = none), the most recipients one broadcast may have, and ``approval_over``: a
    broadcast to more recipients started by a staff member (a web user who is not an admin,
    or an API key without the ``admin`` scope) waits for another admin's approval (0: never)."""

    timezone: str = "UTC"
    quiet_hours_start: str = "21:00"
    quiet_hours_end: str = "08:00"
    opt_out_footer: str = "Reply STOP to opt out"
    max_recipients: int = Field(default=10_000, ge=1, le=1_000_000)
    approval_over: int = Field(default=200, ge=0, le=1_000_000)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value!r} is not an IANA timezone name (e.g. Europe/London)") from None
        return value

    @field_validator("quiet_hours_start", "quiet_hours_end")
    @classmethod
    def _clock(cls, value: str) -> str:
        import re

        value = value.strip()
        if value and not re.fullmatch(r"([01]?\d|2[0-3]):[0-5]\d", value):
            raise ValueError(f"{value!r} is not a time of day as HH:MM (e.g. 21:00)")
        return value

    @model_validator(mode="after")
    def _both_or_neither(self) -> "BroadcastsSection":
        if bool(self.quiet_hours_start) != bool(self.quiet_hours_end):
            raise ValueError("give both quiet_hours_start and quiet_hours_end, or leave both empty")
        if self.quiet_hours_start and self.quiet_hours_start == self.quiet_hours_end:
            raise ValueError("quiet_hours_start and quiet_hours_end are the same; leave both empty for none")
        return self


class ContactsSection(_Section):
    """Contacts. ``import_dir`` is the one directory whose files ``POST /v1/contacts/import``
    may read by path (``{"path": ...}``, admin scope); empty: the ``imports`` directory
    beside a SQLite database, else ``/var/lib/appliance/imports``."""

    import_dir: str = ""


class SmsSection(_Section):
    """Outgoing text. ``national_languages`` lists languages of 3GPP TS 23.038 (``turkish``,
    ``spanish``, ``portuguese``, ``bengali``, ``gujarati``, ``hindi``, ``kannada``,
    ``malayalam``, ``oriya``, ``punjabi``, ``tamil``, ``telugu``, ``urdu``) whose national
    shift tables may carry a text in GSM-7 when that takes fewer parts than the default
    alphabet or UCS-2. None by default: some old handsets cannot read them.

    ``sticky_sender``: a recipient gets their messages from the SIM that last texted them
    or that they last wrote to, while that SIM is online and within its caps, waiting for
    it at most ``sticky_wait_s`` seconds; otherwise round-robin (docs/architecture.md,
    "Sticky sender")."""

    national_languages: list[str] = []
    sticky_sender: bool = True
    sticky_wait_s: float = Field(default=600.0, ge=0, le=7 * 86400)

    @field_validator("national_languages")
    @classmethod
    def _known_languages(cls, value: list[str]) -> list[str]:
        from appliance.pdu import NATIONAL_LANGUAGES, PduError, parse_languages

        try:
            return list(parse_languages(value))
        except PduError as exc:
            raise ValueError(f"{exc}; choose from {', '.join(NATIONAL_LANGUAGES)}") from None


class SimulatorSection(_Section):
    """Simulated modems added by ``appliance serve --simulate N`` (the demo and the tests)."""

    personas: list[Literal["sim800", "huawei", "quectel"]] = ["sim800", "huawei", "quectel"]
    latency_s: float = Field(default=0.5, ge=0)
    min_interval_s: float = Field(default=0.0, ge=0)
    max_parts_per_minute: int = Field(default=60, ge=1)
    max_parts_per_hour: int = Field(default=2000, ge=1)
    max_parts_per_day: int = Field(default=20000, ge=1)


class SimHealthSection(_Section):
    """SIM health (README, "SIM health"): each modem's recent send outcomes; a SIM that
    crosses a threshold is paused (no new work, its queued work goes to other SIMs) until a
    probe after ``cooldown_s`` finds its modem answering and registered, or an admin resumes it.

    A pause trips after ``failures_in_row`` failed sends in a row, when more than
    ``max_failed_share`` of the last ``window`` sends failed (a full window), or at once on a
    ``+CMS ERROR`` in ``barring_cms``. Codes in ``ignore_cms`` blame the recipient's number,
    not the SIM, and are not counted. Each pause after a failed probe (or a failed first send
    after a probe) doubles the cool-down, up to ``cooldown_max_s``; ``probe = false`` leaves
    resuming to an admin."""

    enabled: bool = True
    failures_in_row: int = Field(default=5, ge=1, le=1000)
    window: int = Field(default=20, ge=1, le=1000)
    max_failed_share: float = Field(default=0.5, gt=0, le=1)
    barring_cms: list[Annotated[int, Field(ge=0, le=999)]] = [8, 10, 21, 38, 50]
    ignore_cms: list[Annotated[int, Field(ge=0, le=999)]] = [1, 28, 30, 195]
    cooldown_s: float = Field(default=600.0, gt=0)
    cooldown_max_s: float = Field(default=3600.0, gt=0)
    probe: bool = True

    @model_validator(mode="after")
    def _max_not_below(self) -> "SimHealthSection":
        if self.cooldown_max_s < self.cooldown_s:
            raise ValueError("cooldown_max_s must be at least cooldown_s")
        return self


class HealthSection(_Section):
    """Thresholds of ``/healthz``, the watchdog and the start-up checks; ``[health.sim]``
    the SIM health check (:class:`SimHealthSection`)."""

    # /healthz says "degraded" below either (the database's filesystem).
    min_free_disk_percent: float = Field(default=5.0, ge=0, le=100)
    min_free_disk_mb: float = Field(default=200.0, ge=0)
    # The daemon refuses to start below this (exit code 78): SQLite cannot commit safely.
    refuse_start_below_mb: float = Field(default=20.0, ge=0)
    # Queued work due this long, with an online modem that has budget but sent nothing
    # for as long, makes the queue "stuck".
    queue_stuck_after_s: float = Field(default=900.0, gt=0)
    # A dispatcher worker is stuck when a wait or send outlasts its own timeout by this.
    worker_stuck_margin_s: float = Field(default=60.0, gt=0)
    # Backups taken before a schema migration at start-up that are kept.
    keep_migration_backups: int = Field(default=3, ge=1)
    # Each modem's signal is sampled this often for the dashboard's chart (0: never) and
    # samples are kept this many days (README, "Charts").
    signal_sample_s: float = Field(default=300.0, ge=0)
    signal_keep_days: float = Field(default=7.0, gt=0)
    sim: SimHealthSection = SimHealthSection()


class NodeSection(_Section):
    """This appliance among several sharing one PostgreSQL database.

    ``name`` identifies the node (default: the host name); ``node_lease_s`` is how long it
    may stay silent before a surviving node takes over its in-flight work (claimed parts
    back to the queue, parts mid-send to ``unknown``); ``heartbeat_s`` how often it says it
    is alive (default a sixth of the lease)."""

    name: str = Field(default_factory=lambda: _hostname(), min_length=1, max_length=64,
                      pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    node_lease_s: float = Field(default=60.0, ge=5, le=3600)
    heartbeat_s: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _beat_within_lease(self) -> "NodeSection":
        if self.heartbeat_s is not None and self.heartbeat_s * 2 > self.node_lease_s:
            raise ValueError("heartbeat_s must be at most half of node_lease_s")
        return self

    @property
    def beat_every_s(self) -> float:
        return self.heartbeat_s if self.heartbeat_s is not None else self.node_lease_s / 6


class EmailRelaySection(_Section):
    """The outgoing mail server answers go through (failures, SMS replies, ``inbound_to``).
    Empty ``host``: no answers by email."""

    host: str = ""
    port: int = Field(default=587, ge=1, le=65535)
    starttls: bool = True
    user: str = ""
    password: SecretStr = SecretStr("")
    from_address: str = ""  # default: sms@<email.domain>
    timeout_s: float = Field(default=30.0, gt=0, le=300)
    retry_base_s: float = Field(default=5.0, gt=0)  # backoff: base·2^(failures−1), capped
    retry_cap_s: float = Field(default=300.0, gt=0)


class EmailSection(_Section):
    """Email to SMS (README, "Email to SMS"). Off by default.

    A mail to ``<number>@<domain>`` becomes an SMS to that number, to ``<group>@<domain>`` a
    broadcast to the contact group. Senders authenticate with an API key of ``send`` scope
    (SMTP AUTH after STARTTLS: user = key name, password = key) or come from
    ``allow_networks`` with a ``From`` in ``allow_from``. Groups take a key of ``admin``
    scope, or a sender (key name or address) listed in ``group_senders``."""

    enabled: bool = False
    host: str = "0.0.0.0"
    port: int = Field(default=2525, ge=0, le=65535)  # 0: any free port (tests)
    domain: str = "sms.school.lan"
    text_from: Literal["body", "subject", "both"] = "body"
    allow_networks: list[str] = []
    allow_from: list[str] = []
    group_senders: list[str] = []
    max_mails_per_minute: int = Field(default=60, ge=1)
    max_message_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)
    cert_file: str = ""
    key_file: str = ""
    state_dir: str = ""  # default: the SQLite database's folder
    inbound_to: str = ""  # every inbound SMS also goes to this mailbox (needs the relay)
    # Told by mail when a SIM is paused or resumed (SIM health, [health.sim]; needs the relay).
    alerts_to: list[Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+$")]] = []
    report_failures: bool = True
    relay: EmailRelaySection = EmailRelaySection()

    @field_validator("domain")
    @classmethod
    def _domain(cls, value: str) -> str:
        import re

        value = value.strip().lower().rstrip(".")
        if not re.fullmatch(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*", value):
            raise ValueError(f"{value!r} is not a domain name (e.g. sms.school.lan)")
        return value

    @field_validator("allow_networks")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        import ipaddress

        for net in value:
            try:
                ipaddress.ip_network(net, strict=False)
            except ValueError:
                raise ValueError(f"{net!r} is not a network (e.g. 10.0.0.0/24)") from None
        return value

    @field_validator("allow_from", "group_senders")
    @classmethod
    def _lower(cls, value: list[str]) -> list[str]:
        return [v.strip().lower() for v in value if v.strip()]

    @model_validator(mode="after")
    def _cert_pair(self) -> "EmailSection":
        if bool(self.cert_file) != bool(self.key_file):
            raise ValueError("give both cert_file and key_file, or neither (a self-signed one is made)")
        return self


class RetentionSection(_Section):
    """How long personal data is kept (docs: README "Retention and privacy requests").

    Bodies of finished messages and inbound texts are erased after ``body_days``; events
    and send-log rows are deleted after ``log_days`` (send-log rows the rate caps still
    count — the last day — always stay); audit-trail lines after ``audit_days`` (longer
    than bodies: who did what outlives what was sent). ``batch`` rows per write transaction.
    """

    body_days: float = Field(default=90, ge=0)
    log_days: float = Field(default=365, ge=0)
    audit_days: float = Field(default=730, ge=0)
    batch: int = Field(default=500, ge=1, le=10_000)
    enabled: bool = True  # the daemon's daily run (the CLI runs it either way)


def _hostname() -> str:
    import re
    import socket

    name = re.sub(r"[^A-Za-z0-9._-]", "-", socket.gethostname()).strip("-._") or "appliance"
    return name[:64]


class _TomlFile(PydanticBaseSettingsSource):
    """Reads the TOML file given to :func:`load_settings`."""

    def __init__(self, settings_cls: type[BaseSettings], data: dict[str, Any]) -> None:
        super().__init__(settings_cls)
        self._data = data

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return self._data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(self._data)


class Settings(BaseSettings):
    """All settings of the appliance (docs/architecture.md, "Interfaces")."""

    model_config = SettingsConfigDict(
        env_prefix="APPLIANCE_", env_nested_delimiter="__", extra="forbid"
    )

    appliance: ApplianceSection = ApplianceSection()
    api: ApiSection = ApiSection()
    modems: list[ModemConfig] = []
    webhooks: list[WebhookConfig] = []
    keywords: KeywordsSection = KeywordsSection()
    inbound: InboundSection = InboundSection()
    simulator: SimulatorSection = SimulatorSection()
    broadcasts: BroadcastsSection = BroadcastsSection()
    health: HealthSection = HealthSection()
    node: NodeSection = NodeSection()
    sms: SmsSection = SmsSection()
    contacts: ContactsSection = ContactsSection()
    email: EmailSection = EmailSection()
    twilio: TwilioSection = TwilioSection()
    retention: RetentionSection = RetentionSection()
    discovery: DiscoverySection = DiscoverySection()

    @model_validator(mode="after")
    def _unique_modem_names(self) -> "Settings":
        names = [m.name for m in self.modems]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"modem names must be unique; repeated: {', '.join(dupes)}")
        return self

    def import_dir(self) -> Path:
        """Where contact files imported by path must be (see :class:`ContactsSection`)."""
        if self.contacts.import_dir:
            return Path(self.contacts.import_dir).expanduser()
        scheme, sep, rest = self.appliance.database_url.partition(":///")
        database = rest.split("?", 1)[0]
        if sep and scheme.split("+", 1)[0] == "sqlite" and database not in ("", ":memory:"):
            return Path(database).expanduser().parent / "imports"
        return Path("/var/lib/appliance/imports")

    # Filled by load_settings so the init source can see the file's contents.
    _toml_data: ClassVar[dict[str, Any]] = {}

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _TomlFile(settings_cls, cls._toml_data))


def _describe(err: ValidationError, source: str) -> str:
    first = err.errors()[0]
    key = ".".join(str(p) for p in first["loc"]) or "(top level)"
    return f"{source}: setting '{key}': {first['msg']}"


def load_settings(path: str | os.PathLike[str] | None = None) -> Settings:
    """Load settings from ``path`` (or ``$APPLIANCE_CONFIG``) and the environment.

    With neither, defaults and the environment alone are used.
    """
    if path is None and os.environ.get(CONFIG_ENV):
        path = os.environ[CONFIG_ENV]
    data: dict[str, Any] = {}
    source = "environment"
    if path is not None:
        file = Path(path)
        source = str(file)
        try:
            data = tomllib.loads(file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"{file}: configuration file not found") from None
        except PermissionError:
            raise ConfigError(f"{file}: configuration file is not readable") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{file}: not valid TOML: {exc}") from None
    Settings._toml_data = data
    try:
        return Settings()
    except ValidationError as exc:
        raise ConfigError(_describe(exc, f"{source} (or APPLIANCE_* environment)")) from None
    finally:
        Settings._toml_data = {}
