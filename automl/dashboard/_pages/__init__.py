"""The dashboard's routes, one module per page; :data:`ROUTERS` is what the app includes."""

from __future__ import annotations

from automl.dashboard._pages import api, compare, index, search, static, trial

__all__ = ["ROUTERS"]

ROUTERS = (static.router, index.router, search.router, trial.router, compare.router, api.router)
