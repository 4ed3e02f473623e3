"""What GitHub's and GitLab's REST issues share: an issue is open or closed, and "in
progress" is a label (one of the source's ``in_progress_labels``), so adding or removing
such a label is a status change; and both answer a refusal with the same status codes.

GitHub replays its timeline (``closed``/``reopened``/``labeled``/``unlabeled``), GitLab its
resource state and label events; both feed the same :class:`Replay`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from stratmap.connectors.base import AuthError, NotFound, SourceError, error_for_status
from stratmap.models.records import StatusCategory

Status = tuple[str, StatusCategory]
"""A tracker's status name and its category."""


@dataclass(frozen=True)
class LabelStatus:
    """The status of an issue from its state and labels (``open``/``opened``, ``closed``)."""

    open: Status
    closed: Status
    in_progress: frozenset[str]
    """The source's in-progress labels, casefolded."""

    @classmethod
    def named(cls, open_name: str, in_progress_labels: Iterable[str]) -> LabelStatus:
        return cls(open=(open_name, StatusCategory.TODO),
                   closed=("closed", StatusCategory.DONE),
                   in_progress=frozenset(label.casefold() for label in in_progress_labels))

    def tracks(self, label: str) -> bool:
        """Whether adding or removing ``label`` can change the status."""
        return label.casefold() in self.in_progress

    def of(self, closed: bool, labels: Iterable[str]) -> Status:
        """Closed wins; an open issue with in-progress labels is in progress (the first, sorted)."""
        if closed:
            return self.closed
        marks = sorted(label for label in labels if self.tracks(label))
        return (marks[0], StatusCategory.IN_PROGRESS) if marks else self.open

    def replay(self) -> Replay:
        """A replay of an issue's events, from open without labels."""
        return Replay(self)


@dataclass
class Replay:
    """An issue's status as its events are applied in order; each step answers the new
    status when it changed, else None."""

    rules: LabelStatus
    closed: bool = False
    marks: set[str] = field(default_factory=set)
    state: Status = ("", StatusCategory.TODO)

    def __post_init__(self) -> None:
        self.state = self.rules.open

    def close(self, closed: bool) -> Status | None:
        self.closed = closed
        return self._moved()

    def label(self, name: str, *, added: bool) -> Status | None:
        if not self.rules.tracks(name):
            return None
        if added:
            self.marks.add(name)
        else:
            self.marks.discard(name)
        return self._moved()

    def _moved(self) -> Status | None:
        new = self.rules.of(self.closed, self.marks)
        if new == self.state:
            return None
        self.state = new
        return new


def label_names(issue: Mapping[str, Any]) -> tuple[str, ...]:
    """An issue's labels: objects with a ``name`` (GitHub, GitLab) or plain names."""
    return tuple(str(label["name"]) if isinstance(label, dict) else str(label)
                 for label in issue.get("labels") or [])


def epoch_seconds(value: str | None) -> float | None:
    """A rate-limit reset header (epoch seconds), or None when absent or unreadable."""
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def refusal(source: str, status: int, *, what: str, tracker: str, retry_after: str | None,
            token_hint: str, forbidden_hint: str, missing_hint: str) -> SourceError | None:
    """A 401, 403 or 404 explained for the source (anything else by its status class)."""
    if status == 401:
        return AuthError(
            source, f"{what} was refused: {tracker} did not accept the token (HTTP 401)",
            hint=token_hint)
    if status == 403:
        return AuthError(source, f"{what} was forbidden (HTTP 403)", hint=forbidden_hint)
    if status == 404:
        return NotFound(source, f"{what} found nothing (HTTP 404)", hint=missing_hint)
    return error_for_status(source, status, retry_after=retry_after, what=what)
