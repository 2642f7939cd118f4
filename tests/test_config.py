"""Settings: TOML file + APPLIANCE_* environment, errors naming the key and the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from appliance.config import ConfigError, load_settings


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "appliance.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_without_a_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("APPLIANCE_CONFIG", raising=False)
    settings = load_settings()
    assert settings.api.port == 8080
    assert settings.appliance.default_region == "US"
    assert settings.modems == []


def test_file_is_read(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
[appliance]
default_region = "GB"

[api]
port = 9001

[[modems]]
name = "sim-a"
port = "/dev/ttyUSB2"
pin = "1234"
max_parts_per_day = 300

[[modems]]
name = "sim-b"
imei = "356938035643809"
""",
    )
    settings = load_settings(path)
    assert settings.appliance.default_region == "GB"
    assert settings.api.port == 9001
    assert [m.name for m in settings.modems] == ["sim-a", "sim-b"]
    assert settings.modems[0].max_parts_per_day == 300
    assert settings.modems[0].pin.get_secret_value() == "1234"
    assert "1234" not in repr(settings.modems[0])


def test_environment_overrides_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, "[api]\nport = 9001\n")
    monkeypatch.setenv("APPLIANCE_API__PORT", "9555")
    assert load_settings(path).api.port == 9555


def test_config_path_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, "[api]\nport = 9002\n")
    monkeypatch.setenv("APPLIANCE_CONFIG", str(path))
    assert load_settings().api.port == 9002


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("[api]\nport = 'eighty'\n", ["api.port", "appliance.toml"]),
        ("[api]\nprot = 80\n", ["api.prot", "appliance.toml"]),
        ("[[modems]]\nname = 'a'\n", ["modems.0", "port, imei or iccid"]),
        ("[[modems]]\nname='a'\nport='/x'\n[[modems]]\nname='a'\nport='/y'\n", ["repeated: a"]),
        ("[api\nport = 1\n", ["not valid TOML"]),
    ],
)
def test_wrong_settings_name_the_key_and_the_file(tmp_path: Path, text: str, words: list[str]) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    message = str(info.value)
    for word in words:
        assert word in message


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_settings(tmp_path / "nope.toml")
