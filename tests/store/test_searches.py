"""Searches: create, find, get, list, update, delete."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re

import pytest

from store import ConfigError, NotFound, SearchConfig, SearchRecord, Store, TrialStatus


def test_create_returns_a_frozen_record(store: Store) -> None:
    config = SearchConfig(space="toy", strategy="evolution", objectives=("-loss",), seed=1)
    rec = store.create_search("a", config)
    assert isinstance(rec, SearchRecord)
    assert (rec.name, rec.space, rec.strategy, rec.objectives, rec.config) == (
        "a",
        "toy",
        "evolution",
        ("-loss",),
        config,
    )
    assert rec.objective == "loss" and not rec.maximize
    assert rec.driver is None and rec.driver_heartbeat_at is None
    assert rec.created_at.utcoffset() == dt.timedelta(0)
    assert abs((dt.datetime.now(dt.timezone.utc) - rec.created_at).total_seconds()) < 60
    with pytest.raises(dataclasses.FrozenInstanceError):
        rec.name = "b"  # type: ignore[misc]


def test_find_get_list(store: Store) -> None:
    a = store.create_search("a", SearchConfig(space="toy", strategy="random", objectives=("acc",)))
    b = store.create_search(
        "b", SearchConfig(space="x.py:f", strategy="rl", objectives=("acc", "-params"), strategy_options={"k": [1, 2]})
    )
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
        store.create_search("s1", SearchConfig(space="toy", strategy="random", objectives=("acc",)))
    assert len(store.list_searches()) == 1


def test_create_refuses_bad_input(store: Store) -> None:
    good = SearchConfig(space="toy")
    with pytest.raises(ValueError, match="non-empty string"):
        store.create_search("", good)
    with pytest.raises(TypeError, match="config must be a SearchConfig"):
        store.create_search("a", {"space": "toy"})  # type: ignore[arg-type]
    assert store.list_searches() == []


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"trials": 0}, "trials must be a positive integer, got 0"),
        ({"trials": True}, "trials must be a positive integer, got True"),
        ({"workers": -1}, "workers must be a non-negative integer, got -1"),
        ({"seed": -3}, "seed must be a non-negative integer, got -3"),
        ({"epochs": 0}, "epochs must be a positive integer, got 0"),
        ({"budget": float("nan")}, "budget must be a positive number"),
        ({"budget": 0}, "budget must be a positive number"),
        ({"objectives": ()}, "objective must be a metric name or a list of them"),
        ({"objectives": ("-",)}, "objective '-' is not a metric name"),
        ({"objectives": ("acc", "-acc")}, "objectives name a metric twice"),
        ({"strategy": ""}, "strategy must be a non-empty text"),
        ({"strategy_options": {"f": object()}}, "strategy_options must be JSON-able"),
        ({"strategy_options": [1]}, "strategy_options must be a mapping"),
    ],
)
def test_config_names_the_bad_field(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        SearchConfig(space="toy", **fields)  # type: ignore[arg-type]


def test_config_round_trips_through_json() -> None:
    c = SearchConfig(space="/abs/s.py:f", objectives=("acc", "-params"), budget=10, strategy_options={"p": [1, 2]})
    assert SearchConfig.from_dict(json.loads(json.dumps(c.to_dict()))) == c
    assert c.budget == 10.0 and isinstance(c.budget, float)
    with pytest.raises(ConfigError, match="unknown search config field 'nope'"):
        SearchConfig.from_dict({**c.to_dict(), "nope": 1})
    with pytest.raises(ConfigError, match="layout None is not 1"):
        SearchConfig.from_dict({"space": "toy"})


def test_unnamed_searches_get_the_next_free_name(store: Store) -> None:
    names = [store.create_search(None, SearchConfig(space="toy"), stem="toy-random").name for _ in range(3)]
    assert names == ["toy-random-1", "toy-random-2", "toy-random-3"]
    store.delete_search("toy-random-2")
    assert store.create_search(None, SearchConfig(space="toy"), stem="toy-random").name == "toy-random-2"


def test_update_config(store: Store, search: SearchRecord) -> None:
    store.update_search_config(search.id, search.config.replace(trials=20, budget=5.0))
    assert (store.get_search("s1").config.trials, store.get_search("s1").config.budget) == (20, 5.0)
    with pytest.raises(ValueError, match="cannot change"):
        store.update_search_config(search.id, search.config.replace(strategy="rl"))
    with pytest.raises(NotFound, match="no search with id 999"):
        store.update_search_config(999, search.config)


def test_delete_removes_every_row(store: Store, search: SearchRecord) -> None:
    other = store.create_search("s2", SearchConfig(space="toy", strategy="random", objectives=("acc",)))
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
    again = store.create_search("s1", SearchConfig(space="toy", strategy="random", objectives=("acc",)))
    assert store.add_trial(again.id, arch={}, arch_key="k", proposer="p").number == 0


def test_configs_of_schema_0002_are_rewritten_by_the_migration(store_url: str) -> None:
    """A search stored by automl before the typed config (CLI layout) reads back as a SearchConfig."""
    from alembic import command
    from sqlalchemy import create_engine

    from store._schema import alembic_config

    from ._helpers import run_sql

    with Store(store_url) as store:
        kept = store.create_search("new", SearchConfig(space="cnn", trials=7, seed=3, dataset="mnist1d"))
    engine = create_engine(store_url)
    try:
        with engine.begin() as conn:
            command.downgrade(alembic_config(conn), "0002")
    finally:
        engine.dispose()
    old = {
        "trials": 24, "budget": None, "seed": 0, "workers": 2, "executor": "local", "strategy_options": {"p": 5},
        "evaluator": {"evaluator": "TrainingEvaluator", "dataset": "digits",
                      "config": {"epochs": 3, "weights_dir": "/w"},
                      "context": {"input_shape": [1, 8, 8], "num_classes": 10}},
        "space": {"name": "cnn", "decisions": [{"name": "depth", "options": [1, 2]}]},
        "dataset": "digits", "evaluator_spec": "train", "epochs": 3,
    }  # fmt: skip
    run_sql(
        store_url,
        "INSERT INTO searches (name, space, strategy, objectives, config, created_at, trial_count, result_count) "
        f"VALUES ('old', 'cnn', 'evolution', '[\"accuracy\"]', '{json.dumps(old)}', '2025-01-01 00:00:00', 0, 0)",
    )
    with Store(store_url) as store:
        c = store.get_search("old").config
        assert store.get_search("new").config == kept.config  # a round trip through the old layout
    assert (c.evaluator, c.dataset, c.epochs, c.trials, c.seed, c.workers, c.executor) == (
        "train", "digits", 3, 24, 0, 2, "local",
    )  # fmt: skip
    assert (c.strategy, c.objectives, c.strategy_options, c.keep_weights) == (
        "evolution",
        ("accuracy",),
        {"p": 5},
        "/w",
    )
    assert c.context == {"input_shape": [1, 8, 8], "num_classes": 10}
    assert c.space_info["decisions"][0]["name"] == "depth"
