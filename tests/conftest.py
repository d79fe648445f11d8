"""Shared fixtures come from plugins so each area owns its own file.

The environment is set here, before anything imports Prefect (it reads its settings once): a private
PREFECT_HOME so results, cache records and the submission journal never leak between sessions or into the
user's own Prefect, and the emulator's time scale so the flows' waits shrink with the emulated jobs.
"""

import os
import tempfile

from emulator.testing import TEST_TIME_SCALE

_home = tempfile.mkdtemp(prefix="clipflow-tests-")
os.environ["PREFECT_HOME"] = _home
os.environ["PREFECT_LOCAL_STORAGE_PATH"] = os.path.join(_home, "storage")
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ["CLIPFLOW_TIME_SCALE"] = str(TEST_TIME_SCALE)
os.environ["CLIPFLOW_LOCK_DIR"] = os.path.join(_home, "locks")

pytest_plugins = ["emulator.pytest_plugin", "tests.harness"]
