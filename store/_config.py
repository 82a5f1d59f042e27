"""``SearchConfig``: everything that defines a search, as one frozen, validated record.

The store keeps it as JSON in ``searches.config`` (layout version :data:`CONFIG_VERSION`,
older layouts are rewritten by Alembic migration 0003). Every reader — the search loop, the
CLI, the dashboard, export, the result queries — gets typed fields instead of dict guards.

Validation here is about shape and range and names the field and the value received. Whether a
strategy, space or evaluator of that name exists is for ``automl`` to check when it resolves them.

>>> c = SearchConfig(space="cnn", objectives=("-loss",), trials=10)
>>> c.objective, c.maximize, c.to_dict()["trials"]
('loss', False, 10)
>>> SearchConfig(space="cnn", trials=0)
Traceback (most recent call last):
...
store._config.ConfigError: trials must be a positive integer, got 0
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["CONFIG_VERSION", "ConfigError", "SearchConfig"]

CONFIG_VERSION = 1
_METRIC = re.compile(r"^-?[A-Za-z_][A-Za-z0-9_.]*$")


class ConfigError(ValueError):
    """A search configuration that cannot be right; the message names the field and the value."""


def _frozen(value: Any, label: str) -> Any:
    """A JSON-able copy (a dict for a mapping); refuses what JSON cannot hold."""
    try:
        return json.loads(json.dumps(value, allow_nan=False))
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{label} must be JSON-able (numbers, text, lists, mappings), got {value!r}") from e


@dataclass(frozen=True)
class SearchConfig:
    """What a search is: set by ``automl search`` / ``automl.search`` and stored with the search.

    The fields below the line are what ``automl`` found when it resolved the space and the
    evaluator (for readers that cannot import them: export, dashboard, decision statistics).
    """

    space: str  # built-in space name, or an absolute "path/to/file.py:function"
    evaluator: str = "train"  # train | table[:PATH] | path/file.py:function | python (a callable from Python)
    dataset: str | None = "digits"  # what "train" trains on: digits | mnist1d | data.npz | data.csv | folder | f.py:fn
    target: str | None = None  # the label column of a CSV dataset
    image_size: int | None = None  # images of a folder dataset are resized to this (square)
    epochs: int | None = None  # training epochs per child; None: the evaluator's default
    recipe: Mapping[str, Any] = field(default_factory=dict)  # TrainConfig fields: lr, optimizer, schedule, ...
    strategy: str = "evolution"  # random | evolution | rl | reinforce | tpe | nsga2 | ...
    strategy_options: Mapping[str, Any] = field(default_factory=dict)  # e.g. {"population_size": 30}
    objectives: tuple[str, ...] = ("accuracy",)  # metric names; a leading "-" minimizes
    trials: int | None = 100  # finished evaluations (completed or pruned) to stop at; None: no cap
    budget: float | None = None  # stop once the summed "cost" metric reaches this
    time: float | None = None  # stop proposing once drivers have run this many seconds (over resumes)
    seed: int | None = None
    executor: str = "inline"  # inline | local | ray
    workers: int = 1  # evaluations in flight; 0: the executor decides (per GPU, else per core)
    executor_options: Mapping[str, Any] = field(default_factory=dict)  # e.g. {"address": "auto"}
    pruner: str = "none"  # none | median | asha | hyperband | python (a callable from Python)
    pruner_options: Mapping[str, Any] = field(default_factory=dict)  # e.g. {"reduction_factor": 3}
    retries: int = 2  # re-runs of a trial after a transient failure (a worker died)
    max_failures: int = 10  # failed trials in a row that stop the search
    keep_weights: str | None = None  # absolute folder where trained children's weights are kept
    # -- found when resolved ------------------------------------------------------------------
    space_info: Mapping[str, Any] = field(default_factory=dict)  # Space.describe(): decisions, ...
    evaluator_info: Mapping[str, Any] = field(default_factory=dict)  # Evaluator.describe(): context, ...

    def __post_init__(self) -> None:
        _text(self.space, "space")
        _text(self.evaluator, "evaluator")
        _text(self.strategy, "strategy")
        _text(self.executor, "executor")
        _text(self.pruner, "pruner")
        if self.dataset is not None:
            _text(self.dataset, "dataset")
        _int(self.epochs, "epochs", low=1, optional=True)
        _int(self.trials, "trials", low=1, optional=True)
        _int(self.image_size, "image_size", low=1, optional=True)
        if self.target is not None:
            _text(self.target, "target")
        _int(self.seed, "seed", low=0, optional=True)
        _int(self.workers, "workers", low=0)
        _int(self.retries, "retries", low=0)
        _int(self.max_failures, "max_failures", low=1)
        for name, what in (("budget", "summed 'cost' metric"), ("time", "seconds")):
            b = getattr(self, name)
            if b is None:
                continue
            if isinstance(b, bool) or not isinstance(b, (int, float)) or not math.isfinite(b) or b <= 0:
                raise ConfigError(f"{name} must be a positive number ({what}), got {b!r}")
            object.__setattr__(self, name, float(b))
        if self.trials is None and self.budget is None and self.time is None:
            raise ConfigError("a search needs a stopping rule: trials, budget or time")
        if self.keep_weights is not None:
            _text(self.keep_weights, "keep_weights")
        object.__setattr__(self, "objectives", _objectives(self.objectives))
        mappings = ("recipe", "pruner_options", "strategy_options", "executor_options", "space_info", "evaluator_info")
        for name in mappings:
            value = getattr(self, name)
            if not isinstance(value, Mapping):
                raise ConfigError(f"{name} must be a mapping, got {value!r}")
            object.__setattr__(self, name, _frozen(dict(value), name))

    # -- derived ------------------------------------------------------------------------------
    @property
    def objective(self) -> str:
        """The primary objective's metric name (without the ``-``)."""
        return self.objectives[0].lstrip("-")

    @property
    def maximize(self) -> bool:
        return not self.objectives[0].startswith("-")

    @property
    def context(self) -> dict[str, Any]:
        """``{"input_shape": [...], "num_classes": n}`` of the evaluator's data, if it has any."""
        context = self.evaluator_info.get("context")
        if isinstance(context, Mapping) and "input_shape" in context:
            return {"input_shape": list(context["input_shape"]), "num_classes": int(context["num_classes"])}
        return {}

    @property
    def data(self) -> str | None:
        """The dataset the children were trained on, for people (None for lookups and callables)."""
        return self.dataset if self.evaluator == "train" else self.evaluator_info.get("dataset")

    # -- to and from the store ----------------------------------------------------------------
    def replace(self, **changes: Any) -> SearchConfig:
        """A copy with ``changes`` (validated again)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        out["objectives"] = list(self.objectives)
        return {"version": CONFIG_VERSION, **out}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SearchConfig:
        """The config stored as ``data`` (the layout of :meth:`to_dict`)."""
        if not isinstance(data, Mapping):
            raise ConfigError(f"a search config must be a mapping, got {data!r}")
        version = data.get("version")
        if version != CONFIG_VERSION:
            raise ConfigError(f"search config layout {version!r} is not {CONFIG_VERSION}; upgrade the database")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known - {"version"})
        if unknown:
            raise ConfigError(f"unknown search config field {unknown[0]!r}")
        values = dict(data)
        values.pop("version")
        if "objectives" in values and isinstance(values["objectives"], list):
            values["objectives"] = tuple(values["objectives"])
        return cls(**values)


def _text(value: Any, label: str) -> None:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{label} must be a non-empty text, got {value!r}")


def _int(value: Any, label: str, *, low: int, optional: bool = False) -> None:
    if optional and value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        kind = {0: "a non-negative integer", 1: "a positive integer"}.get(low, f"an integer >= {low}")
        raise ConfigError(f"{label} must be {kind}, got {value!r}")


def _objectives(value: Any) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)) or not items:
        raise ConfigError(f"objective must be a metric name or a list of them, got {value!r}")
    for item in items:
        if not isinstance(item, str) or not _METRIC.match(item):
            raise ConfigError(f"objective {item!r} is not a metric name (prefix '-' to minimize)")
    names = [i.lstrip("-") for i in items]
    if len(set(names)) != len(names):
        raise ConfigError(f"objectives name a metric twice: {list(items)!r}")
    return tuple(items)
