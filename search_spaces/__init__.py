"""Search spaces: a define-by-run DSL over PyTorch, and the built-in spaces.

>>> import search_spaces
>>> nb = search_spaces.get("nb201")
>>> len(nb.decisions), str(nb.size())
(6, '15,625')
"""

from __future__ import annotations

from search_spaces._arch import Arch, arch_key
from search_spaces._dsl import (
    Chooser,
    Decision,
    InvalidArchitecture,
    Space,
    SpaceError,
    SpaceSize,
    Trace,
    space,
)
from search_spaces._registry import get, import_file_attribute, load, names

__all__ = [
    "Arch",
    "Chooser",
    "Decision",
    "InvalidArchitecture",
    "Space",
    "SpaceError",
    "SpaceSize",
    "Trace",
    "arch_key",
    "get",
    "import_file_attribute",
    "load",
    "names",
    "space",
]
