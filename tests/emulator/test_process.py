"""``emulator_process``: the emulator in its own process, as a remote provider, driven through the same handle."""

from __future__ import annotations

import socket
from pathlib import Path

import httpx
import pytest

from emulator.config import DEMO_VID, EmulatorConfig
from emulator.testing import EmulatorHandle, emulator_process
from tests.emulator.helpers import call, error_code, signed_client


def test_runs_in_its_own_process_with_config_and_faults() -> None:
    faults = [{"action": "StartWorkflow", "error_after_accept": True, "count": 1}]
    with emulator_process(time_scale=0.01, faults=faults) as emu:
        assert isinstance(emu, EmulatorHandle) and emu.process.poll() is None and emu.pid != 0
        assert emu.health()["time_scale"] == 0.01
        assert emu.faults()[0]["error_after_accept"] is True
        with signed_client(emu, "vod") as vod:
            late = call(vod, "StartWorkflow", "2020-08-01", body={"Vid": DEMO_VID, "TemplateId": "demo-transcode-template"})
            assert (late.status_code, error_code(late)) == (504, "InternalServiceTimeout")
        assert [e["action"] for e in emu.ledger()] == ["StartWorkflow"]  # billed in the other process
        emu.set_faults([])  # the admin methods work across processes too
        emu.reset()
        assert emu.ledger() == [] and emu.faults() == []
        process, url = emu.process, emu.base_url
    assert process.poll() is not None  # stopped on exit
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{url}/_emulator/health", timeout=1)


def test_a_killed_provider_refuses_connections(tmp_path: Path) -> None:
    log = tmp_path / "emulator.log"
    with emulator_process(EmulatorConfig(time_scale=0.01), fault_seed=7, log_file=log, log_level="info") as emu:
        assert emu.output() and "emulator" in emu.output()  # the start banner, in the file asked for
        emu.process.kill()
        emu.process.wait(timeout=10)
        with pytest.raises(httpx.TransportError):
            emu.health()
    # exiting the context after the process died on its own is fine; the log stays for a post-mortem
    assert "clipflow emulator on http://127.0.0.1:" in log.read_text()


def test_a_process_that_cannot_start_is_reported() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(RuntimeError, match="cannot listen"):
            with emulator_process(port=port, startup_timeout=20):
                pass
