"""The report: what stratmap answers about a plan (``--json``, ``--format json``).

The names are the contract of ``shared/plan-format.md``; fields beyond it are additions
(``title``, ``owner``, ``forecast``, ``people``, ``unknown_people``...). The JSON Schema in
``models/schemas/report.schema.json`` is generated from these models.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer

Moment = Annotated[
    datetime,
    PlainSerializer(lambda value: value.isoformat(), return_type=str, when_used="json"),
]
"""An aware datetime, written as ISO 8601 with its offset (``+00:00``)."""


class Kind(StrEnum):
    STALLED = "stalled"
    OVERDUE = "overdue"
    SLIPPING = "slipping"
    MISSING_FEEDBACK = "missing_feedback"
    SINGLE_POINT_OF_FAILURE = "single_point_of_failure"
    UNOWNED = "unowned"
    INACTIVE_OWNER = "inactive_owner"
    UNMAPPED_WORK = "unmapped_work"
    EMPTY_SELECTOR = "empty_selector"
    OFF_TARGET = "off_target"
    STALE_MEASURE = "stale_measure"
    GOAL_IMBALANCE = "goal_imbalance"
    DISENGAGED = "disengaged"
    OVERLOADED_OWNER = "overloaded_owner"
    DATE_SLIPPED = "date_slipped"
    OPTIMISTIC_STATUS = "optimistic_status"
    BLOCKED_BY_OTHER_TEAM = "blocked_by_other_team"


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


class Status(StrEnum):
    DONE = "done"
    NOT_STARTED = "not_started"
    ON_TRACK = "on_track"
    AT_RISK = "at_risk"
    OFF_TRACK = "off_track"


AT_RISK_KINDS = frozenset(
    {Kind.STALLED, Kind.SLIPPING, Kind.MISSING_FEEDBACK, Kind.SINGLE_POINT_OF_FAILURE,
     Kind.INACTIVE_OWNER, Kind.EMPTY_SELECTOR}
) | {Kind.OFF_TARGET, Kind.STALE_MEASURE}
"""A missed target (an off_target past its date, critical) makes a scope off_track."""

ORGANISATION_KINDS = frozenset({Kind.GOAL_IMBALANCE, Kind.DISENGAGED, Kind.OVERLOADED_OWNER,
                                Kind.DATE_SLIPPED, Kind.OPTIMISTIC_STATUS,
                                Kind.BLOCKED_BY_OTHER_TEAM})
"""Findings about the organisation (people and the balance of goals), not one milestone's
items: they never change a status, and the history's weekly counts leave them out."""


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Finding(_Out):
    kind: Kind
    severity: Severity
    goal: str | None
    milestone: str | None = Field(description="goal.milestone, or null for a goal-level finding")
    person: str | None = Field(description=(
        "Who must act, as a plan handle: the milestone's owner, else the goal's owner, else "
        "the leader (the expected reviewer for missing_feedback with one, the inactive owner, "
        "a known single point of failure). Set on every finding of a plan that names a "
        "leader."))
    item: str | None = Field(description=(
        "The tracker item the finding is about (a key such as WEB-9 or site#42); null for "
        "milestone- and goal-level findings, whose items are in `evidence`."))
    message: str
    evidence: dict[str, Any] = Field(default_factory=dict)


class ItemCounts(_Out):
    total: int
    done: int
    points_total: float | None = None
    points_done: float | None = None


class MeasurePointReport(_Out):
    value: float
    date: date | datetime


class MeasureReport(_Out):
    """A measure as judged at ``as_of``: where it stands, its trend and its values."""

    id: str = Field(description="goal.measure or goal.milestone.measure")
    title: str | None
    unit: str | None
    direction: str = Field(description="up or down")
    lead: bool
    baseline: MeasurePointReport
    target: MeasurePointReport
    last_value: float | None
    last_at: Moment | None
    progress: float = Field(description="How far from baseline to target the last value is "
                                        "(0-1, clamped)")
    rate: float | None = Field(description="The trend over the recent window, per day "
                                           "(least squares); null with too few values")
    required_rate: float | None = Field(description="The rate per day that reaches the "
                                                    "target on its date from the last value")
    forecast: float | None = Field(description="The trend's value on the target date")
    values: list[tuple[Moment, float]] = Field(
        default_factory=list, description="Every stored value up to as_of: [time, value]")


class MilestoneReport(_Out):
    id: str = Field(description="goal.milestone")
    title: str
    owner: str | None
    status: Status
    progress: float
    start: date | datetime | None
    due: date | datetime | None
    items: ItemCounts
    last_movement: Moment | None
    forecast: Moment | None = Field(
        None, description="Forecast finish from the recent completion rate, where known."
    )
    depends_on: list[str] = Field(default_factory=list)
    measures: list[MeasureReport] = Field(default_factory=list)


class GoalReport(_Out):
    id: str
    title: str
    owner: str | None
    weight: float
    status: Status
    progress: float
    milestones: list[MilestoneReport]
    measures: list[MeasureReport] = Field(default_factory=list)


class PersonReport(_Out):
    handle: str
    name: str | None
    senior: bool
    owns: list[str] = Field(description="goal and milestone ids this person owns")
    open_items: int = Field(description="open items assigned to this person in the plan")
    last_activity: Moment | None


class UnknownPerson(_Out):
    source: str
    account: str
    display_name: str | None
    last_activity: Moment | None


class Engagement(_Out):
    """How many of the plan's people acted on plan items lately (see ``disengaged``)."""

    window: str = Field(description="the window, as the plan writes durations (21d)")
    people: int = Field(description="people of the plan")
    active: int = Field(description="people with a status change or comment on a plan item "
                                    "within the window")
    share: float = Field(description="active / people (0 for a plan without people)")
    quiet: list[str] = Field(default_factory=list,
                             description="handles of the people not active in the window")


class GoalShare(_Out):
    goal: str
    activity: int = Field(description="status changes and comments on the goal's items")
    share: float = Field(description="the goal's part of all the plan's activity (0-1)")
    weight_share: float = Field(description="the goal's part of the active goals' weight")


class Balance(_Out):
    """How the plan's recent activity falls across its active goals (see goal_imbalance)."""

    window: str = Field(description="how far back activity is counted (balance_window)")
    total: int = Field(description="status changes and comments on plan items in the window")
    goals: list[GoalShare]


class DueDateChange(_Out):
    """One entry of the slip log: a milestone's due date changed."""

    milestone: str = Field(description="goal.milestone")
    at: Moment = Field(description="when the change was seen (the run that read it)")
    where: str = Field(description="plan (the plan file); source:container for a tracker's "
                                   "epic or milestone (jira:WEB-1, site:v2 launch); "
                                   "push:source:container for stratmap push writing the "
                                   "plan's date there")
    from_due: str | None = Field(description="the due date before (null: where the log "
                                             "starts)")
    to_due: str | None = Field(description="the due date after (null: the date was removed)")
    slip_days: float | None = Field(
        description="how many days later the new date is (negative: earlier); null where a "
                    "date is missing, and for a push (the plan's change it carries counts "
                    "where the plan changed)")


class UnmappedWeek(_Out):
    """One week of a source's activity: how much of it fell outside the plan."""

    start: Moment = Field(description="the week's start (exclusive)")
    end: Moment = Field(description="the week's end (inclusive; the last week ends at as_of)")
    activity: int = Field(description="status changes and comments on the source's items")
    unmapped: int = Field(description="those on items no milestone selects")
    share: float | None = Field(description="unmapped / activity; null for a week without "
                                            "activity")


class UnmappedShare(_Out):
    """A source's (a team's tracker's) activity outside the plan, week by week."""

    source: str
    activity: int = Field(description="status changes and comments in all the weeks")
    unmapped: int = Field(description="those on items no milestone selects")
    share: float | None = Field(description="unmapped / activity over all the weeks")
    weeks: list[UnmappedWeek] = Field(description="oldest first, the last ending at as_of")


class StaleSource(_Out):
    """A source this run could not sync: what the report says of it is judged from what the
    store held before (nothing, if it never synced)."""

    source: str
    error: str = Field(description="what went wrong and what to check")
    last_synced: Moment | None = Field(
        description="when the source last finished a sync; null: it never did")


class Report(_Out):
    plan: str
    as_of: Moment
    timezone: str = Field(
        "UTC", description="The plan's time zone (IANA name): reports show times in it.")
    leader: str
    progress: float
    status: Status
    goals: list[GoalReport]
    findings: list[Finding]
    people: list[PersonReport] = Field(default_factory=list)
    unknown_people: list[UnknownPerson] = Field(default_factory=list)
    flagged_items: list[str] = Field(
        default_factory=list,
        description="Items stored with payload problems (source:key), judged as they are.",
    )
    engagement: Engagement | None = Field(
        None, description="The plan-level engagement figure: people active on plan items "
                          "within the defaults' disengaged_after.")
    balance: Balance | None = Field(
        None, description="The active goals' shares of recent activity against their weights "
                          "(null with fewer than two active goals).")
    slip_log: list[DueDateChange] = Field(
        default_factory=list,
        description="Every recorded change of a milestone's due date, by milestone, oldest "
                    "first (see date_slipped).")
    unmapped_share: list[UnmappedShare] = Field(
        default_factory=list,
        description="Each source's share of activity on items no milestone selects, week by "
                    "week over the last 12 weeks (sources with activity in them).")
    stale_sources: list[StaleSource] = Field(
        default_factory=list,
        description="Sources this run could not sync: the report is stale for them.",
    )

    def to_json(self) -> str:
        """The canonical JSON text: stable key order, UTC offsets, two-space indent."""
        return self.model_dump_json(indent=2) + "\n"
