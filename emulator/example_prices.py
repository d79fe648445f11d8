"""The emulator's example prices: an illustrative table so the local stack shows money. Not vendor prices.

No Volcengine or gateway list price is published in the pages clipflow is built from, so ``DEFAULT_PRICES`` leaves
every price unknown. The emulator bills with this table by default (``emulator/pricing.py``), and ``make up`` /
``make demo`` save it as the ``clipflow-prices`` block (``flows.app.block_setup``), so estimates, ``max_cost``, spend and ``clipflow cost``
show numbers that add up locally. Round numbers, chosen to be easy to check by hand; its ``source`` says what it
is wherever an estimate is shown.
"""

from __future__ import annotations

from providers.pricing import PriceTable

EXAMPLE_SOURCE = "the local emulator's example prices (illustrative, not Volcengine or gateway list prices)"

EXAMPLE_PRICES = PriceTable(
    currency="CNY",
    source=EXAMPLE_SOURCE,
    jimeng_per_second=0.5,
    gateway_per_clip={
        "grok-video-3": 2.0, "veo3.1": 5.0, "veo3.1-fast": 3.0, "veo3.1-components": 5.0, "veo3-frames": 4.0,
        "sora-2": 4.0,
    },
    import_per_call=0.01,
    edit_project_per_call=0.02,
    render_per_minute=0.3,
    transcode_per_minute=0.1,
    translation_per_minute={"SubtitleTranslation": 1.0, "VoiceTranslation": 3.0, "FacialTranslation": 6.0},
    continue_per_call=0.05,
    refresh_per_call=0.05,
)
