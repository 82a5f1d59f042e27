"""Writing files so that a reader never sees half of one."""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path

from automl._errors import UsageError

__all__ = ["atomic_write"]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path: Path, write: Callable[[Path], object]) -> Path:
    """``write(tmp)`` into a temporary file beside the target, then rename it over the target.

    A symlink is written through (its target is replaced, the link stays); anything that is not
    a regular file (a device, a FIFO, a socket) is refused. The file gets the mode an ordinary
    new file would get under the umask, or keeps the mode of the file it replaces. An unwritable
    place becomes a :class:`UsageError` naming the path. Returns the path written.
    """
    target = Path(os.path.realpath(path)) if path.is_symlink() else path
    if target.exists() and not target.is_file():
        kind = "a directory" if target.is_dir() else "not a regular file"
        raise UsageError(f"refusing to write {str(path)!r}: it is {kind}")
    mode = stat.S_IMODE(target.stat().st_mode) if target.exists() else 0o666 & ~_umask()
    parent = target.parent if str(target.parent) else Path(".")
    try:
        fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=parent)
    except OSError as e:
        raise UsageError(f"cannot write {str(path)!r}: {e.strerror}") from e
    os.close(fd)
    tmp = Path(name)
    try:
        write(tmp)
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except OSError as e:  # permission, read-only file system, disk full
        raise UsageError(f"cannot write {str(path)!r}: {e.strerror}") from e
    finally:
        tmp.unlink(missing_ok=True)
    return target
