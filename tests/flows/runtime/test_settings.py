"""One settings object: every knob read at run time from CLIPFLOW_*, errors naming the variable, and the
configuration doc naming every variable the code reads."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from pathlib import Path

import pytest

from flows.app.block_setup import ENV_VARS
from flows.app.stack_settings import StackSettings
from flows.runtime import settings as s
from flows.coordination.lease_heartbeats import registry_directory
from flows.coordination.leases import heartbeat_seconds, stale_seconds
from flows.coordination.quotas import limits_mode

ROOT = Path(__file__).resolve().parents[3]
DOC = (ROOT / "docs" / "configuration.md").read_text()


@pytest.fixture
def clean(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in s.ClipflowSettings.variables():
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_defaults_with_nothing_set(clean: pytest.MonkeyPatch) -> None:
    got = s.settings()
    assert (got.time_scale, got.cache_days, got.quota_limits) == (1.0, 7.0, "strict")
    assert s.lock_directory().endswith("/.clipflow/locks") and not s.lock_directory().startswith("~")


def test_each_value_is_read_when_used_not_at_import(clean: pytest.MonkeyPatch) -> None:
    clean.setenv("CLIPFLOW_TIME_SCALE", "0.25")
    clean.setenv("CLIPFLOW_CACHE_DAYS", "2")
    clean.setenv("CLIPFLOW_QUOTA_LIMITS", " Lenient")
    clean.setenv("CLIPFLOW_LEASE_HEARTBEAT_SECONDS", "2")
    clean.setenv("CLIPFLOW_LEASE_STALE_SECONDS", "9")
    clean.setenv("CLIPFLOW_LOCK_DIR", "/tmp/clipflow-settings-test")
    assert s.time_scale() == 0.25
    assert s.cache_expiration() == dt.timedelta(days=2)
    assert limits_mode() == "lenient"
    assert (heartbeat_seconds(), stale_seconds()) == (2, 9)
    assert registry_directory() == Path("/tmp/clipflow-settings-test/leases")
    clean.setenv("CLIPFLOW_TIME_SCALE", "")  # empty = unset
    assert s.time_scale() == 1.0


@pytest.mark.parametrize(
    ("name", "value", "rule"),
    [
        ("CLIPFLOW_TIME_SCALE", "0", "greater than 0"),
        ("CLIPFLOW_TIME_SCALE", "fast", "valid number"),
        ("CLIPFLOW_TIME_SCALE", "inf", "finite"),
        ("CLIPFLOW_CACHE_DAYS", "-1", "greater than 0"),
        ("CLIPFLOW_QUOTA_LIMITS", "maybe", "'strict', 'lenient' or 'off'"),
        ("CLIPFLOW_LEASE_STALE_SECONDS", "-5", "greater than 0"),
    ],
)
def test_a_bad_value_names_the_variable_and_the_rule(
    clean: pytest.MonkeyPatch, name: str, value: str, rule: str
) -> None:
    clean.setenv(name, value)
    with pytest.raises(s.SettingsError) as caught:
        s.settings()
    assert f"{name}={value!r}" in str(caught.value) and rule in str(caught.value)


def test_the_configuration_doc_names_every_variable_the_code_reads() -> None:
    read = set()
    for folder in ("flows", "blocks", "deployments", "providers"):
        for path in (ROOT / folder).rglob("*.py"):
            read |= set(re.findall(r"CLIPFLOW_[A-Z][A-Z0-9_]*[A-Z0-9]", path.read_text()))
    read |= set(s.ClipflowSettings.variables()) | set(ENV_VARS)
    read |= {f"CLIPFLOW_UP_{f.name.upper()}" for f in dataclasses.fields(StackSettings)}
    read.discard("CLIPFLOW_UP")
    missing = sorted(name for name in read if f"`{name}`" not in DOC)
    assert not missing, f"docs/configuration.md does not describe {missing}"
