"""The batch under test, as its own process: ``python -m tests.chaos.run_batch ITEMS.json RESULT.json CONCURRENCY``.

The chaos test SIGKILLs this process's group while paid calls are in flight, then starts it again with the same
items. Prefect, the blocks and the clipflow knobs come from the environment the test sets (PREFECT_API_URL,
PREFECT_LOCAL_STORAGE_PATH, CLIPFLOW_LOCK_DIR, CLIPFLOW_TIME_SCALE ...). The BatchResult is written as JSON
(``model_dump_json``) to a temporary file, then renamed into place, so a killed run leaves no half-written result.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    items_path, result_path, concurrency = Path(argv[0]), Path(argv[1]), int(argv[2])
    items = json.loads(items_path.read_text())

    from flows.stages.batch import produce_batch

    result = asyncio.run(produce_batch(items=items, max_concurrency=concurrency))
    partial = result_path.with_suffix(".partial")
    partial.write_text(result.model_dump_json(indent=1))
    os.replace(partial, result_path)
    print(f"batch done: {result.succeeded} succeeded, {result.failed} failed of {result.total}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
