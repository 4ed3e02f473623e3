"""Completing an issue's history: the changelog and comments a search leaves out.

A search embeds only the first histories (``expand=changelog``) and comments (the
``comment`` field) of an issue, each with the true ``total``. What is missing is read from
``changelog/bulkfetch`` (Cloud, up to 1000 issues a request), ``issue/{key}/changelog``
(Data Center) and ``issue/{key}/comment`` (both). An issue deleted meanwhile keeps what
the search gave, flagged.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Executor
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from stratmap.connectors.base import NotFound, RequestCount, TokenPaginator
from stratmap.connectors.jira.payloads import Site, history_order
from stratmap.connectors.jira.transport import Transport

BULK_CHANGELOG = "/rest/api/3/changelog/bulkfetch"
BULK_ISSUES = 1000


@dataclass
class Searched:
    """A searched issue and what completing its history found."""

    payload: dict[str, Any]
    histories: list[dict[str, Any]] = field(default_factory=list)
    comments: list[dict[str, Any]] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)
    unchanged: bool = False
    """The store holds this version already (same ``updated``): not completed, not written."""

    @property
    def key(self) -> str:
        return str(self.payload["key"])

    def completed_payload(self) -> dict[str, Any]:
        """The issue as searched, its changelog and comments replaced by the complete ones."""
        payload = dict(self.payload)
        histories = sorted(self.histories, key=history_order)
        payload["changelog"] = {
            "startAt": 0,
            "maxResults": len(histories),
            "total": len(histories),
            "histories": histories,
        }
        fields = dict(payload.get("fields") or {})
        if "comment" in fields:
            fields["comment"] = {
                **(fields.get("comment") or {}),
                "comments": self.comments,
                "startAt": 0,
                "maxResults": len(self.comments),
                "total": len(self.comments),
            }
        payload["fields"] = fields
        return payload


class HistoryReader:
    """Reads the rest of searched issues' changelogs and comments over one transport."""

    def __init__(self, source: str, http: Transport) -> None:
        self.name = source
        self._http = http

    def complete(
        self, site: Site, issues: list[Searched], count: RequestCount, pool: Executor | None
    ) -> None:
        """Give every issue its complete changelog and comments (not the unchanged ones)."""
        issues = [issue for issue in issues if not issue.unchanged]
        truncated: list[Searched] = []
        for issue in issues:
            changelog = issue.payload.get("changelog")
            histories = list((changelog or {}).get("histories") or [])
            issue.histories = histories
            if changelog is None or int(changelog.get("total") or 0) > len(histories):
                truncated.append(issue)
        if site.cloud and truncated:
            self._bulk_changelogs(truncated, count)
        per_issue: list[Callable[[], None]] = []
        if not site.cloud:
            per_issue += [partial(self._issue_changelog, issue, count) for issue in truncated]
        per_issue += [partial(self._issue_comments, site, issue, count) for issue in issues]
        if pool is None:
            for task in per_issue:
                task()
        else:
            for future in [pool.submit(task) for task in per_issue]:
                future.result()

    def _bulk_changelogs(self, issues: list[Searched], count: RequestCount) -> None:
        by_id = {str(i.payload.get("id")): i for i in issues}
        found: dict[str, list[dict[str, Any]]] = {ident: [] for ident in by_id}
        for chunk_start in range(0, len(issues), BULK_ISSUES):
            chunk = issues[chunk_start : chunk_start + BULK_ISSUES]
            pages = TokenPaginator(self.name)
            while not pages.finished:
                body: dict[str, object] = {
                    "issueIdsOrKeys": [i.key for i in chunk],
                    "maxResults": 1000,
                }
                if pages.token:
                    body["nextPageToken"] = pages.token
                data = self._http.post(BULK_CHANGELOG, body, count=count)
                for log_entry in data.get("issueChangeLogs") or []:
                    ident = str(log_entry.get("issueId"))
                    if ident in found:
                        found[ident].extend(log_entry.get("changeHistories") or [])
                pages.advance(data.get("nextPageToken"))
        for ident, issue in by_id.items():
            total = int((issue.payload.get("changelog") or {}).get("total") or 0)
            histories = unique(found[ident] + issue.histories)
            if len(histories) < total:
                issue.flags.append("history_incomplete")
            issue.histories = histories

    def _issue_changelog(self, issue: Searched, count: RequestCount) -> None:
        values: list[dict[str, Any]] = []
        start = 0
        try:
            while True:
                data = self._http.get(
                    f"/rest/api/2/issue/{issue.key}/changelog",
                    {"startAt": start, "maxResults": 100},
                    count=count,
                )
                page = data.get("values") or []
                values.extend(page)
                start += len(page)
                if not page or data.get("isLast") or start >= int(data.get("total") or 0):
                    break
        except NotFound:
            issue.flags.append("history_incomplete")
            return
        issue.histories = unique(values + issue.histories)

    def _issue_comments(self, site: Site, issue: Searched, count: RequestCount) -> None:
        embedded = (issue.payload.get("fields") or {}).get("comment")
        if not isinstance(embedded, Mapping):
            embedded = {}
        comments: list[dict[str, Any]] = list(embedded.get("comments") or [])
        total = int(embedded.get("total") or len(comments))
        if len(comments) < total:
            path = f"/rest/api/{3 if site.cloud else 2}/issue/{issue.key}/comment"
            next_start = int(embedded.get("startAt") or 0) + len(comments)
            try:
                # Continue after the embedded page; if that does not add up (the embedded
                # page was not the first), read them all once from the start.
                for start in (next_start, 0):
                    more, total = self._comment_pages(path, start, count)
                    comments = unique(comments + more)
                    if len(comments) >= total:
                        break
            except NotFound:
                pass
        issue.comments = unique(comments)
        if len(issue.comments) < total:
            issue.flags.append("comments_incomplete")

    def _comment_pages(
        self, path: str, start: int, count: RequestCount
    ) -> tuple[list[dict[str, Any]], int]:
        comments: list[dict[str, Any]] = []
        while True:
            data = self._http.get(
                path, {"startAt": start, "maxResults": 100, "orderBy": "created"}, count=count
            )
            page = data.get("comments") or []
            comments.extend(page)
            start += len(page)
            total = int(data.get("total") or 0)
            if not page or start >= total:
                return comments, total


def unique(entries: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Histories or comments once each, by id, in the order first met."""
    by_id: dict[str, dict[str, Any]] = {}
    for entry in entries:
        by_id.setdefault(str(entry.get("id")), entry)
    return list(by_id.values())
