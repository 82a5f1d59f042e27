"""``.npz`` files, memory-mapped when large.

An ``.npz`` holds ``x_train``, ``y_train`` and optionally ``x_val``/``y_val`` and ``x_test``/``y_test``
(missing splits are split off the training rows: see :mod:`evaluators._data_core`).

A file larger than ``AUTOML_MMAP_BYTES`` (default 512 MiB) is not read into memory: each member
stored uncompressed (``np.savez``, not ``np.savez_compressed``) becomes a read-only ``np.memmap``
over the ``.npy`` bytes inside the zip file, found from the member's local header. Compressed
members are read normally. To keep the arrays on disk, save ``x_*`` as float32 and ``y_*`` as
int64 and bring all three splits: a conversion or a split off the training rows makes copies.
"""

from __future__ import annotations

import os
import struct
import zipfile
from pathlib import Path

import numpy as np

from evaluators._data_core import Dataset, DatasetError, from_arrays

__all__ = ["DEFAULT_MMAP_BYTES", "load_npz", "mmap_threshold"]

DEFAULT_MMAP_BYTES = 512 * 2**20
_KEYS = ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test")
_LOCAL_HEADER = struct.Struct("<4s22xHH")  # signature, (22 bytes we skip), name length, extra length


def mmap_threshold() -> int:
    """Bytes above which an ``.npz`` is memory-mapped: ``AUTOML_MMAP_BYTES`` or 512 MiB."""
    text = os.environ.get("AUTOML_MMAP_BYTES", "").strip()
    if not text:
        return DEFAULT_MMAP_BYTES
    try:
        return int(text)
    except ValueError:
        raise DatasetError(f"AUTOML_MMAP_BYTES must be a whole number of bytes, got {text!r}") from None


def load_npz(path: Path, seed: int) -> Dataset:
    where = repr(str(path))
    if not path.is_file():
        raise DatasetError(f"dataset file {where} does not exist")
    try:
        if path.stat().st_size > mmap_threshold():
            arrays = _mapped(path, where)
        else:
            with np.load(path, allow_pickle=False) as npz:
                arrays = {k: npz[k] for k in _KEYS if k in npz.files}
    except DatasetError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile, EOFError, struct.error) as e:
        # allow_pickle=False makes object arrays (e.g. strings of mixed type) a ValueError.
        raise DatasetError(f"dataset file {where} is not a readable .npz of numeric arrays ({e})") from e
    missing = [k for k in ("x_train", "y_train") if k not in arrays]
    if missing:
        raise DatasetError(
            f"dataset {where} lacks {', '.join(missing)}; an .npz needs x_train, y_train "
            "(and optionally x_val, y_val, x_test, y_test)"
        )
    return from_arrays(path.stem, **arrays, seed=seed, where=where)


def _mapped(path: Path, where: str) -> dict[str, np.ndarray]:
    """The members named in ``_KEYS``: ``np.memmap`` when stored uncompressed, else read."""
    out: dict[str, np.ndarray] = {}
    with zipfile.ZipFile(path) as zf, open(path, "rb") as f:
        for info in zf.infolist():
            key = info.filename.removesuffix(".npy")
            if key not in _KEYS or not info.filename.endswith(".npy"):
                continue
            if info.compress_type != zipfile.ZIP_STORED:
                with zf.open(info) as member:
                    out[key] = np.lib.format.read_array(member, allow_pickle=False)
                continue
            f.seek(info.header_offset)
            signature, name_len, extra_len = _LOCAL_HEADER.unpack(f.read(_LOCAL_HEADER.size))
            if signature != b"PK\x03\x04":
                raise DatasetError(f"dataset file {where}: member {info.filename} has a damaged zip header")
            f.seek(info.header_offset + _LOCAL_HEADER.size + name_len + extra_len)
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
            elif version == (2, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
            else:  # 3.0 (utf8 field names) is rare: read it normally
                with zf.open(info) as member:
                    out[key] = np.lib.format.read_array(member, allow_pickle=False)
                continue
            if dtype.hasobject:
                raise DatasetError(f"dataset file {where}: {key} holds Python objects, not numbers")
            if int(np.prod(shape)) == 0:
                out[key] = np.zeros(shape, dtype=dtype)
                continue
            order = "F" if fortran else "C"
            out[key] = np.memmap(path, dtype=dtype, mode="r", offset=f.tell(), shape=shape, order=order)
    return out
