"""A search from its :class:`SearchConfig`: ``prepare(config)`` resolves and checks everything,
``Search.run()`` creates or resumes it in the store and drives the loop.

``prepare`` does all the checking that can be done without the database, so bad input fails
before anything is stored or printed; ``run`` takes the driver lease *before* it records a
resume's new targets, so a refused second driver changes nothing.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import controller
from automl._checks import check_name
from automl._errors import UsageError
from automl._loop import run_loop
from automl._resolve import config as make_config
from automl._resolve import discover, evaluator_from_spec, objectives_from_text, open_store, resolve_space
from automl._result import SearchResult
from automl.executors import Executor, make_executor
from automl.pruners import make_pruner, restore_pruner
from controller import Proposer
from evaluators import Evaluator, as_evaluator
from search_spaces import Space
from store import SearchConfig, SearchRecord, Store

__all__ = ["Search", "load", "prepare", "search"]

OnStart = Callable[[SearchRecord, bool], None]


@dataclass(frozen=True)
class Search:
    """A prepared search: its config and the live objects built from it. Run it with :meth:`run`."""

    config: SearchConfig
    name: str | None  # None: named "<space>-<strategy>-<n>" when created
    storage: str
    space: Space
    evaluator: Evaluator
    proposer: Proposer
    executor: Executor
    pruner: Any

    def run(self, *, progress: bool | None = None, on_start: OnStart | None = None) -> SearchResult:
        """Create (or resume) the search in the store and run it to its target.

        ``on_start(record, resuming)`` is called once the search is stored and this process
        drives it (the CLI prints its header there). A stored search of the same name resumes:
        completed trials are kept, interrupted ones re-run, the strategy is rebuilt from the store.
        """
        store = open_store(self.storage)
        try:
            record, resuming = self._create_or_find(store)
            restore_pruner(self.pruner, store, record.id)
            show = progress if progress is not None else sys.stderr.isatty()
            from automl._progress import progress_bar

            with progress_bar(record.name, self.config.trials, enabled=show) as on_update:

                def started(acquired: SearchRecord) -> None:
                    if on_start is not None:
                        on_start(acquired, resuming)

                run_loop(
                    store, record, self.space, self.proposer, self.evaluator, self.executor,
                    config=self.config, on_update=on_update, pruner=self.pruner, on_acquired=started,
                )  # fmt: skip
            return SearchResult(record.name, store.url, record)
        finally:
            store.close()

    def _create_or_find(self, store: Store) -> tuple[SearchRecord, bool]:
        found = store.find_search(self.name) if self.name else None
        if found is None:
            stem = f"{self.space.name}-{self.config.strategy}"
            return store.create_search(self.name, self.config, stem=stem), False
        _check_resumable(found.config, self.config, found.name)
        return found, True


def _check_resumable(stored: SearchConfig, asked: SearchConfig, name: str) -> None:
    """A resume must search the same thing the same way; only targets and execution may change."""
    for label, old, new in (
        ("space", stored.space, asked.space),
        ("strategy", stored.strategy, asked.strategy),
        ("objective", ",".join(stored.objectives), ",".join(asked.objectives)),
        ("evaluator", stored.evaluator, asked.evaluator),
        ("dataset", stored.dataset, asked.dataset),
        ("epochs", stored.epochs, asked.epochs),
        ("target", stored.target, asked.target),
        ("image size", stored.image_size, asked.image_size),
        ("recipe", dict(stored.recipe), dict(asked.recipe)),
        ("strategy options", dict(stored.strategy_options), dict(asked.strategy_options)),
    ):
        if old != new:
            raise UsageError(
                f"search {name!r} exists with {label} {old!r}, not {new!r}: "
                "resume it with the same options or choose another name"
            )


def prepare(
    config: SearchConfig,
    *,
    name: str | None = None,
    storage: str | None = None,
    space: Space | None = None,
    evaluator: Evaluator | Callable[..., Mapping[str, Any]] | None = None,
    pruner: Any = None,
) -> Search:
    """Resolve and check ``config``: the space, evaluator, strategy, executor and pruner.

    ``space``, ``evaluator`` and ``pruner`` are live objects from Python that stand in for
    the config's text specs. Raises :class:`UsageError` (and the space's own errors) naming
    the first thing that is wrong; nothing is stored.
    """
    if name is not None:
        check_name(name)
    space_obj = space if space is not None else resolve_space(config.space)[0]
    ev = _evaluator(config, space_obj, evaluator)
    if ev.context:
        space_obj = space_obj.bind(**ev.context)
    discover(space_obj)
    proposer = _proposer(config, space_obj)
    if config.evaluator.startswith("shared") and (config.executor != "inline" and config.workers != 1):
        raise UsageError("the shared evaluator trains one pool of weights: use --executor inline (or --workers 1)")
    exe = _executor(config)
    live_pruner = make_pruner(
        pruner if pruner is not None else config.pruner, ev, config.objective, config.maximize, config.pruner_options
    )
    config = config.replace(space_info=space_obj.describe(), evaluator_info=ev.describe())
    from automl._resolve import default_storage

    return Search(config, name, storage or default_storage(), space_obj, ev, proposer, exe, live_pruner)


def _evaluator(config: SearchConfig, space: Space, given: Any) -> Evaluator:
    if given is not None:
        try:
            return as_evaluator(given)
        except TypeError as e:
            raise UsageError(str(e)) from e
    return evaluator_from_spec(
        config.evaluator,
        space,
        dataset=config.dataset,
        epochs=config.epochs,
        seed=config.seed,
        weights_dir=config.keep_weights,
        recipe=config.recipe,
        data_options={"target": config.target, "image_size": config.image_size},
    )


def _proposer(config: SearchConfig, space: Space) -> Proposer:
    try:
        proposer = controller.make(config.strategy, space, seed=config.seed, **dict(config.strategy_options))
    except (ValueError, TypeError) as e:  # a bad option value: the user's input
        if isinstance(e, controller.UnknownStrategy):
            raise
        raise UsageError(f"strategy {config.strategy!r}: {e}") from e
    if proposer.objectives > 1 and len(config.objectives) < 2:
        raise UsageError(
            f"strategy {config.strategy!r} optimizes several objectives; give two or more (e.g. accuracy,-params)"
        )
    return proposer


def _executor(config: SearchConfig) -> Executor:
    if config.workers == 0 and config.executor == "inline":
        raise UsageError("workers must be a positive integer for the inline executor, got 0")
    try:
        return make_executor(config.executor, config.workers, **dict(config.executor_options))
    except (ValueError, TypeError) as e:
        raise UsageError(str(e)) from e


def search(
    space: str | Space,
    evaluator: str | Evaluator | Callable[..., Mapping[str, Any]],
    *,
    strategy: str = "evolution",
    trials: int | None = None,
    objective: str | list[str] = "accuracy",
    storage: str | None = None,
    name: str | None = None,
    seed: int | None = None,
    workers: int = 1,
    executor: str = "inline",
    budget: float | None = None,
    time: float | None = None,
    strategy_options: Mapping[str, Any] | None = None,
    executor_options: Mapping[str, Any] | None = None,
    retries: int = 2,
    max_failures: int = 10,
    progress: bool | None = None,
    pruner: Any = None,
    pruner_options: Mapping[str, Any] | None = None,
) -> SearchResult:
    """Search ``space`` for the architecture that maximizes ``objective`` under ``evaluator``.

    ``space`` is a built-in name (``"cnn"``, ``"mlp"``, ``"nb201"``), ``"path/file.py:fn"``
    or a :class:`search_spaces.Space`. ``evaluator`` is any callable ``f(arch) -> dict`` (or
    ``f(arch, report)``), an :class:`evaluators.Evaluator`, or text: a dataset to train on
    (``"digits"``, ``"mnist1d"``, ``"data.npz"``), ``"table"`` (NAS-Bench-201 lookup) or
    ``"path/file.py:function"``. ``objective`` names the metric to maximize (``"-loss"``
    minimizes; a list gives several objectives, for ``nsga2``). Stopping rules, whichever comes
    first: ``trials`` finished evaluations (completed or pruned; default 100 when no other rule is
    given, no cap otherwise), ``budget`` (the summed ``cost`` metric, e.g. simulated seconds) and
    ``time`` (seconds the search has run, over resumes; running trials finish).

    ``executor`` runs the evaluations: ``"inline"`` (this thread), ``"local"`` (``workers``
    processes on this machine, one per GPU when there are GPUs) or ``"ray"`` (a Ray cluster;
    ``executor_options={"address": "auto", "num_gpus_per_trial": 0.5, ...}``); ``workers=0``
    lets the executor choose. ``pruner="asha"`` stops poor trials early from their per-epoch
    reports (``"median"``, ``"hyperband"``; settings in ``pruner_options``, e.g.
    ``{"max_resource": 10}`` for a Python evaluator; or pass any ``pruner(step, metrics) -> bool``).

    A search whose ``name`` is already stored resumes. The same as
    ``automl.prepare(SearchConfig(...)).run()``.
    """
    text_evaluator = evaluator if isinstance(evaluator, str) else None
    kind, dataset = _evaluator_kind(text_evaluator)
    space_obj, spec = resolve_space(space)
    config = make_config(
        space=spec, evaluator=kind, dataset=dataset, strategy=strategy, time=time,
        trials=trials if trials is not None or budget is not None or time is not None else 100,
        objectives=objectives_from_text(objective), seed=seed, workers=workers, executor=executor,
        budget=budget, strategy_options=dict(strategy_options or {}), executor_options=dict(executor_options or {}),
        retries=retries, max_failures=max_failures, pruner=pruner if isinstance(pruner, str) else _python(pruner),
        pruner_options=dict(pruner_options or {}),
    )  # fmt: skip
    live = None if text_evaluator is not None else evaluator
    live_pruner = None if isinstance(pruner, str) else pruner
    prepared = prepare(config, name=name, storage=storage, space=space_obj, evaluator=live, pruner=live_pruner)
    return prepared.run(progress=progress)


def _evaluator_kind(text: str | None) -> tuple[str, str | None]:
    """(config.evaluator, config.dataset) for ``automl.search``'s evaluator argument."""
    if text is None:
        return "python", None
    if text == "train" or text == "table" or text.startswith("table:") or ".py:" in text:
        return text, "digits" if text == "train" else None
    return "train", text  # a dataset to train on


def _python(obj: Any) -> str:
    return "none" if obj is None else "python"


def load(name: str, storage: str | None = None) -> SearchResult:
    """The stored search called ``name`` (``store.NotFound`` if there is none)."""
    store = open_store(storage, read_only=True)
    try:
        record = store.get_search(name)
        return SearchResult(record.name, store.url, record)
    finally:
        store.close()
