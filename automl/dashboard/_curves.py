"""Learning curves of many trials on one plot (the search page and the compare page).

Figures here are plain mappings (plotly's figure JSON), not ``go.Figure``: a plot of hundreds of
trials would spend most of a page's time in plotly's validation of each trace. Every trial is one
trace named ``"trial N"`` (on the compare page ``"<search> trial N"``) whose
points carry the trial number, so a click opens the trial. Completed trials are drawn in full
color, pruned ones faded; the legend has one entry per kind (search page) or per search (compare
page), made by traces without points.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import plotly.graph_objects as go

from automl.dashboard._figures import BLUE, GREY, ORANGE, _layout

if TYPE_CHECKING:
    from automl.dashboard._pages._steps import TrialCurve

__all__ = ["COMPLETED_OPACITY", "PRUNED_OPACITY", "compare_trial_curves", "pruned_text", "rungs_of", "trial_curves"]

COMPLETED_OPACITY, PRUNED_OPACITY = 0.65, 0.3
STOPPED = "#cf222e"  # the x where a pruned trial was stopped


def pruned_text(reason: Mapping[str, Any] | None, objective: str, maximize: bool) -> str | None:
    """``"accuracy 0.9139 < 0.9502"`` from a ``_pruned`` record (None without value and threshold)."""
    if not reason:
        return None
    value, threshold = reason.get("value"), reason.get("threshold")
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (value, threshold)):
        return None
    return f"{objective} {value:.4g} {'<' if maximize else '>'} {threshold:.4g}"


def _legend_entry(name: str, group: str, line: Mapping[str, Any], opacity: float = 1.0) -> dict[str, Any]:
    """A trace without points: only its legend entry, which shows and hides its group."""
    return {"type": "scatter", "x": [None], "y": [None], "mode": "lines", "name": name, "legendgroup": group,
            "line": dict(line), "opacity": opacity, "hoverinfo": "skip"}  # fmt: skip


def _trace(c: TrialCurve, name: str, group: str, line: Mapping[str, Any], opacity: float, hover: str) -> dict[str, Any]:
    """One trial's curve. A plain dict: hundreds of them through plotly's validation cost ~1 ms each."""
    return {
        "type": "scatter",
        "x": list(c.steps),
        "y": list(c.values),
        "mode": "lines+markers" if len(c.steps) == 1 else "lines",
        "name": name,
        "legendgroup": group,
        "showlegend": False,
        "line": dict(line),
        "opacity": opacity,
        "customdata": [c.number] * len(c.steps),
        "hovertemplate": hover,
    }


def _figure(data: list[dict[str, Any]], last: int, yaxis_title: str, rungs: Sequence[int] = ()) -> dict[str, Any]:
    """The figure as a plain mapping: ``data`` under the dashboard's layout, steps on x."""
    fig = go.Figure()
    _rung_lines(fig, rungs)
    fig.update_xaxes(title_text="step (epoch)", dtick=1 if last <= 20 else None)
    out = _layout(fig, height=420, yaxis_title=yaxis_title).to_plotly_json()
    out["data"] = data
    return out


def rungs_of(curves: Iterable[TrialCurve], configured: Sequence[int] = ()) -> list[int]:
    """The steps where trials were judged: the rungs the pruned trials name, else those of the
    pruner's settings (up to the last step drawn)."""
    curves = list(curves)
    named = {c.rung for c in curves if c.rung is not None}
    if named:
        return sorted(named)
    last = max((c.steps[-1] for c in curves if c.steps), default=0)
    return [r for r in configured if r <= last]


def trial_curves(
    curves: Sequence[TrialCurve], objective: str, *, maximize: bool, best: int | None, rungs: Sequence[int] = ()
) -> dict[str, Any]:
    """Every trial's objective by step: completed trials in color, pruned ones faded with an x
    where they were stopped, the ``best`` trial highlighted, rungs as dotted vertical lines."""
    data = []
    hover = "trial %{customdata}<br>step %{x}<br>" + objective + " %{y:.4g}<extra></extra>"
    kinds = (
        ("pruned", {"color": "#57606a", "width": 1.2}, PRUNED_OPACITY),
        ("completed", {"color": BLUE, "width": 1.5}, COMPLETED_OPACITY),
    )
    for kind, line, opacity in kinds:
        mine = [c for c in curves if (c.pruned == (kind == "pruned")) and c.number != best]
        if mine:
            data.append(_legend_entry(f"{kind} trials", kind, line, opacity))
        data += [_trace(c, f"trial {c.number}", kind, line, opacity, hover) for c in mine]
    stopped = [c for c in curves if c.pruned]
    if stopped:
        data.append({
            "type": "scatter",
            "x": [c.steps[-1] for c in stopped],
            "y": [c.values[-1] for c in stopped],
            "mode": "markers",
            "name": "stopped by the pruner",
            "legendgroup": "pruned",
            "marker": {"symbol": "x", "size": 8, "color": STOPPED, "opacity": 0.8},
            "customdata": [c.number for c in stopped],
            "text": [pruned_text(c.reason, objective, maximize) or "" for c in stopped],
            "hovertemplate": "trial %{customdata} stopped at step %{x}<br>%{text}<extra></extra>",
        })  # fmt: skip
    top = next((c for c in curves if c.number == best), None)
    if top is not None:
        line = {"color": ORANGE, "width": 3.5}
        data.append(_trace(top, f"trial {top.number}", "best", line, 1.0, hover.replace("<br>step", " (best)<br>step")))
        data.append(_legend_entry(f"best (trial {top.number})", "best", line))
    return _figure(data, max((c.steps[-1] for c in curves), default=0), objective, rungs)


def _rung_lines(fig: go.Figure, rungs: Sequence[int]) -> None:
    for rung in rungs:
        fig.add_vline(x=rung, line={"color": GREY, "width": 1.2, "dash": "dot"}, name=f"rung {rung}",
                      annotation_text="rung", annotation_position="top",
                      annotation_font={"color": GREY, "size": 11})  # fmt: skip


def compare_trial_curves(
    groups: Sequence[tuple[Any, Sequence[TrialCurve]]], colors: Mapping[str, str]
) -> dict[str, Any]:
    """The learning curves of several searches, one color per search, pruned trials faded.
    ``groups``: ``(search record, its curves)`` per search."""
    data = []
    for search, curves in groups:
        color = colors[search.name]
        data.append(_legend_entry(f"{search.name} ({search.strategy})", search.name, {"color": color, "width": 2}))
        hover = search.name + ": trial %{customdata}<br>step %{x}<br>%{y:.4g}<extra></extra>"
        for c in curves:
            line = {"color": color, "width": 1.2 if c.pruned else 1.5}
            opacity = PRUNED_OPACITY if c.pruned else COMPLETED_OPACITY
            data.append(_trace(c, f"{search.name} trial {c.number}", search.name, line, opacity, hover))
    last = max((c.steps[-1] for _, curves in groups for c in curves), default=0)
    objectives = sorted({s.objectives[0] for s, _ in groups})
    return _figure(data, last, " / ".join(objectives))
