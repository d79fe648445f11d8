"""The ``clipflow`` command line: what it imports before a command runs, and what --help says."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

CLIPFLOW = str(Path(sys.executable).with_name("clipflow"))


def test_parsing_a_command_does_not_import_prefect() -> None:
    """`clipflow demo` sets Prefect's environment (a private PREFECT_HOME, startup timeouts) before Prefect is
    imported; Prefect reads its settings once, so the parser itself must not import it."""
    probe = (
        "import sys\nfrom flows.app import cli\n"
        "for argv in (['demo', '--help'], ['up', '--help'], ['result', '--help']):\n"
        "    try:\n        cli.main(argv)\n    except SystemExit:\n        pass\n"
        "print('prefect' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert done.stdout.strip().splitlines()[-1] == "False", done.stdout[-2000:] + done.stderr[-2000:]


def test_setup_help_lists_every_variable_it_reads() -> None:
    from flows.app.block_setup import ENV_VARS

    out = subprocess.run([CLIPFLOW, "setup", "--help"], capture_output=True, text=True, timeout=120).stdout
    assert all(name in out for name in ENV_VARS), out


def test_emulator_help_names_the_command_and_its_defaults() -> None:
    out = subprocess.run([CLIPFLOW, "emulator", "--help"], capture_output=True, text=True, timeout=120).stdout
    assert out.startswith("usage: clipflow emulator") and "(default: 8765)" in out, out
