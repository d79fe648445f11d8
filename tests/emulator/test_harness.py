"""The emulator's own interfaces: CLI, admin routes, the testing handle, media files."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from emulator.cli import build_parser, config_from_args, main
from emulator.config import DEMO_ACCESS_KEY, DEMO_GATEWAY_KEY, DEMO_SECRET_KEY, DEMO_VID, EmulatorConfig
from emulator.media import probe, sample_bytes, variant
from emulator.testing import EmulatorHandle, running_emulator


def test_sample_and_variants_are_valid_mp4() -> None:
    base = probe(sample_bytes())
    assert base is not None and 2 <= base.duration <= 5 and (base.width, base.height) == (160, 90)
    assert len(sample_bytes()) < 20_000
    a, b = variant("a"), variant("b")
    assert a != b and probe(a) == base == probe(b)
    assert probe(b"not a video") is None


def test_starts_fast_and_stops_cleanly() -> None:
    started = time.perf_counter()
    with running_emulator(time_scale=0.01) as emu:
        assert time.perf_counter() - started < 2.0
        assert emu.health()["status"] == "ok"
        assert (emu.access_key, emu.secret_key, emu.gateway_key) == (
            DEMO_ACCESS_KEY, DEMO_SECRET_KEY, DEMO_GATEWAY_KEY)
        url = emu.base_url
    with pytest.raises(httpx.TransportError):
        httpx.get(url + "/_emulator/health", timeout=1)


def test_admin_config_patch_and_clock(emu: EmulatorHandle) -> None:
    patched = emu.configure(time_scale=0.5, spaces=["demo", "other"])
    assert patched["time_scale"] == 0.5 and patched["secret_key"] == "***"
    refused = httpx.patch(f"{emu.base_url}/_emulator/config", json={"secret_key": "x"})
    assert refused.status_code == 400
    assert emu.advance(100) == pytest.approx(50.0)
    emu.reset()
    assert emu.health()["time_scale"] == emu.config.time_scale and emu.health()["clock_offset"] == 0


def test_media_ranges_and_missing(emu: EmulatorHandle) -> None:
    url = f"{emu.base_url}/_media/vod/{DEMO_VID}.mp4"
    part = httpx.get(url, headers={"Range": "bytes=0-7"})
    assert part.status_code == 206 and part.content[4:8] == b"ftyp"
    assert httpx.head(url).headers["content-length"] == str(len(httpx.get(url).content))
    assert httpx.get(f"{emu.base_url}/_media/vod/nope.mp4").status_code == 404


def test_cli_arguments(tmp_path: Path) -> None:
    faults = tmp_path / "faults.json"
    faults.write_text(json.dumps({"StartWorkflow": {"error_rate": 1, "count": 2}}))
    args = build_parser().parse_args(["--access-key", "AK", "--secret-key", "SK", "--gateway-key", "GK",
                                      "--time-scale", "0.1", "--faults", str(faults),
                                      "--callback-url", "http://127.0.0.1:1/cb"])
    config = config_from_args(args)
    assert (config.access_key, config.secret_key, config.gateway_key, config.time_scale) == ("AK", "SK", "GK", 0.1)
    assert config.faults[0].action == "StartWorkflow" and config.faults[0].count == 2
    assert config.callback_url == "http://127.0.0.1:1/cb"
    assert config_from_args(build_parser().parse_args([])).access_key == DEMO_ACCESS_KEY
    missing = tmp_path / "missing.json"
    assert main(["--faults", str(missing)]) == 2


def test_python_dash_m_serves(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "emulator", "--port", str(port), "--time-scale", "0.01", "--log-level", "warning",
         "--secret-key", "sk-given-on-the-command-line", "--gateway-key", "gw-given-on-the-command-line"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=Path(__file__).parents[2],
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/_emulator/health", timeout=0.5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, "emulator CLI did not come up"
            time.sleep(0.1)
    finally:
        proc.terminate()
        output, _ = proc.communicate(timeout=10)
    # The banner names the access key; secrets never appear, even when given on the command line.
    assert DEMO_ACCESS_KEY in output and "secret set" in output
    assert "sk-given-on-the-command-line" not in output and "gw-given-on-the-command-line" not in output
    assert DEMO_SECRET_KEY not in output and DEMO_GATEWAY_KEY not in output


def test_config_validation() -> None:
    with pytest.raises(ValueError):
        EmulatorConfig(time_scale=0)
    with pytest.raises(ValueError):
        EmulatorConfig(faults=[{"action": "X", "error_rate": 1.5}])
    assert EmulatorConfig(qps={"StartWorkflow": None}).qps_for("StartWorkflow") is None
    assert EmulatorConfig().qps_for("gateway.create") == 5
