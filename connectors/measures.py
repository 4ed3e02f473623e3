"""Reading a plan measure's values: ``(time, value)`` pairs from a CSV file, a SQL query or
a Prometheus server's HTTP API.

Plain readers, no Prefect and no store: the flow resolves the secrets, passes ``since`` (the
last stored value's time minus the measure's overlap) and upserts what comes back, so a
double run duplicates nothing. Every failure is a :class:`FatalSourceError` naming the
measure (its plan reference) and, for a file, the line.

    SourceError
    └── FatalSourceError   unreadable file, bad row, SQL error, Prometheus error answer
        └── AuthError      Prometheus refused the token (401/403)
    RetriableError         Prometheus unreachable or answering 5xx
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import URL

from stratmap.connectors.base import AuthError, FatalSourceError, RetriableError
from stratmap.models.records import MeasureValue

if TYPE_CHECKING:  # httpx is imported where a Prometheus measure is read: a run without one
    import httpx  # does not pay for it (its import is a tenth of a run that changed nothing)

QUERY_RANGE = "/api/v1/query_range"
"""The Prometheus HTTP API endpoint a measure reads (a range query, evaluated every step)."""
_SINCE = re.compile(r"(?<![:\w]):since\b")
MAX_POINTS = 11_000
"""Prometheus refuses a range query of more than 11,000 points: longer ranges are split."""


def parse_time(value: object, *, measure: str, where: str) -> datetime:
    """A time as a source gives it (ISO 8601 text, a date, a datetime, or Unix seconds), as
    aware UTC; a naive time is UTC."""
    try:
        if isinstance(value, datetime):
            moment = value
        elif isinstance(value, date):
            moment = datetime(value.year, value.month, value.day, tzinfo=UTC)
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            moment = datetime.fromtimestamp(float(value), UTC)
        elif isinstance(value, str):
            moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        else:
            raise ValueError(value)
    except (ValueError, OverflowError, OSError):
        raise FatalSourceError(measure, f"{where}: not a time: {value!r}",
                               hint="write ISO 8601, e.g. 2027-01-04 or 2027-01-04T09:00Z"
                               ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def parse_value(value: object, *, measure: str, where: str) -> float:
    try:
        number = float(value.strip() if isinstance(value, str) else value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise FatalSourceError(measure, f"{where}: not a number: {value!r}") from None
    if not math.isfinite(number):
        raise FatalSourceError(measure, f"{where}: not a finite number: {value!r}")
    return number


def _values(measure: str, rows: Iterable[tuple[object, object, str]],
            since: datetime | None) -> list[MeasureValue]:
    found = []
    for when, value, where in rows:
        moment = parse_time(when, measure=measure, where=where)
        if since is None or moment >= since:
            found.append(MeasureValue(measure=measure, at=moment,
                                      value=parse_value(value, measure=measure, where=where)))
    return sorted(found, key=lambda v: v.at)


def read_csv(measure: str, path: Path, *, since: datetime | None = None) -> list[MeasureValue]:
    """``time,value`` rows of a CSV file (a first row that is not a time is a header)."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            rows = [row for row in csv.reader(handle) if any(cell.strip() for cell in row)]
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise FatalSourceError(measure, f"cannot read {path}: {error}") from None
    numbered = list(enumerate(rows, start=1))
    if numbered:
        try:
            parse_time(numbered[0][1][0], measure=measure, where="")
        except FatalSourceError:
            numbered = numbered[1:]  # a header
    for line, row in numbered:
        if len(row) < 2:
            raise FatalSourceError(measure, f"{path}:{line}: expected time,value, not "
                                   f"{','.join(row)!r}")
    return _values(measure, ((row[0], row[1], f"{path}:{line}") for line, row in numbered),
                   since)


def read_sql(measure: str, url: str | URL, query: str, *,
             since: datetime | None = None) -> list[MeasureValue]:
    """The (time, value) rows a SQL query returns; ``:since`` is bound when the query uses
    it (the epoch on a first sync)."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import SQLAlchemyError
    from sqlalchemy.pool import NullPool

    statement = text(query)
    params: dict[str, Any] = {}
    if _SINCE.search(query):
        params["since"] = since or datetime(1970, 1, 1, tzinfo=UTC)
    try:
        engine = create_engine(url, poolclass=NullPool)
    except (SQLAlchemyError, ValueError, ImportError) as error:
        raise FatalSourceError(measure, f"cannot open the database: {type(error).__name__}",
                               hint="check the measure's url (a SQLAlchemy URL)") from None
    try:
        with engine.connect() as connection:
            rows = connection.execute(statement, params).fetchall()
    except SQLAlchemyError as error:
        # The driver's message may quote the URL; only the error class and the SQL's own
        # complaint (its first line) are kept.
        detail = str(getattr(error, "orig", error)).splitlines()[0][:300]
        raise FatalSourceError(measure, f"the query failed: {type(error).__name__}: {detail}",
                               hint="the query returns rows of (time, value)") from None
    finally:
        engine.dispose()
    for n, row in enumerate(rows, start=1):
        if len(row) < 2:
            raise FatalSourceError(measure, f"row {n} of the query has {len(row)} column(s); "
                                   "a measure's query returns (time, value)")
    return _values(measure, ((row[0], row[1], f"row {n}") for n, row in enumerate(rows, 1)),
                   since)


def read_prometheus(measure: str, client: httpx.Client, base_url: str, query: str, *,
                    start: datetime, end: datetime, step: timedelta,
                    token: str | None = None) -> list[MeasureValue]:
    """The values of a PromQL query from ``start`` to ``end`` every ``step``, through
    ``/api/v1/query_range`` (split into ranges of at most :data:`MAX_POINTS`)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    found: list[MeasureValue] = []
    seconds = max(step.total_seconds(), 1.0)
    chunk = timedelta(seconds=seconds * (MAX_POINTS - 1))
    cursor = start
    while cursor <= end:
        stop = min(end, cursor + chunk)
        params = {"query": query, "start": f"{cursor.timestamp():.3f}",
                  "end": f"{stop.timestamp():.3f}", "step": f"{seconds:g}s"}
        found.extend(_range(measure, client, base_url.rstrip("/") + QUERY_RANGE, params,
                            headers))
        cursor = stop + timedelta(seconds=seconds)
    return sorted({v.at: v for v in found}.values(), key=lambda v: v.at)


def _range(measure: str, client: httpx.Client, url: str, params: dict[str, str],
           headers: dict[str, str]) -> list[MeasureValue]:
    import httpx

    try:
        response = client.get(url, params=params, headers=headers)
    except httpx.HTTPError as error:
        raise RetriableError(measure, f"Prometheus unreachable: {type(error).__name__}") from None
    if response.status_code in (401, 403):
        raise AuthError(measure, f"Prometheus refused the request ({response.status_code})",
                        hint="check the measure's token")
    if response.status_code >= 500:
        raise RetriableError(measure, f"Prometheus answered {response.status_code}")
    try:
        body = response.json()
    except ValueError:
        raise FatalSourceError(measure, f"Prometheus answered {response.status_code} without "
                               "JSON", hint="is the url a Prometheus server's root?") from None
    if body.get("status") != "success":
        raise FatalSourceError(measure, f"Prometheus refused the query: "
                               f"{body.get('errorType')}: {body.get('error')}")
    data = body.get("data") or {}
    if data.get("resultType") != "matrix":
        raise FatalSourceError(measure, f"the query gives a {data.get('resultType')}, not a "
                               "range of values")
    series = data.get("result") or []
    if len(series) > 1:
        raise FatalSourceError(measure, f"the query returns {len(series)} series; a measure "
                               "is one number (aggregate it, e.g. sum(...))")
    pairs = series[0].get("values", []) if series else []
    return _values(measure, ((at, value, f"value {n}") for n, (at, value) in
                             enumerate(pairs, 1)), None)
