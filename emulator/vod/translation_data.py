"""The data of an emulated AI translation project: speakers, tracks, and one utterance + clip per line on each side
(utterances point at their clip by ClipId), the "translation" of a line, and its subtitle file."""

from __future__ import annotations

import json
from typing import Any

from emulator.state import VodMedia, new_hex
from emulator.vod.subtitle_files import Cue, render_vtt
from emulator.vod.translation_project import TranslationProject

PHRASES = {
    "zh": ["大家好，欢迎收看。", "今天我们来看一段短片。", "画面里有一个小方块在移动。", "它从左边一直走到右边。",
           "这就是今天的全部内容。", "感谢观看，下次再见。"],
    "en": ["Hello everyone, welcome.", "Today we watch a short clip.", "A small square moves across the frame.",
           "It travels from left to right.", "That is all for today.", "Thanks for watching, see you next time."],
}


def duration(media: VodMedia | None) -> float:
    info = media.source_info() if media else None
    return float(info["Duration"]) if info and info["Duration"] else 3.0


def duration_ms(project: TranslationProject) -> int:
    return int(duration(project.input) * 1000)


def split_marks(text: str) -> tuple[str, str]:
    """(leading marks, the rest): the marks pass through untouched, only the rest is 'translated'."""
    rest, marks = text, ""
    while True:
        if rest.startswith("<v ") and ">" in rest:
            cut = rest.index(">") + 1
        elif rest.startswith(("<a MuteSpeech>", "<a UseOriginal>")):
            cut = rest.index(">") + 1
        else:
            return marks, rest
        marks, rest = marks + rest[:cut], rest[cut:]


def translate_text(text: str, language: str) -> str:
    marks, rest = split_marks(text)
    return f"{marks}[{language}] {rest}"  # visibly "translated"


# --- project data --------------------------------------------------------------------------------------------


def track_for(project: TranslationProject, side: str, speaker_id: str) -> str:
    key = "SourceTracks" if side == "source" else "TargetTracks"
    bp = project.extras["SourceBlueprints" if side == "source" else "TargetBlueprints"][0]
    for track in project.extras[key]:
        if track["SpeakerId"] == speaker_id:
            return track["Id"]
    track = {"Id": new_hex(24), "BlueprintId": bp["Id"], "SpeakerId": speaker_id, "TranslationType": side}
    project.extras[key].append(track)
    return track["Id"]


def speaker_named(project: TranslationProject, name: str) -> str:
    """A ``<v Name>`` mark assigns a speaker by name; an unknown name is a new speaker (vendor guide)."""
    for speaker in project.extras["Speakers"]:
        if speaker["Name"] == name:
            return speaker["Id"]
    speaker = {"Id": new_hex(24), "Name": name, "Voice": f"DiT_{new_hex(12)}", "ProjectId": project.project_id}
    project.extras["Speakers"].append(speaker)
    return speaker["Id"]


def set_side(project: TranslationProject, side: str, rows: list[tuple[int, int, str, str]], video: dict) -> None:
    """Replace one side's utterances and clips with ``rows`` of (start ms, end ms, text, speaker id)."""
    bp = project.extras["SourceBlueprints" if side == "source" else "TargetBlueprints"][0]
    sources = project.utterances("source") if side == "target" else []
    utterances, clips = [], []
    for i, (start, end, text, speaker_id) in enumerate(rows):
        clip_id = new_hex(24)
        clips.append({
            "Id": clip_id, "Trim": {"Start": start, "End": end}, "Volume": 100,
            "ClipAudio": {"IsAudio": True, "Uri": f"tos-emulator-{project.space}/{project.project_id}-{side}-{i}.aac",
                          "Vid": "", "DurationSecond": (end - start) / 1000, "Url": ""},
            "ClipVideo": dict(video), "TranslationType": side, "TrackId": track_for(project, side, speaker_id),
        })
        utterances.append({
            "Id": new_hex(24), "SpeakerId": speaker_id, "BlueprintId": bp["Id"], "ClipId": clip_id, "Text": text,
            "ProjectId": project.project_id, "IsFacialTranslation": "FacialTranslation" in project.types,
            "TranslationType": side, "Status": "online",
            "SourceId": sources[i]["Id"] if i < len(sources) else "000000000000000000000000",
        })
    project.extras["SourceUtterances" if side == "source" else "TargetUtterances"] = utterances
    project.extras["SourceClips" if side == "source" else "TargetClips"] = clips


def build_extras(project: TranslationProject, video: dict[str, Any]) -> None:
    """Speakers, blueprints, tracks, and one utterance + clip per phrase on each side (same Trim both sides)."""
    pid = project.project_id
    length_ms = duration_ms(project)
    speakers = [{"Id": new_hex(24), "Name": f"Speaker {i + 1}", "Voice": f"DiT_{new_hex(12)}", "ProjectId": pid}
                for i in range(2)]
    project.extras = {
        "Speakers": speakers, "SourceTracks": [], "TargetTracks": [],
        "SourceBlueprints": [{"Id": new_hex(24), "Language": project.source_language, "ProjectId": pid,
                              "TranslationType": "source"}],
        "TargetBlueprints": [{"Id": new_hex(24), "Language": project.target_language, "ProjectId": pid,
                              "TranslationType": "target"}],
    }
    for speaker in speakers:
        for side in ("source", "target"):
            track_for(project, side, speaker["Id"])
    phrases = PHRASES[project.source_language]
    count = max(2, min(len(phrases), length_ms // 1000))
    slot = length_ms // count
    rows = [(i * slot + min(100, slot // 10), (i + 1) * slot - min(100, slot // 10), phrases[i],
             speakers[i % len(speakers)]["Id"]) for i in range(count)]
    set_side(project, "source", rows, video)
    translate_all(project, video)
    # The background (everything but speech) is separated for dubbing only: a subtitle-only project has none,
    # like its BackgroundAudio.
    project.extras["BackgroundClip"] = {
        "Id": new_hex(24), "Trim": {"Start": 0, "End": length_ms}, "Volume": 100,
        "ClipAudio": {"IsAudio": True, "Uri": f"tos-emulator-{project.space}/{pid}_others.aac", "Vid": "",
                      "DurationSecond": length_ms / 1000, "Url": ""},
        "ClipVideo": dict(video), "TranslationType": "background", "TrackId": "",
    } if "VoiceTranslation" in project.types else None


def translate_all(project: TranslationProject, video: dict | None = None) -> None:
    """The translation step: one target line per source line, same timing and speaker, marks kept."""
    video = video if video is not None else (project.clips("source")[0]["ClipVideo"] if project.clips("source")
                                             else {})
    rows = []
    for utterance in project.utterances("source"):
        clip = project.clip_of(utterance, "source") or {"Trim": {"Start": 0, "End": 0}}
        rows.append((clip["Trim"]["Start"], clip["Trim"]["End"], translate_text(utterance["Text"], project.target_language),
                     utterance["SpeakerId"]))
    set_side(project, "target", rows, video)


def all_text(project: TranslationProject) -> str:
    return json.dumps([u["Text"] for side in ("source", "target") for u in project.utterances(side)],
                      ensure_ascii=False)


def subtitle_vtt(project: TranslationProject, side: str) -> bytes:
    cues = [Cue(start, end, [text]) for start, end, text in project.lines(side)]
    return render_vtt(cues).encode("utf-8")
