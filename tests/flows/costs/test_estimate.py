"""Estimates against tables computed by hand (no server: the pure part of flows.costs)."""

from __future__ import annotations

import pytest

from flows.costs.guard import CostLimitError, check_max_cost
from flows.costs.model import CostEstimate
from providers.pricing import DEFAULT_PRICES, PriceTable, billables, started_minutes
from flows.costs.estimate import production_lines, translation_lines
from flows.models import EditSpec, GatewayClipSpec, JimengClipSpec, ProductionRequest, TranslateSpec

PRICES = PriceTable(
    currency="CNY", jimeng_per_second=0.5, gateway_per_clip={"grok-video-3": 2.0}, import_per_call=0.01,
    edit_project_per_call=0.02, render_per_minute=0.2, transcode_per_minute=0.1,
    translation_per_minute={"SubtitleTranslation": 1.0, "VoiceTranslation": 3.0},
)


def production(**translate: object) -> ProductionRequest:
    return ProductionRequest(
        title="harbour", clip=JimengClipSpec(prompt="A kite over a harbour", frames=241),
        translate=TranslateSpec(target_languages=["en", "ja"], **translate),
    )


def table(lines: list) -> list[tuple[str, str, float | None, float | None]]:
    return [(l.stage, l.detail, l.units, l.amount) for l in lines]


def test_a_production_by_hand() -> None:
    request = production(translation_types=["SubtitleTranslation", "VoiceTranslation"])
    estimate = CostEstimate(currency="CNY", lines=production_lines(request, PRICES))

    assert table(estimate.lines) == [
        ("generate", "clip", 10.0, 5.0),        # 241 frames = 10 s x 0.5
        ("import", "import", 1.0, 0.01),
        ("edit", "edit", 1.0, 0.02),
        ("transcode", "transcode", 1.0, 0.1),   # a 10 s clip is one started minute
        ("translate", "en", 1.0, 1.0), ("translate", "en", 1.0, 3.0),  # each type per minute
        ("translate", "ja", 1.0, 1.0), ("translate", "ja", 1.0, 3.0),
    ]
    assert estimate.total == pytest.approx(13.13) and estimate.complete and estimate.unknown == []
    assert estimate.by("stage") == {"generate": 5.0, "import": 0.01, "edit": 0.02, "transcode": 0.1, "translate": 8.0}


def test_reused_work_costs_nothing() -> None:
    request = production(translation_types=["SubtitleTranslation", "VoiceTranslation"])
    lines = production_lines(request, PRICES, reused=frozenset({"generate/clip", "translate/en"}))
    estimate = CostEstimate(currency="CNY", lines=lines)

    assert [(l.stage, l.detail, l.amount) for l in lines if l.reused] == [
        ("generate", "clip", 0.0), ("translate", "en", 0.0), ("translate", "en", 0.0),
    ]
    assert estimate.total == pytest.approx(13.13 - 5.0 - 4.0) and estimate.complete


def test_unknown_prices_are_flagged_never_zero() -> None:
    request = production(translation_types=["SubtitleTranslation", "VoiceTranslation"])
    partial = PRICES.model_copy(update={"translation_per_minute": {"SubtitleTranslation": 1.0}})
    estimate = CostEstimate(currency="CNY", lines=production_lines(request, partial))

    assert not estimate.complete
    assert estimate.unknown == [
        "harbour translate en: price translation:VoiceTranslation unknown",
        "harbour translate ja: price translation:VoiceTranslation unknown",
    ]
    assert estimate.total == pytest.approx(13.13 - 6.0)  # the known part only
    assert estimate.by("stage")["translate"] is None
    with pytest.raises(CostLimitError, match=r"max_cost 100 CNY cannot be checked.*VoiceTranslation"):
        check_max_cost(estimate, 100.0)

    defaults = CostEstimate(currency="CNY", lines=production_lines(request, DEFAULT_PRICES))
    assert defaults.total == 0.0 and not defaults.complete and len(defaults.unknown) == len(defaults.lines)


def test_a_batch_by_hand() -> None:
    subtitles = TranslateSpec(target_languages=["en"], translation_types=["SubtitleTranslation"])
    jimeng = ProductionRequest(title="a", clip=JimengClipSpec(prompt="one"), translate=subtitles)
    gateway = ProductionRequest(
        title="b", clip=GatewayClipSpec(model="grok-video-3", prompt="two"), edit=EditSpec(render=True), translate=subtitles,
    )
    estimate = CostEstimate(currency="CNY", lines=[
        *production_lines(jimeng, PRICES, item="1"), *production_lines(gateway, PRICES, item="2"),
    ])

    # item 1: 5 s x 0.5 + 0.01 + 0.02 + 0.1 + 1.0; item 2: one grok clip 2.0 + 0.01 + 0.02 + render 0.2 + 0.1 + 1.0
    assert estimate.by("item") == {"1": pytest.approx(3.63), "2": pytest.approx(3.33)}
    assert estimate.total == pytest.approx(6.96)
    assert ("edit", "render", 1.0, 0.2) in table(production_lines(gateway, PRICES))


def test_the_cap_names_itself_the_estimate_and_the_currency() -> None:
    request = production(translation_types=["SubtitleTranslation"])
    estimate = CostEstimate(currency="CNY", lines=production_lines(request, PRICES))  # 5 + .01 + .02 + .1 + 2
    check_max_cost(estimate, 7.13)
    check_max_cost(estimate, None)
    with pytest.raises(CostLimitError, match=r"max_cost 7 CNY is below the estimate of 7.13 CNY; nothing was paid"):
        check_max_cost(estimate, 7.0)


def test_units_of_each_action() -> None:
    assert started_minutes(3.0) == 1.0 and started_minutes(61.0) == 2.0 and started_minutes(None) is None
    assert [b.units for b in billables("jimeng", "CVSync2AsyncSubmitTask", frames=121)] == [5.0]
    assert [b.key for b in billables("vod", "SubmitAITranslationWorkflow", types=["VoiceTranslation"])] == [
        "translation:VoiceTranslation"
    ]
    assert billables("vod", "GetMediaList") == []  # a free read bills nothing
    unknown_length = translation_lines(["en"], TranslateSpec(target_languages=["en"]), None, PRICES)
    assert unknown_length[0].amount is None and "number of minutes unknown" in CostEstimate(
        currency="CNY", lines=unknown_length).unknown[0]
