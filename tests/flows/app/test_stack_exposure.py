"""``clipflow up --host``: a Prefect API reachable from other machines only with API auth, and the emulator and the
S3 stand-in on loopback whatever the host. Pure: nothing here binds an address other than loopback (the refusal
comes before anything starts)."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from flows.app.cli import main
from flows.app.stack import services, up
from flows.app.stack_settings import (
    CLIENT_AUTH, SERVER_AUTH, StackSettings, auth_headers, exposure_problem, is_loopback,
)

AUTH = "admin:correct-horse-battery"


@pytest.fixture
def no_auth(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(SERVER_AUTH, raising=False)
    monkeypatch.delenv(CLIENT_AUTH, raising=False)


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "localhost", "LOCALHOST.", "::1", "[::1]"])
def test_loopback_needs_nothing(host: str, no_auth: None) -> None:
    assert is_loopback(host) and exposure_problem(host) is None


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.20", "10.0.0.5", "203.0.113.7", "myhost.lan", "[::]"])
def test_any_other_address_is_refused_without_api_auth(host: str, no_auth: None) -> None:
    problem = exposure_problem(host)
    assert problem is not None
    assert SERVER_AUTH in problem and CLIENT_AUTH in problem and "block's secrets" in problem
    only_server = exposure_problem(host, {SERVER_AUTH: AUTH})
    assert only_server is not None and CLIENT_AUTH in only_server and SERVER_AUTH not in only_server


def test_with_api_auth_on_both_sides_the_host_is_accepted() -> None:
    assert exposure_problem("0.0.0.0", {SERVER_AUTH: AUTH, CLIENT_AUTH: AUTH}) is None
    differ = exposure_problem("0.0.0.0", {SERVER_AUTH: AUTH, CLIENT_AUTH: "admin:other"})
    assert differ is not None and "differ" in differ
    assert AUTH not in differ and "admin:other" not in differ  # never echoes a secret


def test_up_refuses_before_anything_starts(tmp_path: Path, no_auth: None) -> None:
    state = tmp_path / "state"
    said: list[str] = []
    assert up(StackSettings(state_dir=state, host="0.0.0.0"), said.append) == 1
    assert "--host 0.0.0.0" in said[0] and SERVER_AUTH in said[0]
    assert not state.exists()  # no pid file, no log: nothing was started


def test_the_cli_refuses_too(tmp_path: Path, no_auth: None, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["up", "--host", "0.0.0.0", "--state-dir", str(tmp_path / "s")]) == 1
    assert SERVER_AUTH in capsys.readouterr().out
    assert not (tmp_path / "s").exists()


def test_the_emulator_and_s3_bind_loopback_whatever_the_host() -> None:
    s = StackSettings(host="0.0.0.0")
    argv = {service.name: service.argv for service in services(s)}
    assert argv["prefect-server"][argv["prefect-server"].index("--host") + 1] == "0.0.0.0"
    assert argv["emulator"][argv["emulator"].index("--host") + 1] == "127.0.0.1"
    assert argv["s3"][argv["s3"].index("-H") + 1] == "127.0.0.1"
    env = s.client_env()
    assert env["PREFECT_API_URL"] == "http://127.0.0.1:4200/api"  # this machine's clients use loopback
    assert env["CLIPFLOW_S3_ENDPOINT"].startswith("http://127.0.0.1:")
    assert env["CLIPFLOW_VOD_ENDPOINT"].startswith("http://127.0.0.1:")
    lan = StackSettings(host="192.168.1.20")
    assert lan.api_url == "http://192.168.1.20:4200/api" and lan.s3_url.startswith("http://127.0.0.1:")


def test_the_stack_s_own_rest_calls_carry_the_client_auth(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(CLIENT_AUTH, raising=False)
    assert auth_headers() == {}
    monkeypatch.setenv(CLIENT_AUTH, AUTH)
    assert auth_headers() == {"Authorization": "Basic " + base64.b64encode(AUTH.encode()).decode()}
