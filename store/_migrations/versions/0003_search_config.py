"""Search config layout 1: every search's ``config`` JSON becomes a ``SearchConfig`` record.

Before, ``config`` was an open dict whose keys depended on who started the search (the CLI added
``dataset``/``evaluator_spec``/``epochs``, the Python API did not) and held the evaluator's and
the space's descriptions under ``evaluator`` and ``space``. Now it holds every field of
``store.SearchConfig`` plus ``"version": 1``; the columns ``space``, ``strategy`` and
``objectives`` stay (queries filter on them) and equal the config's fields.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_searches = sa.table(
    "searches",
    sa.column("id", sa.Integer),
    sa.column("space", sa.Text),
    sa.column("strategy", sa.String),
    sa.column("objectives", sa.JSON),
    sa.column("config", sa.JSON),
)


def _evaluator_spec(old: dict[str, Any], described: dict[str, Any]) -> str:
    spec = old.get("evaluator_spec")
    if isinstance(spec, str) and (spec.startswith("table") or ".py:" in spec):
        return spec
    kind = described.get("evaluator")
    if kind == "TrainingEvaluator" or spec == "train":
        return "train"
    if kind == "TabularEvaluator":
        path = described.get("path")
        return f"table:{path}" if path else "table"
    return "python"  # a callable handed to automl.search


def _to_v1(space: str, strategy: str, objectives: list[str], old: Any) -> dict[str, Any]:
    old = old if isinstance(old, dict) else {}
    described = old.get("evaluator") if isinstance(old.get("evaluator"), dict) else {}
    recipe = described.get("config") if isinstance(described.get("config"), dict) else {}
    evaluator = _evaluator_spec(old, described)
    dataset = old.get("dataset") or described.get("dataset")
    workers = old.get("workers", 1)
    return {
        "version": 1,
        "space": space,
        "evaluator": evaluator,
        "dataset": str(dataset) if dataset else None,
        "epochs": old.get("epochs") if isinstance(old.get("epochs"), int) else None,
        "strategy": strategy,
        "strategy_options": old.get("strategy_options") or {},
        "objectives": list(objectives),
        "trials": old.get("trials") if isinstance(old.get("trials"), int) and old["trials"] > 0 else 100,
        "budget": old.get("budget"),
        "seed": old.get("seed"),
        "executor": old.get("executor") or "inline",
        "workers": workers if isinstance(workers, int) and workers >= 0 else 1,
        "executor_options": {},
        "pruner": "none",
        "retries": 2,
        "max_failures": 10,
        "keep_weights": recipe.get("weights_dir"),
        "space_info": old.get("space") if isinstance(old.get("space"), dict) else {},
        "evaluator_info": described,
    }


def _to_v0(config: Any) -> dict[str, Any]:
    c = config if isinstance(config, dict) else {}
    keys = ("trials", "budget", "seed", "workers", "executor", "strategy_options", "dataset", "epochs")
    old = {k: c.get(k) for k in keys}
    old.update(evaluator=c.get("evaluator_info") or {}, space=c.get("space_info") or {})
    old["evaluator_spec"] = c.get("evaluator")
    return old


def _rewrite(convert: Any) -> None:
    bind = op.get_bind()
    rows = bind.execute(sa.select(_searches.c.id, _searches.c.space, _searches.c.strategy,
                                  _searches.c.objectives, _searches.c.config)).all()  # fmt: skip
    for row in rows:
        config = row.config if not isinstance(row.config, str) else json.loads(row.config)
        new = convert(row, config)
        bind.execute(sa.update(_searches).where(_searches.c.id == row.id).values(config=new))


def upgrade() -> None:
    _rewrite(lambda row, config: config if isinstance(config, dict) and config.get("version") == 1
             else _to_v1(row.space, row.strategy, list(row.objectives or []), config))  # fmt: skip


def downgrade() -> None:
    _rewrite(lambda row, config: _to_v0(config))
