"""Trials: numbering, life cycle, result order, queries, steps, counts."""

from __future__ import annotations

import datetime as dt
import math
import threading
from contextlib import contextmanager

import pytest
from sqlalchemy import exc

from store import NotFound, SearchConfig, SearchRecord, Store, TrialRecord, TrialStatus

S = TrialStatus


def _add(store: Store, search: SearchRecord, n: int) -> list[TrialRecord]:
    return [store.add_trial(search.id, arch={"i": i}, arch_key=f"k{i}", proposer="random") for i in range(n)]


def test_add_numbers_from_zero(store: Store, search: SearchRecord) -> None:
    trials = _add(store, search, 5)
    assert [t.number for t in trials] == [0, 1, 2, 3, 4]
    t = store.add_trial(search.id, arch={"op": "conv3x3", "w": [1, 2]}, arch_key="abc", proposer="evo", parent=2,
                        info={"log_prob": -1.25})  # fmt: skip
    assert t == store.get_trial(search.id, 5)
    assert (t.status, t.arch, t.arch_key, t.proposer, t.parent, t.info) == (
        S.PROPOSED, {"op": "conv3x3", "w": [1, 2]}, "abc", "evo", 2, {"log_prob": -1.25},
    )  # fmt: skip
    assert (t.attempts, t.result_seq, t.value, t.metrics, t.started_at) == (0, None, None, {}, None)
    assert t.created_at is not None and t.created_at.tzinfo is not None
    with pytest.raises(NotFound, match="no search with id 999"):
        store.add_trial(999, arch={}, arch_key="k", proposer="p")


def test_numbers_are_per_search(store: Store, search: SearchRecord) -> None:
    other = store.create_search("s2", SearchConfig(space="toy", strategy="random", objectives=("acc",)))
    _add(store, search, 3)
    assert store.add_trial(other.id, arch={}, arch_key="k", proposer="p").number == 0


def test_life_cycle(store: Store, search: SearchRecord) -> None:
    _add(store, search, 1)
    running = store.start_trial(search.id, 0, worker="host:1/gpu0")
    assert (running.status, running.worker, running.attempts) == (S.RUNNING, "host:1/gpu0", 1)
    assert running.started_at is not None and running.heartbeat_at == running.started_at
    with pytest.raises(ValueError, match="trial 0 of search 's1' is running, not proposed"):
        store.start_trial(search.id, 0)
    done = store.finish_trial(search.id, 0, S.COMPLETED, metrics={"accuracy": 0.9, "params": 1200}, value=0.9)
    assert (done.status, done.value, done.metrics, done.result_seq, done.error) == (
        S.COMPLETED, 0.9, {"accuracy": 0.9, "params": 1200}, 1, None,
    )  # fmt: skip
    assert done.finished_at >= done.started_at and done.duration is not None and done.duration >= 0
    assert store.get_trial(search.id, 0) == done


def test_failed_trial_keeps_its_error(store: Store, search: SearchRecord) -> None:
    _add(store, search, 1)
    store.start_trial(search.id, 0)
    error = "RuntimeError: CUDA out of memory\n  at line 3"
    failed = store.finish_trial(search.id, 0, "failed", error=error)
    assert (failed.status, failed.error, failed.value) == (S.FAILED, error, None)


def test_infeasible_straight_from_proposed(store: Store, search: SearchRecord) -> None:
    _add(store, search, 1)
    t = store.finish_trial(search.id, 0, S.INFEASIBLE, error="too many parameters")
    assert (t.status, t.result_seq, t.attempts, t.started_at) == (S.INFEASIBLE, 1, 0, None)


def test_finish_is_idempotent(store: Store, search: SearchRecord) -> None:
    _add(store, search, 2)
    store.start_trial(search.id, 0)
    first = store.finish_trial(search.id, 0, S.COMPLETED, value=0.5, metrics={"accuracy": 0.5})
    again = store.finish_trial(search.id, 0, S.COMPLETED, value=0.5, metrics={"accuracy": 0.5})
    assert again == first and again.result_seq == 1
    # No sequence number was spent by the repeat.
    assert store.finish_trial(search.id, 1, S.PRUNED).result_seq == 2
    with pytest.raises(ValueError, match="trial 0 of search 's1' is already completed; cannot mark it failed"):
        store.finish_trial(search.id, 0, S.FAILED)
    assert store.get_trial(search.id, 0) == first


def test_finish_retried_after_a_lost_commit_reply_writes_no_duplicate(
    store: Store, search: SearchRecord, monkeypatch: pytest.MonkeyPatch
) -> None:
    _add(store, search, 2)
    store.start_trial(search.id, 0)
    real, commits = store._db.session, []

    @contextmanager
    def reply_lost_once(*, write: bool = False):  # type: ignore[no-untyped-def]
        with real(write=write) as session:
            yield session
        commits.append(1)  # committed; now the connection "drops" before the caller hears so
        if len(commits) == 1:
            lost = Exception("server closed the connection unexpectedly")
            raise exc.OperationalError("COMMIT", {}, lost, connection_invalidated=True)

    monkeypatch.setattr(store._db, "session", reply_lost_once)
    done = store.finish_trial(search.id, 0, S.COMPLETED, value=0.5)
    assert len(commits) == 2  # the unit of work ran twice...
    assert (done.status, done.result_seq) == (S.COMPLETED, 1)  # ...and the second found the first's result
    assert store.finish_trial(search.id, 1, S.COMPLETED, value=0.7).result_seq == 2
    assert store.counts(search.id)[S.COMPLETED] == 2


def test_finish_needs_a_finished_status(store: Store, search: SearchRecord) -> None:
    _add(store, search, 1)
    for status in (S.PROPOSED, S.RUNNING):
        with pytest.raises(ValueError, match="finish_trial needs a finished status"):
            store.finish_trial(search.id, 0, status)
    with pytest.raises(ValueError, match="unknown trial status 'done'"):
        store.finish_trial(search.id, 0, "done")  # type: ignore[arg-type]
    assert store.get_trial(search.id, 0).status == S.PROPOSED


def test_result_seq_follows_finishing_order(store: Store, search: SearchRecord) -> None:
    _add(store, search, 5)
    for n in (3, 0, 4, 1):
        store.start_trial(search.id, n)
        store.finish_trial(search.id, n, S.COMPLETED, value=float(n))
    ordered = store.trials(search.id, order="result_seq")
    assert [(t.number, t.result_seq) for t in ordered] == [(3, 1), (0, 2), (4, 3), (1, 4), (2, None)]
    assert [t.number for t in store.trials(search.id)] == [0, 1, 2, 3, 4]
    assert [t.number for t in store.trials(search.id, order="-result_seq", statuses=[S.COMPLETED])] == [1, 4, 0, 3]
    assert [t.number for t in store.trials(search.id, order="-number", limit=2)] == [4, 3]


def test_trials_filters(store: Store, search: SearchRecord) -> None:
    _add(store, search, 6)
    store.start_trial(search.id, 5)
    for n, status in [(2, S.COMPLETED), (0, S.FAILED), (4, S.COMPLETED), (1, S.PRUNED)]:
        store.finish_trial(search.id, n, status, value=1.0 if status is S.COMPLETED else None)
    numbers = lambda **kw: [t.number for t in store.trials(search.id, **kw)]  # noqa: E731
    assert numbers(statuses=[S.COMPLETED]) == [2, 4]
    assert numbers(statuses=["completed", "pruned"], order="result_seq") == [2, 4, 1]
    assert numbers(statuses=[S.RUNNING]) == [5]
    assert numbers(statuses=[]) == []
    assert numbers(after_seq=2, order="result_seq") == [4, 1]
    assert numbers(after_seq=0, order="result_seq", limit=2) == [2, 0]
    assert numbers(after_seq=4) == []
    assert numbers(after_seq=1, statuses=[S.COMPLETED], order="result_seq") == [4]
    assert numbers(limit=0) == []
    with pytest.raises(ValueError, match="order must be one of"):
        store.trials(search.id, order="value")
    with pytest.raises(ValueError, match="unknown trial status 'done'"):
        store.trials(search.id, statuses=["done"])  # type: ignore[list-item]
    with pytest.raises(ValueError):
        store.trials(search.id, limit=-1)
    with pytest.raises(NotFound):
        store.trials(999)


def test_counts_has_every_status(store: Store, search: SearchRecord) -> None:
    assert store.counts(search.id) == dict.fromkeys(TrialStatus, 0)
    _add(store, search, 4)
    store.start_trial(search.id, 0)
    store.start_trial(search.id, 1)
    store.finish_trial(search.id, 1, S.COMPLETED, value=1.0)
    counts = store.counts(search.id)
    assert list(counts) == list(TrialStatus)
    assert counts == {S.PROPOSED: 2, S.RUNNING: 1, S.COMPLETED: 1, S.FAILED: 0, S.PRUNED: 0, S.INFEASIBLE: 0}


def test_requeue(store: Store, search: SearchRecord) -> None:
    _add(store, search, 4)
    for n in (0, 1, 2):
        store.start_trial(search.id, n, worker="w")
        store.report_step(search.id, n, 0, {"loss": 1.0}, 1.0)
    store.finish_trial(search.id, 2, S.COMPLETED, value=1.0)
    back = store.requeue_trials(search.id)
    assert [(t.number, t.status, t.worker, t.started_at, t.attempts) for t in back] == [
        (0, S.PROPOSED, None, None, 1), (1, S.PROPOSED, None, None, 1),
    ]  # fmt: skip
    assert store.steps(search.id, 0) == [] and len(store.steps(search.id, 2)) == 1
    assert store.requeue_trials(search.id) == []
    # Started again, it counts a second attempt; requeue by number.
    assert store.start_trial(search.id, 0).attempts == 2
    assert [t.number for t in store.requeue_trials(search.id, [0])] == [0]
    # Listed trials that are not running stay as they are.
    assert store.requeue_trials(search.id, [2, 0]) == []
    assert store.get_trial(search.id, 2).status == S.COMPLETED
    with pytest.raises(NotFound, match="search 's1' has no trial 9"):
        store.requeue_trials(search.id, [9])
    assert store.requeue_trials(search.id, []) == []


def test_steps(store: Store, search: SearchRecord) -> None:
    _add(store, search, 2)
    store.report_step(search.id, 0, 0, {"acc": 0.1}, 0.1)  # proposed: a late report of an old attempt
    assert store.steps(search.id, 0) == []
    store.start_trial(search.id, 0)
    store.report_step(search.id, 0, 1, {"acc": 0.2}, 0.2)
    store.report_step(search.id, 0, 0, {"acc": 0.1}, 0.1)
    store.report_step(search.id, 0, 1, {"acc": 0.25}, 0.25)  # replaces step 1
    steps = store.steps(search.id, 0)
    assert [(s.number, s.step, s.metrics, s.value) for s in steps] == [
        (0, 0, {"acc": 0.1}, 0.1), (0, 1, {"acc": 0.25}, 0.25),
    ]  # fmt: skip
    assert all(s.created_at is not None and s.created_at.utcoffset() == dt.timedelta(0) for s in steps)
    assert store.steps(search.id, 1) == []
    with pytest.raises(NotFound, match="search 's1' has no trial 7"):
        store.steps(search.id, 7)
    # A report that arrives just after the result is kept.
    store.finish_trial(search.id, 0, S.COMPLETED, value=0.3)
    store.report_step(search.id, 0, 2, {"acc": 0.3}, 0.3)
    assert [s.step for s in store.steps(search.id, 0)] == [0, 1, 2]


def test_not_found_messages(store: Store, search: SearchRecord) -> None:
    with pytest.raises(NotFound) as e:
        store.get_trial(search.id, 7)
    assert str(e.value) == "search 's1' has no trial 7"
    for call in (lambda: store.start_trial(search.id, 7), lambda: store.finish_trial(search.id, 7, S.FAILED)):
        with pytest.raises(NotFound, match="search 's1' has no trial 7"):
            call()
    with pytest.raises(NotFound, match="no search with id 999"):
        store.counts(999)


def test_json_values_are_cleaned(store: Store, search: SearchRecord) -> None:
    np = pytest.importorskip("numpy")
    _add(store, search, 1)
    store.start_trial(search.id, 0)
    metrics = {"loss": float("nan"), "acc": np.float32(0.5), "hist": np.array([1, 2]), "inf": float("inf")}
    done = store.finish_trial(search.id, 0, S.COMPLETED, metrics=metrics, value=float("nan"))
    assert done.metrics == {"loss": None, "acc": 0.5, "hist": [1, 2], "inf": None}
    assert done.value is None
    assert store.get_trial(search.id, 0) == done
    assert not any(isinstance(v, float) and math.isnan(v) for v in done.metrics.values())


def test_records_are_detached_copies(store: Store, search: SearchRecord) -> None:
    arch = {"ops": ["a", "b"]}
    t = store.add_trial(search.id, arch=arch, arch_key="k", proposer="p")
    arch["ops"].append("c")
    assert t.arch == {"ops": ["a", "b"]} and store.get_trial(search.id, 0).arch == {"ops": ["a", "b"]}


def test_threads_share_one_store(store: Store, search: SearchRecord) -> None:
    numbers: list[int] = []
    errors: list[BaseException] = []

    def add(k: int) -> None:
        try:
            for i in range(10):
                numbers.append(store.add_trial(search.id, arch={"k": k, "i": i}, arch_key="x", proposer="p").number)
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=add, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(numbers) == list(range(40))
