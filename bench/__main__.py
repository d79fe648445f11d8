"""Run the benchmarks: ``python -m bench [name ...]`` (default: every bench module with a ``main()``).

A module's ``main(argv)`` gets no arguments here, so it runs with its defaults; run one directly
(``python -m bench.copy_memory --size-mb 256``) to pass options. Exit status is non-zero when any bench
raises or returns a non-zero status (e.g. a memory target missed).
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path


def discover() -> dict[str, Callable[..., object]]:
    found = {}
    for info in sorted(pkgutil.iter_modules([str(Path(__file__).parent)]), key=lambda m: m.name):
        if info.name.startswith("_") or info.ispkg:
            continue
        module = importlib.import_module(f"bench.{info.name}")
        main = getattr(module, "main", None)
        if callable(main):
            found[info.name] = main
    return found


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    benches = discover()
    unknown = [name for name in argv if name not in benches]
    if unknown:
        print(f"unknown bench {', '.join(unknown)}; available: {', '.join(benches)}", file=sys.stderr)
        return 2
    failed = []
    for name in argv or list(benches):
        print(f"=== bench.{name} ===", flush=True)
        started = time.monotonic()
        try:
            status = benches[name]([])
        except Exception:  # noqa: BLE001 - report and go on with the other benches
            traceback.print_exc()
            status = 1
        print(f"=== bench.{name}: {'ok' if not status else 'FAILED'} in {time.monotonic() - started:.1f} s ===\n")
        if status:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
