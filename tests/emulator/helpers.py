"""Raw signed HTTP against the emulator (no project clients needed)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any, TypeVar

import httpx

from emulator.testing import EmulatorHandle
from providers.signing import VolcengineSigner

T = TypeVar("T")
JIMENG_KEY = "jimeng_ti2v_v30_pro"


def signed_client(emu: EmulatorHandle, service: str, *, access_key: str | None = None,
                  secret_key: str | None = None, **kwargs: Any) -> httpx.Client:
    auth = VolcengineSigner(access_key or emu.access_key, secret_key or emu.secret_key,
                            region="cn-north-1", service=service, **kwargs)
    return httpx.Client(base_url=emu.base_url, auth=auth, timeout=10.0)


def call(client: httpx.Client, action: str, version: str, *, method: str = "POST", body: Any = None,
         form: dict[str, str] | None = None, query: dict[str, str] | None = None) -> httpx.Response:
    params = {"Action": action, "Version": version, **(query or {})}
    if method == "GET":
        return client.get("/", params=params)
    if form is not None:
        return client.post("/", params=params, data=form)
    return client.post("/", params=params, content=json.dumps(body or {}),
                       headers={"Content-Type": "application/json"})


def result(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    return response.json()["Result"]


def error_code(response: httpx.Response) -> str:
    return response.json()["ResponseMetadata"]["Error"]["Code"]


def wait_for(fn: Callable[[], T | None], timeout: float = 5.0, interval: float = 0.05) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(interval)


def jimeng_submit(cv: httpx.Client, **body: Any) -> httpx.Response:
    return call(cv, "CVSync2AsyncSubmitTask", "2022-08-31", body={"req_key": JIMENG_KEY, **body})


def jimeng_get(cv: httpx.Client, task_id: str) -> httpx.Response:
    return call(cv, "CVSync2AsyncGetResult", "2022-08-31", body={"req_key": JIMENG_KEY, "task_id": task_id})
