"""The Prefect UI in headless Chromium, as a person uses it: open the produce-video deployment, fill the run form,
start the run and watch it complete. Debian's chromium is driven by playwright (never `playwright install`)."""

from __future__ import annotations

import re
import uuid
from collections import Counter
from pathlib import Path

import pytest

from tests.e2e.api import read_result
from tests.e2e.conftest import Stack
from tests.e2e.services import chromium_path

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


def form_field(page, label: str):  # type: ignore[no-untyped-def]
    """The schema-form property whose label reads ``label`` (labels are not tied to their nested inputs)."""
    return page.locator(
        f'xpath=//span[normalize-space(text())="{label}"]'
        '/ancestor::div[contains(concat(" ", normalize-space(@class), " "), " schema-form-property ")][1]'
    )


async def test_run_produce_video_from_the_ui(stack: Stack, tmp_path: Path) -> None:
    executable = chromium_path()
    if executable is None:
        pytest.skip("Chromium not found (Debian package chromium; `make e2e-deps` installs it)")
    from playwright.async_api import TimeoutError as PlaywrightTimeoutError
    from playwright.async_api import async_playwright

    tag = uuid.uuid4().hex[:8]
    prompt = f"A kite over a harbour at dusk, take {tag}"
    mark = len(stack.emulator.ledger())
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS, headless=True)
        page = await browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(30_000)
        try:
            await page.goto(f"{stack.server.url}/deployments")
            await page.get_by_role("link", name="produce-video", exact=True).first.click()
            await page.wait_for_url(re.compile(r"/deployments/deployment/"))
            await page.get_by_role("button", name="Run", exact=True).click()
            await page.get_by_text("Custom run", exact=True).click()
            await page.wait_for_url(re.compile(r"/run\b"))

            await form_field(page, "Title (Optional)").locator("textarea, input").first.fill(f"ui-{tag}")
            await form_field(page, "Prompt (Optional)").locator("textarea").first.fill(prompt)
            # Languages are an enum: a multi-select showing the defaults (en, ja) as tags; keep them.
            languages = form_field(page, "Target Languages (Optional)")
            assert [t.strip() for t in await languages.locator(".p-tag").all_inner_texts()] == ["en", "ja"]
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
        except BaseException:
            shot = tmp_path / "ui-failure.png"
            await page.screenshot(path=str(shot), full_page=True)
            print(f"screenshot of the failure: {shot} (page {page.url})")
            raise
        finally:
            await browser.close()

    run = stack.api.flow_run(flow_run_id)
    assert run["name"] == run_name and run["state"]["type"] == "COMPLETED"
    request = run["parameters"]["request"]
    assert request["title"] == f"ui-{tag}" and request["clip"]["prompt"] == prompt
    assert request["translate"]["target_languages"] == ["en", "ja"]
    result = read_result(run)
    assert [(lang.language, lang.status.value) for lang in result.languages] == [("en", "succeeded"), ("ja", "succeeded")]
    billed = Counter(e["action"] for e in stack.ledger_since(mark))
    assert billed["CVSync2AsyncSubmitTask"] == 1 and billed["SubmitAITranslationWorkflow"] == 2
