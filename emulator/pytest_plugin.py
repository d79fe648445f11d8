"""pytest fixtures: ``emulator`` (one per session) and ``emu`` (the same, reset before the test).

Override ``emulator_config`` in a conftest to change the session's settings.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from emulator.config import EmulatorConfig
from emulator.testing import TEST_TIME_SCALE, EmulatorHandle, running_emulator

# 0.005: a nominal 65 s Jimeng job takes ~0.33 s, a 120 s translation ~0.6 s.



@pytest.fixture(scope="session")
def emulator_config() -> EmulatorConfig:
    return EmulatorConfig(time_scale=TEST_TIME_SCALE)


@pytest.fixture(scope="session")
def emulator(emulator_config: EmulatorConfig) -> Iterator[EmulatorHandle]:
    with running_emulator(emulator_config) as handle:
        yield handle


@pytest.fixture
def emu(emulator: EmulatorHandle) -> EmulatorHandle:
    emulator.reset()
    return emulator
