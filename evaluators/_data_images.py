"""Image folders: one subfolder of images per class.

Layouts (class names sorted give the labels ``0..k-1``; ``Dataset.classes`` keeps the names):

- ``root/CLASS/*.png``: all three splits are split off (60/20/20, stratified);
- ``root/train/CLASS/…`` with ``root/val/…`` and/or ``root/test/…``: those are the splits, and a
  missing one is split off ``train`` (:mod:`evaluators._data_core`). A class in ``val`` or ``test``
  that ``train`` lacks is refused.

Files with an extension Pillow can open are read (others, and names starting with ``.``, are
skipped). Every image is converted to RGB, or to L (one channel) when every image of the dataset
is grayscale (modes 1, L, LA, I, I;16, F), resized to ``image_size`` x ``image_size`` (bilinear),
scaled to [0, 1] and normalized per channel with the mean and standard deviation of the
training split. Input shape: ``(C, image_size, image_size)``.

>>> import tempfile, pathlib
>>> from PIL import Image
>>> from evaluators import datasets
>>> with tempfile.TemporaryDirectory() as tmp:
...     for name, colour in (("red", (255, 0, 0)), ("blue", (0, 0, 255))):
...         (pathlib.Path(tmp) / name).mkdir()
...         for i in range(5):
...             Image.new("RGB", (12, 10), colour).save(pathlib.Path(tmp) / name / f"{i}.png")
...     d = datasets.load(tmp, image_size=8)
>>> d.input_shape, d.classes, len(d.y_train), len(d.y_val), len(d.y_test)
((3, 8, 8), ('blue', 'red'), 6, 2, 2)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from evaluators._data_core import SPLITS, Dataset, DatasetError, complete_splits

__all__ = ["DEFAULT_IMAGE_SIZE", "load_folder"]

DEFAULT_IMAGE_SIZE = 32
_GRAY_MODES = frozenset({"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F"})


def _image_suffixes() -> frozenset[str]:
    from PIL import Image

    return frozenset(ext for ext, fmt in Image.registered_extensions().items() if fmt in Image.OPEN)


def _class_dirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _files_by_split(root: Path) -> dict[str, dict[str, list[Path]]]:
    """split -> class name -> image files; raises :class:`DatasetError` for an empty layout."""
    subdirs = _class_dirs(root)
    if not subdirs:
        raise DatasetError(f"image folder {str(root)!r} has no class subfolders (one folder of images per class)")
    names = {d.name for d in subdirs}
    split_layout = "train" in names and names <= set(SPLITS)
    folders = {d.name: d for d in subdirs} if split_layout else {"train": root}
    suffixes = _image_suffixes()
    out: dict[str, dict[str, list[Path]]] = {}
    for split, folder in folders.items():
        classes = _class_dirs(folder)
        if not classes:
            raise DatasetError(f"image folder {str(folder)!r} has no class subfolders (one folder of images per class)")
        out[split] = {}
        for c in classes:
            files = sorted(
                p for p in c.iterdir() if p.is_file() and p.suffix.lower() in suffixes and not p.name.startswith(".")
            )
            if not files:
                raise DatasetError(f"class folder {str(c)!r} has no images (.png, .jpg, … files Pillow can read)")
            out[split][c.name] = files
    train = set(out["train"])
    for split in ("val", "test"):
        extra = sorted(set(out.get(split, {})) - train)
        if extra:
            raise DatasetError(
                f"image folder {str(root)!r}: the {split} split has classes the training split lacks: "
                f"{', '.join(extra)}"
            )
    return out


def _read(path: Path, mode: str, size: int) -> np.ndarray:
    from PIL import Image

    try:
        with Image.open(path) as im:
            im = im.convert(mode).resize((size, size), Image.Resampling.BILINEAR)
            a = np.asarray(im, dtype=np.float32) / 255.0
    except (OSError, ValueError, SyntaxError) as e:  # Pillow raises all three for broken files
        raise DatasetError(f"image file {str(path)!r} is not a readable image ({e})") from e
    return a[None] if a.ndim == 2 else a.transpose(2, 0, 1)  # (H, W) or (H, W, C) -> (C, H, W)


def _mode(path: Path) -> str:
    from PIL import Image

    try:
        with Image.open(path) as im:
            return im.mode
    except (OSError, ValueError, SyntaxError) as e:
        raise DatasetError(f"image file {str(path)!r} is not a readable image ({e})") from e


def load_folder(root: Path, image_size: int | None, seed: int) -> Dataset:
    size = DEFAULT_IMAGE_SIZE if image_size is None else image_size
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise DatasetError(f"image_size must be a positive whole number of pixels, got {image_size!r}")
    files = _files_by_split(root)
    classes = sorted(files["train"])
    label = {c: i for i, c in enumerate(classes)}
    every = [p for by_class in files.values() for paths in by_class.values() for p in paths]
    mode = "L" if all(_mode(p) in _GRAY_MODES for p in every) else "RGB"
    channels = 1 if mode == "L" else 3

    given: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for split, by_class in files.items():
        paths = [(p, label[c]) for c, ps in by_class.items() for p in ps]
        x = np.empty((len(paths), channels, size, size), dtype=np.float32)
        for i, (p, _) in enumerate(paths):
            x[i] = _read(p, mode, size)
        given[split] = (x, np.array([y for _, y in paths], dtype=np.int64))
    done = complete_splits(repr(str(root)), given, seed)

    x_train = done["train"][0]
    mean = x_train.mean(axis=(0, 2, 3), keepdims=True, dtype=np.float64)  # (1, C, 1, 1)
    std = x_train.std(axis=(0, 2, 3), keepdims=True, dtype=np.float64)
    std[std < 1e-8] = 1.0  # a constant channel is only centred
    (xt, yt), (xv, yv), (xs, ys) = ((((done[s][0] - mean) / std).astype(np.float32), done[s][1]) for s in SPLITS)
    name = root.resolve().name
    return Dataset(name, xt, yt, xv, yv, xt.shape[1:], len(classes), x_test=xs, y_test=ys, classes=tuple(classes))
