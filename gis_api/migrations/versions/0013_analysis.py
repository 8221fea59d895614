"""Planner workbench: analysis jobs, the coverage gaps shown on the map page, named siting scenarios.

Revision ID: 0013_analysis
Revises: 0004_siting (facility, analysis_result)
"""

import sqlalchemy as sa
from alembic import op

revision = "0013_analysis"
down_revision = "0004_siting"
branch_labels = None
depends_on = None

STATES = ("queued", "running", "done", "failed", "cancelled")


def upgrade() -> None:
    op.create_table(
        "analysis_job",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("params", sa.dialects.postgresql.JSONB, nullable=False),
        sa.Column("state", sa.Text, nullable=False, server_default="queued"),
        sa.Column("progress", sa.Float, nullable=False, server_default="0"),
        sa.Column("message", sa.Text),
        sa.Column("result", sa.dialects.postgresql.JSONB),
        # the runner (API process) that took the job: it holds this advisory lock while alive
        sa.Column("runner_key", sa.BigInteger),
        sa.Column("created_by", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("started_at", sa.DateTime(timezone=True)),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
        sa.CheckConstraint("state IN (" + ", ".join(f"'{s}'" for s in STATES) + ")", name="ck_analysis_job_state"),
        sa.CheckConstraint("progress >= 0 AND progress <= 1", name="ck_analysis_job_progress"),
    )
    op.create_index("ix_analysis_job_state", "analysis_job", ["state"])
    # the uncovered area of the last coverage analysis of each facility type (a map-page layer)
    op.execute("""
        CREATE TABLE coverage_gap (
            id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            type_code text NOT NULL,
            facility_type text NOT NULL,
            radius_m double precision NOT NULL,
            distance text NOT NULL,
            area_code text,
            covered_share double precision,
            uncovered_buildings integer,
            computed_at timestamptz NOT NULL DEFAULT now(),
            geom geometry(MultiPolygon, 4326) NOT NULL
        )""")
    op.execute("CREATE INDEX ix_coverage_gap_geom ON coverage_gap USING gist (geom)")
    op.execute("CREATE UNIQUE INDEX ux_coverage_gap_type_area ON coverage_gap (type_code, coalesce(area_code, ''))")
    op.execute("""
        CREATE TABLE siting_scenario (
            id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            name text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
            version integer NOT NULL,
            area_code text,
            params jsonb NOT NULL,
            summary jsonb NOT NULL,
            sites jsonb NOT NULL,
            created_by text NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now()
        )""")
    op.execute("CREATE UNIQUE INDEX ux_siting_scenario_version "
               "ON siting_scenario (name, coalesce(area_code, ''), version)")


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS siting_scenario")
    op.execute("DROP TABLE IF EXISTS coverage_gap")
    op.drop_table("analysis_job")
