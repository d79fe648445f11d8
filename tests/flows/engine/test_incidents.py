"""The operations guide's example Automation (docs/operations.md) is valid for this Prefect and listens for events clipflow
really emits."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path

from prefect.events.schemas.automations import AutomationCore

ROOT = Path(__file__).resolve().parents[3]


def readme_automation() -> dict:
    text = (ROOT / "docs" / "operations.md").read_text()
    blob = text.split("--from-json '", 1)[1].split("}'", 1)[0] + "}"
    return json.loads(blob.replace("<id of an email/Slack notification block>", str(uuid.uuid4())))


def emitted_event_names() -> set[str]:
    """Every event name the code can emit: paid_request("<name>", ...) and the budget event."""
    names: set[str] = set()
    for path in (ROOT / "flows").rglob("*.py"):
        names |= {f"clipflow.paid-request.{n}" for n in re.findall(r'paid_request\(\s*"([a-z-]+)"', path.read_text())}
    source = (ROOT / "flows/engine/incidents.py").read_text()
    names |= set(re.findall(r'"(clipflow\.budget\.[a-z-]+)"', source))
    return names


def test_the_readme_automation_parses_and_expects_emitted_events() -> None:
    automation = AutomationCore.model_validate(readme_automation())
    expected = set(automation.trigger.expect)  # type: ignore[union-attr]
    assert expected and expected <= emitted_event_names()


def test_every_emitted_event_is_documented() -> None:
    readme = (ROOT / "docs" / "operations.md").read_text()
    for name in emitted_event_names():
        assert name.rsplit(".", 1)[1] in readme, f"{name} is emitted but not in docs/operations.md's list of events"
