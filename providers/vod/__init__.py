"""Volcengine VOD client (edit projects, direct edit, workflows, URL uploads, AI translation)."""

from providers.vod.client import VodClient
from providers.vod.errors import CODE_TABLE
from providers.vod.paid import PAID_ACTIONS, safe_to_repeat
from providers.vod.models import *  # noqa: F403 - the models are part of the public API
from providers.vod.models import __all__ as _models_all

__all__ = ["VodClient", "CODE_TABLE", "PAID_ACTIONS", "safe_to_repeat", *_models_all]
