"""Final training: the best architectures of a search retrained on train+val, scored on test.

The search selects on the validation split; its "best" is therefore optimistic. ``final``
retrains the top ``k`` architectures from scratch on train+val with the search's recipe, for
several seeds, and scores each on the test split that the search never saw. Every training is
stored as it finishes (``store.FinalRecord``), so an interrupted ``final`` resumes where it stopped
and a second call with the same settings only reads.

>>> summaries = automl.final("demo", top=3, seeds=3)          # doctest: +SKIP
>>> summaries[0].number, summaries[0].mean, summaries[0].std  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import math
import statistics
import sys
from collections.abc import Callable
from dataclasses import dataclass

from automl._checks import check_positive_int
from automl._errors import UsageError
from automl._rescore import rescored
from automl._resolve import evaluator_from_spec, open_store, resolve_space
from search_spaces import Arch
from store import FinalRecord, SearchRecord, Store, TrialRecord, queries

__all__ = ["FinalSummary", "final", "summarize"]


@dataclass(frozen=True)
class FinalSummary:
    """One architecture's final trainings: test accuracy over seeds."""

    number: int  # the trial whose architecture this is
    arch: dict[str, object]
    search_value: float | None  # its objective during the search (validation)
    runs: tuple[FinalRecord, ...]
    pool_score: float | None = None  # its validation accuracy re-scored on the search's final pool (shared)

    @property
    def accuracies(self) -> list[float]:
        return [r.test_accuracy for r in self.runs if r.test_accuracy is not None]

    @property
    def mean(self) -> float | None:
        return statistics.fmean(self.accuracies) if self.accuracies else None

    @property
    def std(self) -> float | None:
        """Sample standard deviation over seeds (0 for one seed)."""
        acc = self.accuracies
        return statistics.stdev(acc) if len(acc) > 1 else (0.0 if acc else None)

    def to_json(self) -> dict[str, object]:
        return {
            "trial": self.number,
            "test_accuracy_mean": self.mean,
            "test_accuracy_std": self.std,
            "seeds": len(self.runs),
            "search_value": self.search_value,
            "pool_score": self.pool_score,
            "arch": self.arch,
        }


def summarize(
    finals: list[FinalRecord], trials: dict[int, TrialRecord], epochs: int | None = None
) -> list[FinalSummary]:
    """Group final trainings by trial (only those of ``epochs`` when given), best mean first."""
    by_trial: dict[int, list[FinalRecord]] = {}
    for f in finals:
        if epochs is None or f.epochs == epochs:
            by_trial.setdefault(f.number, []).append(f)
    out = [
        FinalSummary(n, dict(trials[n].arch) if n in trials else {}, trials[n].value if n in trials else None,
                     tuple(sorted(runs, key=lambda r: r.seed)))
        for n, runs in by_trial.items()
    ]  # fmt: skip
    return sorted(out, key=lambda s: (-(s.mean if s.mean is not None else -math.inf), s.number))


def _chosen(store: Store, search: SearchRecord, top: int) -> list[TrialRecord]:
    """The ``top`` best completed trials, one per distinct architecture."""
    seen: set[str] = set()
    chosen: list[TrialRecord] = []
    for t in queries.leaderboard(store, search.id, max(top * 5, 20)):
        if t.arch_key not in seen:
            seen.add(t.arch_key)
            chosen.append(t)
        if len(chosen) == top:
            break
    if not chosen:
        raise UsageError(f"search {search.name!r} has no completed trial to retrain; run or resume the search first")
    return chosen


def _evaluator(search: SearchRecord):  # type: ignore[no-untyped-def]
    c = search.config
    if c.evaluator != "train" and not c.evaluator.startswith("shared"):  # shared: retrained stand-alone
        raise UsageError(
            f"final training retrains on the search's data; search {search.name!r} used evaluator "
            f"{c.evaluator!r}, not a training evaluator (--evaluator train)"
        )
    space, _ = resolve_space(c.space)
    return evaluator_from_spec(
        "train", space, dataset=c.dataset, epochs=c.epochs, seed=c.seed, weights_dir=c.keep_weights,
        recipe=c.recipe, data_options={"target": c.target, "image_size": c.image_size},
    )  # fmt: skip


def _check(top: int, seeds: int, epochs: int | None, rescore: int) -> None:
    check_positive_int("top", top)
    check_positive_int("seeds", seeds)
    if epochs is not None:
        check_positive_int("epochs", epochs)
    if isinstance(rescore, bool) or not isinstance(rescore, int) or rescore < 0:
        raise UsageError(f"rescore must be an integer >= 0, got {rescore!r}")


def _pick(
    search: SearchRecord, candidates: list[TrialRecord], top: int, rescore: int
) -> tuple[list[TrialRecord], dict[int, float]]:
    """The ``top`` of ``candidates`` (best first), and the pool scores they were chosen by."""
    if not rescore:
        return candidates[:top], {}
    scores = rescored(search, candidates)
    ranked = sorted(candidates, key=lambda t: -scores[t.number])  # stable: a tie keeps the search's order
    return ranked[:top], scores


def final(
    name: str,
    *,
    storage: str | None = None,
    top: int = 3,
    epochs: int | None = None,
    seeds: int = 3,
    rescore: int = 0,
    progress: bool | None = None,
    on_run: Callable[[FinalRecord], None] | None = None,
) -> list[FinalSummary]:
    """Retrain the ``top`` best architectures of search ``name`` on train+val for seeds
    ``0..seeds-1`` (``epochs`` each; default: the search's), score them on the test split, store
    each result, and return a summary per architecture, best mean test accuracy first.

    For a weight-sharing search with ``rescore`` > 0, the search's best ``rescore`` are first
    scored again on its final pool and the ``top`` of those are retrained (see
    :mod:`automl._rescore`); 0 keeps the search's order."""
    _check(top, seeds, epochs, rescore)
    open_store(storage, read_only=True).close()  # a mistyped --storage is an error, not a new empty database
    store = open_store(storage)
    try:
        search = store.get_search(name)
        chosen, scores = _pick(search, _chosen(store, search, max(top, rescore)), top, rescore)
        evaluator = _evaluator(search)
        epochs = epochs or getattr(getattr(evaluator, "config", None), "epochs", None) or 10
        done = {(f.number, f.seed) for f in store.finals(search.id) if f.epochs == epochs}
        todo = [(t, s) for t in chosen for s in range(seeds) if (t.number, s) not in done]
        show = progress if progress is not None else sys.stderr.isatty()
        from automl._progress import task_bar

        with task_bar(f"final {search.name}", len(todo), enabled=show) as advance:
            for trial, seed in todo:
                metrics = evaluator.final(Arch(trial.arch), seed=seed, epochs=epochs)
                record = store.add_final(search.id, trial.number, seed=seed, epochs=epochs, metrics=metrics)
                advance()
                if on_run is not None:
                    on_run(record)
        wanted = {t.number for t in chosen}
        finals = [f for f in store.finals(search.id) if f.number in wanted and f.seed < seeds]
        summaries = summarize(finals, {t.number: t for t in chosen}, epochs)
        return [dataclasses.replace(s, pool_score=scores.get(s.number)) for s in summaries]
    finally:
        store.close()
