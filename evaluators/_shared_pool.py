"""The weight pool of :class:`~evaluators.SharedWeightsEvaluator`: where a module was made, its
key, the shared tensors with their optimizer state, and the pool file on disk.

**The same place.** Each module of a built child that owns parameters or buffers gets a key;
children whose modules have the same key share one pool tensor per parameter or buffer name.

* A module **created inside a DSL scope** (``with a.scope("block0"): ...``) is keyed by
  ``(scope, the option decisions asked under that scope before it was created and their values,
  its ordinal among the modules created at that scope and decisions, its class)``.
  This is ENAS's rule: a node's operation keeps its weights wherever the rest of the network
  changes, and a different choice at the node (asked before the module) gets other weights.
* A module **created outside any scope** is keyed by ``(its path in the built model, e.g.
  "blocks.0.conv", its class)``. Every built-in space asks all its decisions first and then
  builds the network outside any scope, so there the construction place cannot tell the blocks
  apart; the path can. Two children then share a module when it sits at the same path with the
  same class, whatever else differs.

**Weight slicing.** Sizes are not part of the key (once-for-all style): the pool keeps each
tensor at the largest shape seen at its key, and a child with fewer channels or a smaller kernel
uses a slice of it: the first rows and columns along every dimension, except the kernel
dimensions of a convolution's weight (dims 2+ of ``_ConvNd.weight``), where it takes the centre.
Configuration that does not change a tensor's shape (dilation, stride, padding, bias or not)
shares the same tensors. When a larger shape appears the pool tensor grows: the old values keep
their place (the corner, the kernel's centre), the rest comes from the new child's fresh
initialisation. A slice is not a leaf tensor, so a child gets **copies**: :meth:`Pool.adopt`
copies the slices in as the child's own parameters and buffers, and :meth:`Pool.write_back`
copies the trained values (and the optimizer state, sliced the same way) back into the pool.

Limits: range decisions (``a.float``, log-scale ``a.integer``) are left out of the scoped key
(every value would be a new key); a decision that changes a module only through what flows into
it (an earlier block's activation, the head's flatten or average before a ``Linear``) does not
split its key, so such modules share a tensor whose slices mean different things to them;
``groups`` is not in the key (a depthwise convolution takes a slice of a full one); outside a
scope, a module list whose indices shift with a choice moves modules to other paths (and other
weights). Modules created while the space is traced (sampling, validation) are never recorded.

The place is read at the module's first parameter or buffer registration, through torch's
global registration hooks, which are installed for the duration of one build and only record
in the thread that builds (see :func:`recording`).
"""

from __future__ import annotations

import json
import math
import os
import socket
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn.modules import module as _torch_module
from torch.nn.modules.conv import _ConvNd

from search_spaces._dsl import current_chooser

__all__ = ["POOL_FILE", "Link", "Made", "Pool", "PoolInUse", "module_keys", "recording"]

POOL_FILE = "pool.pt"
_LOCK_FILE = "pool.lock"
_FORMAT = 2  # 2: tensors at their largest shape, shared by slices


@dataclass(frozen=True)
class Made:
    """Where a module was created: its DSL scope, the option decisions asked under it, its ordinal."""

    scope: str
    decisions: tuple[tuple[str, Any], ...]
    ordinal: int


@dataclass
class _Recorder:
    # id(module) -> (module, where it was made): by id, as a module may define __eq__ without
    # __hash__; the module itself is held (for one build only) so that its id is not reused.
    places: dict[int, tuple[nn.Module, Made]] = field(default_factory=dict)
    counts: Counter[tuple[str, str]] = field(default_factory=Counter)


_local = threading.local()


def _on_register(module: nn.Module, name: str, value: Any) -> None:
    rec: _Recorder | None = getattr(_local, "recorder", None)
    if rec is None or id(module) in rec.places:  # not recording here, or already placed
        return None
    chooser = current_chooser()
    if chooser is None or chooser.tracing:
        return None
    scope, asked = chooser.place
    decisions = tuple((n, v) for n, v in asked if not chooser.decisions[n].ranged)
    where = (scope, json.dumps(decisions, default=repr))
    rec.places[id(module)] = (module, Made(scope, decisions, rec.counts[where]))
    rec.counts[where] += 1
    return None  # keep the tensor as registered


@contextmanager
def recording() -> Iterator[dict[int, tuple[nn.Module, Made]]]:
    """Within the block, record where each module that registers a tensor in this thread was made.

    Yields a dict ``id(module) -> (module, Made)`` that fills as a space builds (only while a space function
    runs in this thread and is not tracing). The hooks are torch's global parameter and buffer
    registration hooks, removed when the block ends; other threads are never recorded.
    """
    if getattr(_local, "recorder", None) is not None:
        raise RuntimeError("recording() does not nest: a build is already being recorded in this thread")
    rec = _Recorder()
    _local.recorder = rec
    handles = [
        _torch_module.register_module_parameter_registration_hook(_on_register),
        _torch_module.register_module_buffer_registration_hook(_on_register),
    ]
    try:
        yield rec.places
    finally:
        for h in handles:
            h.remove()
        _local.recorder = None


def module_keys(model: nn.Module, places: dict[int, tuple[nn.Module, Made]]) -> dict[str, tuple[nn.Module, str]]:
    """``key -> (module, path)`` for each module of ``model`` that owns parameters or buffers.

    The key text (see the module docs): ``"block0|[[\"block0.kernel\", 5]]|#0|Conv1d"`` for a
    module made inside a scope, ``"@blocks.0.conv|Conv1d"`` for one made outside.
    Two modules of one model never get the same key (a repeat gets ``~1``, ``~2``, ...).
    """
    out: dict[str, tuple[nn.Module, str]] = {}
    for path, m in model.named_modules():
        if not any(True for _ in m.parameters(recurse=False)) and not any(True for _ in m.buffers(recurse=False)):
            continue
        made = places[id(m)][1] if id(m) in places else None
        if made is not None and made.scope:
            key = f"{made.scope}|{json.dumps(made.decisions, default=repr)}|#{made.ordinal}|{type(m).__name__}"
        else:
            key = f"@{path}|{type(m).__name__}"
        base, n = key, 0
        while key in out:
            n += 1
            key = f"{base}~{n}"
        out[key] = (m, path)
    return out


@dataclass(frozen=True)
class Link:
    """One tensor of a child and the pool entry it is a copy of: ``pool.tensors[key][index]``."""

    key: str
    module: nn.Module
    name: str  # the parameter's or buffer's name in ``module``
    index: tuple[slice, ...]
    parameter: bool

    @property
    def tensor(self) -> torch.Tensor:
        t = getattr(self.module, self.name)
        assert isinstance(t, torch.Tensor)
        return t


def _offsets(module: nn.Module, name: str, small: torch.Size, big: torch.Size) -> tuple[slice, ...]:
    """Where a tensor of shape ``small`` sits in one of shape ``big``: the corner, except a
    convolution kernel's spatial dims, centred (a 3-tap kernel is the middle of a 5-tap one)."""
    centred = name == "weight" and isinstance(module, _ConvNd)
    return tuple(
        slice((b - s) // 2, (b - s) // 2 + s) if centred and d >= 2 else slice(0, s)
        for d, (s, b) in enumerate(zip(small, big, strict=True))
    )


def _grown(
    old: torch.Tensor, new_shape: tuple[int, ...], index: tuple[slice, ...], fill: torch.Tensor | None
) -> torch.Tensor:
    """``old`` placed at ``index`` of a tensor of ``new_shape``; the rest from ``fill`` (a fresh tensor of that
    shape, filled in place) or zeros."""
    out = fill if fill is not None else old.new_zeros(new_shape)
    out[index] = old
    return out


class Pool:
    """Shared tensors by ``"<module key>/<tensor name>"``, with per-parameter optimizer state.

    ``tensors`` holds the pool's tensors at the largest shape seen (plain tensors: a child
    trains copies of its slices); ``parameters`` names those that are trained (the others are
    buffers: BatchNorm running statistics); ``state`` the optimizer state of each parameter, its
    per-element tensors at the parameter's pool shape; ``steps`` the optimizer steps taken by all
    children together and ``evaluations`` the children evaluated.
    """

    def __init__(self) -> None:
        self.tensors: dict[str, torch.Tensor] = {}
        self.parameters: set[str] = set()
        self.state: dict[str, dict[str, Any]] = {}
        self.steps = 0
        self.evaluations = 0

    def adopt(self, model: nn.Module, places: dict[int, tuple[nn.Module, Made]]) -> tuple[list[Link], int]:
        """Copy the pool's slices into ``model``'s parameters and buffers, entering new keys and
        growing entries that are smaller than the child's tensors (from the child's fresh values).

        Returns the links (one per tensor of the model) and how many parameter elements came
        from the pool (were there before this call).
        """
        links: list[Link] = []
        reused = 0
        with torch.no_grad():
            for key, (m, _) in module_keys(model, places).items():
                tensors = [(n, t, True) for n, t in m.named_parameters(recurse=False)]
                tensors += [(n, t, False) for n, t in m.named_buffers(recurse=False)]
                for name, t, is_param in tensors:
                    k = f"{key}/{name}"
                    old = self.tensors.get(k)
                    if old is not None and old.ndim != t.ndim:  # the same class with another layout: apart
                        k = f"{k}:{t.ndim}d"
                        old = self.tensors.get(k)
                    if old is None:
                        self.tensors[k] = t.detach().clone()
                        if is_param:
                            self.parameters.add(k)
                    else:
                        if is_param:
                            reused += math.prod(min(a, b) for a, b in zip(t.shape, old.shape, strict=True))
                        self._grow(k, m, name, t)
                    index = _offsets(m, name, t.shape, self.tensors[k].shape)
                    if old is not None:
                        t.copy_(self.tensors[k][index])
                    links.append(Link(k, m, name, index, is_param))
        return links, reused

    def _grow(self, k: str, module: nn.Module, name: str, child: torch.Tensor) -> None:
        old = self.tensors[k]
        shape = tuple(max(a, b) for a, b in zip(old.shape, child.shape, strict=True))
        if shape == tuple(old.shape):
            return
        fill = old.new_zeros(shape)
        fill[_offsets(module, name, child.shape, torch.Size(shape))] = child.detach()
        at = _offsets(module, name, old.shape, torch.Size(shape))
        self.tensors[k] = _grown(old, shape, at, fill)
        for n, v in self.state.get(k, {}).items():  # per-element state: zeros (no history) around the old
            if _per_element(v, old.shape):
                self.state[k][n] = _grown(v, shape, at, None)

    def load_state(self, links: list[Link]) -> dict[int, dict[str, Any]]:
        """``{id(child parameter): optimizer state}``: copies of the pool state's slices."""
        out: dict[int, dict[str, Any]] = {}
        for ln in links:
            if not ln.parameter or not self.state.get(ln.key):
                continue
            shape = self.tensors[ln.key].shape
            out[id(ln.tensor)] = {
                n: (v[ln.index].clone() if _per_element(v, shape) else v.clone() if torch.is_tensor(v) else v)
                for n, v in self.state[ln.key].items()
            }
        return out

    def write_back(self, links: list[Link], state: dict[int, dict[str, Any]] | None = None) -> None:
        """Copy the child's tensors (and ``state``, by ``id`` of its parameters) into their slices."""
        with torch.no_grad():
            for ln in links:
                pooled = self.tensors[ln.key]
                pooled[ln.index] = ln.tensor.detach()
                child_state = (state or {}).get(id(ln.tensor))
                if not ln.parameter or not child_state:
                    continue
                kept = self.state.setdefault(ln.key, {})
                for n, v in child_state.items():
                    if _per_element(v, ln.tensor.shape):
                        if n not in kept:
                            kept[n] = pooled.new_zeros(pooled.shape, dtype=v.dtype)
                        kept[n][ln.index] = v.detach()
                    else:  # a scalar (Adam's step count): the latest child's
                        kept[n] = v.detach().clone() if torch.is_tensor(v) else v

    # -- on disk -----------------------------------------------------------------------------
    def save(self, path: Path, meta: dict[str, Any]) -> None:
        """Write the pool to ``path`` atomically (a temporary file, then ``os.replace``)."""
        blob = {
            "format": _FORMAT,
            **meta,
            "steps": self.steps,
            "evaluations": self.evaluations,
            "tensors": {k: t.detach().cpu() for k, t in self.tensors.items()},
            "parameters": sorted(self.parameters),
            "state": {k: {n: _cpu(v) for n, v in s.items()} for k, s in self.state.items() if s},
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        torch.save(blob, tmp)
        os.replace(tmp, path)  # a reader (or a crash) never sees half a file

    @classmethod
    def load(cls, path: Path, device: torch.device) -> tuple[Pool, dict[str, Any]]:
        """The pool stored at ``path`` on ``device``, and the file's other fields (space, config)."""
        blob = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(blob, dict) or blob.get("format") != _FORMAT:
            raise ValueError(f"{path} is not a weight pool of format {_FORMAT} (written by SharedWeightsEvaluator)")
        pool = cls()
        pool.tensors = {k: t.to(device) for k, t in blob["tensors"].items()}
        pool.parameters = set(blob["parameters"])
        for k, s in blob["state"].items():
            # The step counter stays on the CPU, as torch's optimizers keep it (capturable=False).
            pool.state[k] = {n: (v if n == "step" or not torch.is_tensor(v) else v.to(device)) for n, v in s.items()}
        pool.steps, pool.evaluations = int(blob["steps"]), int(blob["evaluations"])
        meta = {k: v for k, v in blob.items() if k not in ("tensors", "parameters", "state", "steps", "evaluations")}
        return pool, meta


def _per_element(v: Any, shape: torch.Size) -> bool:
    return torch.is_tensor(v) and v.shape == shape and v.ndim > 0


def _cpu(v: Any) -> Any:
    return v.detach().cpu() if torch.is_tensor(v) else v


# -- one process per pool file ---------------------------------------------------------------


class PoolInUse(RuntimeError):
    """Another live process holds the pool file: the pool lives in one process only."""


_held: Counter[str] = Counter()  # lock path -> evaluators of this process that hold it
_held_mutex = threading.Lock()


def _owner() -> str:
    return f"{socket.gethostname()} {os.getpid()}"


def acquire(pool_dir: Path) -> str:
    """Take ``<pool_dir>/pool.lock`` for this process (again, if it holds it already); its path.

    A lock left by a dead process of this host is taken over. Raises :class:`PoolInUse` when a
    live process (or another host) holds it.
    """
    lock = str((pool_dir / _LOCK_FILE).resolve())
    with _held_mutex:
        if _held[lock]:
            _held[lock] += 1
            return lock
        pool_dir.mkdir(parents=True, exist_ok=True)
        for _ in range(2):
            try:
                fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                holder = Path(lock).read_text().strip() if Path(lock).exists() else ""
                if holder == _owner() or _stale(holder):
                    Path(lock).unlink(missing_ok=True)
                    continue
                raise PoolInUse(
                    f"the weight pool {pool_dir} is in use by process {holder!r}: a shared-weights pool lives in "
                    "one process, so run the search with the inline executor (or one worker); if that process is "
                    f"gone, delete {lock}"
                ) from None
            with os.fdopen(fd, "w") as f:
                f.write(_owner())
            _held[lock] += 1
            return lock
        raise PoolInUse(f"could not take the lock {lock}")


def release(lock: str) -> None:
    """Give back one hold of ``lock``; the file goes with the last."""
    with _held_mutex:
        if _held[lock] <= 0:
            return
        _held[lock] -= 1
        if _held[lock] == 0:
            del _held[lock]
            try:
                if Path(lock).read_text().strip() == _owner():
                    Path(lock).unlink()
            except OSError:
                pass


def _stale(holder: str) -> bool:
    """True when ``holder`` ("host pid") is a process of this host that no longer runs."""
    host, _, pid = holder.rpartition(" ")
    if host != socket.gethostname() or not pid.isdigit():
        return not holder  # an empty lock (a crash while writing it) is stale; another host's is not
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, someone else's
        return False
    return False
