"""A reviewer's answer as utterance edits, checked against the project before anything is sent or paid.

Edits come by id (``edits``, or lines changed in place in the Resume form) or from a corrected .srt/.vtt in the
bucket. Each is checked as the vendor requires (the emulator refuses the same): the id is a line of the project,
the speaker is one of its speakers, the line starts before it ends, inside the video, and the lines of a side stay
in order without overlapping. An error names the line (its number in the review table and its id) and the field.
UpdateAITranslationUtterances then sends only what changed.
"""

from __future__ import annotations

from typing import Any

from prefect.logging import get_run_logger

from flows.models import BlockRefs, ReviewDecision, TranslateSpec, UtteranceEdit
from flows.outputs.subtitles import SubtitleParseError, cues_from_translation, parse_subtitles
from flows.runtime import resources
from flows.coordination.quotas import quota_slot
from flows.stages.review_form import LINE_FIELDS, ReviewInputError, project_lines, reviewed_side, video_ms
from providers.errors import RequestValidationError
from providers.vod.models_translation import UpdateAITranslationUtterancesRequest

SUBTITLE_MAX_BYTES = 2 * 1024 * 1024  # a corrected subtitle file; a real one is a few KB
WIRE = {"text": "Text", "speaker_id": "SpeakerId", "start_ms": "Start", "end_ms": "End", "volume": "Volume"}


def check_subtitle_key(key: str, project_id: str) -> None:
    """A corrected file is read only from the project's own folder (``subtitles/<project id>/``), so an answer
    cannot pull another project's subtitles (or any other object) into this one. Decided by name, before S3."""
    from flows.outputs.storage import key_under

    safe_id = bool(project_id) and "/" not in project_id and project_id not in (".", "..")
    if not (safe_id and key_under(key, f"subtitles/{project_id}/")):
        raise ReviewInputError(
            f"subtitle_key: must be a file under subtitles/{project_id}/ (the project's own folder, where its "
            f"drafts are), e.g. subtitles/{project_id}/fixed.srt"
        )


async def read_subtitle_file(bucket: Any, key: str) -> str:
    """The text of a corrected subtitle file: HEAD-checked against ``SUBTITLE_MAX_BYTES`` before it is read.
    Errors name the field and the rule, never the object's content."""
    from flows.outputs.storage import ObjectTooLargeError, read_small_object, s3_error_code

    where = f"s3://{bucket.name}/{key}"
    try:
        body = await read_small_object(bucket.client, bucket.name, key, max_bytes=SUBTITLE_MAX_BYTES)
    except ObjectTooLargeError as exc:
        size = f"{exc.size:,} bytes" if exc.size is not None else "larger"
        raise ReviewInputError(
            f"subtitle_key: {where} is {size}; a corrected subtitle file is at most {SUBTITLE_MAX_BYTES:,} bytes "
            "(2 MiB)"
        ) from None
    except Exception as exc:  # noqa: BLE001 - boto's error types vary by endpoint; the code is enough
        raise ReviewInputError(f"subtitle_key: cannot read {where} ({s3_error_code(exc)})") from None
    try:
        return body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ReviewInputError(f"subtitle_key: {where} is not UTF-8 text (SRT or WebVTT)") from None


async def _file_edits(bucket: Any, key: str, reviewed: list[Any], clips: list[Any]) -> list[dict[str, Any]]:
    """A corrected .srt/.vtt: its cues replace the reviewed lines' texts in time order (same count)."""
    text = await read_subtitle_file(bucket, key)
    try:
        cues = parse_subtitles(text)
    except SubtitleParseError as exc:  # its message names a line number, not the line
        raise ReviewInputError(f"subtitle_key: s3://{bucket.name}/{key} is not SRT/WebVTT: {exc}") from None
    drafts = cues_from_translation(reviewed, clips)
    if len(cues) != len(drafts):
        raise ReviewInputError(
            f"subtitle_key: s3://{bucket.name}/{key} has {len(cues)} cue(s), the draft has {len(drafts)}: the "
            "corrected file must keep every cue (edit texts, keep the cues and their order)"
        )
    return [{"id": d.utterance_id, "text": c.text} for d, c in zip(drafts, cues, strict=True)
            if d.utterance_id and c.text != d.text]


def _sides(project: Any) -> dict[str, list[UtteranceEdit]]:
    return {"source": project_lines(list(project.source_utterances or []), list(project.source_clips or [])),
            "target": project_lines(list(project.target_utterances or []), list(project.target_clips or []))}


def check_edits(edits: list[dict[str, Any]], project: Any) -> None:
    """Speakers, timing inside the video, order without overlap: as the vendor checks an edit, named by line."""
    speakers = {s.id for s in project.speakers or []}
    length_ms = video_ms(project)
    by_id = {e["id"]: e for e in edits}
    for side, lines in _sides(project).items():
        timed: list[tuple[int, UtteranceEdit, int, int]] = []
        for number, line in enumerate(lines, start=1):
            edit = by_id.get(line.id)
            where = f"{side} line {number} (id {line.id})"
            if edit is None:
                if line.start_ms is not None and line.end_ms is not None:
                    timed.append((number, line, line.start_ms, line.end_ms))
                continue
            speaker = edit.get("speaker_id")
            if speaker is not None and speakers and speaker not in speakers:
                raise ReviewInputError(f"{where}.speaker_id: {speaker!r} is not a speaker of the project "
                                       f"(known: {', '.join(sorted(speakers))})")
            start, end = edit.get("start_ms", line.start_ms), edit.get("end_ms", line.end_ms)
            if start is None or end is None:
                if "start_ms" in edit or "end_ms" in edit:
                    raise ReviewInputError(f"{where}.start_ms: the line has no timing to change; give both "
                                           "start_ms and end_ms")
                continue
            if end <= start:
                raise ReviewInputError(f"{where}.end_ms: must be after start_ms ({end} <= {start} ms)")
            if length_ms and end > length_ms:
                raise ReviewInputError(f"{where}.end_ms: {end} ms is past the end of the video ({length_ms} ms)")
            timed.append((number, line, start, end))
        for (n1, a, _, a_end), (n2, b, b_start, _) in zip(timed, timed[1:]):
            if b_start < a_end:
                field = "start_ms" if b.id in by_id else "end_ms"
                who = (n2, b.id) if field == "start_ms" else (n1, a.id)
                raise ReviewInputError(
                    f"{side} line {who[0]} (id {who[1]}).{field}: line {n2} starts at {b_start} ms, before line {n1} "
                    f"ends ({a_end} ms); lines stay in order without overlapping"
                )


async def planned_edits(
    decision: ReviewDecision, project: Any, spec: TranslateSpec, refs: BlockRefs
) -> list[dict[str, Any]]:
    """The answer as utterance edits (only what changes), every id and value checked (before anything is paid)."""
    current = {line.id: line for lines in _sides(project).values() for line in lines}
    edits: list[dict[str, Any]] = []
    for n, edit in enumerate(decision.edits):
        if edit.id not in current:
            raise ReviewInputError(f"edits[{n}].id: {edit.id!r} is not an utterance of project {project.project_id}")
        changed = {f: v for f in LINE_FIELDS if (v := getattr(edit, f)) is not None
                   and v != getattr(current[edit.id], f)}
        if changed:
            edits.append({"id": edit.id, **changed})
    if decision.subtitle_key:
        check_subtitle_key(decision.subtitle_key, project.project_id)
        _, reviewed, clips = reviewed_side(project, spec)
        by_id = {e["id"]: e for e in edits}
        for e in await _file_edits(await resources.bucket(refs), decision.subtitle_key, reviewed, clips):
            by_id.setdefault(e["id"], {"id": e["id"]}).setdefault("text", e["text"])  # an edit by id wins
        edits = list(by_id.values())
    check_edits(edits, project)
    return edits


async def apply_edits(space_name: str, project_id: str, edits: list[dict[str, Any]], refs: BlockRefs) -> None:
    """UpdateAITranslationUtterances (bills nothing; the same edit twice sets the same values)."""
    if not edits:
        return
    try:
        request = UpdateAITranslationUtterancesRequest.model_validate({
            "SpaceName": space_name, "ProjectId": project_id, "UpdateType": "Utterances",
            "Utterances": [{"Id": e["id"], **{WIRE[f]: e[f] for f in LINE_FIELDS if f in e}} for e in edits],
        })
    except RequestValidationError as exc:
        raise ReviewInputError(f"edits: {exc}") from exc
    async with await resources.client("vod", refs) as vod, quota_slot("vod", "UpdateAITranslationUtterances"):
        await vod.update_ai_translation_utterances(request)
    get_run_logger().info("Applied %d edit(s) to translation %s", len(edits), project_id)
