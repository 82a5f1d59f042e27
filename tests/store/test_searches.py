"""Searches: create, find, get, list, update, delete."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from store import NotFound, SearchRecord, Store, TrialStatus


def test_create_returns_a_frozen_record(store: Store) -> None:
    rec = store.create_search("a", space="toy", strategy="evolution", objectives=["-loss"], config={"seed": 1})
    assert isinstance(rec, SearchRecord)
    assert (rec.name, rec.space, rec.strategy, rec.objectives, rec.config) == (
        "a", "toy", "evolution", ("-loss",), {"seed": 1},
    )  # fmt: skip
    assert rec.objective == "loss" and not rec.maximize
    assert rec.driver is None and rec.driver_heartbeat_at is None
    assert rec.created_at.utcoffset() == dt.timedelta(0)
    assert abs((dt.datetime.now(dt.timezone.utc) - rec.created_at).total_seconds()) < 60
    with pytest.raises(dataclasses.FrozenInstanceError):
        rec.name = "b"  # type: ignore[misc]


def test_find_get_list(store: Store) -> None:
    a = store.create_search("a", space="toy", strategy="random", objectives=["acc"], config={})
    b = store.create_search("b", space="x.py:f", strategy="rl", objectives=["acc", "-params"], config={"k": [1, 2]})
    assert store.find_search("a") == a
    assert store.get_search("b") == b
    assert store.find_search("nope") is None
    assert [s.name for s in store.list_searches()] == ["a", "b"]


def test_get_missing_names_it_and_the_database(store: Store, store_url: str) -> None:
    with pytest.raises(NotFound) as e:
        store.get_search("nope")
    assert str(e.value) == f"no search named 'nope' in {store_url}"


def test_duplicate_name_is_a_value_error(store: Store, search: SearchRecord) -> None:
    with pytest.raises(ValueError, match="a search named 's1' already exists"):
        store.create_search("s1", space="toy", strategy="random", objectives=["acc"], config={})
    assert len(store.list_searches()) == 1


def test_create_refuses_bad_input(store: Store) -> None:
    def create(**kwargs: object) -> None:
        args = {"name": "a", "space": "toy", "strategy": "random", "objectives": ["acc"], "config": {}} | kwargs
        store.create_search(**args)  # type: ignore[arg-type]

    with pytest.raises(ValueError, match="non-empty string"):
        create(name="")
    with pytest.raises(TypeError, match="objectives must be a sequence"):
        create(objectives="accuracy")
    with pytest.raises(ValueError, match="objectives must be non-empty"):
        create(objectives=[])
    with pytest.raises(ValueError, match="objectives must be non-empty"):
        create(objectives=["-"])
    with pytest.raises(TypeError, match=r"config\['f'\] must be JSON-able"):
        create(config={"f": object()})
    with pytest.raises(TypeError, match="JSON keys must be str"):
        create(config={1: 2})
    assert store.list_searches() == []


def test_update_config(store: Store, search: SearchRecord) -> None:
    store.update_search_config(search.id, {"trials": 20, "nested": {"a": [1.5, None]}})
    assert store.get_search("s1").config == {"trials": 20, "nested": {"a": [1.5, None]}}
    with pytest.raises(NotFound, match="no search with id 999"):
        store.update_search_config(999, {})


def test_delete_removes_every_row(store: Store, search: SearchRecord) -> None:
    other = store.create_search("s2", space="toy", strategy="random", objectives=["acc"], config={})
    for sid in (search.id, other.id):
        t = store.add_trial(sid, arch={"a": 1}, arch_key="k", proposer="p")
        store.start_trial(sid, t.number)
        store.report_step(sid, t.number, 0, {"acc": 0.1}, 0.1)
        store.finish_trial(sid, t.number, TrialStatus.COMPLETED, value=0.5)
        store.save_checkpoint(sid, 1, {"x": 1})
    store.delete_search("s1")
    assert store.find_search("s1") is None
    with pytest.raises(NotFound):
        store.trials(search.id)
    with pytest.raises(NotFound):
        store.delete_search("s1")
    # The other search is untouched.
    assert len(store.trials(other.id)) == 1
    assert len(store.steps(other.id, 0)) == 1
    assert store.load_checkpoint(other.id) == (1, {"x": 1})
    # The name can be used again, and numbering starts afresh.
    again = store.create_search("s1", space="toy", strategy="random", objectives=["acc"], config={})
    assert store.add_trial(again.id, arch={}, arch_key="k", proposer="p").number == 0
