"""The variables ``clipflow setup`` builds the blocks from: named once, in ``flows.runtime.settings``."""

from __future__ import annotations

from flows.runtime.settings import SETUP_VARIABLES

ENV_VARS: dict[str, str] = SETUP_VARIABLES
