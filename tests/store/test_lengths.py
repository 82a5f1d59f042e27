"""Strings longer than their column are refused up front, alike on SQLite and PostgreSQL.

SQLite stores a value longer than a ``String(255)`` column; PostgreSQL refuses it, and for a
decision name only when the trial completes (a trigger copies the names into decision_counts). The
store checks first, so a name either fits everywhere or is refused everywhere before any write.
"""

from __future__ import annotations

import pytest

from store import SearchConfig, SearchRecord, Store, TrialStatus, queries
from store._checks import NAME_LENGTH

LONG = "d" * (NAME_LENGTH + 1)
FITS = "d" * NAME_LENGTH


def _config(**changes: object) -> SearchConfig:
    return SearchConfig(space="toy", strategy="random", objectives=("acc",)).replace(**changes)


def _nothing_written(store: Store, search: SearchRecord) -> None:
    assert store.trials(search.id) == []
    # The trial counter did not move either: the next trial is number 0.
    assert store.add_trial(search.id, arch={}, arch_key="k", proposer="p").number == 0


def test_an_over_long_decision_name_is_refused_before_any_write(store: Store, search: SearchRecord) -> None:
    with pytest.raises(ValueError) as e:
        store.add_trial(search.id, arch={"op": "conv", LONG: 1}, arch_key="k", proposer="p", start=True, worker="w")
    message = str(e.value)
    assert message.startswith(f"a decision name in arch must be at most {NAME_LENGTH} characters long, but got 256:")
    assert "'dddd" in message and "\n" not in message and len(message) < 200
    _nothing_written(store, search)


def test_a_decision_name_that_fits_goes_all_the_way(store: Store, search: SearchRecord) -> None:
    t = store.add_trial(search.id, arch={FITS: 1, "op": "conv"}, arch_key="k", proposer="p", start=True, worker="w")
    store.finish_trial(search.id, t.number, TrialStatus.COMPLETED, metrics={"acc": 0.5}, value=0.5)
    assert store.get_trial(search.id, t.number).arch == {FITS: 1, "op": "conv"}
    assert FITS in {d.name for d in queries.decision_stats(store, search.name).rows}


@pytest.mark.parametrize(
    ("field", "where"),
    [("arch_key", "arch_key"), ("proposer", "proposer"), ("worker", "worker")],
)
def test_over_long_trial_strings_are_refused(store: Store, search: SearchRecord, field: str, where: str) -> None:
    kwargs = {"arch": {}, "arch_key": "k", "proposer": "p", "start": True, "worker": "w", field: LONG}
    with pytest.raises(ValueError, match=rf"^{where} must be at most {NAME_LENGTH} characters long, but got 256"):
        store.add_trial(search.id, **kwargs)  # type: ignore[arg-type]
    _nothing_written(store, search)
    with pytest.raises(ValueError, match=rf"^worker must be at most {NAME_LENGTH} characters"):
        store.start_trial(search.id, 0, worker=LONG)
    assert store.get_trial(search.id, 0).status is TrialStatus.PROPOSED


def test_over_long_search_strings_are_refused(store: Store) -> None:
    with pytest.raises(ValueError, match=rf"^a search name must be at most {NAME_LENGTH} characters long"):
        store.create_search(LONG, _config())
    with pytest.raises(ValueError, match=rf"strategy must be at most {NAME_LENGTH} characters long"):
        store.create_search("s", _config(strategy="x" * 300))
    assert store.list_searches() == []
    assert store.create_search(FITS, _config()).name == FITS


def test_an_over_long_driver_is_refused(store: Store, search: SearchRecord) -> None:
    for call in (store.acquire_search, store.heartbeat, store.release_search):
        with pytest.raises(ValueError, match=rf"^driver must be at most {NAME_LENGTH} characters long"):
            call(search.id, LONG)
    assert store.get_search(search.name).driver is None
