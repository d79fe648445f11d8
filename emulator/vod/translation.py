"""AI translation projects: submit (optionally pausing at SuspensionStageList stages), detail (with Additions), list,
and the review actions: UpdateAITranslationUtterances (by utterance Id or by a subtitle file in the space),
ContinueAITranslationWorkflow, RefreshAITranslationProject (a re-export with a new output Vid).

Utterances line up with clips by ClipId. Every output URL is signed and expires (like VOD's auth_key URLs): the
Vid and the file name are what a client must keep. Submit, Continue and Refresh are billed; Update is not.
"""

from __future__ import annotations

from typing import Any

from emulator.clock import iso
from emulator.errors import ApiError, invalid, new_request_id, not_found
from emulator.media import MediaItem, sample_bytes, variant
from emulator.params import contains_marker
from emulator.registry import Ctx, action
from emulator.state import VodMedia, new_hex, new_vid
from emulator.vod.common import media_ref, require_space, require_vid
from emulator.vod.translation_data import all_text, build_extras, duration, subtitle_vtt, translate_all
from emulator.vod.translation_edits import edit_from_file, edit_utterances
from emulator.vod.translation_project import EXPORT_SHARE, FINISHED, Export, Outputs, TranslationProject

VERSION = "2025-01-01"
SOURCE_LANGUAGES = ("zh", "en")
TARGET_LANGUAGES = ("zh", "en", "ja", "ko", "de", "fr", "ru", "es", "pt", "it", "id", "vi", "th", "ar", "tr")
TYPE_COMBOS = (  # the three combinations the vendor page allows
    ("SubtitleTranslation",),
    ("SubtitleTranslation", "VoiceTranslation"),
    ("SubtitleTranslation", "VoiceTranslation", "FacialTranslation"),
)
ADDITIONS = ("Speakers", "SourceUtterances", "SourceTracks", "SourceClips", "TargetUtterances", "TargetTracks",
             "TargetClips", "BackgroundClip")
STATUSES = ("InProcessing", "ProcessSuspended", "ProcessSucceed", "ProcessFailed", "InExporting", "ExportSucceed",
            "ExportFailed")
FAIL_CODE, FAIL_MSG = 500120, "字幕文本翻译失败 (subtitle translation failed, emulated)"
VOICE_FAIL_CODE, VOICE_FAIL_MSG = 500130, "语音翻译失败 (voice translation failed, emulated)"
EXPORT_FAIL_CODE, EXPORT_FAIL_MSG = 500210, "AI 翻译后处理失败 (export failed, emulated)"
# UpdateType -> the body field naming a subtitle file in the space (None: edits by utterance Id).
UPDATE_TYPES: dict[str, str | None] = {
    "Utterances": None,
    "InputSubtitleFile": "InputSubtitleFileName",
    "OutputSubtitleFile": "OutputSubtitleFileName",
    "BilingualSubtitleFile": "BilingualSubtitleFileName",
}


# --- outputs -------------------------------------------------------------------------------------------------


def _signed_item(data: bytes, content_type: str, available_at: float) -> MediaItem:
    # Each URL carries its own expiry (a new read signs a new URL), the file itself does not expire.
    return MediaItem(data, content_type, available_at=available_at, signed=True)


def _materialize(ctx: Ctx, project: TranslationProject, at: float) -> Outputs:
    """The files a run or export produces, available at ``at``: the output video (a new Vid whose bytes carry
    the target lines, so an edit is visible in the video), voice/face videos and audio stems only when those
    types were asked for, and the subtitles as they were exported."""
    pid, version, state = project.project_id, project.version, ctx.state
    target_lines = "\n".join(text for _, _, text in project.lines("target"))
    data = variant(f"translated {pid} {version} {project.target_language}\n{target_lines}",
                   base=project.input.data if project.input else sample_bytes())
    names = ["output.mp4"]
    if "VoiceTranslation" in project.types:
        names += ["whole.mp4", "preview.mp4", "mute.mp4", "speech.m4a", "others.m4a"]
    if "FacialTranslation" in project.types:
        names.append("facial.mp4")
    files: dict[str, str] = {}
    for name in names:
        files[name] = f"vod/files/{pid}/{version}/{name}"
        state.media.put(files[name], _signed_item(data, "audio/mp4" if name.endswith("m4a") else "video/mp4", at))
    for side in ("source", "target"):
        files[f"{side}.vtt"] = f"vod/files/{pid}/{version}/{side}.vtt"
        state.media.put(files[f"{side}.vtt"], _signed_item(subtitle_vtt(project, side), "text/vtt", at))
    vid = new_vid()
    stem = project.title.rsplit(".", 1)[0]
    state.add_vid(VodMedia(vid, project.space, f"{stem}-{project.target_language}-{version[:8]}.mp4", data,
                           available_at=at, source="translation"))
    outputs = Outputs(vid=vid, files=files, available_at=at, version=version)
    project.outputs.append(outputs)
    return outputs


def _url(ctx: Ctx, key: str) -> str:
    return ctx.state.media.url(ctx.media_base(), key, ctx.now + ctx.lifetime("translation_url_ttl"))


def _file(ctx: Ctx, project: TranslationProject, outputs: Outputs, name: str, *, is_audio: bool = False,
          vid: str = "") -> dict[str, Any] | None:
    key = outputs.files.get(name)
    if key is None:
        return None
    uri = f"tos-emulator-{project.space}/{project.project_id}-{outputs.version[:8]}-{name}"
    return {"IsAudio": is_audio, "Uri": uri,
            "Vid": vid, "DurationSecond": duration(project.input), "Url": _url(ctx, key)}


def _subtitle_ref(ctx: Ctx, project: TranslationProject, side: str, outputs: Outputs | None) -> dict[str, Any] | None:
    """InputSubtitle / OutputSubtitle: the exported file once there are outputs, else the live draft (edits show
    at once), once the stage that makes that side has run."""
    if outputs is not None:
        ref = _file(ctx, project, outputs, f"{side}.vtt")
    else:
        stage = "SubtitleRecognition" if side == "source" else "SubtitleTranslation"
        if not project.reached(stage, ctx.now):
            return None
        key = f"vod/files/{project.project_id}/draft/{side}.vtt"
        ctx.state.media.put(key, _signed_item(subtitle_vtt(project, side), "text/vtt", 0.0))
        name = f"{project.project_id}-draft-{side}.vtt"
        ref = {"IsAudio": False, "Uri": f"tos-emulator-{project.space}/{name}", "Vid": "",
               "DurationSecond": duration(project.input), "Url": _url(ctx, key)}
    if ref is not None:
        ref.update({"FileName": ref["Uri"].rsplit("/", 1)[-1], "Format": "vtt"})
    return ref


def _error(project: TranslationProject, status: str) -> tuple[int, str]:
    if status == "ProcessFailed":
        return (VOICE_FAIL_CODE, VOICE_FAIL_MSG) if project.done_before > 0 else (FAIL_CODE, FAIL_MSG)
    if status == "ExportFailed":
        return EXPORT_FAIL_CODE, EXPORT_FAIL_MSG
    return 0, ""


def _project_info(ctx: Ctx, project: TranslationProject, additions: list[str]) -> dict[str, Any]:
    now = ctx.now
    status = project.status(now)
    out = project.visible_outputs(now)
    code, message = _error(project, status)
    voice = out is not None and "VoiceTranslation" in project.types

    def f(name: str, **kw: Any) -> dict[str, Any] | None:
        return _file(ctx, project, out, name, **kw) if out is not None else None

    info: dict[str, Any] = {
        "ProjectId": project.project_id,
        "ProjectVersion": project.version,
        "WorkflowId": project.workflow_id,
        "CreatedAt": str(int(project.created)),
        "UpdatedAt": str(int(project.updated_at(now))),
        "Status": status,
        "InputVideoTitle": project.title,
        "TranslationTypeList": list(project.types),
        "BackgroundAudio": f("others.m4a", is_audio=True) if voice else None,
        "ForegroundAudio": f("speech.m4a", is_audio=True) if voice else None,
        "InputVideo": media_ref(ctx, project.input) if project.input else
        {"IsAudio": False, "Uri": "", "Vid": project.input_vid, "DurationSecond": 0.0, "Url": ""},
        "PreviewVideo": f("preview.mp4") if voice else None,
        "PreviewVideoMuted": f("mute.mp4") if voice else None,
        "OutputVideo": f("output.mp4", vid=out.vid) if out is not None else None,
        "VoiceTranslationVideo": f("whole.mp4"),
        "FacialTranslationVideo": f("facial.mp4"),
        "InputSubtitle": _subtitle_ref(ctx, project, "source", out),
        "OutputSubtitle": _subtitle_ref(ctx, project, "target", out),
        "SourceBlueprints": project.extras["SourceBlueprints"],
        "TargetBlueprints": project.extras["TargetBlueprints"],
        "OperatorConfig": {"SubtitleRecognitionConfig": {"RecognitionType": project.recognition}},
        "ErrorMsg": message,
        "ErrorCode": code,
    }
    recognized = project.reached("SubtitleRecognition", now)
    translated = project.reached("SubtitleTranslation", now)
    for name in additions:
        if name == "BackgroundClip":
            info[name] = project.extras[name] if out is not None else None
        elif name.startswith("Target"):
            info[name] = project.extras[name] if translated else []
        else:  # Speakers and the source side
            info[name] = project.extras[name] if recognized else []
    return info


def _callback(project: TranslationProject, event_action: str, at: float, code: int, message: str,
              vid: str) -> dict[str, Any]:
    return {
        "RequestId": new_request_id(),
        "Version": "1.0",
        "EventType": "AITranslationComplete",
        "EventTime": iso(at),
        "Data": {"SpaceName": project.space, "ProjectId": project.project_id, "Action": event_action,
                 "ErrorCode": code, "ErrorMsg": message, "TargetVid": vid},
    }


def _finish_run(ctx: Ctx, project: TranslationProject) -> None:
    """Once no suspension stage is ahead: produce the outputs at the run's end and announce it. Holds the lock."""
    end = project.end_time
    assert end is not None
    vid = "" if project.fails else _materialize(ctx, project, end).vid
    code, message = _error(project, "ProcessFailed" if project.fails else "ProcessSucceed")
    ctx.state.schedule_callback(end, "AITranslationComplete", project.project_id,
                                lambda: _callback(project, "Process", end, code, message, vid))


# --- actions -------------------------------------------------------------------------------------------------


def _obj(ctx: Ctx, key: str) -> dict[str, Any]:
    return ctx.params.json(key, dict) or {}


def _project(ctx: Ctx) -> TranslationProject:
    space = require_space(ctx, "SpaceName")
    project_id = ctx.params.str("ProjectId", required=True)
    with ctx.state.lock:
        project = ctx.state.translations.get(project_id)
    if project is None or project.space != space or project.ak != ctx.ak:
        raise not_found(f"The project {project_id} does not exist.")
    return project


def _wrong_status(project: TranslationProject, status: str, allowed: tuple[str, ...]) -> ApiError:
    return invalid(f"The project {project.project_id} is {status}; {', '.join(allowed)} required.")


def _base_info(project: TranslationProject) -> dict[str, Any]:
    return {"ProjectBaseInfo": {"ProjectId": project.project_id, "ProjectVersion": project.version}}


@action("SubmitAITranslationWorkflow", VERSION)
async def submit_translation(ctx: Ctx) -> dict[str, Any]:
    space = require_space(ctx, "SpaceName")
    vid = ctx.params.str("Vid", required=True)
    assert vid is not None
    config = ctx.params.json("TranslationConfig", dict, required=True)
    source_language = config.get("SourceLanguage")
    target_language = config.get("TargetLanguage")
    if source_language not in SOURCE_LANGUAGES:
        raise invalid(f"TranslationConfig.SourceLanguage must be one of {list(SOURCE_LANGUAGES)}.")
    if target_language not in TARGET_LANGUAGES:
        raise invalid(f"TranslationConfig.TargetLanguage must be one of {list(TARGET_LANGUAGES)} (one per project).")
    if target_language == source_language:
        raise invalid("TranslationConfig.TargetLanguage must differ from SourceLanguage.")
    types = config.get("TranslationTypeList") or ["SubtitleTranslation"]
    if not isinstance(types, list) or len(set(types)) != len(types) or not any(
        set(types) == set(combo) for combo in TYPE_COMBOS
    ):
        raise invalid(f"TranslationConfig.TranslationTypeList must be one of {[list(c) for c in TYPE_COMBOS]}.")
    termbase = config.get("TermbaseConfig") or {}
    if not isinstance(termbase, dict) or not isinstance(termbase.get("TranslationTermbaseIds", []), list):
        raise invalid("TranslationConfig.TermbaseConfig.TranslationTermbaseIds must be an array.")
    operator = _obj(ctx, "OperatorConfig")
    recognition = (operator.get("SubtitleRecognitionConfig") or {}).get("RecognitionType") or "OCR"
    if recognition not in ("OCR", "ASR"):
        raise invalid("OperatorConfig.SubtitleRecognitionConfig.RecognitionType must be OCR or ASR.")
    volume = (operator.get("VoiceCloneConfig") or {}).get("BackgroundVolume")
    if volume is not None and (not isinstance(volume, int) or isinstance(volume, bool) or not 0 <= volume <= 100):
        raise invalid("OperatorConfig.VoiceCloneConfig.BackgroundVolume must be an integer 0-100.")
    _obj(ctx, "SubtitleConfig")
    process = _obj(ctx, "ProcessConfig")
    stages = process.get("SuspensionStageList") or []
    if not isinstance(stages, list) or not set(stages) <= {"SubtitleRecognition", "SubtitleTranslation"}:
        raise invalid("ProcessConfig.SuspensionStageList accepts SubtitleRecognition and SubtitleTranslation.")
    media = require_vid(ctx, vid)
    if media is not None and media.space != space:
        raise not_found(f"The Vid {vid} does not exist in space {space}.")

    project = TranslationProject(
        project_id=new_hex(24), version=new_hex(32), workflow_id=new_hex(24), ak=ctx.ak, space=space, input=media,
        input_vid=vid, title=media.file_name if media else f"{vid}.mp4", source_language=source_language,
        target_language=target_language, types=list(types), recognition=recognition, created=ctx.now,
        processing_s=ctx.scaled("translation_processing"),
        fails=contains_marker(ctx.params.values, ctx.config.fail_marker), stops=list(stages),
    )
    build_extras(project, media_ref(ctx, project.input, with_vid=False))
    with ctx.state.lock:
        ctx.state.translations[project.project_id] = project
        if not project.stops:
            _finish_run(ctx, project)
        ctx.bill(project.project_id)
    return _base_info(project)


@action("GetAITranslationProject", VERSION)
async def get_translation_project(ctx: Ctx) -> dict[str, Any]:
    additions = ctx.params.list_of_str("Additions")
    unknown = [a for a in additions if a not in ADDITIONS]
    if unknown:
        raise invalid(f"Unknown Additions {unknown}; allowed: {list(ADDITIONS)}.")
    project = _project(ctx)
    with ctx.state.lock:
        return {"ProjectInfo": _project_info(ctx, project, additions)}


@action("ListAITranslationProject", VERSION)
async def list_translation_projects(ctx: Ctx) -> dict[str, Any]:
    space = require_space(ctx, "SpaceName")
    page = ctx.params.int("PageNumber", default=1, lo=1) or 1
    size = ctx.params.int("PageSize", default=10, lo=1, hi=100) or 10
    statuses = ctx.params.list_of_str("StatusFilter")
    if any(s not in STATUSES for s in statuses):
        raise invalid(f"StatusFilter accepts {list(STATUSES)}.")
    needle = ctx.params.str("ProjectIdOrTitleFilter")
    with ctx.state.lock:
        projects = [p for p in ctx.state.translations.values() if p.space == space and p.ak == ctx.ak]
        projects = [p for p in projects if not statuses or p.status(ctx.now) in statuses]
        if needle:
            projects = [p for p in projects if needle in p.project_id or needle in p.title]
        projects.sort(key=lambda p: p.created, reverse=True)
        page_items = projects[(page - 1) * size : page * size]
        return {"TotalCount": len(projects), "Projects": [_project_info(ctx, p, []) for p in page_items]}


@action("UpdateAITranslationUtterances", VERSION)
async def update_utterances(ctx: Ctx) -> dict[str, Any]:
    project = _project(ctx)
    update_type = ctx.params.str("UpdateType", required=True)
    if update_type not in UPDATE_TYPES:
        raise invalid(f"UpdateType must be one of {list(UPDATE_TYPES)}.")
    with ctx.state.lock:
        status = project.status(ctx.now)
        allowed = ("ProcessSuspended", *FINISHED)
        if status not in allowed:
            raise _wrong_status(project, status, allowed)
        finished = status in FINISHED
        file_field = UPDATE_TYPES[update_type]
        if file_field is None:
            edit_utterances(ctx, project, finished)
        else:
            edit_from_file(ctx, project, update_type, file_field, finished)
        project.version = new_hex(32)
        project.updated = ctx.now
    return _base_info(project)


@action("ContinueAITranslationWorkflow", VERSION)
async def continue_workflow(ctx: Ctx) -> dict[str, Any]:
    project = _project(ctx)
    with ctx.state.lock:
        status = project.status(ctx.now)
        if status != "ProcessSuspended":
            raise _wrong_status(project, status, ("ProcessSuspended",))
        stage = project.stops[0]
        project.resume(ctx.now)
        if stage == "SubtitleRecognition":
            translate_all(project)  # the translation runs on the (edited) source lines
        # A fail marker in an edited line fails the paid work that follows (voice translation).
        project.fails = project.fails or contains_marker({"t": all_text(project)}, ctx.config.fail_marker)
        project.version = new_hex(32)
        if not project.stops:
            _finish_run(ctx, project)
        ctx.bill(project.project_id)
    return _base_info(project)


@action("RefreshAITranslationProject", VERSION)
async def refresh_project(ctx: Ctx) -> dict[str, Any]:
    project = _project(ctx)
    refresh_type = ctx.params.str("RefreshType", required=True)
    if refresh_type != "whole":
        raise invalid("RefreshType must be whole.")
    with ctx.state.lock:
        status = project.status(ctx.now)
        if status not in FINISHED:
            raise _wrong_status(project, status, FINISHED)
        fails = contains_marker({"t": all_text(project)}, ctx.config.fail_marker)
        project.export = Export(ctx.now, ctx.scaled("translation_processing") * EXPORT_SHARE, fails)
        project.version = new_hex(32)
        project.updated = ctx.now
        end = project.export.end_time
        vid = ""
        if not fails:
            vid = _materialize(ctx, project, end).vid
            for side in ("source", "target"):
                for utterance in project.utterances(side):
                    utterance["Status"] = "online"
        code, message = (EXPORT_FAIL_CODE, EXPORT_FAIL_MSG) if fails else (0, "")
        ctx.state.schedule_callback(end, "AITranslationComplete", project.project_id,
                                    lambda: _callback(project, "Export", end, code, message, vid))
        ctx.bill(project.project_id)
    return _base_info(project)
