"""The plan file (format version 1) as pydantic models.

These models are the contract of ``shared/plan-format.md``: the names are fixed. Field
descriptions become the JSON Schema editors use (``models/schemas/plan.schema.json``), so
they are written for the plan's author. Cross-references (people, sources, milestones,
cycles) are checked by :mod:`models.planfile`, which also maps every problem to
``FILE:LINE:COLUMN``.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    WithJsonSchema,
    field_validator,
)

SLUG = r"^[a-z0-9][a-z0-9_-]*$"
_DURATION = re.compile(r"^\s*(\d+)\s*([mhdw])\s*$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_MINUTES = {"m": 1, "h": 60, "d": 1440, "w": 10080}
MAX_DURATION_MINUTES = 5200 * 10080
"""The longest duration a plan may give (100 years): longer ones overflow date arithmetic."""
MIN_YEAR, MAX_YEAR = 1900, 9000
"""The years a plan's dates may fall in; dates near 1 or 9999 overflow in other zones."""
MAX_TITLE = 2000
"""The longest name or title, in characters; a whole document is not a title."""


def parse_duration(value: object) -> timedelta:
    """``<n>m``, ``<n>h``, ``<n>d`` or ``<n>w`` as a timedelta."""
    if isinstance(value, timedelta):
        return value
    if not isinstance(value, str):
        raise ValueError(f"a duration is written like 14d, 12h or 2w, not {value!r}")
    match = _DURATION.match(value)
    if not match:
        raise ValueError(f"a duration is written like 14d, 12h or 2w, not {value!r}")
    amount, unit = int(match.group(1)[:12]), match.group(2)
    if len(match.group(1)) > 12 or amount * _MINUTES[unit] > MAX_DURATION_MINUTES:
        raise ValueError(f"{value!r} is too long; a duration is at most 100 years (5200w)")
    return timedelta(**{_UNITS[unit]: amount})


def format_duration(value: timedelta) -> str:
    seconds = int(value.total_seconds())
    for suffix, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0 and seconds:
            return f"{seconds // size}{suffix}"
    return f"{seconds // 60}m"


Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": r"^\d+[mhdw]$",
            "description": "A duration: <n>m, <n>h, <n>d or <n>w (minutes, hours, days, weeks).",
            "examples": ["14d", "2w", "12h"],
        }
    ),
]

SECRET_REF = re.compile(r"^(env:[A-Za-z_][A-Za-z0-9_]*|block:[A-Za-z0-9_./-]+)$")


def _secret_ref(value: object) -> object:
    if isinstance(value, str) and not SECRET_REF.match(value):
        raise ValueError(
            "a secret is never written in the plan: use env:VARIABLE (an environment "
            "variable) or block:NAME (a Prefect credentials block)"
        )
    return value


SecretRef = Annotated[
    str,
    BeforeValidator(_secret_ref),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": SECRET_REF.pattern,
            "description": "env:VARIABLE or block:NAME; never the secret itself.",
            "examples": ["env:JIRA_API_TOKEN", "block:jira-northwind"],
        }
    ),
]

Slug = Annotated[str, Field(pattern=SLUG)]
Handle = Annotated[str, Field(min_length=1, description="A person's handle from `people`.")]
def _within_years(value: date) -> date:
    if not MIN_YEAR <= value.year <= MAX_YEAR:
        raise ValueError(f"{value.isoformat()} is out of range: plan dates fall in the years "
                         f"{MIN_YEAR}-{MAX_YEAR}")
    return value


When = Annotated[date | datetime, AfterValidator(_within_years)]
Title = Annotated[str, Field(max_length=MAX_TITLE)]


FIELD_HELP: dict[str, str] = {
    # The plan (its `version` is in _FIELD_HELP_BY_MODEL: selectors have one too)
    "name": "The plan's name, as reports and Prefect runs show it.",
    "vision": "Optional free text: what the plan is for.",
    "timezone": "IANA time zone (e.g. Europe/London, default UTC). A date without a time is "
                "midnight here, in the plan and on the command line; reports show times here.",
    "people": "Handle -> person. Handles are what owner, leader and feedback refer to.",
    "sources": "Source name -> tracker. Selectors name a source by this name.",
    "defaults": "Rules every goal and milestone takes unless it sets its own.",
    "goals": "The plan's goals, each broken into milestones.",
    "schedule": "When `stratmap serve` and the written deployments sync and report (cron, in "
                "the plan's time zone).",
    "alerts": "Who is notified of what, through which Prefect notification blocks.",
    "metrics": "Where each run publishes the plan's progress metrics, e.g. "
               "{pushgateway: http://pushgateway:9091}.",
    # People
    "email": "The person's email: also matches tracker accounts that show an email.",
    # Rules
    "stall_after": "No status change for longer than this makes an active milestone "
                   "`stalled` (e.g. 14d).",
    "feedback": "The senior feedback expected: who must comment, and how often, e.g. "
                "{from: seniors, every: 30d}. On a goal it also judges the goal as a whole.",
    "single_owner_share": "The share of a goal's open assigned items (0-1) one person may "
                          "hold before it is a `single_point_of_failure` (e.g. 0.8).",
    "inactive_after": "An owner without any status change or comment for longer than this is "
                      "an `inactive_owner` (e.g. 14d).",
    "progress": "items (done items / items), points (story points) or measure (how far its "
                "measures have come from baseline to target).",
    "measures": "Numbers over time that say how far this has come: each with a source "
                "(csv, sql or prometheus), baseline, target and direction.",
    "baseline": "Where the number started: {value, date}.",
    "target": "Where it must be, and by when: {value, date}.",
    # Goals and milestones
    "id": "A lowercase slug, unique per plan (goals) or per goal (milestones); a milestone "
          "is referred to as goal.milestone.",
    "title": "What the goal or milestone is, in words.",
    "owner": "The handle of the person who answers for it; findings are addressed to them.",
    "weight": "How much it counts in its parent's progress (default 1).",
    "milestones": "The goal's milestones: smaller targets with owners and dates.",
    "start": "When work starts (a date is midnight in the plan's time zone); before it the "
             "milestone is not_started.",
    "due": "When it is due (a date is midnight in the plan's time zone); past it and not "
           "done, the milestone is `overdue`.",
    "work": "Which tracker items belong here: a list of selectors, e.g. "
            "[{source: jira, epic: WEB-1}]. A selector that selects nothing is a finding.",
    # Sources
    "kind": "The tracker: jira, github, gitlab, linear, redmine, csv or jsonl.",
    "url": "The tracker's base URL.",
    "token": "env:VARIABLE or block:NAME; never the secret itself.",
    "page_size": "Items per request.",
    "concurrency": "Requests at the same time.",
    # Selectors
    "source": "The name of a source under `sources:`.",
    "epic": "An epic's key (Jira) or iid (GitLab): its children. The epic itself counts for "
            "comments, not progress.",
    "jql": "A JQL query (Jira), within the source's scope.",
    "keys": "Tracker keys, e.g. [WEB-1, WEB-2].",
    "labels": "Items with any of these labels.",
    "milestone": "A GitHub or GitLab milestone's title (a Jira fixVersion in an export).",
    "project": "A Linear project's name.",
    "version": "A Redmine version's name.",
    "tracker": "A Redmine tracker's name (Bug, Feature...).",
    "query": "A saved Redmine query's id.",
    # Feedback
    "from": "Who must comment: `seniors` (everyone with senior: true) or a list of handles.",
    "every": "How often, at least (e.g. 30d).",
    # Schedule and alerts
    "sync": "Cron for the tracking run (default every 30 minutes).",
    "report": "Cron for the report run (default Monday 09:00).",
    "channels": "Channel name -> block:NAME of a Prefect notification block.",
    "routes": "Which findings or statuses go to whom through which channels.",
    "renotify_after": "How long before the same alert is sent again.",
    "digest": "One message per channel and run instead of one per alert.",
    "on": "Finding kinds or statuses that trigger the route.",
    "notify": "owner, leader, or people's handles.",
    "via": "Channel names from alerts.channels.",
}
"""Editor hover help for each plan field (the JSON Schema's descriptions), for the fields
whose own ``Field(description=...)`` does not say it."""
_FIELD_HELP_BY_MODEL: dict[tuple[str, str], str] = {
    ("Person", "name"): "The person's name, as reports show them.",
    ("Plan", "version"): "The plan format's version: 1.",
    ("CsvMeasureSource", "kind"): "csv: a file of time,value rows.",
    ("SqlMeasureSource", "kind"): "sql: a query over a SQLAlchemy URL.",
    ("PrometheusMeasureSource", "kind"): "prometheus: a PromQL query.",
    ("MeasurePoint", "value"): "The number.",
    ("MeasurePoint", "date"): "When (a date is midnight in the plan's time zone).",
    ("Measure", "title"): "What the number is, in words.",
}


def _describe(schema: dict[str, Any], model: type[BaseModel]) -> None:
    """Give every property of ``model``'s schema a description (editor hover help)."""
    for name, prop in schema.get("properties", {}).items():
        if "description" not in prop:
            text = _FIELD_HELP_BY_MODEL.get((model.__name__, name)) or FIELD_HELP.get(name)
            if text:
                prop["description"] = text


class _Model(BaseModel):
    model_config = ConfigDict(
        frozen=True, extra="forbid", coerce_numbers_to_str=True, populate_by_name=True,
        allow_inf_nan=False, json_schema_extra=_describe,
    )


class Person(_Model):
    """A person the plan names: an owner, a senior member, a contributor."""

    name: str | None = None
    email: str | None = None
    senior: bool = Field(False, description="Counts for `feedback: {from: seniors}`.")
    accounts: dict[str, str] = Field(
        default_factory=dict,
        description=(
            "Tracker accounts by source name or source kind: a Jira Cloud accountId, a Jira "
            "Data Center username, a GitHub login, a Redmine login or id."
        ),
    )


class _Source(_Model):
    overlap: Duration | None = Field(
        None,
        description="How far each incremental sync re-reads before the last watermark.",
    )


class JiraSource(_Source):
    """Jira Cloud (email + API token) or Data Center (personal access token)."""

    kind: Literal["jira"]
    url: str
    email: str | None = Field(
        None, description="Cloud basic auth; leave out for a Data Center personal access token."
    )
    token: SecretRef
    scope: str = Field(description="JQL: everything this source syncs.")
    deployment: Literal["auto", "cloud", "datacenter"] = Field(
        "auto", description="Detected from serverInfo unless set."
    )
    page_size: int = Field(100, ge=1, le=5000)
    concurrency: int = Field(4, ge=1, le=32)
    timeout: float = Field(30.0, gt=0, le=3600,
                           description="Seconds per request (connect and read).")
    reconcile_every: Duration | None = Field(
        None, description="How often to look for deleted and moved issues (default 1d)."
    )
    points_field: str | None = Field(
        None, description="Story points field id; discovered from /field when left out."
    )
    declared_status_field: str | None = Field(
        None, min_length=1, max_length=200,
        description="A status or health field of the epics, by id (customfield_10050) or "
                    "name (Health): its value declares the milestone whose `epic:` selects "
                    "that epic on track or at risk, by whoever set it and when (from the "
                    "changelog). A declaration the evidence contradicts is `optimistic_status`.",
    )
    declared_status_values: dict[
        Annotated[str, Field(min_length=1, max_length=200)], Literal["on_track", "at_risk"]
    ] | None = Field(
        None, max_length=100,
        description="What each value of declared_status_field declares (any case): on_track "
                    "or at_risk. Default: On Track, Green -> on_track; At Risk, Amber, Red, "
                    "Off Track -> at_risk. Any other value declares nothing.",
    )


class GithubSource(_Source):
    kind: Literal["github"]
    repo: str = Field(pattern=r"^[^/\s]+/[^/\s]+$", description="owner/name")
    token: SecretRef | None = None
    url: str = Field(
        "https://api.github.com",
        description="The REST API's root; GitHub Enterprise Server: https://HOST/api/v3.",
    )
    in_progress_labels: list[str] = Field(
        default_factory=list,
        description=(
            "Labels that mark an open issue as in progress (any case). Adding or removing "
            "one is a status change; GitHub itself only has open and closed."
        ),
    )
    page_size: int = Field(100, ge=1, le=100)
    concurrency: int = Field(
        1, ge=1, le=8,
        description="Issues read at once; GitHub asks for serial requests, so keep 1.",
    )
    timeout: float = Field(30.0, gt=0, le=3600,
                           description="Seconds per request (connect and read).")


class GitlabSource(_Source):
    kind: Literal["gitlab"]
    project: str = Field(description="Project path (group/name) or numeric id.")
    token: SecretRef | None = None
    url: str = Field("https://gitlab.com", description="The GitLab instance's root URL.")
    in_progress_labels: list[str] = Field(
        default_factory=list,
        description=(
            "Labels that mark an open issue as in progress (any case), e.g. "
            "workflow::doing. Adding or removing one is a status change."
        ),
    )
    page_size: int = Field(100, ge=1, le=100)
    concurrency: int = Field(4, ge=1, le=16, description="Issues read at once.")
    timeout: float = Field(30.0, gt=0, le=3600,
                           description="Seconds per request (connect and read).")


class LinearSource(_Source):
    """Linear's GraphQL API: a workspace's issues, or one team's."""

    kind: Literal["linear"]
    team: str | None = Field(
        None,
        description="A team key (ENG, as in ENG-123): only that team's issues. Every team the "
                    "key can see if left out.",
    )
    token: SecretRef = Field(
        description="A personal API key (Settings -> Account -> Security & access), or an "
                    "OAuth2 access token with `auth: oauth`.",
    )
    auth: Literal["api_key", "oauth"] = Field(
        "api_key",
        description="api_key: sent as `Authorization: <key>`; oauth: an OAuth2 access token, "
                    "sent as `Authorization: Bearer <token>`.",
    )
    url: str = Field(
        "https://api.linear.app/graphql", description="The GraphQL endpoint."
    )
    page_size: int = Field(
        25, ge=1, le=250,
        description="Issues per request. Each issue brings its first `nested_page_size` "
                    "history entries and comments, and Linear refuses a query that is too "
                    "complex: raise one only by lowering the other.",
    )
    nested_page_size: int = Field(
        25, ge=1, le=250,
        description="History entries and comments read with each issue; an issue with more "
                    "is completed by further requests.",
    )
    concurrency: int = Field(
        2, ge=1, le=8, description="Issues whose longer history is completed at the same time."
    )
    timeout: float = Field(30.0, gt=0, le=3600,
                           description="Seconds per request (connect and read).")


class RedmineSource(_Source):
    kind: Literal["redmine"]
    url: str
    project: str | None = Field(
        None,
        description="Project identifier (with its subprojects, as Redmine lists them); all "
                    "projects the key can see if left out.",
    )
    token: SecretRef | None = Field(
        None,
        description="The API key (X-Redmine-API-Key; My account -> API access key). With an "
                    "administrator's key people are matched by login, else by numeric user id.",
    )
    page_size: int = Field(100, ge=1, le=100, description="Issues per request (Redmine's limit "
                                                           "is 100).")
    concurrency: int = Field(
        4, ge=1, le=16, description="Issues whose journals are read at the same time."
    )
    timeout: float = Field(30.0, gt=0, le=3600,
                           description="Seconds per request (connect and read).")


class AzureDevopsSource(_Source):
    """Azure DevOps Boards (Services or Server): one project's work items, over REST 7.1."""

    kind: Literal["azure_devops"]
    url: str = Field(
        description="The organization's root: https://dev.azure.com/ORG (Azure DevOps Server: "
                    "https://HOST/tfs/COLLECTION).",
    )
    project: str = Field(min_length=1, description="The project's name (or id).")
    token: SecretRef = Field(
        description="A personal access token with Work Items (Read; Read & write for "
                    "`stratmap push --apply`), sent as basic auth with an empty user name.",
    )
    area_path: str | None = Field(
        None,
        description="Only work items under this area path (PROJECT\\TEAM); the whole "
                    "project if left out.",
    )
    scope: str | None = Field(
        None,
        description="A WIQL condition ANDed with the project (and area path): everything "
                    "this source syncs, e.g. [System.WorkItemType] <> 'Test Case'.",
    )
    page_size: int = Field(200, ge=1, le=200,
                           description="Work items per workitemsbatch request (at most 200).")
    concurrency: int = Field(4, ge=1, le=16,
                             description="Work items whose updates and comments are read at "
                                         "once.")
    timeout: float = Field(30.0, gt=0, le=3600,
                           description="Seconds per request (connect and read).")


class ExportSource(_Source):
    """A tracker export on disk: CSV files or JSON lines (see README, 'Export files')."""

    kind: Literal["csv", "jsonl"]
    path: str = Field(description="The export's folder or file, relative to the plan file.")
    status_done: list[str] = Field(
        default_factory=list, description="Extra status names that count as done."
    )


Source = Annotated[
    JiraSource | GithubSource | GitlabSource | LinearSource | RedmineSource
    | AzureDevopsSource | ExportSource,
    Field(discriminator="kind"),
]

SELECTOR_KINDS: dict[str, frozenset[str]] = {
    "jira": frozenset({"epic", "jql", "keys", "labels"}),
    "github": frozenset({"milestone", "labels"}),
    "gitlab": frozenset({"milestone", "labels", "epic"}),
    "linear": frozenset({"project", "labels"}),
    "redmine": frozenset({"version", "tracker", "query"}),
    "azure_devops": frozenset({"area_path", "iteration_path", "tags", "parent", "wiql"}),
    "csv": frozenset(),  # column: value pairs
    "jsonl": frozenset({"epic", "keys", "labels", "milestone"}),
}


class Selector(_Model):
    """Which tracker items belong to a milestone: a source and one way of choosing.

    CSV sources select by ``column: value`` pairs (all must match).
    """

    model_config = ConfigDict(frozen=True, extra="allow", coerce_numbers_to_str=True,
                              json_schema_extra=_describe)

    source: str
    epic: str | None = None
    jql: str | None = None
    keys: list[str] | None = None
    labels: list[str] | None = None
    milestone: str | None = None
    project: str | None = None
    version: str | None = None
    tracker: str | None = None
    query: str | None = None
    area_path: str | None = Field(
        None, description="Azure DevOps: work items under this area path (PROJECT\\TEAM).")
    iteration_path: str | None = Field(
        None, description="Azure DevOps: work items under this iteration path "
                          "(PROJECT\\Sprint 4).")
    tags: list[str] | None = Field(None, description="Azure DevOps: work items with any of "
                                                     "these tags.")
    parent: str | None = Field(
        None, description="Azure DevOps: the children of this Epic or Feature (its id).")
    wiql: str | None = Field(
        None, description="Azure DevOps: a WIQL condition, ANDed with the source's scope.")

    def criteria(self) -> dict[str, Any]:
        """The selector's choosing part: everything but ``source``, unset fields left out."""
        data = self.model_dump(exclude_none=True)
        data.pop("source")
        return data

    def key(self) -> str:
        """A stable digest of the selector, naming its tracker-resolved selection."""
        parts = [f"{name}={value!r}" for name, value in sorted(self.criteria().items())]
        return hashlib.sha256(";".join(parts).encode()).hexdigest()


class Feedback(_Model):
    """Who must comment, and how often."""

    from_: Literal["seniors"] | list[Handle] = Field(alias="from")
    every: Duration


MEASURE_KINDS = ("csv", "prometheus", "sql")
"""Where a measure's values come from (``measures: [{source: {kind: ...}}]``)."""


class CsvMeasureSource(_Model):
    """A CSV file of ``time,value`` rows (a header row is allowed), relative to the plan."""

    kind: Literal["csv"]
    path: str = Field(min_length=1, description="The CSV file, relative to the plan file: "
                                                "rows of time,value (ISO 8601, number).")


class SqlMeasureSource(_Model):
    """A SQL query, over a SQLAlchemy URL, returning rows of (time, value)."""

    kind: Literal["sql"]
    url: str = Field(
        min_length=1,
        description="A SQLAlchemy URL without a password (postgresql://reader@db/sales), or "
                    "env:VARIABLE / block:NAME holding the whole URL.",
    )
    password: SecretRef | None = Field(
        None, description="The database password: env:VARIABLE or block:NAME, never literal.")
    query: str = Field(
        min_length=1,
        description="SQL returning rows of (time, value); it may use :since, the last value's "
                    "time minus the overlap, to read only what is new.",
    )


class PrometheusMeasureSource(_Model):
    """A PromQL query against a Prometheus HTTP API (``/api/v1/query_range``)."""

    kind: Literal["prometheus"]
    url: str = Field(min_length=1, description="The Prometheus server's root URL.")
    query: str = Field(min_length=1, description="A PromQL expression returning one series.")
    step: Duration = Field(timedelta(days=1), description="The resolution of the values read "
                                                           "(default 1d).")
    token: SecretRef | None = Field(None, description="A bearer token: env:VARIABLE or "
                                                      "block:NAME.")


MeasureSource = Annotated[
    CsvMeasureSource | SqlMeasureSource | PrometheusMeasureSource,
    Field(discriminator="kind"),
]


class MeasurePoint(_Model):
    """A value at a date: a measure's baseline or target."""

    value: float
    date: When


class Measure(_Model):
    """A number over time that says how far a goal or milestone has come."""

    id: Slug
    title: Title | None = None
    source: MeasureSource = Field(
        description="Where the values come from: {kind: csv, path: ...}, {kind: sql, url: ..., "
                    "query: ...} or {kind: prometheus, url: ..., query: ...}.")
    baseline: MeasurePoint = Field(description="Where the number started: {value, date}.")
    target: MeasurePoint = Field(description="Where it must be, and by when: {value, date}.")
    direction: Literal["up", "down"] = Field(
        "up", description="up: higher is better (revenue); down: lower is better (churn).")
    unit: str | None = Field(None, max_length=40, description="Shown after values, e.g. EUR.")
    lead: bool = Field(
        False, description="true for a lead measure (the activity that predicts the result); "
                           "the default is a lag measure (the result itself).")
    every: Duration | None = Field(
        None, description="A new value is expected at least this often; longer without one "
                          "is `stale_measure`.")
    window: Duration = Field(
        timedelta(days=90), description="How far back the trend for `off_target` is fitted "
                                        "(default 90d).")
    overlap: Duration | None = Field(
        None, description="How far each sync re-reads before the last value (default 7d).")


class Rules(_Model):
    stall_after: Duration | None = None
    feedback: Feedback | None = None
    single_owner_share: float | None = Field(None, gt=0, le=1)
    inactive_after: Duration | None = None
    progress: Literal["items", "points", "measure"] | None = None
    forecast_window: Duration | None = Field(
        None, description="How far back the completion rate for `slipping` is measured."
    )
    imbalance_factor: float | None = Field(
        None, gt=1, le=1000,
        description="A goal whose share of recent plan activity exceeds its weight's share "
                    "by more than this factor, while another goal starves (under half its "
                    "weight's share), is a `goal_imbalance` (default 2). Set on a goal or "
                    "in defaults.",
    )
    balance_window: Duration | None = Field(
        None, description="How far back activity is counted for `goal_imbalance` (default 28d); "
                          "one window for the whole plan: the defaults' value applies."
    )
    disengaged_after: Duration | None = Field(
        None,
        description="A person holding open plan items or owning an active milestone with no "
                    "status change or comment on any plan item for longer than this is "
                    "`disengaged` (default 21d); the defaults' value is also the report's "
                    "engagement window.",
    )
    max_active_milestones: int | None = Field(
        None, ge=1, le=10_000,
        description="Owning more active milestones than this makes a person an "
                    "`overloaded_owner` (default 3).",
    )
    max_slips: int | None = Field(
        None, ge=0, le=10_000,
        description="A milestone whose due date moved later more often than this is "
                    "`date_slipped` (default 2).",
    )
    max_slip_total: Duration | None = Field(
        None,
        description="A milestone whose due date moved later by more than this in all is "
                    "`date_slipped` (default 30d).",
    )
    on_track_phrases: list[Annotated[str, Field(min_length=1, max_length=200)]] | None = Field(
        None, max_length=100,
        description="Words by which an owner's comment declares a milestone on track (any "
                    "case, whole words), e.g. [on track, green]. A declaration the evidence "
                    "contradicts (stalled, overdue, slipping) is `optimistic_status`.",
    )
    at_risk_phrases: list[Annotated[str, Field(min_length=1, max_length=200)]] | None = Field(
        None, max_length=100,
        description="Words by which an owner's comment declares a milestone at risk, e.g. "
                    "[at risk, blocked]; they win over on_track_phrases in one comment. A "
                    "declaration the evidence does not show is `optimistic_status` too.",
    )
    max_open_items: int | None = Field(
        None, ge=1, le=1_000_000,
        description="Holding more open plan items than this makes a person an "
                    "`overloaded_owner` (no limit unless set).",
    )


class DueMove(_Model):
    """An earlier due date of a milestone, and when it was moved away from it."""

    due: When = Field(description="The due date the milestone had.")
    moved: When = Field(description="When it was moved to the next entry's due date (the "
                                    "last entry: to the milestone's `due`).")


class Milestone(Rules):
    id: Slug
    title: Title
    owner: Handle | None = None
    start: When | None = None
    due: When | None = None
    due_history: list[DueMove] = Field(
        default_factory=list, max_length=1000,
        description="Earlier due dates, oldest first, each with when it was moved: the slip "
                    "log before stratmap recorded this plan (each run records later changes "
                    "itself). Entries moved after the first recorded due date are ignored.",
    )
    weight: float = Field(1.0, gt=0, le=1_000_000)
    depends_on: list[str] = Field(
        default_factory=list, description="Other milestones, as goal.milestone."
    )
    work: list[Selector] = Field(default_factory=list)
    measures: list[Measure] = Field(default_factory=list)


class Goal(Rules):
    id: Slug
    title: Title
    owner: Handle | None = None
    weight: float = Field(1.0, gt=0, le=1_000_000)
    milestones: list[Milestone] = Field(default_factory=list)
    measures: list[Measure] = Field(default_factory=list)


class Schedule(_Model):
    sync: str = "*/30 * * * *"
    report: str = "0 9 * * MON"


class AlertRoute(_Model):
    on: list[str]
    notify: list[Literal["owner", "leader"] | Handle] = Field(default_factory=lambda: ["leader"])
    via: list[str]


class Alerts(_Model):
    channels: dict[str, str] = Field(default_factory=dict)
    routes: list[AlertRoute] = Field(default_factory=list)
    renotify_after: Duration | None = None
    digest: bool = False


class MetricsOptions(_Model):
    """Where each run publishes the plan's progress metrics, beyond the store's views."""

    pushgateway: str | None = Field(
        None, pattern=r"^https?://[^\s@]+$",
        description="A Prometheus Pushgateway's URL (no credentials in it): each run pushes "
                    "the plan's metrics there (job stratmap, grouped by plan).")


DEFAULT_RULES = Rules(
    stall_after=timedelta(days=14),
    feedback=None,
    single_owner_share=0.8,
    inactive_after=timedelta(days=14),
    progress="items",
    forecast_window=timedelta(days=28),
    imbalance_factor=2.0,
    balance_window=timedelta(days=28),
    disengaged_after=timedelta(days=21),
    max_active_milestones=3,
    max_open_items=None,
    max_slips=2,
    max_slip_total=timedelta(days=30),
    on_track_phrases=["on track", "green", "good progress", "going well",
                      "ahead of schedule"],
    at_risk_phrases=["at risk", "off track", "not on track", "behind schedule", "blocked",
                     "delayed", "red"],
)


class Plan(_Model):
    """A strategic implementation plan."""

    version: Literal[1]
    name: Title
    vision: Annotated[str, Field(max_length=20 * MAX_TITLE)] | None = None
    leader: Handle
    timezone: str = "UTC"
    people: dict[Slug, Person] = Field(default_factory=dict)
    sources: dict[Slug, Source] = Field(default_factory=dict)
    defaults: Rules = Field(default_factory=Rules)
    goals: list[Goal] = Field(default_factory=list)
    schedule: Schedule | None = None
    alerts: Alerts | None = None
    metrics: MetricsOptions | None = None

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            if len(value) > 64:  # the longest IANA name is 32 characters
                raise ValueError("too long")
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError, OSError) as error:
            raise ValueError(f"unknown time zone {value!r} (use an IANA name)") from error
        return value

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def moment(self, value: When) -> datetime:
        """A plan date or datetime as aware UTC: a bare date is midnight in the plan's zone."""
        if isinstance(value, datetime):
            aware = value if value.tzinfo else value.replace(tzinfo=self.tz)
        else:
            aware = datetime.combine(value, time(0, 0), tzinfo=self.tz)
        return aware.astimezone(UTC)

    def rules_for(self, goal: Goal, milestone: Milestone | None = None) -> Rules:
        """The cascade: milestone, else goal, else defaults, else built-in defaults."""
        layers = [layer for layer in (milestone, goal, self.defaults, DEFAULT_RULES) if layer]
        values: dict[str, Any] = {}
        for name in Rules.model_fields:
            values[name] = next(
                (getattr(layer, name) for layer in layers if getattr(layer, name) is not None),
                None,
            )
        return Rules.model_validate(values)

    def seniors(self) -> list[str]:
        return [handle for handle, person in self.people.items() if person.senior]

    def dues(self) -> dict[str, str | None]:
        """Each milestone's due date as the plan writes it (ISO), by ``goal.milestone``."""
        return {f"{g.id}.{m.id}": m.due.isoformat() if m.due else None
                for g in self.goals for m in g.milestones}

    def milestone_ids(self) -> dict[str, tuple[Goal, Milestone]]:
        return {f"{g.id}.{m.id}": (g, m) for g in self.goals for m in g.milestones}

    def measure_ids(self) -> dict[str, tuple[Goal, Milestone | None, Measure]]:
        """Every measure by its reference: goal.measure or goal.milestone.measure."""
        found: dict[str, tuple[Goal, Milestone | None, Measure]] = {}
        for goal in self.goals:
            for measure in goal.measures:
                found[f"{goal.id}.{measure.id}"] = (goal, None, measure)
            for milestone in goal.milestones:
                for measure in milestone.measures:
                    found[f"{goal.id}.{milestone.id}.{measure.id}"] = (goal, milestone, measure)
        return found


def as_utc(value: datetime) -> datetime:
    return value.astimezone(UTC)
