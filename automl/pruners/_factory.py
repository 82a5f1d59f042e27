"""Pruners by name, with option-style settings, and their rebuild on resume."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from automl._errors import UsageError
from automl.pruners._asha import ASHAPruner
from automl.pruners._base import Pruner
from automl.pruners._hyperband import HyperbandPruner
from automl.pruners._median import MedianPruner
from store import Store, TrialStatus

__all__ = ["make_pruner", "pruner_names", "restore_pruner"]

_PRUNERS: dict[str, type[Pruner]] = {"asha": ASHAPruner, "hyperband": HyperbandPruner, "median": MedianPruner}


def pruner_names() -> list[str]:
    return sorted(_PRUNERS)


def make_pruner(
    spec: Any,
    evaluator: Any,
    objective: str,
    maximize: bool | None = None,
    options: Mapping[str, Any] | None = None,
) -> Any:
    """The search's pruner: ``spec`` is None, ``"none"``, a name (``"asha"``, ``"hyperband"``,
    ``"median"``) set by ``options`` (``{"reduction_factor": 3, "min_resource": 2}``), or a live
    pruner (any callable ``pruner(step, metrics) -> bool``).

    A named pruner's ``max_resource`` defaults to the evaluator's ``config.epochs`` when it has
    one (training evaluators). A :class:`Pruner` without an objective is bound to ``objective``
    (``"-loss"`` or ``maximize=False``: lower is better).

    Raises:
        UsageError: naming an unknown pruner, an unknown option or a bad option value.
    """
    options = dict(options or {})
    if spec is None or spec == "none":
        if options:
            given = ", ".join(sorted(options))
            raise UsageError(f"pruner options {given} given without a pruner: choose one with --pruner")
        return None
    if isinstance(spec, str):
        cls = _PRUNERS.get(spec)
        if cls is None:
            raise UsageError(f"unknown pruner {spec!r}; choose one of none, {', '.join(pruner_names())}")
        unknown = sorted(set(options) - set(cls.options))
        if unknown:
            raise UsageError(
                f"unknown option{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))} "
                f"for pruner {spec!r}; it takes {', '.join(cls.options)}"
            )
        epochs = getattr(getattr(evaluator, "config", None), "epochs", None)
        if "max_resource" not in options and isinstance(epochs, int) and not isinstance(epochs, bool) and epochs > 0:
            options["max_resource"] = epochs
        try:
            pruner = cls(**options)
        except ValueError as e:
            raise UsageError(f"pruner {spec!r}: {e}") from e
    elif options:
        raise UsageError(f"pruner options apply to a pruner given by name, not to {spec!r}")
    else:
        pruner = spec
    if not callable(pruner):
        names = ", ".join(pruner_names())
        raise UsageError(f"pruner must be None, one of {names} or a callable (step, metrics) -> bool, got {pruner!r}")
    if isinstance(pruner, Pruner) and pruner.metric is None:
        pruner.bind(objective, maximize)
    return pruner


def restore_pruner(pruner: Any, store: Store, search_id: int) -> None:
    """Rebuild a pruner from the stored reports of finished trials (a resumed search)."""
    restore = getattr(pruner, "restore", None)
    if restore is None:
        return
    finished = [TrialStatus.COMPLETED, TrialStatus.PRUNED, TrialStatus.FAILED]
    history = []
    for t in store.trials(search_id, statuses=finished, order="result_seq"):
        history += [(t.number, s.step, s.value) for s in store.steps(search_id, t.number) if s.value is not None]
    restore(history)
