"""What the last run published: each entity's status and each active finding, with when it
was last alerted. The next run diffs against these marks to emit events and alerts for
changes only, and a failed alert stays pending until it is delivered.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import String, delete, select
from sqlalchemy.orm import Mapped, mapped_column

from stratmap.models.store import Store, upsert
from stratmap.models.tables import Base


class PlanMarkRow(Base):
    __tablename__ = "plan_marks"

    plan: Mapped[str] = mapped_column(String(200), primary_key=True)
    key: Mapped[str] = mapped_column(String(300), primary_key=True)
    value: Mapped[str] = mapped_column(String(100))
    since: Mapped[datetime]
    notified: Mapped[datetime | None]


@dataclass(frozen=True)
class Mark:
    """``key`` names the entity or finding; ``value`` is its status or finding kind."""

    key: str
    value: str
    since: datetime
    notified: datetime | None


def load_marks(store: Store, plan: str) -> dict[str, Mark]:
    with store.engine.connect() as connection:
        rows = connection.execute(select(PlanMarkRow).where(PlanMarkRow.plan == plan))
        return {r.key: Mark(key=r.key, value=r.value, since=r.since, notified=r.notified)
                for r in rows}


def save_marks(store: Store, plan: str, marks: dict[str, Mark]) -> None:
    """Replace the plan's marks with ``marks`` in one transaction."""
    with store.transaction() as connection:
        keys = set(marks)
        stored = set(connection.scalars(select(PlanMarkRow.key).where(PlanMarkRow.plan == plan)))
        gone = sorted(stored - keys)
        for start in range(0, len(gone), 500):
            connection.execute(delete(PlanMarkRow).where(
                PlanMarkRow.plan == plan, PlanMarkRow.key.in_(gone[start:start + 500])))
        upsert(connection, PlanMarkRow.__table__, [
            {"plan": plan, "key": m.key, "value": m.value, "since": m.since,
             "notified": m.notified} for m in marks.values()
        ], ["plan", "key"])
