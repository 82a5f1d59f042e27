"""Where and how a training run executes: device, threads, seeds, data placement, autocast,
memory format and compilation. The CUDA paths here run only where a GPU is present.

- ``amp``: bfloat16 autocast on CUDA (no loss scaling needed for bfloat16); a no-op on the CPU.
- channels_last: 4-D (image) batches and the model use ``torch.channels_last`` on CUDA.
- ``compile``: ``torch.compile`` on CUDA only (see :func:`compiled`).
- ``data_on_device``: ``auto`` keeps the tensors on the GPU when they take under a quarter of
  its free memory; otherwise they stay in host memory and each batch is copied over.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

if TYPE_CHECKING:
    from evaluators._augment import Augment
    from evaluators._training import TrainConfig

AmpFactory = Callable[[], AbstractContextManager[Any]]  # a fresh autocast (or no-op) context per use
_DATA_ON_DEVICE_SHARE = 0.25  # data_on_device="auto": on the GPU under this share of its free memory


def device_of(choice: str) -> torch.device:
    """The device that ``TrainConfig.device`` names (``auto``: CUDA when this process sees a GPU)."""
    if choice == "cpu" or (choice == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise RuntimeError("TrainConfig(device='cuda'), but this process sees no CUDA device")
    return torch.device("cuda", torch.cuda.current_device())


def is_cuda_oom(e: RuntimeError, device: torch.device) -> bool:
    # cuDNN and cuBLAS report a failed allocation as a plain RuntimeError.
    return isinstance(e, torch.cuda.OutOfMemoryError) or (device.type == "cuda" and "out of memory" in str(e))


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@contextmanager
def threads(n: int | None) -> Iterator[None]:
    """torch CPU threads set to ``n`` for the block (None: left as is), then restored."""
    if n is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@contextmanager
def seeded(seed: int, device: torch.device) -> Iterator[None]:
    """Seed torch, numpy and random for the block, then give the caller its generators back."""
    py_state, np_state = random.getstate(), np.random.get_state()
    devices = [device.index or 0] if device.type == "cuda" else []
    try:
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            random.seed(seed)
            np.random.seed(seed % 2**32)
            yield
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)


def data_on_device(cfg: TrainConfig, device: torch.device, nbytes: int) -> bool:
    """Whether to keep tensors of ``nbytes`` in all on ``device`` (always, on the CPU)."""
    if device.type != "cuda":
        return True
    if isinstance(cfg.data_on_device, bool):
        return cfg.data_on_device
    free, _ = torch.cuda.mem_get_info(device)
    return nbytes < _DATA_ON_DEVICE_SHARE * free


def tensor(a: np.ndarray, device: torch.device, on_device: bool) -> torch.Tensor:
    """``a`` as a tensor on ``device``, or left in host memory (each batch is gathered there, then copied)."""
    # The dataset's arrays are read-only; torch wants a writable buffer, so copy once.
    t = torch.from_numpy(np.array(a))
    return t.to(device) if on_device else t


def channels_last(device: torch.device, ndim: int) -> bool:
    """Image batches (4-D) on CUDA run in channels_last memory format (faster convolutions)."""
    return device.type == "cuda" and ndim == 4


def batch(x: torch.Tensor, device: torch.device, augment: Augment | None = None) -> torch.Tensor:
    """A batch ready for the model: on ``device``, augmented, channels_last for images on CUDA."""
    x = x.to(device, non_blocking=True)
    if augment is not None:
        x = augment(x)
    return x.contiguous(memory_format=torch.channels_last) if channels_last(device, x.ndim) else x


def amp(cfg: TrainConfig, device: torch.device) -> AmpFactory:
    """bfloat16 autocast on CUDA with ``cfg.amp``; a no-op context otherwise."""
    use_amp = cfg.amp and device.type == "cuda"
    return lambda: torch.autocast("cuda", dtype=torch.bfloat16) if use_amp else nullcontext()


def compiled(model: nn.Module, cfg: TrainConfig, device: torch.device) -> nn.Module:
    """``torch.compile(model)`` with ``cfg.compile`` on CUDA; the model itself otherwise.

    Ignored on the CPU: compiling needs a C++ toolchain there, costs more than our small CPU runs
    save, and its kernels need not match eager ones bit for bit. The compiled module shares the
    model's parameters; validation, FLOPs, latency and saved weights use the model itself.
    """
    if cfg.compile and device.type == "cuda":
        return torch.compile(model)  # type: ignore[return-value]
    return model
