"""Data augmentation on a training batch, with torch ops on the batch's own device.

``TrainConfig(augment=...)`` names the operations: ``"none"``, ``"auto"``, or a comma-separated
list of ``crop``, ``flip``, ``cutout`` (images, batches ``(N, C, H, W)``) and ``shift``
(sequences, batches ``(N, C, L)`` or ``(N, L)``). ``auto`` means ``crop,flip`` for images,
``shift`` for 3-D sequences and nothing for 2-D inputs (flat tabular data looks the same).

- ``crop``: random crop after zero padding by ``p = max(1, round(side / 8))`` pixels (4 px on
  32x32, 1 px on 8x8), done as a random translation by ``[-p, p]`` with zero fill (the same thing).
- ``flip``: horizontal flip (last axis) of each image with probability 1/2.
- ``cutout``: one square hole of side ``max(1, round(min(H, W) / 2))`` (16 px on 32x32), centred
  anywhere in the image and clipped at its border, filled with zeros (DeVries & Taylor, 2017).
- ``shift``: translation along the length by up to ``max(1, round(L / 10))`` steps, zero fill.

Every random number comes from one generator on the batch's device, seeded from
``TrainConfig.seed``, so CPU runs repeat bit for bit. Operations run in the order above.

>>> import torch
>>> aug = Augment("crop,flip", ndim=4, seed=0, device=torch.device("cpu"))
>>> aug.ops, aug(torch.ones(2, 1, 8, 8)).shape
(('crop', 'flip'), torch.Size([2, 1, 8, 8]))
"""

from __future__ import annotations

import torch

__all__ = ["OPS", "Augment", "parse"]

OPS = ("crop", "flip", "cutout", "shift")  # in the order they are applied
_IMAGE_OPS = frozenset({"crop", "flip", "cutout"})
_SEED_OFFSET = 0x5EED  # the augmentation stream differs from the shuffling stream of the same seed


def parse(spec: object) -> tuple[str, ...] | None:
    """The operations ``spec`` names, in the order applied (``("auto",)`` for auto), or None if invalid."""
    if not isinstance(spec, str):
        return None
    names = [s.strip() for s in spec.split(",")]
    if names in (["none"], ["auto"]):
        return () if names == ["none"] else ("auto",)
    if not names or any(n not in OPS for n in names):
        return None
    return tuple(op for op in OPS if op in names)


def resolve(spec: str, ndim: int) -> tuple[str, ...]:
    """The operations for batches with ``ndim`` dimensions; ValueError when one does not fit them."""
    ops = parse(spec)
    if ops is None:
        raise ValueError(f"augment must be 'none', 'auto' or a comma-separated list of {', '.join(OPS)}, got {spec!r}")
    if ops == ("auto",):
        return ("crop", "flip") if ndim == 4 else ("shift",) if ndim == 3 else ()
    for op in ops:
        if op in _IMAGE_OPS and ndim != 4:
            raise ValueError(f"augment {op!r} needs image batches (N, C, H, W), but the inputs have {ndim} dimensions")
        if op == "shift" and ndim not in (2, 3):
            raise ValueError(f"augment 'shift' needs sequence batches (N, C, L) or (N, L), got {ndim} dimensions")
    return ops


class Augment:
    """``augment(x)``: a randomly augmented copy of the batch ``x`` (``x`` itself when no op is on).

    Args:
        spec: the ``TrainConfig.augment`` text.
        ndim: dimensions of a batch (4 for images), to resolve ``auto`` and check the ops.
        seed: seeds this augmenter's own generator.
        device: where the batches (and the generator) live.
    """

    def __init__(self, spec: str, *, ndim: int, seed: int, device: torch.device) -> None:
        self.ops = resolve(spec, ndim)
        self._gen = torch.Generator(device=device).manual_seed((seed + _SEED_OFFSET) % 2**63)

    def generator_state(self) -> torch.Tensor:
        """The generator's state, to go on later with the same draws (a paused training)."""
        return self._gen.get_state()

    def set_generator_state(self, state: torch.Tensor) -> None:
        self._gen.set_state(state)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        for op in self.ops:
            x = getattr(self, f"_{op}")(x)
        return x

    def _randint(self, low: int, high: int, n: int) -> torch.Tensor:
        """``n`` integers uniform in ``[low, high]`` (both included), on the generator's device."""
        return torch.randint(low, high + 1, (n,), generator=self._gen, device=self._gen.device)

    def _crop(self, x: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        ph, pw = max(1, round(h / 8)), max(1, round(w / 8))
        return _translate(_translate(x, 2, self._randint(-ph, ph, n)), 3, self._randint(-pw, pw, n))

    def _flip(self, x: torch.Tensor) -> torch.Tensor:
        flip = self._randint(0, 1, len(x)).bool()
        return torch.where(flip[:, None, None, None], x.flip(3), x)

    def _cutout(self, x: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        side = max(1, round(min(h, w) / 2))
        top = self._randint(0, h - 1, n) - side // 2  # (N,) first row of the hole (may be < 0)
        left = self._randint(0, w - 1, n) - side // 2
        rows = torch.arange(h, device=x.device) - top[:, None]  # (N, H): row index inside the hole
        cols = torch.arange(w, device=x.device) - left[:, None]
        hole = ((rows >= 0) & (rows < side))[:, None, :, None] & ((cols >= 0) & (cols < side))[:, None, None, :]
        return x.masked_fill(hole, 0)

    def _shift(self, x: torch.Tensor) -> torch.Tensor:
        length = x.shape[-1]
        most = max(1, round(length / 10))
        return _translate(x, x.ndim - 1, self._randint(-most, most, len(x)))


def _translate(x: torch.Tensor, dim: int, offset: torch.Tensor) -> torch.Tensor:
    """Move each sample ``i`` of ``x`` by ``offset[i]`` along ``dim`` (output j = input j - offset), zero fill."""
    size = x.shape[dim]
    src = torch.arange(size, device=x.device) - offset[:, None]  # (N, size): where each output reads from
    shape = [len(x)] + [1] * (x.ndim - 1)
    shape[dim] = size
    inside = ((src >= 0) & (src < size)).view(shape)
    moved = x.gather(dim, src.clamp(0, size - 1).view(shape).expand_as(x))
    return moved.masked_fill(~inside, 0)
