"""Large .npz files are memory-mapped (threshold AUTOML_MMAP_BYTES), and still train."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from evaluators import DatasetError, datasets


def _arrays(n: int = 64) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    y = np.arange(n, dtype=np.int64) % 2
    x = (rng.normal(size=(n, 3, 4)) + y[:, None, None]).astype(np.float32)  # class 1 sits higher: learnable
    return {"x_train": x, "y_train": y, "x_val": x[:16].copy(), "y_val": y[:16].copy(),
            "x_test": x[16:32].copy(), "y_test": y[16:32].copy()}  # fmt: skip


@pytest.fixture
def small_threshold(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTOML_MMAP_BYTES", "100")


def test_uncompressed_npz_over_the_threshold_is_memory_mapped(tmp_path: Path, small_threshold: None) -> None:
    arrays = _arrays()
    np.savez(tmp_path / "big.npz", **arrays)
    d = datasets.load(tmp_path / "big.npz")
    for key, value in arrays.items():
        got = getattr(d, key)
        assert isinstance(got, np.memmap) and not got.flags.writeable, key
        np.testing.assert_array_equal(got, value)

    # A training-like pass: shuffled mini-batches read from the map, a few steps of SGD.
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 2))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    order = np.random.default_rng(0).permutation(len(d.y_train))
    losses = []
    for _ in range(5):
        for i in range(0, len(order), 16):
            idx = np.sort(order[i : i + 16])
            xb, yb = torch.from_numpy(np.asarray(d.x_train[idx])), torch.from_numpy(np.asarray(d.y_train[idx]))
            loss = torch.nn.functional.cross_entropy(model(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
    assert np.isfinite(losses).all() and np.mean(losses[-4:]) < np.mean(losses[:4])


def test_under_the_threshold_or_compressed_is_read_into_memory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    arrays = _arrays()
    np.savez(tmp_path / "plain.npz", **arrays)
    assert not isinstance(datasets.load(tmp_path / "plain.npz").x_train, np.memmap)  # default threshold: 512 MiB
    monkeypatch.setenv("AUTOML_MMAP_BYTES", "100")
    np.savez_compressed(tmp_path / "packed.npz", **arrays)
    d = datasets.load(tmp_path / "packed.npz")
    assert not isinstance(d.x_train, np.memmap)
    np.testing.assert_array_equal(d.x_train, arrays["x_train"])


def test_mapped_arrays_of_another_dtype_are_converted(tmp_path: Path, small_threshold: None) -> None:
    arrays = _arrays()
    arrays["x_train"] = arrays["x_train"].astype(np.float64)
    arrays["y_train"] = arrays["y_train"].astype(np.int32)
    del arrays["x_test"], arrays["y_test"]
    np.savez(tmp_path / "wide.npz", **arrays)
    d = datasets.load(tmp_path / "wide.npz")
    assert d.x_train.dtype == np.float32 and not isinstance(d.x_train, np.memmap)
    assert isinstance(d.x_val, np.memmap)  # float32 and given: stays on disk
    assert (len(d.y_train), len(d.y_val), len(d.y_test)) == (51, 16, 13)


def test_mapped_checks_still_apply(tmp_path: Path, small_threshold: None) -> None:
    arrays = _arrays()
    arrays["x_val"][3, 0, 0] = np.nan
    np.savez(tmp_path / "nan.npz", **arrays)
    with pytest.raises(DatasetError, match=r"x_val contains NaN or inf"):
        datasets.load(tmp_path / "nan.npz")
    np.savez(tmp_path / "obj.npz", x_train=np.array([[1, "a"]] * 4, dtype=object), y_train=np.zeros(4, int))
    with pytest.raises(DatasetError, match=r"obj\.npz': x_train holds Python objects"):
        datasets.load(tmp_path / "obj.npz")


def test_bad_threshold(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    np.savez(tmp_path / "toy.npz", **_arrays())
    monkeypatch.setenv("AUTOML_MMAP_BYTES", "lots")
    with pytest.raises(DatasetError, match=r"AUTOML_MMAP_BYTES must be a whole number of bytes, got 'lots'"):
        datasets.load(tmp_path / "toy.npz")
