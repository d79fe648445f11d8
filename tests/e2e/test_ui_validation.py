"""The run form refuses invalid parameters at Submit, in headless Chromium, as a person meets it: the form says
which field and why, no flow run is created and nothing is paid.

What the form shows depends on the rule (Prefect 3.8's UI): before sending, it validates the values against its own
copy of the deployment's schema, which keeps types and enums but drops lengths, patterns, ranges and uniqueItems.
So an unknown language is shown under its field and never sent, while an over-long prompt passes the form and is
refused by the server's ``create_flow_run`` (HTTP 409, same schema), shown as an error notice naming the field.
"""

from __future__ import annotations

import re
import typing
from pathlib import Path

import pytest

from flows.models.rules import TargetLanguage
from providers.jimeng.models import PROMPT_MAX_CHARS
from tests.e2e.browser import chromium_page, fill_and_keep, form_field, open_run_form, use_json_input
from tests.e2e.conftest import Stack

# the first e2e test of a session also pays for starting the stack (fixture setup counts towards the timeout)
pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(900)]

LANGUAGES = typing.get_args(TargetLanguage)


def _counts(stack: Stack) -> tuple[str, int, int]:
    deployment = stack.api.deployment("produce-video", "produce-video")
    return deployment["id"], stack.api.count_flow_runs(deployment["id"]), len(stack.emulator.ledger())


async def test_the_form_refuses_an_overlong_prompt_at_submit(stack: Stack, tmp_path: Path) -> None:
    deployment_id, runs, mark = _counts(stack)
    prompt = "x" * (PROMPT_MAX_CHARS + 1)  # one over the limit: the boundary, not a far-off value
    async with chromium_page(tmp_path, "overlong-prompt") as page:
        await open_run_form(page, stack.server.url)
        field = form_field(page, "Prompt (Optional)")
        # the textarea takes it all (the form sets no maxlength): the refusal has to come at Submit
        await fill_and_keep(field.locator("textarea").first, prompt)
        await page.get_by_role("button", name="Submit", exact=True).click()

        notice = page.locator(".p-toast-container").filter(has_text="Error creating flow run").first
        await notice.wait_for()
        text = " ".join((await notice.inner_text()).split())
        assert "Validation failed for field 'request.clip.prompt'" in text and "is too long" in text, text
        assert re.search(r"/run\b", page.url), page.url  # still on the form, values kept to correct them
        assert len(await field.locator("textarea").first.input_value()) == PROMPT_MAX_CHARS + 1

    assert stack.api.count_flow_runs(deployment_id) == runs
    assert stack.ledger_since(mark) == []


async def test_the_form_refuses_an_unknown_language_at_submit(stack: Stack, tmp_path: Path) -> None:
    from playwright.async_api import expect

    deployment_id, runs, mark = _counts(stack)
    async with chromium_page(tmp_path, "unknown-language") as page:
        await open_run_form(page, stack.server.url)
        languages = form_field(page, "Target Languages (Optional)")

        # The multi-select offers the enum only: typing "english" in its search leaves nothing to pick.
        await languages.locator(".p-select-button__icon").click()
        listbox = page.locator(".p-pop-over-content [role=listbox]")
        await expect(listbox.get_by_role("option")).to_have_count(len(LANGUAGES))
        await listbox.locator("input[type=search]").fill("english")
        await expect(listbox.get_by_role("option")).to_have_count(0)
        await page.keyboard.press("Escape")
        await listbox.wait_for(state="hidden")

        # A free value can still be typed in the property's JSON editor (⋮ → Use JSON input).
        editor = await use_json_input(page, languages)
        await fill_and_keep(editor, '["en", "english"]')
        await page.get_by_role("button", name="Submit", exact=True).click()

        # Refused under the field: which item, and the values allowed.
        message = languages.get_by_text("'english' is not one of", exact=False)
        await message.wait_for()
        shown = " ".join((await languages.inner_text()).split())
        assert "Index 1" in shown and "'english' is not one of ['zh', 'en', 'ja', 'ko'" in shown, shown
        assert re.search(r"/run\b", page.url), page.url
        await expect(page.locator(".p-toast-container").filter(has_text="scheduled to start")).to_have_count(0)

    assert stack.api.count_flow_runs(deployment_id) == runs
    assert stack.ledger_since(mark) == []
