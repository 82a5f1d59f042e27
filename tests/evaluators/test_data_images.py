"""Image folders: the three layouts, colour modes, per-channel normalization, bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from evaluators import DatasetError, datasets

_COLOURS = {"cat": (200, 30, 30), "dog": (30, 200, 30), "owl": (30, 30, 200)}


def _images(root: Path, per_class: int = 6, mode: str = "RGB", size: tuple[int, int] = (10, 7)) -> Path:
    for c, (r, g, b) in _COLOURS.items():
        (root / c).mkdir(parents=True)
        for i in range(per_class):
            colour = (r + i, g, b) if mode == "RGB" else r + i
            Image.new(mode, size, colour).save(root / c / f"{i}.png")
    return root


def test_plain_class_folders(tmp_path: Path) -> None:
    root = _images(tmp_path / "pets")
    (root / "cat" / "notes.txt").write_text("not an image: skipped")
    d = datasets.load(root, image_size=8)
    assert d.name == "pets" and d.classes == ("cat", "dog", "owl") and d.num_classes == 3
    assert d.input_shape == (3, 8, 8) and d.x_train.dtype == np.float32
    assert (len(d.y_train), len(d.y_val), len(d.y_test)) == (10, 4, 4)  # 18: 20% rounded up is 4
    assert sorted(set(d.y_test.tolist())) == [0, 1, 2]  # stratified
    # Normalized per channel with the training split's statistics.
    np.testing.assert_allclose(d.x_train.mean(axis=(0, 2, 3)), 0, atol=1e-5)
    np.testing.assert_allclose(d.x_train.std(axis=(0, 2, 3)), 1, atol=1e-4)
    red = d.x_train[d.y_train == 0][:, 0]  # cats are red: above the mean in the red channel
    assert (red > 0.5).all()


def test_default_image_size_and_grayscale(tmp_path: Path) -> None:
    d = datasets.load(_images(tmp_path / "gray", mode="L"))
    assert d.input_shape == (1, 32, 32)  # every image is grayscale: one channel


def test_one_colour_image_makes_everything_rgb(tmp_path: Path) -> None:
    root = _images(tmp_path / "mixed", mode="L")
    Image.new("RGB", (5, 5), (1, 2, 3)).save(root / "owl" / "colour.png")
    assert datasets.load(root, image_size=4).input_shape == (3, 4, 4)


def test_train_val_test_folders_are_the_splits(tmp_path: Path) -> None:
    root = tmp_path / "given"
    _images(root / "train", per_class=4)
    _images(root / "val", per_class=2)
    _images(root / "test", per_class=1)
    d = datasets.load(root, image_size=4)
    assert (len(d.y_train), len(d.y_val), len(d.y_test)) == (12, 6, 3)
    assert d.name == "given" and d.classes == ("cat", "dog", "owl")


def test_train_and_test_folders_get_val_from_train(tmp_path: Path) -> None:
    root = tmp_path / "two"
    _images(root / "train", per_class=5)
    _images(root / "test", per_class=1)
    d = datasets.load(root, image_size=4)
    assert (len(d.y_train), len(d.y_val), len(d.y_test)) == (12, 3, 3)  # val: 20% of the 15 train images


def test_image_size_is_part_of_the_cache_key(tmp_path: Path) -> None:
    root = _images(tmp_path / "pets")
    small, large = datasets.load(root, image_size=4), datasets.load(root, image_size=6)
    assert small.input_shape == (3, 4, 4) and large.input_shape == (3, 6, 6)
    assert datasets.load(root, image_size=4) is small
    Image.new("RGB", (5, 5)).save(root / "dog" / "new.png")  # a new file: read again
    again = datasets.load(root, image_size=4)
    assert again is not small and len(again.y_train) + len(again.y_val) + len(again.y_test) == 19


def test_folder_without_class_subfolders(tmp_path: Path) -> None:
    Image.new("RGB", (4, 4)).save(tmp_path / "lonely.png")
    with pytest.raises(DatasetError, match=r"image folder '.*' has no class subfolders"):
        datasets.load(tmp_path)


def test_class_folder_without_images(tmp_path: Path) -> None:
    root = _images(tmp_path / "pets")
    (root / "empty").mkdir()
    (root / "empty" / "readme.txt").write_text("nothing")
    with pytest.raises(DatasetError, match=r"class folder '.*empty' has no images"):
        datasets.load(root)


@pytest.mark.parametrize("content", [b"not a png at all", None], ids=["garbage", "truncated"])
def test_unreadable_image_is_named(tmp_path: Path, content: bytes | None) -> None:
    root = _images(tmp_path / "pets")
    bad = root / "dog" / "broken.png"
    if content is None:  # a real PNG cut short: the header reads, the pixels do not
        Image.new("RGB", (64, 64), (9, 9, 9)).save(bad)
        bad.write_bytes(bad.read_bytes()[:60])
    else:
        bad.write_bytes(content)
    with pytest.raises(DatasetError, match=r"image file '.*dog/broken\.png' is not a readable image"):
        datasets.load(root, image_size=4)


def test_test_folder_with_a_class_train_lacks(tmp_path: Path) -> None:
    root = tmp_path / "given"
    _images(root / "train")
    _images(root / "test", per_class=1)
    (root / "test" / "yak").mkdir()
    Image.new("RGB", (4, 4)).save(root / "test" / "yak" / "0.png")
    with pytest.raises(DatasetError, match=r"the test split has classes the training split lacks: yak"):
        datasets.load(root)


@pytest.mark.parametrize("size", [0, -3, 2.5, True])
def test_bad_image_size(tmp_path: Path, size: object) -> None:
    with pytest.raises(DatasetError, match=r"image_size must be a positive whole number of pixels"):
        datasets.load(_images(tmp_path / "pets"), image_size=size)  # type: ignore[arg-type]
