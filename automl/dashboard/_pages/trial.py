"""``/search/{name}/trial/{number}``: one trial's decisions, metrics, learning curve and a drawing
of its architecture, with what changed from its parent; why the pruner stopped it; its final
trainings seed by seed."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, Response

from automl.dashboard import _drawings as drawings
from automl.dashboard import _figures as figures
from automl.dashboard._curves import pruned_text
from automl.dashboard._pages._shared import MAX_NUMBER, facts, versions
from automl.dashboard._web import dashboard
from automl.results._views import arch_changes, stops
from store import CHECKPOINT_KEY, SearchRecord, StepRecord, TrialRecord, queries

__all__ = ["router"]

router = APIRouter()


@router.get("/search/{name}/trial/{number}", response_class=HTMLResponse)
def trial_page(request: Request, name: str, number: Annotated[int, PathParam(ge=0, le=MAX_NUMBER)]) -> Response:
    board = dashboard(request)
    store = board.store
    with store.snapshot():
        search = queries.resolve(store, name)
        detail = queries.trial_detail(store, search.id, number)
        url = "/api/version?" + urlencode({"s": search.name, "t": number})
        refresh = versions(store, url, [search.id], number)
        finals = [f for f in store.finals(search.id) if f.number == number]
    trial, parent, steps = detail.trial, detail.parent, detail.steps
    figs = {
        "arch": drawings.architecture(trial.arch, facts(search).context),
        "curve": figures.learning_curve(steps, search.objective) if steps else None,
    }
    return board.page(
        "trial.html",
        request,
        title=f"{search.name} / {number}",
        search=search,
        detail=detail,
        trial=trial,
        parent_arch=parent.arch if parent is not None else {},
        changes=arch_changes(trial.arch, parent.arch) if parent is not None else [],
        figs=figs,
        metrics=sorted((k, v) for k, v in trial.metrics.items() if k != CHECKPOINT_KEY),
        pruned=_pruned_sentence(search, trial, detail.steps),
        finals=sorted(finals, key=lambda f: (-f.epochs, f.seed)),
        **refresh,
    )


def _pruned_sentence(search: SearchRecord, trial: TrialRecord, steps: Sequence[StepRecord]) -> str | None:
    """``"pruned at step 4: accuracy 0.9139 < 0.9502 (the threshold at that rung)"``, from the
    ``_pruned`` records of the trial's steps: the last step's for a pruned trial, and any earlier
    stop that a promotion took back; whether a paused trial keeps its checkpoint. None without one."""
    said = []
    for step, reason, promoted in stops(trial, steps):
        text = _one_stop(search, step, reason)
        if promoted:
            text = f"paused at {text.removeprefix('pruned at ')}; promoted, it went on from its checkpoint"
        said.append(text)
    held = trial.checkpoint
    if held is not None:
        said.append(f"paused: its training state after step {held.get('step')} is kept; a promotion goes on from it")
    return ". ".join(said) or None


def _one_stop(search: SearchRecord, step: StepRecord, reason: Mapping[str, object]) -> str:
    rung, bracket = reason.get("rung"), reason.get("bracket")
    where = f"step {step.step}" + (f" (rung {rung})" if rung not in (None, step.step) else "")
    said = pruned_text(reason, search.objective, search.maximize)
    if said is None:
        return f"pruned at {where}"
    return f"pruned at {where}: {said} (the threshold at that rung{'' if bracket is None else f', bracket {bracket}'})"
