"""The results dashboard: ``automl dashboard`` serves it, :func:`create_app` builds it.

>>> app = create_app("sqlite:///automl.db", host="127.0.0.1")   # doctest: +SKIP
>>> uvicorn.run(app, host="127.0.0.1", port=8000)                # doctest: +SKIP

``host`` is the address it will listen on: requests that name another host are refused.
"""

from __future__ import annotations

from automl.dashboard._app import create_app

__all__ = ["create_app"]
