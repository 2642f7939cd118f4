"""National languages from ``[sms]`` to what people see: settings, the ``segments`` CLI,
``/v1/segments`` and the compose page's counter."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from appliance.api import ApiKeys, create_app
from appliance.cli import app
from appliance.config import ConfigError, load_settings
from appliance.queue import Dispatcher, Queue
from tests.utils.services import ApiServices as _Services

pytestmark = pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")

HINDI = "कल सुबह दस बजे विद्यालय में अभिभावकों की बैठक होगी। कृपया समय पर आएँ।"
HINDI_300 = ((HINDI + " ") * 5)[:300]  # 5 UCS-2 parts, 3 with the Hindi tables


def _config(tmp_path: Path, sms: str = "") -> Path:
    path = tmp_path / "appliance.toml"
    path.write_text(f'[appliance]\ndatabase_url = "sqlite:///{tmp_path / "a.db"}"\n{sms}')
    return path


# --- settings -----------------------------------------------------------------------------------


def test_sms_section_defaults_to_no_national_languages(tmp_path: Path) -> None:
    assert load_settings(_config(tmp_path)).sms.national_languages == []


def test_sms_section_reads_and_normalises_languages(tmp_path: Path) -> None:
    path = _config(tmp_path, '[sms]\nnational_languages = ["Hindi", "tamil", "hindi"]\n')
    assert load_settings(path).sms.national_languages == ["hindi", "tamil"]


def test_an_unknown_language_names_the_key_and_the_choices(tmp_path: Path) -> None:
    path = _config(tmp_path, '[sms]\nnational_languages = ["klingon"]\n')
    with pytest.raises(ConfigError) as err:
        load_settings(path)
    message = str(err.value)
    assert "sms.national_languages" in message and "klingon" in message and "urdu" in message


# --- the segments CLI ----------------------------------------------------------------------------

runner = CliRunner()


def _segments(*args: str, env: dict[str, str] | None = None) -> Any:
    return runner.invoke(app, ["segments", *args], env={"APPLIANCE_CONFIG": "", **(env or {})})


def test_cli_says_which_tables_and_how_many_parts_they_save() -> None:
    result = _segments("--national", "hindi", HINDI_300)
    assert result.exit_code == 0, result.output
    assert "encoding:   GSM-7, Hindi tables" in result.stdout
    assert "parts:      3 instead of 5 without national tables" in result.stdout


def test_cli_reads_the_languages_from_the_settings(tmp_path: Path) -> None:
    path = _config(tmp_path, '[sms]\nnational_languages = ["hindi"]\n')
    doc = json.loads(_segments("--json", "--config", str(path), HINDI_300).stdout)
    assert doc["summary"] == "GSM-7, Hindi tables: 3 parts instead of 5"
    assert (doc["locking_shift"], doc["single_shift"], doc["parts"], doc["default_parts"]) == (
        "hindi", "hindi", 3, 5)
    assert doc["national_languages"] == ["hindi"]
    off = json.loads(_segments("--json", "--config", str(path), "--national", "none", HINDI_300).stdout)
    assert (off["encoding"], off["parts"], off["summary"]) == ("ucs2", 5, "UCS-2: 5 parts")
    default = json.loads(_segments("--json", HINDI_300).stdout)
    assert default["encoding"] == "ucs2" and default["national_languages"] == []


def test_cli_all_and_bad_names() -> None:
    doc = json.loads(_segments("--json", "--national", "all", HINDI_300).stdout)
    assert doc["parts"] == 3 and len(doc["national_languages"]) == 13
    bad = _segments("--national", "hindi,klingon", "x")
    assert bad.exit_code != 0 and "klingon" in bad.output


# --- /v1/segments --------------------------------------------------------------------------------


@pytest.fixture
def api(tmp_path: Path) -> Iterator[tuple[TestClient, dict[str, str]]]:
    settings = load_settings(_config(tmp_path, '[sms]\nnational_languages = ["hindi"]\n'))
    queue = Queue(settings.appliance.database_url, max_parts=settings.appliance.max_parts)
    keys = ApiKeys(queue.engine)
    auth = {"Authorization": f"Bearer {keys.create('reader', ['read'])[1]}"}
    with TestClient(create_app(_Services(settings, queue, keys, Dispatcher(queue, [])))) as client:
        yield client, auth
    queue.close()


def test_api_uses_the_settings_languages(api: tuple[TestClient, dict[str, str]]) -> None:
    client, auth = api
    doc = client.post("/v1/segments", headers=auth, json={"body": HINDI_300}).json()
    assert (doc["encoding"], doc["locking_shift"], doc["single_shift"]) == ("gsm7", "hindi", "hindi")
    assert (doc["parts"], doc["default_parts"]) == (3, 5)
    assert doc["summary"] == "GSM-7, Hindi tables: 3 parts instead of 5"
    assert "".join(doc["texts"]) == HINDI_300
    plain = client.post("/v1/segments", headers=auth, json={"body": "Hello"}).json()
    assert (plain["summary"], plain["default_parts"], plain["locking_shift"]) == ("GSM-7: 1 part", 1, None)


def test_api_request_may_name_its_own_languages(api: tuple[TestClient, dict[str, str]]) -> None:
    client, auth = api
    none = client.post("/v1/segments", headers=auth, json={"body": HINDI_300, "national_languages": []})
    assert none.json()["encoding"] == "ucs2"
    bad = client.post("/v1/segments", headers=auth, json={"body": "x", "national_languages": ["klingon"]})
    assert bad.status_code == 422
    assert [e["field"] for e in bad.json()["errors"]] == ["national_languages"]


# --- the compose page's counter -----------------------------------------------------------------


def test_compose_counter_names_the_tables(live_server_factory: Any, web_client: Any) -> None:
    server = live_server_factory(simulate=1, settings={"sms": {"national_languages": ["hindi"]}})
    staff = web_client(server)

    def count(text: str) -> dict[str, Any]:
        response = staff.http.post("/compose/count", data={"text": text},
                                   headers={"X-CSRF-Token": staff.csrf})
        assert response.status_code == 200, response.text
        return response.json()  # type: ignore[no-any-return]

    hindi = count(HINDI_300)
    assert (hindi["parts"], hindi["default_parts"], hindi["locking_shift"]) == (3, 5, "hindi")
    assert "GSM-7, Hindi tables: 3 parts instead of 5" in hindi["summary"]
    plain = count("Hello")
    assert "GSM-7: 1 part," in plain["summary"] and "instead" not in plain["summary"]
    assert "UCS-2" in count("Hi 👋")["summary"]
    page = staff.get("/compose")
    assert "in which alphabet" in page.text
