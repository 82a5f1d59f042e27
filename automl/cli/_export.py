"""``automl export TRIAL --format pt|torchscript|onnx|json -o FILE``: a trial as a standalone model."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from automl.results._export import FORMATS

if TYPE_CHECKING:
    from store import SearchRecord, Store

__all__ = ["register"]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export",
        help="write a trial's model (TorchScript, ONNX, PyTorch) or its decisions (JSON) to a file",
        description="Export a stored trial. torchscript and onnx load without automl (torch.jit.load, "
        "onnxruntime); pt is a state_dict plus what rebuilds the module (automl.load_pt); json is the "
        "decisions. Trained weights when the evaluator kept them (TrainConfig(weights_dir=...)), else freshly "
        "initialized ones (a note says so).",
    )
    p.add_argument("trial", help="NUMBER (latest search), SEARCH/NUMBER, or --search SEARCH NUMBER")
    p.add_argument("--search", default=None, help="search name (default: the latest)")
    p.add_argument("--format", "-f", default="torchscript", help=f"{' | '.join(FORMATS)} (default: torchscript)")
    p.add_argument("-o", "--output", required=True, help="file to write")
    p.add_argument("--storage", default=None, help="SQLAlchemy URL (default: $AUTOML_STORAGE or sqlite:///automl.db)")
    p.add_argument("--final", action="store_true", help="the weights of `automl final` (its best seed)")
    p.add_argument("--json", action="store_true", help="print what was written as JSON")
    p.set_defaults(func=_export)


def _export(args: argparse.Namespace) -> int:
    from automl._errors import UsageError
    from automl._resolve import open_store
    from automl.cli._render import print_json
    from automl.cli._results import resolve_trial
    from automl.results._export import export_trial

    if args.format not in FORMATS:  # before touching the database
        raise UsageError(f"unknown format {args.format!r}; choose one of {', '.join(FORMATS)}")
    store = open_store(args.storage, read_only=True)
    try:
        search, trial = resolve_trial(store, args.trial, args.search)
        weights = _final_weights(store, search, trial.number) if args.final else None
    finally:
        store.close()
    done = export_trial(search, trial, args.format, args.output, weights=weights)
    if args.json:
        print_json(
            {
                "path": str(done.path),
                "format": done.format,
                "search": search.name,
                "trial": trial.number,
                "trained": done.trained,
                "note": done.note,
            }
        )
        return 0
    weights = "" if done.format == "json" else ", trained weights" if done.trained else ", untrained"
    print(f"wrote {done.path} ({done.format}{weights}) for {search.name}/{trial.number}")
    if done.format != "json" and not done.trained:
        sys.stderr.write(f"automl: note: {done.note}\n")
    return 0


def _final_weights(store: Store, search: SearchRecord, number: int) -> str:
    """The weights file of trial ``number``'s best final training; :class:`UsageError` if none."""
    from automl._errors import UsageError

    runs = [f for f in store.finals(search.id) if f.number == number and isinstance(f.metrics.get("weights"), str)]
    if not runs:
        raise UsageError(
            f"{search.name}/{number} has no final weights: run `automl final {search.name}` on a search "
            "started with --keep-weights DIR"
        )
    best = max(runs, key=lambda f: (f.test_accuracy if f.test_accuracy is not None else -1.0, -f.seed))
    return str(best.metrics["weights"])
