"""Proposer checkpoints: the latest wins, only the last few are kept."""

from __future__ import annotations

import pytest

from store import NotFound, SearchConfig, SearchRecord, Store
from tests.store._helpers import run_sql


def test_no_checkpoint_is_none(store: Store, search: SearchRecord) -> None:
    assert store.load_checkpoint(search.id) is None


def test_latest_checkpoint_and_pruning_to_three(store: Store, store_url: str, search: SearchRecord) -> None:
    other = store.create_search("s2", SearchConfig(space="toy", strategy="random", objectives=("acc",)))
    store.save_checkpoint(other.id, 0, {"other": True})
    for seq in range(6):
        store.save_checkpoint(search.id, seq, {"seq": seq, "population": [[seq, 1.5]], "rng": {"s": [1, 2]}})
        assert store.load_checkpoint(search.id) == (seq, {"seq": seq, "population": [[seq, 1.5]], "rng": {"s": [1, 2]}})
    rows = run_sql(store_url, f"SELECT result_seq FROM checkpoints WHERE search_id = {search.id} ORDER BY result_seq")
    assert [r[0] for r in rows] == [3, 4, 5]
    assert store.load_checkpoint(other.id) == (0, {"other": True})


def test_same_seq_saved_twice_the_newer_wins(store: Store, search: SearchRecord) -> None:
    store.save_checkpoint(search.id, 4, {"v": 1})
    store.save_checkpoint(search.id, 4, {"v": 2})
    assert store.load_checkpoint(search.id) == (4, {"v": 2})


def test_checkpoint_input_is_checked(store: Store, search: SearchRecord) -> None:
    with pytest.raises(ValueError):
        store.save_checkpoint(search.id, -1, {})
    with pytest.raises(TypeError):
        store.save_checkpoint(search.id, 1, {"f": lambda: 0})
    with pytest.raises(NotFound):
        store.save_checkpoint(999, 1, {})
    with pytest.raises(NotFound):
        store.load_checkpoint(999)
