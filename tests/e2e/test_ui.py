"""The Prefect UI in headless Chromium, as a person uses it: open the produce-video deployment, fill the run form,
start the run and watch it complete. Debian's chromium is driven by playwright (never `playwright install`)."""

from __future__ import annotations

import re
import uuid
from collections import Counter
from pathlib import Path

import pytest

from tests.e2e.api import read_result
from tests.e2e.browser import chromium_page, choose_option, dismiss_tag, fill_and_keep, form_field, open_run_form, tags
from tests.e2e.conftest import Stack

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(900)]


async def test_run_produce_video_from_the_ui(stack: Stack, tmp_path: Path) -> None:
    from playwright.async_api import TimeoutError as PlaywrightTimeoutError
    from playwright.async_api import expect

    tag = uuid.uuid4().hex[:8]
    prompt = f"A kite over a harbour at dusk, take {tag}"
    mark = len(stack.emulator.ledger())
    async with chromium_page(tmp_path, "ui") as page:
        await open_run_form(page, stack.server.url)

        await fill_and_keep(form_field(page, "Title (Optional)").locator("textarea, input").first, f"ui-{tag}")
        await fill_and_keep(form_field(page, "Prompt (Optional)").locator("textarea").first, prompt)
        # Languages are an enum: a multi-select showing the defaults (en, ja) as tags. Choose as a person
        # does: tick ko in the list, drop ja with the x on its tag.
        languages = form_field(page, "Target Languages (Optional)")
        await expect(tags(languages)).to_have_text(["en", "ja"])
        await choose_option(page, languages, "ko")
        await dismiss_tag(languages, "ja")
        await expect(tags(languages)).to_have_text(["en", "ko"])
        await page.get_by_role("button", name="Submit", exact=True).click()

        # The notice names the new run and links to it ("View run").
        toast = page.locator(".p-toast-container").filter(has_text="scheduled to start").first
        run_name = (await toast.inner_text()).split(" scheduled")[0].strip()
        flow_run_id = stack.api.flow_run_by_name(run_name)["id"]
        try:
            await page.get_by_role("button", name="View run").filter(visible=True).first.click(timeout=5_000)
            await page.wait_for_url(re.compile(rf"/runs/flow-run/{flow_run_id}"), timeout=10_000)
        except PlaywrightTimeoutError:  # the notice re-renders while the page polls: open what it links to
            await page.goto(f"{stack.server.url}/runs/flow-run/{flow_run_id}")
        heading = page.locator(".page-heading").filter(has_text=run_name).first
        await heading.locator(".state-badge").filter(has_text="Completed").wait_for(timeout=240_000)
        # The run page's logs say which stage ran (clipflow's own lines reach the UI, not only Prefect's).
        await page.goto(f"{stack.server.url}/runs/flow-run/{flow_run_id}?tab=Logs")
        await page.get_by_text("stage generate: started", exact=False).first.wait_for(timeout=60_000)
        await page.get_by_text("stage translate: finished", exact=False).first.wait_for(timeout=60_000)

    run = stack.api.flow_run(flow_run_id)
    assert run["name"] == run_name and run["state"]["type"] == "COMPLETED"
    request = run["parameters"]["request"]
    assert request["title"] == f"ui-{tag}" and request["clip"]["prompt"] == prompt
    assert request["translate"]["target_languages"] == ["en", "ko"]  # exactly what was picked, in that order
    result = read_result(run)
    languages_done = [(lang.language, lang.status.value) for lang in result.languages]
    assert languages_done == [("en", "succeeded"), ("ko", "succeeded")]
    billed = Counter(e["action"] for e in stack.ledger_since(mark))
    assert billed["CVSync2AsyncSubmitTask"] == 1 and billed["SubmitAITranslationWorkflow"] == 2
