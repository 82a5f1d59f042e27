"""Final trainings (``finals``) and the wall-clock time a search has run (``searches.elapsed_seconds``).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("searches") as batch:
        batch.add_column(sa.Column("elapsed_seconds", sa.Float(), server_default="0", nullable=False))
    op.create_table(
        "finals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("search_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("seed", sa.Integer(), nullable=False),
        sa.Column("epochs", sa.Integer(), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["search_id"], ["searches.id"], name="fk_finals_search_id_searches", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_finals"),
        sa.UniqueConstraint("search_id", "number", "seed", "epochs", name="uq_finals_search_id_number_seed_epochs"),
    )


def downgrade() -> None:
    op.drop_table("finals")
    with op.batch_alter_table("searches") as batch:
        batch.drop_column("elapsed_seconds")
