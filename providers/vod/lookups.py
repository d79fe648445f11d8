"""Lookups that find a paid job whose submit answer was lost: every page of the provider's own listings.

A reconciliation that stops after the first page would miss the job in a busy space and pay again, so each
helper here reads until the provider says there is no more. Listings can shift while they are read (new jobs
arrive at the front), which repeats items but does not skip them: items are de-duplicated by id.

``VodClient`` inherits these; they only use its one-page calls.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

from providers.errors import RequestValidationError
from providers.vod.errors import PROVIDER
from providers.vod.models_edit import GlobalProject, SearchGlobalProjectResult
from providers.vod.models_media import (
    MEDIA_LIST_MAX_OFFSET,
    MEDIA_LIST_MAX_PAGE_SIZE,
    MediaInfo,
    MediaListResult,
)
from providers.vod.models_translation import AITranslationProject, ListAITranslationProjectResult

CLOCK_SKEW = dt.timedelta(minutes=10)
# A listing that never ends (a provider bug, or a space filling faster than it is read) must not loop forever.
MAX_PAGES = 1000


def _check_page_size(value: int, action: str, field: str, limit: int | None = None) -> None:
    if value < 1 or (limit is not None and value > limit):
        bound = f"1-{limit}" if limit else ">= 1"
        raise RequestValidationError(field, f"must be {bound}", provider=PROVIDER, action=action)


class VodLookups:
    """Mixin for ``VodClient``: paged reads over SearchGlobalProject, ListAITranslationProject, GetMediaList."""

    # One-page calls provided by VodClient.
    search_global_project: Callable[..., Awaitable[SearchGlobalProjectResult]]
    list_ai_translation_project: Callable[..., Awaitable[ListAITranslationProjectResult]]
    get_media_list: Callable[..., Awaitable[MediaListResult]]

    # --- CreateProject -------------------------------------------------------------------------------------

    async def iter_global_projects(self, space: str, *, page_size: int = 20) -> AsyncIterator[GlobalProject]:
        """Every edit project of ``space`` (SearchGlobalProject, Offset/Limit), newest first as the provider sorts."""
        _check_page_size(page_size, "SearchGlobalProject", "Limit")
        seen: set[str] = set()
        offset = 0
        for _ in range(MAX_PAGES):
            page = await self.search_global_project(space, offset=offset, limit=page_size)
            for project in page.detail:
                key = project.project_id or ""
                if key and key in seen:
                    continue
                seen.add(key)
                yield project
            offset += len(page.detail)
            if len(page.detail) < page_size or (page.total is not None and offset >= page.total):
                return

    async def find_projects_by_name(self, space: str, name: str, *, page_size: int = 20) -> list[GlobalProject]:
        """Edit projects in ``space`` whose ProjectName is exactly ``name`` (the API has no name filter)."""
        return [p async for p in self.iter_global_projects(space, page_size=page_size) if p.project_name == name]

    # --- SubmitAITranslationWorkflow -----------------------------------------------------------------------

    async def iter_ai_translation_projects(
        self,
        space_name: str,
        *,
        page_size: int = 50,
        status_filter: str | Sequence[str] | None = None,
        project_id_or_title_filter: str | None = None,
    ) -> AsyncIterator[AITranslationProject]:
        """Every AI translation project of ``space_name`` (ListAITranslationProject, PageNumber/PageSize).

        Each item carries ``vid`` (input video), ``target_languages``, ``translation_type_list`` and
        ``created_time``: enough to recognise the project a lost submit created.
        """
        _check_page_size(page_size, "ListAITranslationProject", "PageSize")
        seen: set[str] = set()
        read = 0
        for page_number in range(1, MAX_PAGES + 1):
            page = await self.list_ai_translation_project(
                space_name, page_number=page_number, page_size=page_size, status_filter=status_filter,
                project_id_or_title_filter=project_id_or_title_filter,
            )
            for project in page.projects:
                if project.project_id in seen:
                    continue
                seen.add(project.project_id)
                yield project
            read += len(page.projects)
            if len(page.projects) < page_size or (page.total_count is not None and read >= page.total_count):
                return

    async def list_all_ai_translation_projects(self, space_name: str, **kwargs: Any) -> list[AITranslationProject]:
        """``iter_ai_translation_projects`` as a list."""
        return [p async for p in self.iter_ai_translation_projects(space_name, **kwargs)]

    # --- UploadMediaByUrl ----------------------------------------------------------------------------------

    async def iter_media(
        self,
        space_name: str,
        *,
        start_time: dt.datetime,
        end_time: dt.datetime,
        page_size: int = MEDIA_LIST_MAX_PAGE_SIZE,
    ) -> AsyncIterator[MediaInfo]:
        """Every video of ``space_name`` created in [start_time, end_time] (GetMediaList, oldest first).

        The provider serves only the first 10000 matches of a filter, so a window holding more is split in two
        and each half read on its own. Media appear once the provider has stored them: an upload still being
        pulled is not listed yet.
        """
        _check_page_size(page_size, "GetMediaList", "PageSize", MEDIA_LIST_MAX_PAGE_SIZE)
        seen: set[str] = set()
        async for media in self._iter_media_window(space_name, start_time, end_time, page_size):
            key = media.vid or ""
            if key and key in seen:
                continue
            seen.add(key)
            yield media

    async def _iter_media_window(
        self, space_name: str, start: dt.datetime, end: dt.datetime, page_size: int
    ) -> AsyncIterator[MediaInfo]:
        offset = 0
        for _ in range(MAX_PAGES):
            # Oldest first: media created while we read join the end of the list, so read pages do not shift.
            page = await self.get_media_list(
                space_name, start_time=start, end_time=end, offset=offset, page_size=page_size, order="Asc"
            )
            total = page.total_count
            too_many = total is not None and total > MEDIA_LIST_MAX_OFFSET
            if offset == 0 and too_many and end - start > dt.timedelta(seconds=1):
                middle = start + (end - start) / 2
                # The halves share their boundary second (times are whole seconds on the wire, and the page
                # does not say whether EndTime is inclusive): a repeat is de-duplicated, a gap would be a miss.
                for half_start, half_end in ((start, middle), (middle, end)):
                    async for media in self._iter_media_window(space_name, half_start, half_end, page_size):
                        yield media
                return
            for media in page.media_info_list:
                yield media
            offset += len(page.media_info_list)
            if (
                len(page.media_info_list) < page_size
                or (total is not None and offset >= total)
                or offset > MEDIA_LIST_MAX_OFFSET - page_size
            ):
                return

    async def find_media_by_title(
        self,
        space_name: str,
        title: str,
        *,
        created_after: dt.datetime,
        created_before: dt.datetime | None = None,
    ) -> list[MediaInfo]:
        """Videos of ``space_name`` titled exactly ``title`` created in [created_after, created_before or now].

        The way to find an UploadMediaByUrl import whose answer was lost: send a unique ``Title`` per import,
        then look for it here from (a little before) the time the request left.
        """
        # The provider's clock may run ahead of ours: by default look a little past our "now".
        end = created_before or dt.datetime.now(dt.timezone.utc) + CLOCK_SKEW
        return [
            m async for m in self.iter_media(space_name, start_time=created_after, end_time=end)
            if m.title == title
        ]
