"""Several appliances on one PostgreSQL database as the API shows them: every node and its
modems on ``/v1/modems``, a silent node named by ``/healthz``."""

from __future__ import annotations

import time
from collections.abc import Callable

from appliance.db import nodes as nodes_db
from appliance.db.engine import write_tx
from tests.conftest import LiveServer, WebClient
from tests.utils.db import empty_tables


def test_every_node_and_its_modems_are_shown_and_a_silent_one_is_named(
    live_server_factory: Callable[..., LiveServer], postgres_database: str, web_client: Callable[..., WebClient]
) -> None:
    empty_tables(postgres_database)
    north = live_server_factory(simulate=1, settings={"appliance": {"database_url": postgres_database},
                                                       "node": {"name": "north"}})
    south = live_server_factory(simulate=1, settings={"appliance": {"database_url": postgres_database},
                                                       "node": {"name": "south"}})
    with north.client() as api:
        doc = api.get("/v1/modems").json()
    assert {(m["name"], m["node"]) for m in doc["modems"]} == {("north-sim1", "north"), ("south-sim1", "south")}
    remote = next(m for m in doc["modems"] if m["node"] == "south")
    assert remote["identity"]["imei"] == south.simulators[0].imei and remote["budget"] is None
    assert {(n["name"], n["state"], n["this"]) for n in doc["nodes"]} == {("north", "alive", True),
                                                                          ("south", "alive", False)}
    # A key made on one node works on the other (keys live in the shared database).
    with south.client(north.admin_key) as api:
        assert api.get("/v1/modems").status_code == 200
        metrics = api.get("/metrics").text
    assert 'appliance_node_up{node="north",state="alive"} 1.0' in metrics
    assert 'appliance_node_up{node="south",state="alive"} 1.0' in metrics
    # The dashboard (signed in on the south node) shows both appliances and north's modem.
    page = web_client(south, role="admin").get("/").text
    assert "Appliances sharing the database" in page and "north-sim1" in page and "(this one)" in page
    # A third node that went silent long ago is named by /healthz.
    with write_tx(north.app.queue.engine) as tx:
        nodes_db.register(tx, "west", host="west-pi", pid=1, version="0", api_url=None, lease_s=5)
        tx.exec_driver_sql("UPDATE nodes SET heartbeat_at = heartbeat_at - 60 WHERE name = 'west'")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        health = north.client().get("/healthz").json()
        if any("west" in r and "taken over" in r for r in health["reasons"]):
            break
        time.sleep(0.2)
    assert any("node west (west-pi) silent for" in r and "taken over by" in r for r in health["reasons"]), health
