"""measure values and the dashboard views (issue 16)

``measure_values`` keeps the history of each plan measure's numbers. The views are the
documented, stable SQL for dashboards (Grafana, Metabase, Superset, dbt; columns in the
README): ``stratmap_goal_daily`` and ``stratmap_milestone_daily`` (the last snapshot of each
goal and milestone per UTC day), ``stratmap_findings`` (findings per entity, kind and run)
and ``stratmap_measures`` (every measure value).

Revision ID: 0007_measures
Revises: 0006
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_measures"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "measure_values",
        sa.Column("plan", sa.String(length=200), nullable=False),
        sa.Column("measure", sa.String(length=300), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("synced_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("plan", "measure", "at"),
    )


    for name, sql in views(op.get_bind().dialect.name).items():
        op.execute(f"CREATE VIEW {name} AS {sql}")


def downgrade() -> None:
    for name in reversed(list(views(op.get_bind().dialect.name))):
        op.execute(f"DROP VIEW IF EXISTS {name}")
    op.drop_table("measure_values")


def views(dialect: str) -> dict[str, str]:
    """The views' SELECTs on ``dialect`` (sqlite or postgresql): the same columns on both."""
    if dialect == "postgresql":
        day = "CAST((%s AT TIME ZONE 'UTC') AS DATE)"
        head = "split_part(%s, '.', 1)"
        kinds = "json_each_text(s.finding_kinds) AS f"
        count = "CAST(f.value AS INTEGER)"
    else:
        day = "date(%s)"
        head = "CASE WHEN instr(%s, '.') > 0 THEN substr(%s, 1, instr(%s, '.') - 1) ELSE %s END"
        kinds = "json_each(s.finding_kinds) AS f"
        count = "CAST(f.value AS INTEGER)"

    def goal_of(column: str) -> str:
        return head.replace("%s", column)

    def daily(kind: str, entity: str) -> str:
        goal = "" if kind == "goal" else f"{goal_of('s.entity')} AS goal, "
        return (
            f"SELECT s.plan AS plan, {goal}s.entity AS {entity}, "
            f"{day % 's.as_of'} AS day, s.as_of AS as_of, s.status AS status, "
            "s.progress AS progress, s.items_total AS items_total, s.items_done AS items_done, "
            "s.points_total AS points_total, s.points_done AS points_done, "
            "s.forecast AS forecast, s.findings AS findings, s.origin AS origin "
            f"FROM snapshots s WHERE s.kind = '{kind}' AND s.as_of = ("
            "SELECT max(t.as_of) FROM snapshots t WHERE t.plan = s.plan "
            f"AND t.entity = s.entity AND {day % 't.as_of'} = {day % 's.as_of'})"
        )

    if dialect == "postgresql":
        milestone_of_measure = (
            "CASE WHEN length(m.measure) - length(replace(m.measure, '.', '')) = 2 "
            "THEN split_part(m.measure, '.', 1) || '.' || split_part(m.measure, '.', 2) END")
    else:
        rest = "substr(m.measure, instr(m.measure, '.') + 1)"
        milestone_of_measure = (
            f"CASE WHEN instr({rest}, '.') > 0 THEN substr(m.measure, 1, "
            f"instr(m.measure, '.') + instr({rest}, '.') - 1) END")
    return {
        "stratmap_goal_daily": daily("goal", "goal"),
        "stratmap_milestone_daily": daily("milestone", "milestone"),
        "stratmap_findings": (
            "SELECT s.plan AS plan, s.as_of AS as_of, s.kind AS level, "
            "CASE WHEN s.kind = 'plan' THEN NULL ELSE "
            f"{goal_of('s.entity')} END AS goal, "
            "CASE WHEN s.kind = 'milestone' THEN s.entity END AS milestone, "
            f"f.key AS kind, {count} AS findings, s.origin AS origin "
            f"FROM snapshots s, {kinds}"
        ),
        "stratmap_measures": (
            f"SELECT m.plan AS plan, {goal_of('m.measure')} AS goal, "
            f"{milestone_of_measure} AS milestone, m.measure AS measure, "
            f"{day % 'm.at'} AS day, m.at AS at, m.value AS value, "
            "m.first_seen AS first_seen, m.synced_at AS synced_at FROM measure_values m"
        ),
    }
