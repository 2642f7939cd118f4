"""The Raspberry Pi installation files: systemd unit, udev rules, example config, installer.

The unit is read with a strict parser (every required directive present with the value
the daemon and the hardware need), checked with ``systemd-analyze verify`` and
``systemd-analyze security`` where systemd is installed, the udev rules are linted line by
line, the installer is syntax-checked, and the example configuration must load.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
UNIT = ROOT / "systemd" / "appliance.service"
RULES = ROOT / "systemd" / "99-sms-appliance.rules"
EXAMPLE = ROOT / "systemd" / "appliance.toml.example"
INSTALL = ROOT / "scripts" / "install.sh"

Unit = dict[str, dict[str, list[str]]]


# ----------------------------------------------------------------------------- unit file

def parse_unit(text: str) -> Unit:
    """Sections → keys → values (a key may repeat, e.g. ``DeviceAllow=``).

    Strict: a line outside a section, a line without ``=``, or an empty key is an error.
    An empty assignment (``CapabilityBoundingSet=``) is kept as ``""``.
    """
    unit: Unit = {}
    section: dict[str, list[str]] | None = None
    pending = ""
    for number, raw in enumerate(text.splitlines(), 1):
        line = pending + raw.strip()
        pending = ""
        if not line or line[0] in "#;":
            continue
        if line.endswith("\\"):
            pending = line[:-1] + " "
            continue
        if line.startswith("["):
            if not line.endswith("]"):
                raise ValueError(f"line {number}: bad section header {line!r}")
            section = unit.setdefault(line[1:-1], {})
            continue
        if section is None:
            raise ValueError(f"line {number}: assignment outside a section: {line!r}")
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"line {number}: not KEY=VALUE: {line!r}")
        section.setdefault(key.strip(), []).append(value.strip())
    if pending:
        raise ValueError("file ends in a line continuation")
    return unit


@pytest.fixture(scope="module")
def unit() -> Unit:
    return parse_unit(UNIT.read_text(encoding="utf-8"))


def test_parser_rejects_malformed_units() -> None:
    with pytest.raises(ValueError, match="outside a section"):
        parse_unit("Type=notify\n[Service]\n")
    with pytest.raises(ValueError, match="not KEY=VALUE"):
        parse_unit("[Service]\nType notify\n")
    parsed = parse_unit("[Service]\nDeviceAllow=a rw\nDeviceAllow=b rw\nCapabilityBoundingSet=\n")
    assert parsed["Service"]["DeviceAllow"] == ["a rw", "b rw"]
    assert parsed["Service"]["CapabilityBoundingSet"] == [""]


REQUIRED: list[tuple[str, str, str]] = [
    ("Unit", "After", "network.target systemd-modules-load.service"),
    ("Service", "Type", "notify"),
    ("Service", "NotifyAccess", "main"),
    ("Service", "ExecStart",
     "/opt/appliance/venv/bin/appliance serve --config /etc/appliance/appliance.toml"),
    ("Service", "WatchdogSec", "30s"),
    ("Service", "Restart", "on-failure"),
    ("Service", "RestartSec", "10s"),
    ("Service", "RestartPreventExitStatus", "78"),
    ("Service", "KillSignal", "SIGTERM"),
    ("Service", "TimeoutStopSec", "90s"),
    ("Service", "User", "appliance"),
    ("Service", "Group", "appliance"),
    ("Service", "SupplementaryGroups", "dialout"),
    ("Service", "StateDirectory", "appliance"),
    ("Service", "ConfigurationDirectory", "appliance"),
    ("Service", "UMask", "0027"),
    ("Service", "DevicePolicy", "closed"),
    ("Service", "NoNewPrivileges", "yes"),
    ("Service", "CapabilityBoundingSet", ""),
    ("Service", "ProtectSystem", "strict"),
    ("Service", "ProtectHome", "yes"),
    ("Service", "PrivateTmp", "yes"),
    ("Service", "ProtectKernelTunables", "yes"),
    ("Service", "ProtectKernelModules", "yes"),
    ("Service", "ProtectKernelLogs", "yes"),
    ("Service", "ProtectControlGroups", "yes"),
    ("Service", "LockPersonality", "yes"),
    ("Service", "RestrictRealtime", "yes"),
    ("Service", "RestrictSUIDSGID", "yes"),
    ("Service", "SystemCallArchitectures", "native"),
    ("Service", "MemoryDenyWriteExecute", "yes"),
    ("Service", "RestrictAddressFamilies", "AF_UNIX AF_INET AF_INET6"),
    ("Install", "WantedBy", "multi-user.target"),
]


@pytest.mark.parametrize(("section", "key", "value"), REQUIRED, ids=[f"{s}.{k}" for s, k, _ in REQUIRED])
def test_unit_directive(unit: Unit, section: str, key: str, value: str) -> None:
    assert section in unit, f"[{section}] missing"
    values = unit[section].get(key)
    assert values is not None, f"{key}= missing from [{section}]"
    assert values == [value], f"{key}= is {values}, expected exactly [{value!r}]"


def test_unit_keeps_serial_ports_reachable(unit: Unit) -> None:
    service = unit["Service"]
    # PrivateDevices=yes would give the service a /dev without ttyUSB*/serial/by-id.
    assert service.get("PrivateDevices", ["no"]) == ["no"]
    allowed = {v.split()[0]: v.split()[1] for v in service["DeviceAllow"]}
    for group in ("char-ttyUSB", "char-ttyACM", "char-ttyAMA", "char-ttyS"):
        assert allowed.get(group) == "rw", f"DeviceAllow={group} rw missing"
    # No netlink: the daemon finds ports by path, so udev monitoring is not needed.
    assert "AF_NETLINK" not in service["RestrictAddressFamilies"][0]


def test_unit_times_fit_the_daemon(unit: Unit) -> None:
    """The watchdog must be long enough to be fed at half its period by a busy daemon,
    and stopping must outlast a send that is waiting for +CMGS."""

    def seconds(value: str) -> int:
        match = re.fullmatch(r"(\d+)(s|min)", value)
        assert match, f"unexpected time span {value!r}"
        return int(match[1]) * (60 if match[2] == "min" else 1)

    service = unit["Service"]
    assert 10 <= seconds(service["WatchdogSec"][0]) <= 120
    assert seconds(service["TimeoutStopSec"][0]) >= 60
    assert seconds(service["RestartSec"][0]) >= 1


def test_unit_does_not_restart_a_refused_start(unit: Unit) -> None:
    """The exit code the daemon uses when it refuses to start is the one systemd does not
    restart on (a restart loop cannot fix a wrong setting or a damaged database)."""
    from appliance.startup import EX_CONFIG, EX_TEMPFAIL

    prevented = unit["Service"]["RestartPreventExitStatus"][0].split()
    assert str(EX_CONFIG) in prevented
    assert str(EX_TEMPFAIL) not in prevented


def test_unit_paths_match_config_and_installer(unit: Unit) -> None:
    service = unit["Service"]
    exec_start = service["ExecStart"][0].split()
    config_path = exec_start[exec_start.index("--config") + 1]
    assert config_path == f"/etc/{service['ConfigurationDirectory'][0]}/appliance.toml"
    installer = INSTALL.read_text(encoding="utf-8")
    assert f'VENV="$PREFIX/venv"' in installer and "PREFIX=/opt/appliance" in installer
    assert exec_start[0] == "/opt/appliance/venv/bin/appliance"
    assert f"CONF_FILE=\"$CONF_DIR/appliance.toml\"" in installer
    assert "CONF_DIR=/etc/appliance" in installer
    # DeviceAllow=char-ttyUSB/char-ttyACM only resolve once these drivers are loaded.
    assert "usbserial" in installer and "cdc_acm" in installer


def _verifiable_copy(tmp_path: Path, extra: str = "") -> Path:
    """The unit with ExecStart's program replaced by /bin/true (verify needs it to exist)."""
    text = UNIT.read_text(encoding="utf-8")
    copy, n = re.subn(r"^ExecStart=/opt/appliance/venv/bin/appliance", "ExecStart=/bin/true",
                      text, flags=re.M)
    assert n == 1
    if extra:
        copy = copy.replace("[Service]\n", f"[Service]\n{extra}\n", 1)
    path = tmp_path / "appliance.service"
    path.write_text(copy, encoding="utf-8")
    return path


def _verify(path: Path) -> list[str]:
    """``systemd-analyze verify`` lines that concern this unit (other system units' noise
    is filtered out)."""
    proc = subprocess.run(["systemd-analyze", "verify", str(path)], capture_output=True,
                          text=True, timeout=60, cwd=path.parent)
    lines = (proc.stdout + proc.stderr).splitlines()
    ours = [ln for ln in lines if "appliance.service" in ln or str(path.parent) in ln]
    if proc.returncode != 0 and not ours:
        ours = lines or [f"exit code {proc.returncode}"]
    return ours


needs_systemd_analyze = pytest.mark.skipif(
    shutil.which("systemd-analyze") is None,
    reason="systemd-analyze is not installed (Debian package 'systemd'); unit not verified",
)


@needs_systemd_analyze
def test_systemd_analyze_verify_is_clean(tmp_path: Path) -> None:
    assert _verify(_verifiable_copy(tmp_path)) == []


@needs_systemd_analyze
def test_systemd_analyze_verify_catches_a_bad_directive(tmp_path: Path) -> None:
    """Proves the check above can fail: an unknown key is reported."""
    complaints = _verify(_verifiable_copy(tmp_path, "NoSuchDirective=yes"))
    assert any("NoSuchDirective" in line for line in complaints), complaints


@needs_systemd_analyze
def test_systemd_analyze_security_exposure_is_low(tmp_path: Path) -> None:
    path = _verifiable_copy(tmp_path)
    proc = subprocess.run(
        ["systemd-analyze", "security", "--offline=yes", "--no-pager", str(path)],
        capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )
    if "--offline" in proc.stderr and proc.returncode != 0:
        pytest.skip("this systemd-analyze has no 'security --offline' (needs systemd ≥ 250)")
    match = re.search(r"Overall exposure level for appliance\.service: (\d+\.\d+)", proc.stdout)
    assert match, proc.stdout + proc.stderr
    assert float(match[1]) <= 2.5, proc.stdout


# ----------------------------------------------------------------------------- udev rules

_MATCH_OPS = ("==", "!=")
_ASSIGN_OPS = ("=", "+=", "-=", ":=")
_TOKEN = re.compile(
    r'\s*(?P<key>[A-Z_]+)(?:\{(?P<attr>[^}]*)\})?\s*(?P<op>==|!=|\+=|-=|:=|=)\s*"(?P<value>[^"]*)"\s*'
)
_MATCH_KEYS = {"ACTION", "DEVPATH", "KERNEL", "KERNELS", "NAME", "SYMLINK", "SUBSYSTEM",
               "SUBSYSTEMS", "DRIVER", "DRIVERS", "ATTR", "ATTRS", "SYSCTL", "ENV", "CONST",
               "TAG", "TAGS", "TEST", "PROGRAM", "RESULT"}
_ASSIGN_KEYS = {"NAME", "SYMLINK", "OWNER", "GROUP", "MODE", "SECLABEL", "ATTR", "SYSCTL",
                "ENV", "TAG", "RUN", "LABEL", "GOTO", "IMPORT", "OPTIONS"}


def lint_udev_rules(text: str) -> tuple[list[list[tuple[str, str | None, str, str]]], list[str]]:
    """Parse udev rules strictly; returns (rules as token lists, problems found)."""
    rules: list[list[tuple[str, str | None, str, str]]] = []
    problems: list[str] = []
    labels: set[str] = set()
    gotos: list[tuple[int, str]] = []
    logical: list[tuple[int, str]] = []
    pending, start = "", 0
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if not pending:
            start = number
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append((start, pending + line))
        pending = ""
    for number, line in logical:
        tokens: list[tuple[str, str | None, str, str]] = []
        pos = 0
        while pos < len(line):
            match = _TOKEN.match(line, pos)
            if not match:
                problems.append(f"line {number}: cannot parse at {line[pos:]!r}")
                break
            key, attr, op, value = match["key"], match["attr"], match["op"], match["value"]
            allowed = _MATCH_KEYS if op in _MATCH_OPS else _ASSIGN_KEYS
            if key not in allowed:
                problems.append(f"line {number}: {key} cannot be used with {op}")
            if value.count("{") != value.count("}"):
                problems.append(f"line {number}: unbalanced braces in {value!r}")
            tokens.append((key, attr, op, value))
            pos = match.end()
            if pos < len(line):
                if line[pos] != ",":
                    problems.append(f"line {number}: expected ',' at {line[pos:]!r}")
                    break
                pos += 1
        if not tokens:
            continue
        keys = {t[0] for t in tokens}
        if keys == {"LABEL"}:
            labels.add(tokens[0][3])
        else:
            if not any(t[2] in _MATCH_OPS for t in tokens):
                problems.append(f"line {number}: a rule without any match key")
            if not any(t[2] in _ASSIGN_OPS for t in tokens):
                problems.append(f"line {number}: a rule without any assignment")
        gotos += [(number, t[3]) for t in tokens if t[0] == "GOTO"]
        rules.append(tokens)
    problems += [f"line {n}: GOTO to unknown LABEL {target!r}" for n, target in gotos
                 if target not in labels]
    return rules, problems


def test_udev_linter_finds_mistakes() -> None:
    _, problems = lint_udev_rules('KERNEL=="ttyS0" GROUP="dialout"\n')
    assert any("expected ','" in p for p in problems)
    _, problems = lint_udev_rules('SUBSYSTEM=="tty", GOTO="nowhere"\n')
    assert any("unknown LABEL" in p for p in problems)
    _, problems = lint_udev_rules('GROUP="dialout", MODE="0660"\n')
    assert any("without any match" in p for p in problems)
    _, problems = lint_udev_rules('SUBSYSTEM=="tty", GROUP=="dialout"\n')
    assert any("GROUP cannot be used with ==" in p for p in problems)
    _, problems = lint_udev_rules('SUBSYSTEM=="tty", SYMLINK+="x-$env{ID_SERIAL"\n')
    assert any("unbalanced" in p for p in problems)


@pytest.fixture(scope="module")
def udev_rules() -> list[list[tuple[str, str | None, str, str]]]:
    rules, problems = lint_udev_rules(RULES.read_text(encoding="utf-8"))
    assert problems == []
    return rules


def _assigned(rules: list[list[tuple[str, str | None, str, str]]], key: str,
              attr: str | None = None) -> list[str]:
    return [v for rule in rules for k, a, op, v in rule
            if k == key and a == attr and op in _ASSIGN_OPS]


def test_udev_rules_parse_and_cover_the_modems(udev_rules: list[list[tuple[str, str | None, str, str]]]) -> None:
    matched = " ".join(v for rule in udev_rules for k, a, op, v in rule
                       if op == "==" and (a in ("ID_VENDOR_ID", "idVendor")))
    for vendor in ("12d1", "2c7c", "1e0e", "0403", "10c4", "1a86"):
        assert vendor in matched, f"vendor {vendor} not matched"


def test_udev_rules_set_access_and_keep_modemmanager_away(
        udev_rules: list[list[tuple[str, str | None, str, str]]]) -> None:
    assert _assigned(udev_rules, "GROUP") == ["dialout"]
    assert _assigned(udev_rules, "MODE") == ["0660"]
    ignores = _assigned(udev_rules, "ENV", "ID_MM_DEVICE_IGNORE")
    assert ignores and set(ignores) == {"1"}
    # The tty rule that sets access also tells ModemManager to keep off.
    access_rule = next(r for r in udev_rules if ("GROUP", None, "=", "dialout") in r)
    assert ("ENV", "ID_MM_DEVICE_IGNORE", "=", "1") in access_rule


def test_udev_rules_name_ports_stably(udev_rules: list[list[tuple[str, str | None, str, str]]]) -> None:
    links = _assigned(udev_rules, "SYMLINK")
    assert links, "no SYMLINK+= rule"
    for link in links:
        assert link.startswith("sms-modem-")
        assert link.endswith("-if$env{ID_USB_INTERFACE_NUM}")
    assert any("$env{ID_SERIAL_SHORT}" in link for link in links)
    assert any("$env{ID_PATH_TAG}" in link for link in links)
    # Removal events are skipped before anything is assigned.
    first = udev_rules[0]
    assert ("ACTION", None, "==", "remove") in first and first[-1][0] == "GOTO"


# ----------------------------------------------------------------------------- installer

def test_install_script_syntax() -> None:
    proc = subprocess.run(["bash", "-n", str(INSTALL)], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck is not installed")
def test_install_script_shellcheck() -> None:
    proc = subprocess.run(["shellcheck", str(INSTALL)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_install_script_options_are_checked_before_anything_runs() -> None:
    """--help and bad options return before the root check or any change to the system."""
    ok = subprocess.run(["bash", str(INSTALL), "--help"], capture_output=True, text=True, timeout=30)
    assert ok.returncode == 0 and "--uninstall" in ok.stdout and "--modemmanager" in ok.stdout
    bad = subprocess.run(["bash", str(INSTALL), "--frobnicate"], capture_output=True, text=True,
                         timeout=30)
    assert bad.returncode != 0 and "unknown option: --frobnicate" in bad.stderr
    purge = subprocess.run(["bash", str(INSTALL), "--purge"], capture_output=True, text=True,
                           timeout=30)
    assert purge.returncode != 0 and "--purge only goes with --uninstall" in purge.stderr


# ----------------------------------------------------------------------------- example config

def test_example_config_loads(monkeypatch: pytest.MonkeyPatch, unit: Unit) -> None:
    import os

    from sqlalchemy.engine import make_url

    from appliance.config import load_settings

    for name in list(os.environ):
        if name.startswith("APPLIANCE_"):
            monkeypatch.delenv(name)
    settings = load_settings(EXAMPLE)
    database = make_url(settings.appliance.database_url).database
    assert database == f"/var/lib/{unit['Service']['StateDirectory'][0]}/appliance.db"
    assert settings.api.host == "127.0.0.1"
    assert len(settings.modems) == 3
    bindings = {m.name: (m.port, m.imei, m.iccid) for m in settings.modems}
    assert bindings["sim800-gpio"] == ("/dev/serial0", None, None)
    assert bindings["huawei-1"][1] is not None and bindings["quectel-1"][2] is not None
    for modem in settings.modems:
        assert modem.pin.get_secret_value() == ""
        assert modem.max_parts_per_minute <= modem.max_parts_per_hour <= modem.max_parts_per_day
        assert modem.min_interval_s * modem.max_parts_per_minute <= 60
