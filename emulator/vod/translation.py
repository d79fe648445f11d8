"""AI translation projects: submit, detail (with Additions), list. Results line up utterance <-> clip by ClipId."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from emulator.clock import iso
from emulator.errors import invalid, new_request_id, not_found
from emulator.media import MediaItem, sample_bytes, variant
from emulator.params import contains_marker
from emulator.registry import Ctx, action
from emulator.state import VodMedia, new_hex, new_vid
from emulator.vod.common import media_ref, require_space, require_vid

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
STATUSES = ("InProcessing", "ProcessSucceed", "ProcessFailed", "InExporting", "ExportSucceed", "ExportFailed")
FAIL_CODE, FAIL_MSG = 500120, "字幕文本翻译失败 (subtitle translation failed, emulated)"

PHRASES = {
    "zh": ["大家好，欢迎收看。", "今天我们来看一段短片。", "画面里有一个小方块在移动。", "它从左边一直走到右边。",
           "这就是今天的全部内容。", "感谢观看，下次再见。"],
    "en": ["Hello everyone, welcome.", "Today we watch a short clip.", "A small square moves across the frame.",
           "It travels from left to right.", "That is all for today.", "Thanks for watching, see you next time."],
}


@dataclass
class TranslationProject:
    project_id: str
    version: str
    workflow_id: str
    ak: str
    space: str
    input: VodMedia | None
    input_vid: str
    title: str
    source_language: str
    target_language: str
    types: list[str]
    recognition: str
    created: float
    processing_s: float
    fails: bool
    output_vid: str
    extras: dict[str, Any] = field(default_factory=dict)  # Additions, built once at submit

    @property
    def end_time(self) -> float:
        return self.created + self.processing_s

    def status(self, now: float) -> str:
        if now < self.end_time:
            return "InProcessing"
        return "ProcessFailed" if self.fails else "ProcessSucceed"


def _duration(media: VodMedia | None) -> float:
    info = media.source_info() if media else None
    return float(info["Duration"]) if info and info["Duration"] else 3.0


def _build_extras(project: TranslationProject, ctx: Ctx) -> dict[str, Any]:
    """Speakers, utterances, tracks and clips: every utterance's ClipId is a clip with the same Trim."""
    pid = project.project_id
    duration_ms = int(_duration(project.input) * 1000)
    src_bp = {"Id": new_hex(24), "Language": project.source_language, "ProjectId": pid, "TranslationType": "source"}
    tgt_bp = {"Id": new_hex(24), "Language": project.target_language, "ProjectId": pid, "TranslationType": "target"}
    speakers = [{"Id": new_hex(24), "Name": f"Speaker {i + 1}", "Voice": f"DiT_{new_hex(12)}", "ProjectId": pid}
                 for i in range(2)]
    tracks: dict[str, list[dict[str, Any]]] = {"source": [], "target": []}
    for kind, bp in (("source", src_bp), ("target", tgt_bp)):
        tracks[kind] = [{"Id": new_hex(24), "BlueprintId": bp["Id"], "SpeakerId": s["Id"], "TranslationType": kind}
                        for s in speakers]
    video = media_ref(ctx, project.input, with_vid=False)
    phrases = PHRASES[project.source_language]
    count = max(2, min(len(phrases), duration_ms // 1000))
    slot = duration_ms // count
    utterances: dict[str, list[dict[str, Any]]] = {"source": [], "target": []}
    clips: dict[str, list[dict[str, Any]]] = {"source": [], "target": []}
    for i in range(count):
        speaker_index = i % len(speakers)
        trim = {"Start": i * slot + min(100, slot // 10), "End": (i + 1) * slot - min(100, slot // 10)}
        source_utterance_id = ""
        for kind, bp in (("source", src_bp), ("target", tgt_bp)):
            clip_id = new_hex(24)
            audio_uri = f"tos-emulator-{project.space}/{pid}-{kind}-{i}.aac"
            clips[kind].append({
                "Id": clip_id,
                "Trim": dict(trim),
                "Volume": 100,
                "ClipAudio": {"IsAudio": True, "Uri": audio_uri, "Vid": "",
                              "DurationSecond": (trim["End"] - trim["Start"]) / 1000, "Url": ""},
                "ClipVideo": dict(video),
                "TranslationType": kind,
                "TrackId": tracks[kind][speaker_index]["Id"],
            })
            text = phrases[i]
            if kind == "target":
                text = f"[{project.target_language}] {text}"  # visibly "translated"
            utterance_id = new_hex(24)
            utterances[kind].append({
                "Id": utterance_id,
                "SpeakerId": speakers[speaker_index]["Id"],
                "BlueprintId": bp["Id"],
                "ClipId": clip_id,
                "Text": text,
                "ProjectId": pid,
                "IsFacialTranslation": "FacialTranslation" in project.types,
                "TranslationType": kind,
                "Status": "online",
                "SourceId": source_utterance_id if kind == "target" else "000000000000000000000000",
            })
            source_utterance_id = utterance_id
    background = {
        "Id": new_hex(24), "Trim": {"Start": 0, "End": duration_ms}, "Volume": 100,
        "ClipAudio": {"IsAudio": True, "Uri": f"tos-emulator-{project.space}/{pid}_others.aac", "Vid": "",
                      "DurationSecond": duration_ms / 1000, "Url": ""},
        "ClipVideo": dict(video), "TranslationType": "background", "TrackId": "",
    }
    return {
        "Speakers": speakers,
        "SourceUtterances": utterances["source"], "TargetUtterances": utterances["target"],
        "SourceTracks": tracks["source"], "TargetTracks": tracks["target"],
        "SourceClips": clips["source"], "TargetClips": clips["target"],
        "BackgroundClip": background,
        "SourceBlueprints": [src_bp], "TargetBlueprints": [tgt_bp],
    }


def _file(ctx: Ctx, project: TranslationProject, name: str, *, is_audio: bool = False, vid: str = "") -> dict:
    key = f"vod/files/{project.project_id}-{name}"
    url = ctx.state.media.url(ctx.media_base(), f"vod/{vid}.mp4" if vid else key)
    return {"IsAudio": is_audio, "Uri": f"tos-emulator-{project.space}/{project.project_id}-{name}", "Vid": vid,
            "DurationSecond": _duration(project.input), "Url": url}


def _project_info(ctx: Ctx, project: TranslationProject, additions: list[str]) -> dict[str, Any]:
    status = project.status(ctx.now)
    done = status == "ProcessSucceed"
    info: dict[str, Any] = {
        "ProjectId": project.project_id,
        "ProjectVersion": project.version,
        "WorkflowId": project.workflow_id,
        "CreatedAt": str(int(project.created)),
        "UpdatedAt": str(int(min(ctx.now, project.end_time))),
        "Status": status,
        "InputVideoTitle": project.title,
        "TranslationTypeList": list(project.types),
        "BackgroundAudio": _file(ctx, project, "others.m4a", is_audio=True) if done else None,
        "ForegroundAudio": _file(ctx, project, "speech.m4a", is_audio=True) if done else None,
        "InputVideo": media_ref(ctx, project.input) if project.input else
        {"IsAudio": False, "Uri": "", "Vid": project.input_vid, "DurationSecond": 0.0, "Url": ""},
        "PreviewVideo": _file(ctx, project, "preview.mp4") if done else None,
        "PreviewVideoMuted": _file(ctx, project, "mute.mp4") if done else None,
        "OutputVideo": _file(ctx, project, "output.mp4", vid=project.output_vid) if done else None,
        "VoiceTranslationVideo": _file(ctx, project, "whole.mp4")
        if done and "VoiceTranslation" in project.types else None,
        "FacialTranslationVideo": _file(ctx, project, "facial.mp4")
        if done and "FacialTranslation" in project.types else None,
        "SourceBlueprints": project.extras["SourceBlueprints"],
        "TargetBlueprints": project.extras["TargetBlueprints"],
        "OperatorConfig": {"SubtitleRecognitionConfig": {"RecognitionType": project.recognition}},
        "ErrorMsg": FAIL_MSG if status == "ProcessFailed" else "",
        "ErrorCode": FAIL_CODE if status == "ProcessFailed" else 0,
    }
    for name in additions:
        if name == "BackgroundClip":
            info[name] = project.extras[name] if done else None
        else:
            info[name] = project.extras[name] if done else []
    return info


def _callback(project: TranslationProject) -> dict[str, Any]:
    failed = project.fails
    return {
        "RequestId": new_request_id(),
        "Version": "1.0",
        "EventType": "AITranslationComplete",
        "EventTime": iso(project.end_time),
        "Data": {
            "SpaceName": project.space,
            "ProjectId": project.project_id,
            "Action": "Process",
            "ErrorCode": FAIL_CODE if failed else 0,
            "ErrorMsg": FAIL_MSG if failed else "",
            "TargetVid": "" if failed else project.output_vid,
        },
    }


def _obj(ctx: Ctx, key: str) -> dict[str, Any]:
    return ctx.params.json(key, dict) or {}


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
        fails=contains_marker(ctx.params.values, ctx.config.fail_marker), output_vid=new_vid(),
    )
    project.extras = _build_extras(project, ctx)
    state = ctx.state
    with state.lock:
        if not project.fails:
            data = variant(f"translated {project.project_id} {target_language}",
                           base=media.data if media else sample_bytes())
            state.add_vid(VodMedia(project.output_vid, space, f"{project.title.rsplit('.', 1)[0]}-{target_language}.mp4",
                                   data, available_at=project.end_time, source="translation"))
            for name in ("others.m4a", "speech.m4a", "preview.mp4", "mute.mp4", "whole.mp4", "facial.mp4"):
                state.media.put(f"vod/files/{project.project_id}-{name}",
                                MediaItem(data, "audio/mp4" if name.endswith("m4a") else "video/mp4",
                                          available_at=project.end_time))
        state.translations[project.project_id] = project
        ctx.bill(project.project_id)
        state.schedule_callback(project.end_time, "AITranslationComplete", project.project_id,
                                lambda: _callback(project))
    return {"ProjectBaseInfo": {"ProjectId": project.project_id, "ProjectVersion": project.version}}


@action("GetAITranslationProject", VERSION)
async def get_translation_project(ctx: Ctx) -> dict[str, Any]:
    space = require_space(ctx, "SpaceName")
    project_id = ctx.params.str("ProjectId", required=True)
    additions = ctx.params.list_of_str("Additions")
    unknown = [a for a in additions if a not in ADDITIONS]
    if unknown:
        raise invalid(f"Unknown Additions {unknown}; allowed: {list(ADDITIONS)}.")
    with ctx.state.lock:
        project = ctx.state.translations.get(project_id)
    if project is None or project.space != space or project.ak != ctx.ak:
        raise not_found(f"The project {project_id} does not exist.")
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

