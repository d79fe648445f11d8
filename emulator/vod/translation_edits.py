"""UpdateAITranslationUtterances on an emulated project: edits by utterance Id (text, speaker, timing, volume) or a
whole subtitle file already in the space (source, target or bilingual). Everything is checked before anything
changes; on a finished project an edited line is ``need_update`` until the next export."""

from __future__ import annotations

from typing import Any

from emulator.errors import invalid, not_found
from emulator.registry import Ctx
from emulator.vod.subtitle_files import Cue, decode, parse, speaker_of
from emulator.vod.translation_data import duration_ms, set_side, speaker_named, split_marks, track_for
from emulator.vod.translation_project import TranslationProject


def visible_sides(project: TranslationProject, now: float) -> list[str]:
    sides = ["source"] if project.reached("SubtitleRecognition", now) else []
    return sides + (["target"] if project.reached("SubtitleTranslation", now) else [])


def text_ok(text: Any, where: str) -> str:
    if not isinstance(text, str) or not split_marks(text)[1].strip():
        raise invalid(f"{where} must be a string with some text after its marks.")
    return text


def edit_utterances(ctx: Ctx, project: TranslationProject, finished: bool) -> None:
    edits = ctx.params.json("Utterances", list, required=True)
    if not edits:
        raise invalid("Utterances must hold at least one utterance.")
    sides = visible_sides(project, ctx.now)
    speakers = {s["Id"] for s in project.extras["Speakers"]}
    length_ms = duration_ms(project)
    planned = []
    for i, edit in enumerate(edits):  # validate everything before changing anything
        where = f"Utterances[{i}]"
        if not isinstance(edit, dict) or not isinstance(edit.get("Id"), str) or not edit["Id"]:
            raise invalid(f"{where}.Id is required.", "MissingParameter")
        found = project.find_utterance(edit["Id"])
        if found is None or found[0] not in sides:
            raise invalid(f"{where}.Id {edit['Id']} is not an utterance of project {project.project_id}.")
        side, utterance = found
        if "Text" in edit:
            text_ok(edit["Text"], f"{where}.Text")
        if "SpeakerId" in edit and edit["SpeakerId"] not in speakers:
            raise invalid(f"{where}.SpeakerId {edit['SpeakerId']} is not a speaker of the project.")
        clip = project.clip_of(utterance, side)
        assert clip is not None
        trim = dict(clip["Trim"])
        for key in ("Start", "End", "Volume"):
            value = edit.get(key)
            if key in edit and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
                raise invalid(f"{where}.{key} must be a non-negative integer.")
        trim.update({k: edit[k] for k in ("Start", "End") if k in edit})
        if not trim["Start"] < trim["End"] <= length_ms:
            raise invalid(f"{where}: Start must be before End, both within the video (0-{length_ms} ms).")
        if edit.get("Volume", 0) > 100:
            raise invalid(f"{where}.Volume must be 0-100.")
        if not set(edit) & {"Text", "SpeakerId", "Start", "End", "Volume"}:
            raise invalid(f"{where} changes nothing: give Text, SpeakerId, Start, End or Volume.")
        planned.append((edit, utterance, clip, trim))
    check_order(project, {id(clip): trim for _, _, clip, trim in planned})
    for edit, utterance, clip, trim in planned:
        utterance.update({k: edit[k] for k in ("Text", "SpeakerId") if k in edit})
        clip["Trim"] = trim
        if "Volume" in edit:
            clip["Volume"] = edit["Volume"]
        if finished:
            utterance["Status"] = "need_update"  # shows in the outputs after RefreshAITranslationProject


def check_order(project: TranslationProject, trims: dict[int, dict[str, int]]) -> None:
    """The lines of a side stay in their order without overlapping once the new timings are in."""
    for side in ("source", "target"):
        clips = sorted(project.clips(side), key=lambda c: (c["Trim"]["Start"], c["Trim"]["End"]))
        timed = [(c, trims.get(id(c), c["Trim"])) for c in clips]
        for (_, a), (clip, b) in zip(timed, timed[1:]):
            if b["Start"] < a["End"]:
                uid = next((u["Id"] for u in project.utterances(side) if u["ClipId"] == clip["Id"]), clip["Id"])
                raise invalid(f"Utterances: {uid} would start at {b['Start']} ms, before the line before it ends "
                              f"({a['End']} ms); lines must stay in order without overlapping.")


def edit_from_file(ctx: Ctx, project: TranslationProject, update_type: str, field: str, finished: bool) -> None:
    name = ctx.params.str(field, required=True)
    assert name is not None
    files = [m for m in ctx.state.vids.values()
             if m.space == project.space and m.file_name == name and m.available_at <= ctx.now]
    if not files:
        raise not_found(f"The subtitle file {name} does not exist in space {project.space} ({field}).")
    cues = parse(decode(files[-1].data, name), name)
    sides = visible_sides(project, ctx.now)
    wanted = {"InputSubtitleFile": ["source"], "OutputSubtitleFile": ["target"],
              "BilingualSubtitleFile": ["source", "target"]}[update_type]
    missing = [s for s in wanted if s not in sides]
    if missing:
        raise invalid(f"{update_type}: the project has no {' or '.join(missing)} subtitles yet.")
    length_ms = duration_ms(project)
    for cue in cues:
        if cue.end > length_ms:
            raise invalid(f"{name}: a cue ends at {cue.end} ms, after the video ({length_ms} ms).")
        if update_type == "BilingualSubtitleFile" and len(cue.lines) < 2:
            raise invalid(f"{name}: a bilingual cue needs a source line and a target line.")
    for side in wanted:
        texts = [(c.lines[0] if side == "source" else "\n".join(c.lines[1:])) if len(wanted) == 2
                 else "\n".join(c.lines) for c in cues]
        for i, text in enumerate(texts):
            text_ok(text, f"{name} cue {i + 1}")
        replace_side(project, side, cues, texts, finished)


def replace_side(project: TranslationProject, side: str, cues: list[Cue], texts: list[str], finished: bool) -> None:
    old = project.utterances(side)
    speakers = []
    for i, text in enumerate(texts):
        name = speaker_of(text)
        fallback = old[i]["SpeakerId"] if i < len(old) else project.extras["Speakers"][0]["Id"]
        speakers.append(speaker_named(project, name) if name else fallback)
    if len(old) == len(cues):  # same lines: edited in place, ids kept
        for utterance, cue, text, speaker in zip(old, cues, texts, speakers, strict=True):
            clip = project.clip_of(utterance, side)
            assert clip is not None
            changed = utterance["Text"] != text or clip["Trim"] != {"Start": cue.start, "End": cue.end}
            utterance.update({"Text": text, "SpeakerId": speaker})
            clip["Trim"] = {"Start": cue.start, "End": cue.end}
            clip["TrackId"] = track_for(project, side, speaker)
            if finished and changed:
                utterance["Status"] = "need_update"
        return
    video = project.clips(side)[0]["ClipVideo"] if project.clips(side) else {}
    set_side(project, side, [(c.start, c.end, t, s) for c, t, s in zip(cues, texts, speakers, strict=True)], video)
    if finished:
        for utterance in project.utterances(side):
            utterance["Status"] = "need_update"
