"""The self-healing pieces that need no server: the Automations' windows from the settings, the heal trigger in
prefect.yaml agreeing with the code, the crashed run's id as the trigger hands it over. The behaviour on a real
server (crashes, successors, the limit, stuck cancels) is tests/e2e/test_healing.py."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
import yaml

from flows.stages import healing
from flows.runtime.settings import SettingsError

ROOT = Path(__file__).resolve().parents[3]


def prefect_yaml() -> dict:
    return yaml.safe_load((ROOT / "prefect.yaml").read_text())


def test_the_automations_take_their_windows_from_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLIPFLOW_HEARTBEAT_TIMEOUT_SECONDS", "75")
    monkeypatch.setenv("CLIPFLOW_CANCELLING_TIMEOUT_SECONDS", "20")

    zombie, cancelling = healing.automations()

    assert zombie.trigger.within.total_seconds() == 75 and cancelling.trigger.within.total_seconds() == 20
    assert zombie.trigger.after == {"prefect.flow-run.heartbeat"}
    # a suspended review or a run being cancelled has no heartbeat on purpose
    assert {"prefect.flow-run.Suspended", "prefect.flow-run.Cancelling"} <= zombie.trigger.expect
    assert zombie.actions[0].state.value == "CRASHED" and cancelling.actions[0].state.value == "CANCELLED"
    assert zombie.actions[0].message.startswith(healing.NO_HEARTBEAT)


def test_a_window_shorter_than_the_heartbeats_is_refused_naming_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLIPFLOW_HEARTBEAT_TIMEOUT_SECONDS", "30")
    with pytest.raises(SettingsError, match="CLIPFLOW_HEARTBEAT_TIMEOUT_SECONDS"):
        healing.automations()


def test_every_deployment_sends_heartbeats_as_often_as_the_automation_expects() -> None:
    config = prefect_yaml()
    env = config["definitions"]["work_pool"]["job_variables"]["env"]
    assert int(env["PREFECT_FLOWS_HEARTBEAT_FREQUENCY"]) == healing.HEARTBEAT_SECONDS
    for deployment in config["deployments"]:
        assert deployment["work_pool"]["job_variables"]["env"] == env, deployment["name"]
        assert healing.RUN_TAG in deployment["tags"], deployment["name"]


def test_the_heal_trigger_covers_exactly_the_resumable_flows() -> None:
    [heal] = [d for d in prefect_yaml()["deployments"] if d["name"] == "heal-crashed-run"]
    assert heal["entrypoint"] == "flows.stages.healing:heal_crashed_run"
    [trigger] = heal["triggers"]
    assert trigger["expect"] == ["prefect.flow-run.Crashed"]
    flows, deployed = trigger["match_related"]
    assert set(flows["prefect.resource.name"]) == healing.RESUMABLE_FLOWS
    assert deployed == {"prefect.resource.role": "deployment"}
    assert trigger["parameters"] == {"crashed_run": "{{ event.resource.id }}"}


def test_the_crashed_run_is_read_from_the_event_resource_or_a_bare_id() -> None:
    run = uuid.uuid4()
    assert healing.run_id_of(f"prefect.flow-run.{run}") == run
    assert healing.run_id_of(str(run)) == run
    with pytest.raises(ValueError, match="crashed_run: 'prefect.flow-run.nope'"):
        healing.run_id_of("prefect.flow-run.nope")
