"""Look architectures up in a benchmark table (NAS-Bench-201 and the like) instead of training.

>>> from evaluators._tabular import TabularEvaluator
>>> from search_spaces.nb201 import from_arch_str
>>> ev = TabularEvaluator.nb201()  # finds ../shared/benchmarks/nb201/cifar10.csv  # doctest: +SKIP
>>> cell = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
>>> m = ev(from_arch_str(cell))  # the cell's row, read from the table  # doctest: +SKIP
>>> sorted(m)  # every numeric column, and cost: 12 x train_seconds_per_epoch  # doctest: +SKIP
['arch_index', 'cost', 'params_m', 'test_acc_200ep', 'train_seconds_per_epoch', 'valid_acc_12ep', 'valid_acc_200ep']
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from evaluators._base import Evaluator, Infeasible, Report, _no_report
from search_spaces import Arch

__all__ = ["NotInTable", "TabularEvaluator", "find_nb201"]

#: Where the NAS-Bench-201 CIFAR-10 table lives, relative to a directory above the repository.
NB201_RELATIVE = Path("shared", "benchmarks", "nb201", "cifar10.csv")


class NotInTable(Infeasible, LookupError):
    """The architecture has no row in the table: recorded as infeasible, never retried."""


def _canonical_json(arch: Mapping[str, Any]) -> str:
    return json.dumps(dict(arch), sort_keys=True, separators=(",", ":"))


def _number(text: str) -> int | float | None:
    """A CSV cell as a number (``None`` for an empty cell); raises ValueError if it is not one."""
    text = text.strip()
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        return float(text)


def _nb201_cost(row: Mapping[str, Any]) -> float:
    # The paper's protocol: one evaluation trains 12 epochs.
    return 12.0 * float(row["train_seconds_per_epoch"])


def _nb201_key(arch: Mapping[str, Any]) -> str:
    from search_spaces.nb201 import to_arch_str  # here: only the nb201 constructor needs it

    return to_arch_str(arch)


def find_nb201(start: str | os.PathLike[str] | None = None) -> Path:
    """The NAS-Bench-201 table: ``$AUTOML_NB201_TABLE`` if set, else ``shared/benchmarks/nb201/cifar10.csv``
    in the first directory above ``start`` (default: the current directory), then above this file, that has it.

    Raises ``FileNotFoundError`` listing where it looked.
    """
    given = os.environ.get("AUTOML_NB201_TABLE")
    if given:
        if not Path(given).is_file():
            raise FileNotFoundError(f"AUTOML_NB201_TABLE={given!r} is not a file")
        return Path(given)
    here = Path(__file__).resolve().parent
    bases = [Path(start or Path.cwd()).resolve(), here]
    looked = []
    for base in bases:
        for d in (base, *base.parents):
            candidate = d / NB201_RELATIVE
            if candidate.is_file():
                return candidate
            looked.append(str(d))
    raise FileNotFoundError(
        f"the NAS-Bench-201 table (the CIFAR-10 csv of the project's shared material, {NB201_RELATIVE}) "
        f"was not found above {bases[0]} or {bases[1]}; give its path: --table PATH "
        "(automl search --evaluator table, automl bench), AUTOML_NB201_TABLE=PATH, or "
        "TabularEvaluator.nb201(path=PATH) in Python"
    )


class TabularEvaluator(Evaluator):
    """Metrics of an architecture read from a CSV table, one row per architecture.

    Args:
        path: the CSV file (read once, on the first evaluation).
        arch_column: the column that holds each row's architecture key.
        to_key: ``arch -> str``, the key of an architecture in ``arch_column``; default: the
            architecture as canonical JSON (sorted keys, no spaces).
        metrics: columns to return; default: every numeric column but ``arch_column``.
        cost: ``row -> seconds``, the simulated cost of one evaluation, returned as ``"cost"``
            (what a time budget counts); default: no cost.

    ``evaluate`` raises :class:`NotInTable` (an :class:`~evaluators.Infeasible`, also a
    ``LookupError``) for an architecture without a row. The table is not pickled with the
    evaluator: a worker process reads the file again. ``to_key`` and ``cost`` must be picklable
    (module-level functions) for process executors.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        arch_column: str = "arch_str",
        to_key: Callable[[Mapping[str, Any]], str] | None = None,
        metrics: Sequence[str] | None = None,
        cost: Callable[[Mapping[str, Any]], float] | None = None,
    ) -> None:
        self.path = Path(path).resolve()
        if not self.path.is_file():
            raise FileNotFoundError(f"table {str(path)!r} does not exist")
        if isinstance(metrics, str):
            raise TypeError(f"`metrics` must be a list of column names, but got the string {metrics!r}.")
        self.arch_column = arch_column
        self.to_key = to_key or _canonical_json
        self.cost_fn = cost
        self._wanted = tuple(metrics) if metrics is not None else None
        self._table: dict[str, dict[str, Any]] | None = None
        self._metrics: tuple[str, ...] = ()

    @classmethod
    def nb201(cls, path: str | os.PathLike[str] | None = None) -> TabularEvaluator:
        """NAS-Bench-201 on CIFAR-10 over the ``nb201`` space, cost = 12 x train_seconds_per_epoch.

        ``path`` defaults to :func:`find_nb201` (``../shared/benchmarks/nb201/cifar10.csv`` from
        the repository). The search signal of the paper's protocol is ``valid_acc_12ep``.
        """
        return cls(path if path is not None else find_nb201(), to_key=_nb201_key, cost=_nb201_cost)

    # -- the table ------------------------------------------------------------------------------
    @property
    def table(self) -> dict[str, dict[str, Any]]:
        """Key -> row (numbers parsed), read on first use."""
        if self._table is None:
            self._table, self._metrics = self._load()
        return self._table

    @property
    def metrics(self) -> tuple[str, ...]:
        """The columns :meth:`evaluate` returns (besides ``cost``)."""
        self.table  # noqa: B018 - loading sets them
        return self._metrics

    def _load(self) -> tuple[dict[str, dict[str, Any]], tuple[str, ...]]:
        with open(self.path, newline="") as f:
            reader = csv.DictReader(f)
            columns = list(reader.fieldnames or [])
            raw = list(reader)
        if self.arch_column not in columns:
            raise ValueError(f"table {str(self.path)!r} has no column {self.arch_column!r}; columns: {columns}")
        numeric = []
        for c in columns:
            if c == self.arch_column:
                continue
            try:
                for r in raw:
                    _number(r[c] or "")
            except ValueError:
                continue
            numeric.append(c)
        if self._wanted is None:
            wanted = tuple(numeric)
        else:
            missing = [m for m in self._wanted if m not in columns]
            if missing:
                raise ValueError(f"table {str(self.path)!r} has no column(s) {missing}; columns: {columns}")
            wanted = self._wanted
        table: dict[str, dict[str, Any]] = {}
        for line, r in enumerate(raw, start=2):
            key = r[self.arch_column]
            if key in table:
                raise ValueError(f"table {str(self.path)!r} line {line}: {self.arch_column} {key!r} appears twice")
            table[key] = {c: (_number(r[c] or "") if c in numeric else r[c]) for c in columns}
        return table, wanted

    def row(self, arch: Mapping[str, Any]) -> dict[str, Any]:
        """The whole row of ``arch``; raises :class:`NotInTable`."""
        key = self.to_key(arch)
        found = self.table.get(key)
        if found is None:
            raise NotInTable(
                f"architecture {dict(arch)!r} (key {key!r}) is not in table {str(self.path)!r} "
                f"({len(self.table):,} rows keyed by column {self.arch_column!r})"
            )
        return dict(found)

    # -- the evaluator --------------------------------------------------------------------------
    def evaluate(self, arch: Arch | Mapping[str, Any], report: Report = _no_report) -> dict[str, Any]:
        row = self.row(arch)
        out = {m: row[m] for m in self.metrics}
        if self.cost_fn is not None:
            cost = float(self.cost_fn(row))
            if not math.isfinite(cost) or cost < 0:
                raise ValueError(f"cost of {dict(arch)!r} must be a finite number >= 0, but got {cost!r}")
            out["cost"] = cost
        return out

    def describe(self) -> dict[str, Any]:
        return {
            "evaluator": type(self).__name__,
            "path": str(self.path),
            "arch_column": self.arch_column,
            "to_key": getattr(self.to_key, "__qualname__", repr(self.to_key)),
            "metrics": list(self._wanted) if self._wanted is not None else None,
            "cost": None if self.cost_fn is None else getattr(self.cost_fn, "__qualname__", repr(self.cost_fn)),
        }

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_table"] = None  # read again where it is unpickled: cheaper than sending it
        return state
