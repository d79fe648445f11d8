"""Every Volcengine request is verified against the V4 signature; the gateway wants its Bearer key."""

from __future__ import annotations

import datetime as dt
import json

import httpx
import pytest

from emulator.config import DEMO_VID
from emulator.testing import EmulatorHandle
from providers.signing import VolcengineSigner
from tests.emulator.helpers import call, error_code, result, signed_client

GET_RUN = {"Action": "GetWorkflowExecution", "Version": "2020-08-01", "RunId": "lb:nope"}


def presigned(emu: EmulatorHandle, service: str, params: dict[str, str], body: bytes = b"",
              **signer: object) -> httpx.Request:
    request = httpx.Request("POST", emu.base_url + "/", params=params, content=body,
                            headers={"Content-Type": "application/json"})
    auth = VolcengineSigner(signer.pop("ak", emu.access_key), signer.pop("sk", emu.secret_key),  # type: ignore[arg-type]
                            region="cn-north-1", service=service, **signer)  # type: ignore[arg-type]
    next(auth.auth_flow(request))
    return request


def send(request: httpx.Request) -> httpx.Response:
    with httpx.Client() as client:
        return client.send(request)


def test_correct_signature_reaches_the_action(emu: EmulatorHandle) -> None:
    response = send(presigned(emu, "vod", GET_RUN))
    assert response.status_code == 404 and error_code(response) == "ResourceNotFound"


def test_tampered_query_is_refused(emu: EmulatorHandle) -> None:
    request = presigned(emu, "vod", GET_RUN)
    request.url = request.url.copy_set_param("RunId", "lb:other")
    response = send(request)
    assert response.status_code == 401 and error_code(response) == "SignatureDoesNotMatch"


def test_tampered_signature_is_refused(emu: EmulatorHandle) -> None:
    request = presigned(emu, "vod", GET_RUN)
    auth = request.headers["Authorization"]
    request.headers["Authorization"] = auth[:-1] + ("0" if auth[-1] != "0" else "1")
    response = send(request)
    assert response.status_code == 401 and error_code(response) == "SignatureDoesNotMatch"


def test_wrong_secret_is_refused(emu: EmulatorHandle) -> None:
    response = send(presigned(emu, "vod", GET_RUN, sk="not-the-secret"))
    assert response.status_code == 401 and error_code(response) == "SignatureDoesNotMatch"


def test_unknown_access_key(emu: EmulatorHandle) -> None:
    response = send(presigned(emu, "vod", GET_RUN, ak="AKUNKNOWN"))
    assert response.status_code == 401 and error_code(response) == "InvalidClientTokenId"


@pytest.mark.parametrize("minutes", [-20, 20])
def test_stale_or_future_x_date(emu: EmulatorHandle, minutes: int) -> None:
    at = dt.datetime.now(dt.timezone.utc) + dt.timedelta(minutes=minutes)
    response = send(presigned(emu, "vod", GET_RUN, clock=lambda: at))
    assert response.status_code == 403 and error_code(response) == "InvalidTimestamp"


def test_small_clock_skew_is_accepted(emu: EmulatorHandle) -> None:
    at = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=10)
    assert send(presigned(emu, "vod", GET_RUN, clock=lambda: at)).status_code == 404


def test_body_changed_after_signing(emu: EmulatorHandle) -> None:
    params = {"Action": "CreateProject", "Version": "2018-01-01"}
    request = presigned(emu, "vod", params, b'{"ProjectName":"a"}')
    tampered = httpx.Request("POST", request.url, headers=request.headers, content=b'{"ProjectName":"b"}')
    response = send(tampered)
    assert response.status_code == 401 and error_code(response) == "SignatureDoesNotMatch"
    assert "X-Content-Sha256" in response.json()["ResponseMetadata"]["Error"]["Message"]
    assert emu.ledger() == []


def test_scope_service_must_match_the_action(emu: EmulatorHandle) -> None:
    response = send(presigned(emu, "cv", GET_RUN))  # a VOD action signed for the visual service
    assert response.status_code == 401 and error_code(response) == "SignatureDoesNotMatch"


def test_cv_auth_errors_use_response_metadata(emu: EmulatorHandle) -> None:
    params = {"Action": "CVSync2AsyncSubmitTask", "Version": "2022-08-31"}
    response = send(presigned(emu, "cv", params, b"{}", sk="bad"))
    assert response.status_code == 401
    meta = response.json()["ResponseMetadata"]
    assert meta["Error"]["Code"] == "SignatureDoesNotMatch" and meta["Service"] == "cv"


def test_missing_authorization(emu: EmulatorHandle) -> None:
    response = httpx.get(emu.base_url + "/", params=GET_RUN)
    assert response.status_code == 401 and error_code(response) == "MissingAuthenticationToken"


def test_unknown_action_or_wrong_version(emu: EmulatorHandle) -> None:
    with signed_client(emu, "vod") as vod:
        for action, version in [("StartWorkflow", "2018-01-01"), ("NoSuchAction", "2020-08-01")]:
            response = call(vod, action, version, method="GET")
            assert response.status_code == 404 and error_code(response) == "InvalidActionOrVersion"


def test_extra_credentials(emulator: EmulatorHandle) -> None:
    from emulator.testing import running_emulator

    with running_emulator(emulator.config, extra_credentials={"AK2": "SK2"}) as other:
        with signed_client(other, "vod", access_key="AK2", secret_key="SK2") as vod:
            assert call(vod, "GetWorkflowExecution", "2020-08-01", method="GET",
                        query={"RunId": "x"}).status_code == 404


def test_gateway_bearer(emu: EmulatorHandle) -> None:
    url = emu.base_url + "/v1/video/query"
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": emu.gateway_key}):
        response = httpx.get(url, params={"id": "x"}, headers=headers)
        assert response.status_code == 401
        assert set(response.json()["error"]) == {"message", "type", "code"}


def test_vendor_sdk_requests_are_accepted(emu: EmulatorHandle) -> None:
    """The vendor's own signer (volc-sdk-python) is an independent implementation: GET, form POST, JSON POST."""
    from volcengine.visual.VisualService import VisualService
    from volcengine.vod.VodService import VodService

    host = emu.base_url.removeprefix("http://")
    vod = VodService()
    vod.set_host(host)
    vod.set_scheme("http")
    vod.set_ak(emu.access_key)
    vod.set_sk(emu.secret_key)
    run = json.loads(vod.get("StartWorkflow", {"Vid": DEMO_VID, "TemplateId": "demo-transcode-template"}))
    assert run["Result"]["RunId"].startswith("lb:")
    urls = json.dumps([{"SourceUrl": f"{emu.base_url}/_media/vod/{DEMO_VID}.mp4"}])
    upload = json.loads(vod.post("UploadMediaByUrl", {}, {"SpaceName": "demo", "URLSets": urls}))
    assert upload["Result"]["Data"][0]["JobId"]
    edit = json.loads(vod.json("SubmitDirectEditTaskAsync", {}, json.dumps(
        {"Uploader": "demo", "Application": "VideoTrackToB", "EditParam": {"Canvas": {"Width": 160}}})))
    assert edit["Result"]["ReqId"]

    visual = VisualService()
    visual.set_host(host)
    visual.set_scheme("http")
    visual.set_ak(emu.access_key)
    visual.set_sk(emu.secret_key)
    answer = visual.cv_sync2async_submit_task({"req_key": "jimeng_ti2v_v30_pro", "prompt": "sdk"})
    assert answer["code"] == 10000 and answer["data"]["task_id"]
    assert [e["action"] for e in emu.ledger()] == [
        "StartWorkflow", "UploadMediaByUrl", "SubmitDirectEditTaskAsync", "CVSync2AsyncSubmitTask"]


def test_post_form_and_get_forms(emu: EmulatorHandle) -> None:
    """The same action works as GET (nested JSON in the query), form POST and JSON POST."""
    with signed_client(emu, "vod") as vod:
        base = {"Vid": DEMO_VID, "TemplateId": "demo-transcode-template",
                "Input": json.dumps({"OverrideParams": {}})}
        assert result(call(vod, "StartWorkflow", "2020-08-01", method="GET", query=base))["RunId"]
        assert result(call(vod, "StartWorkflow", "2020-08-01", form=base))["RunId"]
        assert result(call(vod, "StartWorkflow", "2020-08-01", body=base))["RunId"]
    assert len({e["fingerprint"] for e in emu.ledger()}) == 1  # same request in three forms
