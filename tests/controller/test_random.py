"""Random search on range decisions: uniform and log-uniform, checked against their known quantiles."""

from __future__ import annotations

import math

import numpy as np

from controller import RandomProposer
from tests.controller._spaces import mixed


def _draws(name: str, n: int = 4000) -> np.ndarray:
    p = RandomProposer(mixed, seed=0)
    values = [p.ask().arch.get(name) for _ in range(n)]
    return np.array([v for v in values if v is not None], dtype=float)


def test_log_uniform_median_is_the_geometric_mean() -> None:
    lr = _draws("lr")  # log-uniform on [1e-4, 1e-1]
    assert lr.min() >= 1e-4 and lr.max() <= 1e-1
    # The median of a log-uniform variable is sqrt(low * high) = 3.16e-3; a uniform one's would
    # be ~0.05. With 4,000 draws the sample median's log10 is within ~0.05 of -2.5.
    assert abs(math.log10(np.median(lr)) - math.log10(math.sqrt(1e-4 * 1e-1))) < 0.1
    # Each decade gets a third of the draws.
    decades = np.histogram(np.log10(lr), bins=[-4, -3, -2, -1])[0] / len(lr)
    assert np.allclose(decades, 1 / 3, atol=0.04)


def test_uniform_float_median_is_the_middle() -> None:
    dropout = _draws("dropout")  # uniform on [0, 0.5]
    assert dropout.min() >= 0.0 and dropout.max() <= 0.5
    assert abs(np.median(dropout) - 0.25) < 0.02


def test_log_uniform_integers() -> None:
    warmup = _draws("warmup")  # log-uniform integers in [1, 1000], only on the "adam" branch
    assert set(warmup) <= set(range(1, 1001)) and len(warmup) > 1000
    # P(v) = log((v + 1) / v) / log(1001): P(1) = 0.100, P(2..9) = log(10/2) / log(1001) = 0.233.
    assert abs(np.mean(warmup == 1) - 0.100) < 0.03
    assert abs(np.mean((warmup >= 2) & (warmup <= 9)) - 0.233) < 0.04
    batch = _draws("batch")  # 2..5: P = log(3/2), log(4/3), log(5/4), log(6/5) over log(3)
    shares = [np.mean(batch == v) for v in (2, 3, 4, 5)]
    assert np.allclose(shares, [math.log((v + 1) / v) / math.log(3) for v in (2, 3, 4, 5)], atol=0.03)
