"""Shipping an evaluator to another process: worker processes (``local``) and Ray actors (``ray``).

The driver pickles the evaluator once (:func:`dump_evaluator`) and names the user's files it
comes from (:func:`user_modules`); each worker loads them, then the evaluator
(:class:`ShippedEvaluator`), once for all the jobs it runs.
"""

from __future__ import annotations

import importlib.util
import pickle
import sys
from collections.abc import Callable, Mapping

from automl._errors import UsageError
from automl.executors._jobs import Done, Job, Step, run_job
from evaluators import Evaluator

__all__ = ["ShippedEvaluator", "dump_evaluator", "load_evaluator", "user_modules"]

_USER_MODULE_PREFIX = "_automl_user_eval_"  # evaluators loaded from 'path/file.py:fn' (automl._resolve)


def user_modules() -> dict[str, str]:
    """Modules loaded from the user's files (``path/file.py:fn``): name -> file.

    Pickle sends a function by module and name; these modules exist under a made-up name only, so
    a worker loads the same files under the same names before it unpickles the evaluator. (User
    *spaces* need none of this: a :class:`search_spaces.Space` pickles its own file path.)
    """
    out = {}
    for name, module in list(sys.modules.items()):
        path = getattr(module, "__file__", None)
        if name.startswith(_USER_MODULE_PREFIX) and path:
            out[name] = path
    return out


def dump_evaluator(evaluator: Evaluator) -> bytes:
    """The evaluator as bytes for worker processes; :class:`UsageError` naming why if it cannot be.

    cloudpickle when installed (it comes with Ray): functions of importable modules go by
    reference, and what a worker could not import (the ``__main__`` module's functions and
    classes, whether it is a script, ``python -c``, standard input or a notebook; lambdas,
    closures) by value. Plain pickle otherwise: functions by reference only.
    """
    try:
        import cloudpickle as pickler
    except ImportError:
        pickler = pickle  # type: ignore[assignment]
    try:
        return pickler.dumps(evaluator, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as e:
        hint = "" if pickler is not pickle else ", or install cloudpickle"
        raise UsageError(
            f"the evaluator cannot be sent to worker processes ({type(e).__name__}: {e}); "
            f"define it at module level in an importable module or a .py file{hint}"
        ) from e


def load_evaluator(payload: bytes, modules: Mapping[str, str]) -> Evaluator:
    """In a worker: load the user's files under their names, then unpickle the evaluator."""
    for name, path in modules.items():
        if name in sys.modules:
            continue
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot load {path} in the worker")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return pickle.loads(payload)


class ShippedEvaluator:
    """A worker's evaluator, loaded from the driver's payload, or the reason it did not load.

    A worker that cannot load it still starts and says why (``error``): the driver refuses to
    search with it; a job that reaches it anyway fails with that reason.

    Args:
        payload, modules: from :func:`dump_evaluator` and :func:`user_modules` in the driver.
        threads: torch CPU threads for this worker.
        who: the worker's kind, as error messages name it ("worker process", "Ray worker").
    """

    def __init__(self, payload: bytes, modules: Mapping[str, str], threads: int, who: str) -> None:
        self.evaluator: Evaluator | None = None
        self.error: str | None = None
        try:
            self.evaluator = load_evaluator(payload, modules)
        except BaseException as e:
            self.error = f"{who} could not load the evaluator: {type(e).__name__}: {e}"
        try:
            import torch

            torch.set_num_threads(threads)
        except Exception:
            pass

    def run(self, job: Job, objective: str, on_step: Callable[[Step], bool], worker: str) -> Done:
        """:func:`~automl.executors._jobs.run_job` here, or a failed Done if the evaluator did not load."""
        if self.evaluator is None:
            return Done(job.number, "failed", error=self.error, worker=worker)
        return run_job(self.evaluator, job, objective, on_step, worker)
