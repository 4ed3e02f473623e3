"""What the last run published: each entity's status and each active finding, with when it
was last alerted. The next run diffs against these marks to emit events and alerts for
changes only, and a failed alert stays pending until it is delivered. The store keeps them
(``models.store.load_marks``/``save_marks``, table ``plan_marks`` in ``models.tables``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Mark:
    """``key`` names the entity or finding; ``value`` is its status or finding kind."""

    key: str
    value: str
    since: datetime
    notified: datetime | None
