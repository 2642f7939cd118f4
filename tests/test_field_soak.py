"""Issue 15's fault campaign, small enough for CI (``bench/soak.py`` runs the full numbers).

4 simulated modems in this process, ``appliance serve`` in a child process; 200 messages
(a quarter multipart, some numbers texted twice), inbound traffic with STOPs, a webhook
receiver down for the first half; on a schedule: unplug + replug under a new path, a hang,
CMS 38/42/500 bursts, no network, garbage bytes, a full storage, a SIM failing every send,
3 SIGKILLs. The failing SIM heals when the schedule ends (its refusals would otherwise leave
messages in a retry backoff of up to 40 s). The promises are checked from the simulators' logs and the receiver
(:mod:`tests.utils.campaign`); nothing here is timed.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from appliance.modem.driver import Modem
from appliance.modem.simulator import SimulatedModem
from tests.utils.campaign import CampaignSpec, run_campaign, summary
from tests.utils.wait import wait_until

CI_SPEC = CampaignSpec(messages=200, kills=3, duration_s=20.0, hang_s=2.0, no_network_s=3.0,
                       inbound=30, min_interval_s=0.2, bad_sim_heals=True, drain_timeout_s=180.0)


def test_a_modem_left_at_the_send_prompt_is_taken_back(sim_factory: Callable[..., SimulatedModem]) -> None:
    """A client killed between ``AT+CMGS=<n>`` and the PDU leaves the modem at ``> ``; the
    next client's resync cancels the prompt with ESC instead of feeding it PDU hex."""
    sim = sim_factory("sim800")
    with Modem.open(sim.path) as first:
        first.prepare()
        first.transport.write_raw(b"AT+CMGS=20\r", wait=False)
        wait_until(lambda: "AT+CMGS=20" in sim.commands, what="the modem at the prompt")
    with Modem.open(sim.path) as second:
        second.prepare()
        assert second.command("AT+CSQ")


@pytest.mark.slow
def test_fault_campaign(tmp_path: Path) -> None:
    # SQLite only, for the CI budget (~45 s a run): bench/soak.py --database runs PostgreSQL.
    result = run_campaign(CI_SPEC, tmp_path, f"sqlite:///{tmp_path / 'appliance.db'}")
    print("\n".join(summary(result)))
    assert not result.problems, "\n".join(summary(result))
    assert result.counts.get("sent", 0) > CI_SPEC.messages // 2
    assert result.paused_events >= 1  # the SIM failing every send was paused (SIM health)
    assert {f.kind for f in result.faults} >= {"unplug+replug", "hang", "cms bursts", "no network", "garbage",
                                                "storage full", "fails every send", "SIGKILL"}
