"""The local and Ray executors run whole searches; the ASHA pruner against Ray Tune's own.

Worker processes and Ray actors import their evaluators from ``tests.automl._evaluators``.
Ray runs on loopback only (``automl._ray.init_local_ray``), two CPUs, once for this module.
"""

from __future__ import annotations

import doctest
import importlib
import os
import pickle
import random
import socket
import sys
import types
from collections.abc import Iterator
from types import SimpleNamespace

import pytest

import automl
from automl import UsageError
from automl._jobs import Job, Step
from automl._local import LocalExecutor, dump_evaluator
from automl._pruners import ASHAPruner, make_pruner, restore_pruner
from evaluators import TrainConfig, TrainingEvaluator, as_evaluator
from search_spaces import Arch
from store import Store, TrialStatus
from tests.automl import _evaluators as evs

N = 8


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def storage(request: pytest.FixtureRequest, tmp_path) -> str:  # type: ignore[no-untyped-def]
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'automl.db'}"
    return request.getfixturevalue("pg_url")


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    ray = pytest.importorskip("ray")
    from automl._ray import init_local_ray

    init_local_ray(num_cpus=2)
    try:
        yield
    finally:
        ray.shutdown()


def _trials(url: str, name: str):  # type: ignore[no-untyped-def]
    with Store(url) as store:
        search = store.get_search(name)
        trials = store.trials(search.id)
        steps = {t.number: store.steps(search.id, t.number) for t in trials}
    return trials, steps


def _check_exactly_n(url: str, name: str, steps_per_trial: int) -> list:  # type: ignore[type-arg]
    trials, steps = _trials(url, name)
    assert [t.number for t in trials] == list(range(N))
    assert all(t.status is TrialStatus.COMPLETED for t in trials), [(t.number, t.status, t.error) for t in trials]
    assert all(t.value == evs.score(t.arch)["accuracy"] for t in trials)  # the worker's result, unchanged
    # every epoch report reached the driver and was stored, once
    assert all([s.step for s in steps[t.number]] == list(range(1, steps_per_trial + 1)) for t in trials)
    return trials


# -- local ------------------------------------------------------------------------------------------
def test_local_two_workers_complete_exactly_n(storage: str) -> None:
    automl.search(
        "nb201", evs.Probe(steps=3, sleep=0.02), strategy="random", trials=N, storage=storage, name="loc",
        executor="local", workers=2, seed=0,
    )  # fmt: skip
    trials = _check_exactly_n(storage, "loc", 3)
    pids = {t.metrics["pid"] for t in trials}
    assert len(pids) == 2 and os.getpid() not in pids  # two worker processes, not the driver
    # the stored worker is the process that ran the trial, "host:pid"
    assert {t.worker for t in trials} == {f"{socket.gethostname()}:{pid}" for pid in pids}
    assert all(t.worker == f"{socket.gethostname()}:{t.metrics['pid']}" for t in trials)
    cores = len(os.sched_getaffinity(0))
    assert {t.metrics["threads"] for t in trials} == {max(1, cores // 2)}  # the cores divided among workers


def test_local_pins_one_gpu_per_worker_and_relays_stop() -> None:
    # No GPU here: the pinning is the environment a worker is born with, which is what CUDA reads.
    ex = LocalExecutor(2, gpus="3,5")
    seen = {}
    # the driver's answer to a report reaches that worker alone: stop job 1 at its first step
    ex.start(as_evaluator(evs.Probe(steps=2)), "accuracy", lambda step: step.number == 1)
    try:
        names = []
        for number in range(2):
            names.append(ex.next_worker())
            ex.submit(Job(number, Arch({"1<-0": "nor_conv_3x3"})))
        while len(seen) < 2:
            for done in ex.poll(5.0):
                seen[done.number] = done
    finally:
        ex.shutdown()
    assert [seen[n].worker for n in range(2)] == names  # the worker named at submit ran the job
    assert [n.rsplit("/", 1)[1] for n in names] == ["gpu3", "gpu5"]
    assert seen[0].status == "completed" and seen[0].metrics["cuda_visible"] == "3"
    assert seen[1].status == "pruned" and seen[1].metrics == {"accuracy": 0.5}  # its last report
    assert [LocalExecutor(5, gpus="3,5")._gpu(slot) for slot in range(5)] == ["3", "5", "3", "5", "3"]
    assert LocalExecutor(2, gpus=[])._gpu(0) is None


def test_local_default_workers_and_threads() -> None:
    cores = len(os.sched_getaffinity(0))
    assert LocalExecutor(0, gpus=[]).workers == cores  # no GPU: one per core
    assert LocalExecutor(None, gpus=["0", "1"]).workers == 2  # one per GPU
    assert LocalExecutor(4, gpus=[]).threads == max(1, cores // 4)
    assert LocalExecutor(1, gpus=[]).threads == cores
    with pytest.raises(ValueError, match="workers must be a non-negative integer"):
        LocalExecutor(-1)


def test_local_trains_a_real_cnn_on_digits(sqlite_url: str) -> None:
    ev = TrainingEvaluator("cnn", "digits", TrainConfig(epochs=2, batch_size=256))
    res = automl.search(
        "cnn", ev, strategy="random", trials=4, storage=sqlite_url, name="cnn", executor="local", workers=2, seed=1,
        pruner="asha",  # rungs below 2 epochs: [1]; whether one is stopped there depends on arrival order
    )  # fmt: skip
    trials, steps = _trials(sqlite_url, "cnn")
    assert len(trials) == 4 and {t.status for t in trials} <= {TrialStatus.COMPLETED, TrialStatus.PRUNED}
    for t in trials:
        if t.status is TrialStatus.PRUNED:
            assert [s.step for s in steps[t.number]] == [1]
            continue
        assert 0.0 < t.metrics["accuracy"] <= 1.0 and t.metrics["device"] == "cpu" and t.metrics["epochs"] == 2
        assert [s.step for s in steps[t.number]] == [1, 2]
        assert steps[t.number][-1].metrics["accuracy"] == t.metrics["accuracy"]  # the last epoch is the result
    assert res.best.value == max(t.value for t in trials if t.status is TrialStatus.COMPLETED)


def test_local_sends_closures_by_value() -> None:
    class Local:  # defined in a function: pickle cannot find it by name, cloudpickle sends it by value
        def __call__(self, arch):  # type: ignore[no-untyped-def]
            return {"accuracy": 1.0}

    assert pickle.loads(dump_evaluator(as_evaluator(Local())))(Arch({"x": 1})) == {"accuracy": 1.0}
    assert pickle.loads(dump_evaluator(as_evaluator(lambda arch: {"accuracy": 2.0})))(Arch({})) == {"accuracy": 2.0}


def test_local_refuses_an_evaluator_workers_cannot_import(sqlite_url: str) -> None:
    module = types.ModuleType("_made_up_here")  # exists in this process only
    exec("class Ev:\n    def __call__(self, arch):\n        return {'accuracy': 1.0}\n", module.__dict__)
    module.Ev.__module__ = module.__name__
    sys.modules[module.__name__] = module
    try:
        with pytest.raises(UsageError, match="worker process could not load the evaluator: ModuleNotFoundError"):
            automl.search("nb201", module.Ev(), trials=2, storage=sqlite_url, executor="local", workers=1)
    finally:
        del sys.modules[module.__name__]
    with Store(sqlite_url) as store:
        (search,) = store.list_searches()
        assert store.trials(search.id) == [] and search.driver is None  # nothing ran, the lease is released


# -- ray ---------------------------------------------------------------------------------------------
def test_ray_two_workers_complete_exactly_n(local_ray: None, storage: str) -> None:
    automl.search(
        "nb201", evs.Probe(steps=3, sleep=0.02), strategy="evolution", trials=N, storage=storage, name="ray",
        executor="ray", workers=2, seed=0,
    )  # fmt: skip
    trials = _check_exactly_n(storage, "ray", 3)
    pids = {t.metrics["pid"] for t in trials}
    assert len(pids) == 2 and os.getpid() not in pids
    assert all(t.worker == f"{socket.gethostname()}:{t.metrics['pid']}" for t in trials)


def test_ray_worker_killed_is_retried_and_stop_reaches_the_actor(local_ray: None, sqlite_url: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    marker = tmp_path / "killed"
    automl.search(
        "nb201", evs.KillOnce(str(marker), steps=2), strategy="random", trials=N, storage=sqlite_url, name="rk",
        executor="ray", workers=2, seed=0, pruner=lambda step, metrics: step.number == 5 and step.step == 1,
    )  # fmt: skip
    trials, steps = _trials(sqlite_url, "rk")
    assert marker.exists()
    assert [t.status for t in trials] == [TrialStatus.COMPLETED] * 5 + [TrialStatus.PRUNED] + [
        TrialStatus.COMPLETED
    ] * 2
    assert [s.step for s in steps[5]] == [1]  # stopped at the step the driver said so
    assert sorted(t.attempts for t in trials) == [1] * (N - 1) + [2]  # the lost one ran again, once
    killed_pid = int(marker.read_text())
    retried = next(t for t in trials if t.attempts == 2)
    assert retried.worker != f"{socket.gethostname()}:{killed_pid}"  # on another actor
    assert retried.value == evs.score(retried.arch)["accuracy"]


def test_ray_sizes_workers_to_the_cluster_and_refuses_what_it_lacks(local_ray: None, sqlite_url: str) -> None:
    from automl._ray import RayExecutor

    for per_trial, expected in ((1, 2), (0.5, 4), (2, 1)):  # the local Ray has 2 CPUs
        ex = RayExecutor(0, num_cpus_per_trial=per_trial)
        ex._check_resources()
        assert ex.workers == expected
    with pytest.raises(UsageError, match=r"each trial asks for 1 GPU but the Ray cluster has 0 GPU"):
        automl.search(
            "nb201", evs.score, trials=2, storage=sqlite_url, executor="ray",
            executor_options={"num_gpus_per_trial": 1},
        )  # fmt: skip


# -- the ASHA pruner -------------------------------------------------------------------------------
@pytest.mark.parametrize(("mode", "rf"), [("max", 4), ("min", 3), ("max", 2)])
def test_asha_decides_as_ray_tunes_scheduler(mode: str, rf: int) -> None:
    tune = pytest.importorskip("ray.tune.schedulers")
    reference = tune.ASHAScheduler(
        time_attr="step", metric="acc", mode=mode, max_t=1000, grace_period=1, reduction_factor=rf
    )
    ours = ASHAPruner(reduction_factor=rf, objective="acc" if mode == "max" else "-acc")
    rng = random.Random(rf)
    trials = {n: SimpleNamespace(trial_id=f"t{n}", step=0, quality=rng.random(), stopped=False) for n in range(40)}
    for t in trials.values():
        reference.on_trial_add(None, t)
    decisions = 0
    while any(not t.stopped and t.step < 30 for t in trials.values()):
        t_number = rng.choice([n for n, t in trials.items() if not t.stopped and t.step < 30])  # asynchronous
        t = trials[t_number]
        t.step += 1
        value = t.quality * t.step + rng.gauss(0, 0.3)
        theirs = reference.on_trial_result(None, t, {"step": t.step, "acc": value}) == "STOP"
        mine = ours(Step(t_number, t.step, {"acc": value}), {})
        assert mine == theirs, (t_number, t.step)
        t.stopped = mine
        decisions += mine
    assert decisions > 10


def test_asha_docstring_example_runs() -> None:
    result = doctest.testmod(importlib.import_module("automl._pruners"))
    assert result.attempted > 0 and result.failed == 0


def test_asha_rungs_and_restore() -> None:
    asha = ASHAPruner(min_resource=2, reduction_factor=3, max_resource=20)
    assert asha.rungs(100) == [2, 6, 18]
    assert ASHAPruner(reduction_factor=3, max_resource=9).rungs(9) == [1, 3]  # none at the last epoch
    with pytest.raises(RuntimeError, match="no objective"):
        asha(Step(0, 2, {"acc": 1.0}), {})
    asha.bind("-loss")
    history = [(0, 2, 0.5), (1, 2, 0.4), (2, 2, 0.3), (0, 6, 0.2)]
    live = ASHAPruner(min_resource=2, reduction_factor=3, max_resource=20, objective="-loss")
    for n, s, v in history:
        live(Step(n, s, {"loss": v}), {})
    asha.restore(history)
    for probe in (0.1, 0.35, 0.9):  # a new trial at rung 2 is judged the same by both
        assert asha(Step(9, 2, {"loss": probe}), {}) == live(Step(9, 2, {"loss": probe}), {})
        asha._rungs[2].pop(9), live._rungs[2].pop(9)
    assert asha(Step(9, 2, {"loss": 0.9}), {}) is True  # worse than the best third: stopped
    with pytest.raises(UsageError, match="unknown pruner 'fast'; choose one of none, asha"):
        make_pruner("fast", None, "accuracy")
    with pytest.raises(ValueError, match="min_resource must be an integer >= 1, got 0"):
        ASHAPruner(min_resource=0)


def test_asha_on_resume_is_rebuilt_from_the_store(sqlite_url: str) -> None:
    asha = ASHAPruner(reduction_factor=2)
    automl.search(
        "nb201", evs.Curves(steps=4), strategy="random", trials=10, storage=sqlite_url, name="re", seed=5, pruner=asha
    )
    rebuilt = make_pruner(ASHAPruner(reduction_factor=2), None, "accuracy")
    with Store(sqlite_url) as store:
        restore_pruner(rebuilt, store, store.get_search("re").id)
    assert rebuilt._rungs == asha._rungs
    trained = make_pruner("asha", TrainingEvaluator("cnn", "digits", TrainConfig(epochs=8)), "-loss")
    assert (trained.max_resource, trained.metric, trained.maximize) == (8, "loss", False)
