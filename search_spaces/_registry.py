"""Built-in spaces by name, and user spaces from ``path/to/file.py:function``."""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import inspect
import sys
from pathlib import Path

from search_spaces._dsl import Space, SpaceError

__all__ = ["get", "import_file_attribute", "load", "names"]

# name -> "module:attribute"; imported on first use so listing names costs nothing.
_BUILTIN = {
    "cnn": "search_spaces.cnn:cnn",
    "cnn1d": "search_spaces.cnn1d:cnn1d",
    "mlp": "search_spaces.mlp:mlp",
    "nb201": "search_spaces.nb201:nb201",
    "resnet": "search_spaces.resnet:resnet",
}


def names() -> list[str]:
    """Names of the built-in spaces."""
    return sorted(_BUILTIN)


def get(name: str) -> Space:
    """The built-in space called ``name``."""
    if name not in _BUILTIN:
        raise SpaceError(f"unknown space {name!r}; built-in spaces: {', '.join(names())}")
    module, attr = _BUILTIN[name].split(":")
    obj = getattr(importlib.import_module(module), attr)
    return obj if isinstance(obj, Space) else Space(obj, name=name)


def load(spec: str | Space) -> Space:
    """A space from a built-in name or ``path/to/file.py:function``.

    The function may be a :class:`Space` (e.g. made with ``@space``), a space function
    ``fn(a, ...)``, or a factory with no arguments that returns a :class:`Space`.
    """
    if isinstance(spec, Space):
        return spec
    if not isinstance(spec, str) or not spec:
        raise SpaceError(f"a space is a built-in name or 'path/to/file.py:function', got {spec!r}")
    if ":" not in spec and not spec.endswith(".py"):
        return get(spec)
    if ":" not in spec:
        raise SpaceError(f"space file {spec!r}: name the function, as in '{spec}:my_space'")
    obj, path, attr = import_file_attribute(spec, "space", "_automl_user_space_")
    # The origin lets a worker process load the file again (pickle); the file's own Space is left alone.
    return dataclasses.replace(_space_of(obj, spec, attr), origin=f"{path.resolve()}:{attr}")


def import_file_attribute(spec: str, what: str, module_prefix: str) -> tuple[object, Path, str]:
    """``path/to/file.py:name`` -> (the object, the file, name); :class:`SpaceError` names the problem.

    The file is imported as module ``<module_prefix><hash of its path>``, kept in ``sys.modules``
    so pickle (and worker processes) can find what it defines. ``what`` starts the messages.
    """
    path_text, _, attr = spec.rpartition(":")
    if not attr or not path_text:
        raise SpaceError(f"{what} {spec!r}: expected 'path/to/file.py:function'")
    path = Path(path_text)
    if not path.is_file():
        raise SpaceError(f"{what} file {path_text!r} does not exist")
    mod_name = f"{module_prefix}{abs(hash(str(path.resolve())))}"
    loader_spec = importlib.util.spec_from_file_location(mod_name, path)
    if loader_spec is None or loader_spec.loader is None:
        raise SpaceError(f"{what} file {path_text!r} is not a Python file")
    module = importlib.util.module_from_spec(loader_spec)
    sys.modules[mod_name] = module
    try:
        loader_spec.loader.exec_module(module)
    except Exception as e:
        raise SpaceError(f"{what} file {path_text!r} raised {type(e).__name__}: {e}") from e
    if not hasattr(module, attr):
        raise SpaceError(f"{what} file {path_text!r} defines no {attr!r}")
    return getattr(module, attr), path, attr


def _space_of(obj: object, spec: str, attr: str) -> Space:
    # The attribute may be a Space, a space function fn(a, ...), or a factory with no arguments.
    if isinstance(obj, Space):
        return obj
    if not callable(obj):
        raise SpaceError(f"{spec!r} is not a space function or a Space")
    try:
        takes_args = bool(inspect.signature(obj).parameters)
    except (TypeError, ValueError):
        takes_args = True
    if not takes_args:
        try:
            made = obj()
        except Exception as e:
            raise SpaceError(f"{spec!r} raised {type(e).__name__}: {e}") from e
        if not isinstance(made, Space):
            raise SpaceError(f"{spec!r} takes no arguments, so it must return a Space, got {type(made).__name__}")
        return made
    return Space(obj, name=attr)
