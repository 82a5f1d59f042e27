"""Pruners: stop poor trials early from their per-epoch reports, under every executor.

The search loop asks the pruner in the driver about each report a running trial makes, then
stores the report, so the same pruner works with the inline, local and Ray executors and its
decision reaches the worker as the answer to that report. When a pruner stops a trial, the
reason (:class:`PruneDecision`: rung, value, threshold, bracket) is stored with that step under
the metrics key ``"_pruned"``. State is rebuilt on resume by hearing the stored reports again
(:func:`restore_pruner`).

- :class:`ASHAPruner` (``asha``): asynchronous successive halving, Ray Tune's rule.
- :class:`HyperbandPruner` (``hyperband``): several ASHA brackets, trials dealt round robin.
- :class:`MedianPruner` (``median``): below the median of the others at the same step.

Any callable ``pruner(step, metrics) -> bool`` works too; :class:`Pruner` is the base to say why.
"""

from automl.pruners._asha import ASHAPruner, default_min_resource
from automl.pruners._base import PRUNED_KEY, PruneDecision, Pruner, ask_pruner
from automl.pruners._factory import make_pruner, pruner_names, restore_pruner
from automl.pruners._hyperband import HyperbandPruner
from automl.pruners._median import MedianPruner

__all__ = [
    "PRUNED_KEY",
    "ASHAPruner",
    "HyperbandPruner",
    "MedianPruner",
    "PruneDecision",
    "Pruner",
    "ask_pruner",
    "default_min_resource",
    "make_pruner",
    "pruner_names",
    "restore_pruner",
]
