"""Lookups shared by the VOD actions: spaces and Vids refuse the way VOD does."""

from __future__ import annotations

from emulator.errors import not_found
from emulator.registry import Ctx
from emulator.state import VodMedia


def require_space(ctx: Ctx, key: str) -> str:
    space = ctx.params.str(key, required=True)
    assert space is not None
    if space not in ctx.config.spaces:
        # VOD answers an unknown space as a missing resource, not a malformed parameter.
        raise not_found(f"The space {space} does not exist.")
    return space


def require_vid(ctx: Ctx, vid: str) -> VodMedia | None:
    """The media behind ``vid``; None when strict_vids is off and the Vid is unknown."""
    media = ctx.state.vid(vid)
    if media is None and ctx.config.strict_vids:
        raise not_found(f"The Vid {vid} does not exist.")
    return media


def media_ref(ctx: Ctx, media: VodMedia | None, *, is_audio: bool = False, with_vid: bool = True) -> dict:
    """The {IsAudio, Uri, Vid, DurationSecond, Url} object GetAITranslationProject uses for every file."""
    if media is None:
        return {"IsAudio": is_audio, "Uri": "", "Vid": "", "DurationSecond": 0.0, "Url": ""}
    info = media.source_info()
    return {
        "IsAudio": is_audio,
        "Uri": info["StoreUri"],
        "Vid": media.vid if with_vid else "",
        "DurationSecond": info["Duration"],
        "Url": ctx.state.media.url(ctx.media_base(), f"vod/{media.vid}.mp4"),
    }
