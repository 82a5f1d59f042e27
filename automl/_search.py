"""The Python API: ``automl.search`` and ``automl.load``."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

import controller
import search_spaces
from automl._checks import (
    UsageError,
    check_budget,
    check_name,
    check_objectives,
    check_positive_int,
    check_seed,
)
from automl._executors import make_executor
from automl._loop import run_loop
from automl._result import SearchResult
from evaluators import Evaluator, as_evaluator
from search_spaces import InvalidArchitecture, Space, SpaceError
from store import SearchRecord, Store

__all__ = ["default_storage", "load", "open_store", "search"]


def default_storage() -> str:
    """``$AUTOML_STORAGE`` or a SQLite file in the current directory."""
    return os.environ.get("AUTOML_STORAGE") or "sqlite:///automl.db"


def open_store(url: str | None = None, *, read_only: bool = False) -> Store:
    """Open the store at ``url``; a URL that is not one becomes a :class:`UsageError`."""
    url = url or default_storage()
    try:
        return Store(url, read_only=read_only)
    except ValueError as e:
        raise UsageError(str(e)) from e


def resolve_space(space: str | Space) -> tuple[Space, str]:
    """The space and the text stored to find it again (built-in name or file spec)."""
    if isinstance(space, Space):
        return space, space.name
    if not isinstance(space, str):
        raise UsageError(f"space must be a built-in name, 'path/file.py:function' or a Space, got {space!r}")
    return search_spaces.load(space), space


def discover(space: Space) -> None:
    """List the space's decisions now, so a broken space fails before anything is stored."""
    try:
        decisions = space.decisions
    except (SpaceError, InvalidArchitecture):
        raise
    except Exception as e:
        raise SpaceError(f"space {space.name!r} raised {type(e).__name__}: {e}") from e
    if not decisions:
        raise SpaceError(f"space {space.name!r} asks no decision: there is nothing to search")


def _next_name(store: Store, stem: str) -> str:
    taken = {s.name for s in store.list_searches()}
    n = 1
    while f"{stem}-{n}" in taken:
        n += 1
    return f"{stem}-{n}"


def _check_compatible(found: SearchRecord, space_spec: str, strategy: str, objectives: tuple[str, ...]) -> None:
    for label, stored, asked in (
        ("space", found.space, space_spec),
        ("strategy", found.strategy, strategy),
        ("objective", ",".join(found.objectives), ",".join(objectives)),
    ):
        if stored != asked:
            raise UsageError(
                f"search {found.name!r} exists with {label} {stored!r}, not {asked!r}: "
                "resume it with the same options or choose another name"
            )


def search(
    space: str | Space,
    evaluator: str | Evaluator | Callable[..., Mapping[str, Any]],
    *,
    strategy: str = "evolution",
    trials: int = 100,
    objective: str | list[str] = "accuracy",
    storage: str | None = None,
    name: str | None = None,
    seed: int | None = None,
    workers: int = 1,
    executor: str = "inline",
    budget: float | None = None,
    strategy_options: Mapping[str, Any] | None = None,
    executor_options: Mapping[str, Any] | None = None,
    retries: int = 2,
    max_failures: int = 10,
    progress: bool | None = None,
    pruner: Any = None,
    config: Mapping[str, Any] | None = None,
    _space_spec: str | None = None,
) -> SearchResult:
    """Search ``space`` for the architecture that maximizes ``objective`` under ``evaluator``.

    ``space`` is a built-in name (``"cnn"``, ``"mlp"``, ``"nb201"``), ``"path/file.py:fn"``
    or a :class:`search_spaces.Space`. ``evaluator`` is any callable ``f(arch) -> dict`` (or
    ``f(arch, report)``), an :class:`evaluators.Evaluator`, or text: a dataset to train on
    (``"digits"``, ``"mnist1d"``, ``"data.npz"``), ``"table"`` (NAS-Bench-201 lookup) or
    ``"path/file.py:function"``. ``objective`` names the metric to
    maximize (``"-loss"`` minimizes; a list gives several objectives, for ``nsga2``).
    ``trials`` counts finished evaluations (completed or pruned); ``budget`` stops earlier once
    the summed ``cost`` metric (simulated seconds) reaches it.

    ``executor`` runs the evaluations: ``"inline"`` (this thread), ``"local"`` (``workers``
    processes on this machine, one per GPU when there are GPUs) or ``"ray"`` (a Ray cluster;
    ``executor_options={"address": "auto", "num_gpus_per_trial": 0.5, ...}``); ``workers=0``
    lets the executor choose (one per GPU, else per CPU core). ``pruner="asha"`` stops poor
    trials early from their per-epoch reports (or pass any ``pruner(step, metrics) -> bool``).

    Running a search whose ``name`` is already stored resumes it: completed trials are kept,
    unfinished ones re-run and the strategy is rebuilt from the store.

    >>> res = automl.search("nb201", lambda arch: {"accuracy": len(set(arch.values()))},
    ...                     trials=20, storage="sqlite:///demo.db")     # doctest: +SKIP
    >>> res.best.arch                                                   # doctest: +SKIP
    """
    trials = check_positive_int("trials", trials)
    if not (workers == 0 and not isinstance(workers, bool) and executor != "inline"):  # 0: the executor decides
        workers = check_positive_int("workers", workers)
    retries = check_positive_int("retries", retries + 1) - 1
    max_failures = check_positive_int("max_failures", max_failures)
    seed = check_seed(seed)
    budget = check_budget(budget)
    objectives = check_objectives(objective)
    if name is not None:
        check_name(name)
    space_obj, space_spec = resolve_space(space)
    space_spec = _space_spec or space_spec
    if isinstance(evaluator, str):
        from automl._evaluator_spec import evaluator_from_spec

        ev = evaluator_from_spec(evaluator, space_obj, seed=seed)
    else:
        try:
            ev = as_evaluator(evaluator)
        except TypeError as e:
            raise UsageError(str(e)) from e
    if ev.context:
        space_obj = space_obj.bind(**ev.context)
    discover(space_obj)
    proposer = controller.make(strategy, space_obj, seed=seed, **dict(strategy_options or {}))
    if proposer.objectives > 1 and len(objectives) < 2:
        raise UsageError(f"strategy {strategy!r} optimizes several objectives; give objective=[...] with two or more")
    exe = make_executor_checked(executor, workers, executor_options)
    from automl._pruners import make_pruner, restore_pruner

    pruner = make_pruner(pruner, ev, objectives[0])

    store = open_store(storage)
    try:
        found = store.find_search(name) if name else None
        if found is not None:
            _check_compatible(found, space_spec, strategy, objectives)
            record = found
            store.update_search_config(record.id, {**record.config, "trials": trials, "budget": budget})
        else:
            record = store.create_search(
                name or _next_name(store, f"{space_obj.name}-{strategy}"),
                space=space_spec,
                strategy=strategy,
                objectives=objectives,
                config={
                    "trials": trials,
                    "budget": budget,
                    "seed": seed,
                    "workers": workers,
                    "executor": executor,
                    "strategy_options": dict(strategy_options or {}),
                    "evaluator": ev.describe(),
                    "space": space_obj.describe(),
                    **dict(config or {}),
                },
            )
        restore_pruner(pruner, store, record.id)
        show = progress if progress is not None else _stderr_is_tty()
        with _progress(show, record.name, trials) as on_update:
            run_loop(
                store,
                record,
                space_obj,
                proposer,
                ev,
                exe,
                trials=trials,
                budget=budget,
                retries=retries,
                max_failures=max_failures,
                on_update=on_update,
                pruner=pruner,
            )
        return SearchResult(record.name, store.url, record)
    finally:
        store.close()


def make_executor_checked(name: str, workers: int, options: Mapping[str, Any] | None):
    try:
        return make_executor(name, workers, **dict(options or {}))
    except (ValueError, TypeError) as e:
        raise UsageError(str(e)) from e


def _stderr_is_tty() -> bool:
    import sys

    return sys.stderr.isatty()


def _progress(show: bool, name: str, total: int):
    from automl._progress import progress_bar

    return progress_bar(name, total, enabled=show)


def load(name: str, storage: str | None = None) -> SearchResult:
    """The stored search called ``name`` (``store.NotFound`` if there is none)."""
    store = open_store(storage)
    try:
        record = store.get_search(name)
        return SearchResult(record.name, store.url, record)
    finally:
        store.close()
