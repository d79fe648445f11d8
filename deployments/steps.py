"""Deployment pull steps (run by the worker before each flow run; see prefect.yaml).

The workers run from a checkout of this project with its virtualenv, so there is nothing to download: the
flow code is whatever this importable package was installed from. ``CLIPFLOW_HOME`` on the worker overrides it
(a checkout somewhere else, e.g. a deploy directory updated by your release process).
"""

from __future__ import annotations

import os
from pathlib import Path

from flows.runtime.settings import HOME_VARIABLE

HOME_ENV = HOME_VARIABLE


def project_root() -> Path:
    """The directory holding ``flows/`` and ``prefect.yaml``: the parent of this package (editable install) or
    site-packages (wheel install, where ``flows/`` sits beside ``deployments/`` as well)."""
    return Path(__file__).resolve().parent.parent


def enter_project(directory: str | None = None) -> dict[str, str]:
    """Change into the project so the deployment's relative entrypoint (``flows/...py:flow``) resolves.

    Returns ``{"directory": ...}``: Prefect's workspace resolver takes the run's working directory from it."""
    target = Path(directory or os.environ.get(HOME_ENV) or project_root()).expanduser()
    if not (target / "flows").is_dir():
        raise FileNotFoundError(f"{target} has no flows/ directory; set {HOME_ENV} to the clipflow checkout")
    os.chdir(target)
    return {"directory": os.getcwd()}
