"""The ledger bills with clipflow's price table: each entry carries its quantities, unit prices and amount."""

from __future__ import annotations

import httpx

from emulator.config import DEMO_VID
from emulator.testing import EmulatorHandle
from tests.emulator.helpers import call, jimeng_submit, result

PRICES = {
    "currency": "CNY", "jimeng_per_second": 0.5, "gateway_per_clip": {"grok-video-3": 2.0},
    "transcode_per_minute": 0.1, "translation_per_minute": {"SubtitleTranslation": 1.0},
}


def test_entries_are_priced(emu: EmulatorHandle, vod: httpx.Client, cv: httpx.Client, gw: httpx.Client) -> None:
    emu.configure(prices=PRICES)
    assert jimeng_submit(cv, prompt="a heron", frames=241).json()["code"] == 10000
    result(call(vod, "StartWorkflow", "2020-08-01", body={"Vid": DEMO_VID, "TemplateId": "demo-transcode-template"}))
    created = gw.post("/v1/video/create", json={"model": "grok-video-3", "prompt": "a cat", "aspect_ratio": "1:1",
                                                 "size": "720P", "images": []})
    assert created.status_code == 200

    jimeng, workflow, gateway = emu.ledger()
    assert jimeng["billed"] == [{"price_key": "jimeng", "unit": "second", "units": 10.0, "unit_price": 0.5}]
    assert jimeng["amount"] == 5.0 and jimeng["currency"] == "CNY"
    # the demo video is 3 s long: one started minute
    assert workflow["billed"] == [{"price_key": "transcode", "unit": "minute", "units": 1.0, "unit_price": 0.1}]
    assert workflow["amount"] == 0.1
    assert gateway["amount"] == 2.0


def test_an_unknown_price_is_no_amount(emu: EmulatorHandle, cv: httpx.Client) -> None:
    emu.configure(prices={"currency": "CNY"})  # clipflow's default table: every price unknown
    jimeng_submit(cv, prompt="a heron")
    [entry] = emu.ledger()
    assert entry["amount"] is None and entry["billed"][0]["unit_price"] is None and entry["billed"][0]["units"] == 5.0


def test_by_default_the_emulator_bills_its_example_prices(emu: EmulatorHandle, cv: httpx.Client) -> None:
    from emulator.example_prices import EXAMPLE_PRICES

    jimeng_submit(cv, prompt="a heron", frames=241)
    [entry] = emu.ledger()
    assert entry["currency"] == EXAMPLE_PRICES.currency == "CNY"
    assert entry["billed"] == [{"price_key": "jimeng", "unit": "second", "units": 10.0, "unit_price": 0.5}]
    assert entry["amount"] == 5.0
