"""The executor conformance suite and executor-specific tests (the pruners: ``test_pruners.py``).

Every executor (inline, local, ray) goes through the same tests (``harness``: one started
executor per kind for the module, running ``tests.automl._evaluators.Scripted``, which worker
processes and Ray actors import). Ray runs on loopback only (``init_local_ray``), once for this
module, with 4 logical CPUs: the module's Ray harness (0.5 CPU an actor) and a search of 2
workers fit at once.
"""

from __future__ import annotations

import os
import pickle
import socket
import sys
import time
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import automl
from automl import UsageError
from automl.executors import Done, Executor, Job, Step, make_executor
from automl.executors._local import LocalExecutor
from automl.executors._shipping import dump_evaluator
from evaluators import TrainConfig, TrainingEvaluator, as_evaluator
from search_spaces import Arch
from store import Store, TrialStatus
from tests.automl import _evaluators as evs

N = 8
HOST = socket.gethostname()
KINDS = ["inline", "local", "ray"]
OPTIONS: dict[str, dict[str, Any]] = {"inline": {}, "local": {"gpus": []}, "ray": {"num_cpus_per_trial": 0.5}}


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def storage(request: pytest.FixtureRequest, tmp_path) -> str:  # type: ignore[no-untyped-def]
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'automl.db'}"
    return request.getfixturevalue("pg_url")


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    ray = pytest.importorskip("ray")
    from automl.executors._ray import init_local_ray

    init_local_ray(num_cpus=4)
    try:
        yield
    finally:
        ray.shutdown()


def _needs(kind: str, request: pytest.FixtureRequest) -> None:
    if kind == "ray":
        request.getfixturevalue("local_ray")


# -- the conformance suite -------------------------------------------------------------------------------
class Harness:
    """A started executor of 2 workers running :class:`evs.Scripted`, and the steps it handed on."""

    def __init__(self, kind: str) -> None:
        self.kind, self.steps, self.stop = kind, [], set()  # stop: (trial, step) that on_step stops
        self.executor = self._started()
        self._number = 0

    def _started(self) -> Executor:
        executor = make_executor(self.kind, 2, **OPTIONS[self.kind])
        executor.start(as_evaluator(evs.Scripted()), "accuracy", self._on_step)
        return executor

    def restart(self) -> None:
        self.executor.shutdown()
        self.executor = self._started()

    @property
    def parallel(self) -> bool:
        return self.kind != "inline"

    def _on_step(self, step: Step) -> bool:
        self.steps.append(step)
        return (step.number, step.step) in self.stop

    def job(self, **arch: Any) -> Job:
        self._number += 1
        return Job(self._number, Arch(arch))

    def run(self, *jobs: Job, timeout: float = 60.0) -> dict[int, Done]:
        """Submit ``jobs`` (``capacity`` at a time), poll until each is done: number -> Done."""
        pending, done, busy = list(jobs), {}, 0
        deadline = time.monotonic() + timeout
        while pending or busy:
            while pending and busy < self.executor.capacity:
                self.executor.submit(pending.pop(0))
                busy += 1
            assert time.monotonic() < deadline, f"jobs not done within {timeout} s"
            for d in self.executor.poll(1.0):
                done[d.number] = d
                busy -= 1
        return done


@pytest.fixture(scope="module", params=KINDS)
def harness(request: pytest.FixtureRequest) -> Iterator[Harness]:
    _needs(request.param, request)
    h = Harness(request.param)
    try:
        yield h
    finally:
        h.executor.shutdown()


def test_a_job_completes_with_its_metrics_on_the_worker_named(harness: Harness) -> None:
    name = harness.executor.next_worker()
    job = harness.job(do="steps", n=0)
    (done,) = harness.run(job).values()
    assert (done.number, done.status, done.error, done.transient) == (job.number, "completed", None, False)
    assert done.metrics == {"accuracy": 1.0, "pid": done.metrics["pid"]}
    assert done.worker == name and name.split("/")[0] == f"{HOST}:{done.metrics['pid']}"
    assert (done.metrics["pid"] != os.getpid()) is harness.parallel  # a worker process, or the driver


def test_steps_reach_on_step_and_true_prunes_that_trial(harness: Harness) -> None:
    go_on, stopped = harness.job(do="steps", n=3), harness.job(do="steps", n=3)
    harness.stop, harness.steps = {(stopped.number, 2)}, []
    done = harness.run(go_on, stopped)
    assert done[go_on.number].status == "completed"
    third, two_thirds = float(np.float32(1 / 3)), float(np.float32(2 / 3))  # reported as numpy float32
    assert done[stopped.number].status == "pruned" and done[stopped.number].metrics == {"accuracy": two_thirds}
    seen = {n: [(s.step, s.metrics["accuracy"]) for s in harness.steps if s.number == n] for n in done}
    assert seen[go_on.number] == [(1, third), (2, two_thirds), (3, 1.0)]
    assert seen[stopped.number] == [(1, third), (2, two_thirds)]  # no report after the stop
    assert all(type(s.metrics["accuracy"]) is float for s in harness.steps)


def test_an_evaluator_failure_fails_that_trial_only(harness: Harness) -> None:
    not_a_dict = harness.job(do="return", what="list")
    jobs = {
        "ValueError: evaluator exploded (at _evaluators.py:": harness.job(do="raise"),
        "metric 'accuracy' is nan": harness.job(do="return", what="nan"),
        "TypeError: evaluator <tests.automl._evaluators.Scripted": not_a_dict,
    }
    good = harness.job(do="steps", n=0)
    done = harness.run(*jobs.values(), good)
    for error, job in jobs.items():
        assert done[job.number].status == "failed" and not done[job.number].transient
        assert done[job.number].error.startswith(error), done[job.number].error
    assert "must return a dict, got [0.5]" in done[not_a_dict.number].error
    assert done[good.number].status == "completed"  # the workers live on


ODD_METRICS_STORED = {
    "np_float32": {"accuracy": 0.5, "loss": 0.25, "params": 7},
    "torch_0d": {"accuracy": 0.75, "epochs": 3, "ok": True},
    "nested": {"accuracy": 1, "curve": [0.5, {"best": 2.5}], "tags": ["a", None]},
}
ODD_METRICS_REFUSED = {
    "path": "evaluator returned metric 'checkpoint' = PosixPath('/tmp/ckpt.pt') (pathlib.PosixPath), which "
    "cannot be stored as JSON",
    "set": "evaluator returned metric 'ops' = {'conv'} (set), which cannot be stored as JSON",
    "datetime": "evaluator returned metric 'when' = datetime.datetime(2024, 1, 2, 0, 0) (datetime.datetime)",
    "object": "evaluator returned metric 'model' = <object object at ",
    "huge_int": "evaluator returned metric 'flops' = an int of 1329 bits, too large for a float",
    "inf_loss": "evaluator returned metric 'loss' = inf (float); JSON cannot hold NaN or infinities",
    "nan_nested": "evaluator returned metric 'curve'[1] = nan (float)",
    "bool_objective": "metric 'accuracy' is not a number: True (bool)",
    "str_objective": "metric 'accuracy' is not a number: '0.9' (str)",
}


def test_numpy_and_torch_metrics_arrive_as_python_numbers_and_unstorable_ones_fail(harness: Harness) -> None:
    jobs = {what: harness.job(do="return", what=what) for what in [*ODD_METRICS_STORED, *ODD_METRICS_REFUSED]}
    done = {what: d for what, job in jobs.items() for d in [harness.run(job)[job.number]]}
    for what, metrics in ODD_METRICS_STORED.items():
        assert done[what].status == "completed" and done[what].metrics == metrics
        assert [type(v) for v in done[what].metrics.values()] == [type(v) for v in metrics.values()]
    for what, error in ODD_METRICS_REFUSED.items():
        assert done[what].status == "failed" and done[what].error.startswith(error), done[what].error


def test_capacity_jobs_run_at_once(harness: Harness, tmp_path: Path) -> None:
    ex = harness.executor
    parties = ex.capacity if harness.parallel else 1  # inline runs one job per poll
    jobs = [harness.job(do="barrier", folder=str(tmp_path), parties=parties, id=i) for i in range(ex.capacity)]
    names = []
    for job in jobs:
        names.append(ex.next_worker())
        ex.submit(job)
    if harness.parallel:
        assert len(set(names)) == ex.capacity  # one worker each
        with pytest.raises(RuntimeError, match="busy; poll before submitting more"):
            ex.submit(harness.job(do="steps", n=0))
    done: dict[int, Done] = {}
    deadline = time.monotonic() + 60
    while len(done) < len(jobs) and time.monotonic() < deadline:
        done.update((d.number, d) for d in ex.poll(1.0))
    assert {d.status for d in done.values()} == {"completed"} and len(done) == len(jobs)
    assert all(d.metrics["accuracy"] >= parties for d in done.values())  # all there at once (not timed out)
    assert sorted(d.worker for d in done.values()) == sorted(names)


def test_a_killed_worker_is_a_transient_failure_and_its_slot_is_refilled(harness: Harness) -> None:
    if not harness.parallel:
        pytest.skip("inline has no worker of its own to kill")
    kill = harness.job(do="kill")
    (lost,) = harness.run(kill).values()
    assert (lost.number, lost.status, lost.transient) == (kill.number, "failed", True)
    why = "worker process died (signal 9, SIGKILL)" if harness.kind == "local" else "Ray worker died"
    assert lost.error.startswith(f"{why} after "), lost.error
    assert f"on trial {kill.number} ({lost.worker})" in lost.error
    after = harness.run(harness.job(do="steps", n=0), harness.job(do="steps", n=0))  # one on each worker
    assert {d.status for d in after.values()} == {"completed"}
    workers = {d.worker for d in after.values()}
    assert len(workers) == 2 and lost.worker not in workers  # both slots hold a live worker


def test_shutdown_abandons_running_jobs(harness: Harness, tmp_path: Path) -> None:
    ex = harness.executor
    for _ in range(ex.capacity):
        ex.submit(harness.job(do="stall", folder=str(tmp_path)))
    if harness.parallel:
        deadline = time.monotonic() + 60
        while len(os.listdir(tmp_path)) < ex.capacity:
            assert time.monotonic() < deadline, "the jobs did not start"
            time.sleep(0.05)
    started = time.monotonic()
    ex.shutdown()
    assert time.monotonic() - started < 15  # not the minute the jobs would take
    pids = [int(p) for p in os.listdir(tmp_path)]
    deadline = time.monotonic() + 15
    while not all(_process_gone(p) for p in pids):
        assert time.monotonic() < deadline, "a worker outlived shutdown"
        time.sleep(0.1)
    if not harness.parallel:
        assert ex.poll(0.0) == []  # the queued jobs never run
    harness.restart()


def _process_gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return True
    return state in ("Z", "X")


# -- whole searches -----------------------------------------------------------------------------------------
def _trials(url: str, name: str):  # type: ignore[no-untyped-def]
    with Store(url) as store:
        search = store.get_search(name)
        trials = store.trials(search.id)
        steps = {t.number: store.steps(search.id, t.number) for t in trials}
    return trials, steps


@pytest.mark.parametrize("kind", KINDS)
def test_a_search_completes_exactly_n(kind: str, storage: str, request: pytest.FixtureRequest) -> None:
    _needs(kind, request)
    automl.search(
        "nb201", evs.Probe(steps=3, sleep=0.02), strategy="evolution", trials=N, storage=storage, name=kind,
        executor=kind, workers=2, seed=0,
    )  # fmt: skip
    trials, steps = _trials(storage, kind)
    assert [t.number for t in trials] == list(range(N))
    assert all(t.status is TrialStatus.COMPLETED for t in trials), [(t.number, t.status, t.error) for t in trials]
    assert all(t.value == evs.score(t.arch)["accuracy"] for t in trials)  # the worker's result, unchanged
    # every epoch report reached the driver and was stored, once
    assert all([s.step for s in steps[t.number]] == [1, 2, 3] for t in trials)
    # the stored worker is the process that ran the trial, "host:pid"
    assert all(t.worker.split("/")[0] == f"{HOST}:{t.metrics['pid']}" for t in trials)
    pids = {t.metrics["pid"] for t in trials}
    if kind == "inline":
        assert pids == {os.getpid()}
    else:  # two workers, not the driver
        assert len(pids) == 2 and os.getpid() not in pids


# -- local ------------------------------------------------------------------------------------------------
def test_local_pins_one_gpu_per_worker_and_divides_the_cores() -> None:
    # No GPU here: the pinning is the environment a worker is born with, which is what CUDA reads.
    ex = LocalExecutor(2, gpus="3,5")
    ex.start(as_evaluator(evs.Probe(steps=0)), "accuracy", lambda step: False)
    try:
        names = [ex.next_worker()]
        ex.submit(Job(0, Arch({"1<-0": "nor_conv_3x3"})))
        names.append(ex.next_worker())
        ex.submit(Job(1, Arch({"1<-0": "nor_conv_3x3"})))
        seen: dict[int, Done] = {}
        while len(seen) < 2:
            seen.update((d.number, d) for d in ex.poll(5.0))
    finally:
        ex.shutdown()
    assert [seen[n].worker for n in range(2)] == names  # the worker named at submit ran the job
    assert [n.rsplit("/", 1)[1] for n in names] == ["gpu3", "gpu5"]
    assert [seen[n].metrics["cuda_visible"] for n in range(2)] == ["3", "5"]
    cores = len(os.sched_getaffinity(0))
    assert {seen[n].metrics["threads"] for n in range(2)} == {max(1, cores // 2)}  # the cores divided
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
    with pytest.raises(ValueError, match="threads must be None or an integer >= 1, got 0"):
        LocalExecutor(1, threads=0)


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


# -- ray ----------------------------------------------------------------------------------------------------
def test_ray_runs_on_loopback_without_a_dashboard(local_ray: None) -> None:
    import ray

    assert {node["NodeManagerAddress"] for node in ray.nodes()} == {"127.0.0.1"}
    context = ray.get_runtime_context()
    assert context.gcs_address.startswith("127.0.0.1:")
    assert not ray.worker.global_worker.node.address_info.get("webui_url")


def test_ray_sizes_workers_to_the_cluster_and_refuses_what_it_lacks(local_ray: None, sqlite_url: str) -> None:
    from automl.executors._ray import RayExecutor

    for per_trial, expected in ((1, 4), (0.5, 8), (3, 1)):  # the local Ray has 4 logical CPUs
        ex = RayExecutor(0, num_cpus_per_trial=per_trial)
        ex._check_resources()
        assert ex.workers == expected
    with pytest.raises(UsageError, match=r"each trial asks for 1 GPU but the Ray cluster has 0 GPU"):
        automl.search(
            "nb201", evs.score, trials=2, storage=sqlite_url, executor="ray",
            executor_options={"num_gpus_per_trial": 1},
        )  # fmt: skip
    with pytest.raises(ValueError, match="num_cpus_per_trial must be a number >= 0, got -1"):
        RayExecutor(1, num_cpus_per_trial=-1)


# -- pause and promote --------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["local", "ray"])
def test_paused_trials_travel_back_and_promoted_ones_resume_on_workers(
    kind: str, request: pytest.FixtureRequest, sqlite_url: str
) -> None:
    from tests.automl.test_promotion import check_pause_and_promote

    _needs(kind, request)
    automl.search(
        "nb201", evs.PausableCurves(steps=9, fade=0.97), strategy="random", trials=40, storage=sqlite_url,
        name="pp", seed=1, executor=kind, workers=2, executor_options=OPTIONS[kind],
        pruner="asha", pruner_options={"max_resource": 9, "reduction_factor": 2},
    )  # fmt: skip
    promoted = check_pause_and_promote(sqlite_url, "pp", 9)
    with Store(sqlite_url) as store:
        trials = store.trials(store.get_search("pp").id)
    assert {t.worker.split("/")[0] for t in promoted} - {f"{HOST}:{os.getpid()}"}  # resumed on workers
    assert len(trials) == 40
