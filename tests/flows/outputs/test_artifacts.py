"""Artifact keys: valid for Prefect, unique per production, stable for a re-run of the same production."""

from __future__ import annotations

import re

from flows.outputs.artifacts import artifact_key

KEY = re.compile(r"^[a-z0-9-]+$")  # what Prefect's artifact keys allow


def test_same_title_different_productions_get_different_keys() -> None:
    first = artifact_key("clipflow", "production", of="v02demoAAAA1111bbbb2222cccc")
    second = artifact_key("clipflow", "production", of="v02demoAAAA1111bbbb2222dddd")
    assert first != second and KEY.match(first) and KEY.match(second)
    assert artifact_key("clipflow", "production", of="v02demoAAAA1111bbbb2222cccc") == first  # a re-run: same key


def test_any_title_becomes_a_valid_key() -> None:
    for title in ("猫的视频", "=HYPERLINK(x)", "A" * 300, "--", "Promo_2026"):
        key = artifact_key(title, "languages", of="v0_ID.x")
        assert KEY.match(key) and "--" not in key.strip("-"), key
        assert key.endswith("-languages")
