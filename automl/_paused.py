"""Paused trials' checkpoints on the driver's disk.

A trial that a promoting pruner (ASHA, Hyperband) stops is paused: the worker sends its training
state back with the result (:class:`~automl.executors.Done.checkpoint`) and the driver writes it
here *before* the store names it (:data:`store.CHECKPOINT_KEY`), so the store never points at a
file that is not whole on disk. A file is deleted only once the store no longer names it, so a
crash anywhere leaves at worst an orphan file, never a stored checkpoint without its file.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from sqlalchemy.engine import make_url

__all__ = ["Checkpoints", "checkpoint_root"]


def checkpoint_root(storage_url: str) -> Path:
    """Where paused trials' checkpoints go: ``$AUTOML_CHECKPOINTS``, else ``automl-checkpoints``
    beside a SQLite database file, else (a server database, an in-memory one) in the current
    directory."""
    env = os.environ.get("AUTOML_CHECKPOINTS")
    if env:
        return Path(env).resolve()
    try:
        url = make_url(storage_url)
    except Exception:
        url = None
    database = url.database if url is not None and url.get_backend_name() == "sqlite" else None
    if database and database != ":memory:" and not database.startswith("file:"):
        return Path(database).resolve().parent / "automl-checkpoints"
    return Path("automl-checkpoints").resolve()


class Checkpoints:
    """The checkpoint files of one search, in ``root/<search name>-<search id>/``."""

    def __init__(self, root: Path, search_name: str, search_id: int) -> None:
        self.dir = root / f"{search_name}-{search_id}"

    def write(self, number: int, step: int, data: bytes) -> str:
        """Write trial ``number``'s state after ``step`` durably; its absolute path."""
        self.dir.mkdir(parents=True, exist_ok=True)
        path = self.dir / f"trial-{number}-step-{step}.pt"
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())  # on disk before the store names it
        os.replace(tmp, path)
        return str(path)

    @staticmethod
    def read(path: str) -> bytes | None:
        """The checkpoint at ``path``; None when it is gone (deleted by hand, another machine's disk)."""
        try:
            return Path(path).read_bytes()
        except OSError:
            return None

    @staticmethod
    def delete(path: str) -> None:
        """Remove a checkpoint the store no longer names (best effort)."""
        with contextlib.suppress(OSError):
            os.unlink(path)
