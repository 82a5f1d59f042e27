"""Helpers for the store tests; the workers run in spawned processes (so: no pytest here)."""

from __future__ import annotations

from sqlalchemy import create_engine, text

from store import Store, TrialStatus


def add_and_finish(url: str, search_id: int, n: int, worker: int) -> list[tuple[int, int]]:
    """Add, start and finish ``n`` trials; their (number, result_seq)."""
    out = []
    with Store(url) as store:
        for i in range(n):
            trial = store.add_trial(search_id, arch={"worker": worker, "i": i}, arch_key=f"{worker}-{i}", proposer="t")
            store.start_trial(search_id, trial.number, worker=str(worker))
            done = store.finish_trial(search_id, trial.number, TrialStatus.COMPLETED, value=float(i))
            out.append((done.number, done.result_seq))
    return out


def open_store(url: str) -> int:
    """Open (and so create or migrate) the database; the number of searches in it."""
    with Store(url) as store:
        return len(store.list_searches())


def run_sql(url: str, *statements: str) -> list:
    """Run raw SQL on ``url`` outside the store (one transaction); the last statement's rows."""
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            rows: list = []
            for statement in statements:
                result = conn.execute(text(statement))
                rows = list(result) if result.returns_rows else []
            return rows
    finally:
        engine.dispose()
