"""The search loop: ask -> store -> evaluate -> store -> tell, with K evaluations in flight.

The database is the source of truth. Every proposal is stored before it is evaluated and every
result before the proposer hears of it, so the loop can die anywhere and a new driver rebuilds
everything from the store: the proposer from its last checkpoint plus the results stored after
it, and orphaned ``running`` trials are re-run.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from automl._paused import Checkpoints, checkpoint_root
from automl.executors._base import Executor
from automl.executors._jobs import Done, Job, Step, worker_name
from automl.pruners import PRUNED_KEY, ask_pruner
from controller import Proposer, Result
from evaluators import Evaluator
from search_spaces import Arch, InvalidArchitecture, Space
from store import (
    CHECKPOINT_KEY,
    SearchConfig,
    SearchRecord,
    StorageError,
    Store,
    TrialRecord,
    TrialStatus,
    held_checkpoint,
)

__all__ = ["LoopStats", "SearchFailed", "run_loop", "to_result"]

_HEARTBEAT_SECONDS = 5.0
# Results told since the last checkpoint are told again on resume, so checkpoints only bound
# that replay: one every 50 results (and at exit, and whenever the proposer asks, e.g. after
# an RL policy update) keeps the per-trial cost down.
_CHECKPOINT_EVERY = 50
_FINISHED = (TrialStatus.COMPLETED, TrialStatus.FAILED, TrialStatus.PRUNED, TrialStatus.INFEASIBLE)


class SearchFailed(RuntimeError):
    """The search stopped because too many trials failed; the message has the last error."""


@dataclass
class LoopStats:
    """Live counters, read by the progress display."""

    target: int | None  # trials wanted; None: no cap (a budget or time limit stops the search)
    done: int = 0  # completed + pruned: evaluations that count towards ``target``
    failed: int = 0
    infeasible: int = 0
    in_flight: int = 0
    spent: float = 0.0  # simulated cost of finished trials (metric "cost")
    best: float | None = None
    best_number: int | None = None
    started: float = field(default_factory=time.monotonic)
    budget: float | None = None  # the summed "cost" at which to stop
    time_limit: float | None = None  # seconds of driver time at which to stop proposing
    elapsed: float = 0.0  # seconds of driver time so far, over every resume


def to_result(t: TrialRecord, objectives: tuple[str, ...]) -> Result:
    """The proposer's view of a stored trial: scores oriented so that higher is better."""
    scores: list[float] = []
    if t.status in (TrialStatus.COMPLETED, TrialStatus.PRUNED):
        for o in objectives:
            v = t.metrics.get(o.lstrip("-"))
            if isinstance(v, (int, float)) and not math.isnan(v):
                scores.append(-float(v) if o.startswith("-") else float(v))
    complete = len(scores) == len(objectives)
    return Result(
        number=t.number,
        arch=Arch(t.arch),
        status=t.status.value,  # type: ignore[arg-type]
        score=scores[0] if complete else None,
        scores=tuple(scores) if complete else (),
        metrics=t.metrics,
        parent=t.parent,
        info=t.info,
    )


def _better(a: float, b: float | None, maximize: bool) -> bool:
    return b is None or (a > b if maximize else a < b)


@dataclass
class _Loop:
    store: Store
    search: SearchRecord
    space: Space
    proposer: Proposer
    evaluator: Evaluator
    executor: Executor
    config: SearchConfig
    on_update: Callable[[LoopStats], None]
    pruner: Callable[[Step, Mapping[str, Any]], bool] | None = None
    driver: str = field(default_factory=worker_name)

    def __post_init__(self) -> None:
        self.sid = self.search.id
        self.trials, self.budget = self.config.trials, self.config.budget
        self.retries, self.max_failures = self.config.retries, self.config.max_failures
        self.stats = LoopStats(self.trials, budget=self.budget, time_limit=self.config.time)
        self.stats.elapsed = self.search.elapsed_seconds
        self._clock = time.monotonic()  # driver time up to here is in stats.elapsed
        self._unrecorded = 0.0  # ... and this much of it not yet in the store
        self.pending: list[TrialRecord] = []
        self.in_flight: dict[int, TrialRecord] = {}
        self.last_seq = 0
        self.failures_in_row = 0
        self.last_error = ""
        self.told_since_checkpoint = 0
        self._last_beat = 0.0
        # A pruner that takes stops back (ASHA's promotions) and an evaluator that can pause:
        # stopped trials keep their training state and promoted ones go on from it.
        self.pausing = bool(getattr(self.pruner, "promotes", False)) and callable(
            getattr(self.evaluator, "evaluate_pausable", None)
        )
        self.paused: dict[int, TrialRecord] = {}  # paused trials that may be promoted
        self.checkpoints = Checkpoints(checkpoint_root(self.store.url), self.search.name, self.sid)

    # -- resume ---------------------------------------------------------------------------
    def restore(self) -> None:
        objectives = self.search.objectives
        after = 0
        if not self.proposer.replay:
            ckpt = self.store.load_checkpoint(self.sid)
            if ckpt is not None:
                after, state = ckpt
                self.proposer.load_state_dict(state)
        self.last_seq = after
        # One read: every stored result counts; those after the checkpoint are told again.
        for t in self.store.trials(self.sid, statuses=_FINISHED, order="result_seq"):
            self._count(t)
            if (t.result_seq or 0) > after:
                self.proposer.tell(to_result(t, objectives))
                self.last_seq = t.result_seq or self.last_seq
        self.store.requeue_trials(self.sid)  # orphans of a dead driver run again (promoted ones pause again)
        self.pending = self.store.trials(self.sid, statuses=[TrialStatus.PROPOSED])
        if self.pausing:
            self.paused = {
                t.number: t for t in self.store.trials(self.sid, statuses=[TrialStatus.PRUNED]) if t.checkpoint
            }
        stored = self.store.trials(self.sid, order="-number", limit=1)
        if stored:
            # The generator restored from a checkpoint would replay asks made after it, whose
            # proposals are already stored: fold the trial count in so none is proposed twice.
            self.proposer.reseed(stored[0].number + 1)

    def _count(self, t: TrialRecord, sign: int = 1) -> None:
        """Count a result in the stats (``sign=-1``: take a paused trial's back as it is promoted)."""
        s = self.stats
        if t.status in (TrialStatus.COMPLETED, TrialStatus.PRUNED):
            s.done += sign
        elif t.status is TrialStatus.FAILED:
            s.failed += sign
        elif t.status is TrialStatus.INFEASIBLE:
            s.infeasible += sign
        cost = t.metrics.get("cost")
        if isinstance(cost, (int, float)) and not math.isnan(cost):
            s.spent += sign * float(cost)
        if t.status is TrialStatus.COMPLETED and t.value is not None and _better(t.value, s.best, self.search.maximize):
            s.best, s.best_number = t.value, t.number

    # -- main loop ------------------------------------------------------------------------
    def want_more(self) -> bool:
        """Whether to start another evaluation: every stopping rule given still allows it."""
        return self.may_go_on() and (self.trials is None or self.stats.done + len(self.in_flight) < self.trials)

    def may_go_on(self) -> bool:
        """Whether the budget and the time limit allow more work (promotions: not a new trial)."""
        s = self.stats
        self._tick()
        if self.budget is not None and s.spent >= self.budget:
            return False
        return s.time_limit is None or s.elapsed < s.time_limit

    def _tick(self) -> float:
        """Move driver time into ``stats.elapsed``; the seconds added."""
        now = time.monotonic()
        delta, self._clock = now - self._clock, now
        self.stats.elapsed += delta
        self._unrecorded += delta
        return delta

    def record_elapsed(self) -> None:
        """Add the driver time not yet stored to the search's ``elapsed_seconds``."""
        self._tick()
        if self._unrecorded > 0:
            self.store.add_elapsed(self.sid, self._unrecorded)
            self._unrecorded = 0.0

    def run(self) -> LoopStats:
        self.executor.start(self.evaluator, self.search.objective, self._on_step)
        self.on_update(self.stats)
        while True:
            self._fill()
            if not self.in_flight:
                break
            for done in self.executor.poll(timeout=1.0):
                self._finish(done)
            self._heartbeat()
        return self.stats

    def _fill(self) -> None:
        while len(self.in_flight) < self.executor.capacity and self.may_go_on():
            worker = self.executor.next_worker()
            # Promotions first, as in ASHA: a paused trial moved up replaces a new one. It is
            # counted again when it finishes, so the trials target does not hold it back.
            trial, state = self._promote(worker)
            if trial is None:
                if not self.want_more():
                    return
                if self.pending:
                    trial = self.store.start_trial(self.sid, self.pending.pop(0).number, worker=worker)
                else:
                    trial = self._propose(worker)
            if trial is None:
                return
            self.in_flight[trial.number] = trial
            self.stats.in_flight = len(self.in_flight)
            self.executor.submit(Job(trial.number, Arch(trial.arch), trial.attempts, self.pausing, state))

    def _promote(self, worker: str) -> tuple[TrialRecord | None, bytes | None]:
        """The paused trial the pruner promotes now, running again, with its checkpoint."""
        while self.paused:
            steps = {n: int(t.checkpoint["step"]) for n, t in self.paused.items() if t.checkpoint}
            number = self.pruner.promotion(steps)  # type: ignore[union-attr]
            if number is None or number not in self.paused:
                return None, None
            trial = self.paused.pop(number)
            state = Checkpoints.read(trial.checkpoint["path"]) if trial.checkpoint else None
            if state is None:
                continue  # its file is gone: it stays pruned
            self._count(trial, -1)
            return self.store.promote_trial(self.sid, number, worker=worker), state
        return None, None

    def _propose(self, worker: str) -> TrialRecord | None:
        proposal = self.proposer.ask()
        if proposal is None:
            if not self.in_flight:
                raise SearchFailed(f"strategy {self.search.strategy!r} proposed nothing with no trial in flight")
            return None
        try:
            arch = self.space.validate(proposal.arch).arch
        except InvalidArchitecture as e:  # a proposer bug, not the user's
            raise SearchFailed(f"strategy {self.search.strategy!r} proposed an invalid architecture: {e}") from e
        return self.store.add_trial(
            self.sid,
            arch=arch,
            arch_key=arch.key,
            proposer=self.search.strategy,
            parent=proposal.parent,
            info=dict(proposal.info),
            start=True,
            worker=worker,
        )

    def _on_step(self, step: Step) -> bool:
        value = step.metrics.get(self.search.objective)
        number = float(value) if isinstance(value, (int, float)) else None
        # Asked before the report is stored, so that a stop is stored with its reason (a driver
        # that dies in between loses the report, and the pruner rebuilt from the stored reports
        # does not hear it either).
        reason = ask_pruner(self.pruner, step)
        metrics = step.metrics if reason is None else {**step.metrics, PRUNED_KEY: reason}
        self.store.report_step(self.sid, step.number, step.step, metrics, number)
        return reason is not None

    def _finish(self, done: Done) -> None:
        trial = self.in_flight.pop(done.number)
        self.stats.in_flight = len(self.in_flight)
        if done.transient and trial.attempts <= self.retries:
            (requeued,) = self.store.requeue_trials(self.sid, [done.number])
            if requeued.status is TrialStatus.PRUNED:  # a promoted trial: paused at its checkpoint again
                self.paused[requeued.number] = requeued
                self._count(requeued)
            else:
                self.pending.insert(0, requeued)
            return
        metrics = dict(done.metrics)
        if done.checkpoint is not None and done.paused_at is not None:
            try:
                path = self.checkpoints.write(done.number, done.paused_at, done.checkpoint)
                metrics[CHECKPOINT_KEY] = {"path": path, "step": done.paused_at}
            except OSError:
                pass  # no room on disk, no permission: pruned for good, as without pausing
        value = metrics.get(self.search.objective)
        record = self.store.finish_trial(
            self.sid,
            done.number,
            TrialStatus(done.status),
            metrics=metrics,
            value=float(value) if isinstance(value, (int, float)) and not math.isnan(value) else None,
            error=done.error,
        )
        old = held_checkpoint(trial.metrics)  # a promoted trial's earlier checkpoint
        if old is not None and old != held_checkpoint(metrics):
            Checkpoints.delete(old["path"])  # the store names it no more
        if record.checkpoint:
            self.paused[record.number] = record
        self._count(record)
        self.proposer.tell(to_result(record, self.search.objectives))
        self.last_seq = record.result_seq or self.last_seq
        self.told_since_checkpoint += 1
        if self.proposer.checkpoint_due() or self.told_since_checkpoint >= _CHECKPOINT_EVERY:
            self.checkpoint()
        self._track_failures(record)
        self.on_update(self.stats)

    def checkpoint(self) -> None:
        """Store the proposer's state as of the last result told (replaying proposers need none)."""
        if not self.proposer.replay and self.told_since_checkpoint:
            self.store.save_checkpoint(self.sid, self.last_seq, self.proposer.state_dict())
        self.told_since_checkpoint = 0

    def _track_failures(self, record: TrialRecord) -> None:
        if record.status is not TrialStatus.FAILED:
            self.failures_in_row = 0
            return
        self.failures_in_row += 1
        self.last_error = record.error or ""
        if self.failures_in_row >= self.max_failures:
            raise SearchFailed(
                f"{self.failures_in_row} trials failed in a row; last error (trial {record.number}): {self.last_error}"
            )

    def _heartbeat(self) -> None:
        now = time.monotonic()
        if now - self._last_beat >= _HEARTBEAT_SECONDS:
            self.store.heartbeat(self.sid, self.driver, self.in_flight)
            self.record_elapsed()
            self._last_beat = now

    def abandon_in_flight(self) -> None:
        """Put unfinished trials back to ``proposed`` so the next driver runs them."""
        if self.in_flight:
            self.store.requeue_trials(self.sid, list(self.in_flight))
            self.in_flight.clear()


def run_loop(
    store: Store,
    search: SearchRecord,
    space: Space,
    proposer: Proposer,
    evaluator: Evaluator,
    executor: Executor,
    *,
    config: SearchConfig | None = None,
    on_update: Callable[[LoopStats], None] = lambda s: None,
    pruner: Callable[[Step, Mapping[str, Any]], bool] | None = None,
    on_acquired: Callable[[SearchRecord], None] = lambda record: None,
) -> LoopStats:
    """Run (or resume) ``search`` until ``config.trials`` evaluations are done or its budget is spent.

    Takes the search's driver lease first (:class:`store.SearchBusy` if a live driver holds it),
    and only then stores ``config`` (a resume's new targets) and calls ``on_acquired``.
    On any exit, trials still in flight go back to ``proposed`` and the lease is released, as far
    as the database allows (see :func:`_wind_down`); on an error, that error is the one raised.
    """
    config = config or search.config
    loop = _Loop(store, search, space, proposer, evaluator, executor, config, on_update, pruner)
    store.acquire_search(search.id, loop.driver)
    try:
        if config != search.config:
            store.update_search_config(search.id, config)
        on_acquired(search)
        loop.restore()
        stats = loop.run()
    except BaseException:
        _wind_down(loop, executor, store)
        raise
    _wind_down(loop, executor, store, strict=True)
    return stats


def _wind_down(loop: _Loop, executor: Executor, store: Store, *, strict: bool = False) -> None:
    """Stop the executor, put trials in flight back to ``proposed``, checkpoint, release the lease.

    The database steps are best effort: when the database is still unreachable (the store gave up
    on an outage and now fails at once), trials not put back stay ``running`` and the driver lease
    lapses; the next driver takes the search once the lease has expired and re-runs every
    ``running`` trial (``Store.requeue_trials`` on resume). Every step is tried; ``strict`` (the
    search ended well) raises the first :class:`StorageError` afterwards, otherwise none is.
    """
    failed: StorageError | None = None
    try:
        executor.shutdown()
    finally:
        steps = (loop.abandon_in_flight, loop.checkpoint, loop.record_elapsed,
                 lambda: store.release_search(loop.sid, loop.driver))  # fmt: skip
        for step in steps:
            try:
                step()
            except StorageError as e:
                failed = failed or e
    if strict and failed is not None:
        raise failed
