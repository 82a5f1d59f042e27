"""Initial schema: searches, trials, trial_steps, checkpoints.

Revision ID: 0001
Revises:
Create Date: 2024-01-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# Written out in full (not ``metadata.create_all``): a migration is frozen, the models move on.
_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "searches",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("space", sa.Text(), nullable=False),
        sa.Column("strategy", sa.String(255), nullable=False),
        sa.Column("objectives", sa.JSON(), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("driver", sa.String(255), nullable=True),
        sa.Column("driver_heartbeat_at", _TS, nullable=True),
        sa.Column("trial_count", sa.Integer(), server_default="0", nullable=False),
        sa.Column("result_count", sa.Integer(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_searches"),
        sa.UniqueConstraint("name", name="uq_searches_name"),
    )
    op.create_table(
        "trials",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("search_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("arch", sa.JSON(), nullable=False),
        sa.Column("arch_key", sa.String(255), nullable=False),
        sa.Column("proposer", sa.String(255), nullable=False),
        sa.Column("parent", sa.Integer(), nullable=True),
        sa.Column("info", sa.JSON(), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("worker", sa.String(255), nullable=True),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("result_seq", sa.Integer(), nullable=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("started_at", _TS, nullable=True),
        sa.Column("finished_at", _TS, nullable=True),
        sa.Column("heartbeat_at", _TS, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_trials"),
        sa.ForeignKeyConstraint(
            ["search_id"], ["searches.id"], name="fk_trials_search_id_searches", ondelete="CASCADE"
        ),
        sa.UniqueConstraint("search_id", "number", name="uq_trials_search_id_number"),
        sa.UniqueConstraint("search_id", "result_seq", name="uq_trials_search_id_result_seq"),
    )
    op.create_index("ix_trials_search_id_status", "trials", ["search_id", "status"])
    op.create_index("ix_trials_search_id_value", "trials", ["search_id", "value"])
    op.create_index("ix_trials_arch_key", "trials", ["arch_key"])
    op.create_table(
        "trial_steps",
        sa.Column("trial_id", sa.Integer(), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("trial_id", "step", name="pk_trial_steps"),
        sa.ForeignKeyConstraint(["trial_id"], ["trials.id"], name="fk_trial_steps_trial_id_trials", ondelete="CASCADE"),
    )
    op.create_table(
        "checkpoints",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("search_id", sa.Integer(), nullable=False),
        sa.Column("result_seq", sa.Integer(), nullable=False),
        sa.Column("state", sa.JSON(), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_checkpoints"),
        sa.ForeignKeyConstraint(
            ["search_id"], ["searches.id"], name="fk_checkpoints_search_id_searches", ondelete="CASCADE"
        ),
    )
    op.create_index("ix_checkpoints_search_id_result_seq", "checkpoints", ["search_id", "result_seq"])


def downgrade() -> None:
    op.drop_table("checkpoints")
    op.drop_table("trial_steps")
    op.drop_table("trials")
    op.drop_table("searches")
