"""The Prefect UI in headless Chromium, as a person uses it: Debian's chromium driven by playwright (never
`playwright install`), the produce-video run form, and a screenshot in the test's tmp_path when a step fails."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.e2e.services import chromium_path

if TYPE_CHECKING:
    from playwright.async_api import Locator, Page

CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


@contextlib.asynccontextmanager
async def chromium_page(tmp_path: Path, name: str) -> AsyncIterator[Page]:
    """A fresh page; when the body fails, ``tmp_path/<name>-failure.png`` shows what the page showed."""
    executable = chromium_path()
    if executable is None:
        pytest.skip("Chromium not found (Debian package chromium; `make e2e-deps` installs it)")
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS, headless=True)
        page = await browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(30_000)
        try:
            yield page
        except BaseException:
            shot = tmp_path / f"{name}-failure.png"
            with contextlib.suppress(Exception):  # never hide the failure behind a screenshot error
                await page.screenshot(path=str(shot), full_page=True)
                print(f"screenshot of the failure: {shot} (page {page.url})")
            raise
        finally:
            await browser.close()


async def open_run_form(page: Page, server_url: str) -> None:
    """Deployments → produce-video → Run → Custom run, as a person clicks through; returns once the form shows the
    deployment's defaults. The form can render its fields before the defaults arrive and then replaces what was
    typed meanwhile (seen under load: a filled prompt read back empty), so wait for a default (the languages)."""
    from playwright.async_api import expect

    await page.goto(f"{server_url}/deployments")
    await page.get_by_role("link", name="produce-video", exact=True).first.click()
    await page.wait_for_url(re.compile(r"/deployments/deployment/"))
    await page.get_by_role("button", name="Run", exact=True).click()
    await page.get_by_text("Custom run", exact=True).click()
    await page.wait_for_url(re.compile(r"/run\b"))
    await expect(tags(form_field(page, "Target Languages (Optional)"))).to_have_text(["en", "ja"])


def form_field(page: Page, label: str) -> Locator:
    """The schema-form property whose label reads ``label`` (labels are not tied to their nested inputs)."""
    return page.locator(
        f'xpath=//span[normalize-space(text())="{label}"]'
        '/ancestor::div[contains(concat(" ", normalize-space(@class), " "), " schema-form-property ")][1]'
    )


def tags(field: Locator) -> Locator:
    """The chosen values of a multi-select, shown as tags."""
    return field.locator(".p-select-button .p-tag")


async def choose_option(page: Page, field: Locator, value: str) -> None:
    """Open a multi-select from its chevron and tick ``value`` in the list (clicks on the tags don't open it)."""
    await field.locator(".p-select-button__icon").click()
    options = page.locator(".p-pop-over-content [role=listbox]")
    await options.get_by_role("option", name=value, exact=True).click()
    await field.locator(".p-select-button__icon").click()  # close it as it was opened
    await options.wait_for(state="hidden")


async def dismiss_tag(field: Locator, value: str) -> None:
    """Remove ``value`` from a multi-select with the x on its tag."""
    await tags(field).filter(has_text=re.compile(rf"^\s*{re.escape(value)}\s*$")).locator(".p-tag__dismiss").click()


async def use_json_input(page: Page, field: Locator) -> Locator:
    """Switch a property to the form's JSON editor (its ⋮ menu → "Use JSON input"): the way a person types a
    value the widget would not offer. Returns the editor's textarea."""
    from playwright.async_api import expect

    await field.locator(".schema-form-property-menu button").click()
    await page.locator(".p-pop-over-content").get_by_text("Use JSON input", exact=True).click()
    editor = field.locator("textarea.p-code-input__textarea")
    await expect(editor).to_have_value(re.compile(r"\S"))  # mounted and showing the field's value as JSON
    return editor


async def fill_and_keep(box: Locator, value: str, settle: float = 0.5) -> None:
    """Fill ``box`` and check the value is still there a moment later. A form that re-renders (its defaults
    arriving, an editor mounting again) replaces what was typed too early: fill again then, up to three times."""
    for _ in range(3):
        await box.fill(value)
        await asyncio.sleep(settle)
        if await box.input_value() == value:
            return
    raise AssertionError(f"the form kept replacing what was typed into {box}")
