"""Plotly figures of the dashboard, built in Python from query results (never from raw trials).

Each function returns a ``plotly.graph_objects.Figure``; the page ships it as JSON and the
locally served plotly.js draws it. Trace ``name`` values are stable (the browser tests find
traces by name).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from store import StepRecord, queries

__all__ = [
    "best_so_far",
    "compare_curves",
    "compare_pareto",
    "decision_bars",
    "learning_curve",
    "pareto_front",
    "search_colors",
]

BLUE, ORANGE, GREY, LIGHT = "#1f6feb", "#e8590c", "#8c959f", "#c9d1d9"
SEARCH_COLORS = (  # one per search on the compare page (MAX_COMPARE = 12), told apart at a glance
    "#1f6feb", "#e8590c", "#2da44e", "#8250df", "#bf3989", "#9a6700",
    "#0a7f8f", "#cf222e", "#57606a", "#0b3d91", "#7d8b00", "#d4a72c",
)  # fmt: skip
_FONT = {"family": "system-ui, -apple-system, Segoe UI, Roboto, sans-serif", "size": 13}


def _layout(fig: go.Figure, *, height: int = 360, **kwargs: Any) -> go.Figure:
    settings: dict[str, Any] = {
        "height": height,
        "margin": {"l": 60, "r": 20, "t": 40, "b": 50},
        "template": "plotly_white",
        "font": _FONT,
        "legend": {"orientation": "h", "y": -0.22, "x": 0},
    }
    fig.update_layout(**{**settings, **kwargs})
    return fig


def _time_axis(longest: float) -> tuple[float, str]:
    """(seconds per unit, axis title) for elapsed times up to ``longest`` seconds."""
    if longest >= 3 * 3600:
        return 3600.0, "hours since the search started"
    if longest >= 180:
        return 60.0, "minutes since the search started"
    return 1.0, "seconds since the search started"


def _axis(curves: Sequence[queries.Curve], by: str, extra: float = 0.0) -> tuple[float, str]:
    if by == "number":
        return 1.0, "trial number"
    return _time_axis(max([extra, *(c.last_elapsed or 0.0 for c in curves)]))


def _steps(curve: queries.Curve, by: str, unit: float = 1.0) -> tuple[list[float], list[float]]:
    """x, y of the best-so-far step line, flat from the last improvement to the last trial."""
    xs = [float(p.number if by == "number" else (p.elapsed or 0.0) / unit) for p in curve.points]
    ys = [p.value for p in curve.points]
    end = curve.last_number if by == "number" else None if curve.last_elapsed is None else curve.last_elapsed / unit
    if ys and end is not None and end > xs[-1]:
        xs.append(float(end))
        ys.append(ys[-1])
    return xs, ys


def best_so_far(curve: queries.Curve, cloud: Sequence[tuple[int, float, float | None]], objective: str) -> go.Figure:
    """Completed trials (a thinned cloud) and the best-so-far step line, by trial number."""
    by = curve.by
    unit, title = _axis([curve], by, max((e or 0.0 for _, _, e in cloud), default=0.0))
    fig = go.Figure()
    xs = [n if by == "number" else (e or 0.0) / unit for n, _, e in cloud]
    fig.add_scatter(
        x=xs,
        y=[v for _, v, _ in cloud],
        mode="markers",
        name="completed trials",
        marker={"color": LIGHT, "size": 5},
        customdata=[n for n, _, _ in cloud],
        hovertemplate="trial %{customdata}<br>" + objective + " %{y:.4g}<extra></extra>",
    )
    sx, sy = _steps(curve, by, unit)
    fig.add_scatter(
        x=sx,
        y=sy,
        mode="lines",
        line={"shape": "hv", "color": BLUE, "width": 2.5},
        name="best so far",
        hoverinfo="skip",
    )
    fig.add_scatter(
        x=[p.number if by == "number" else (p.elapsed or 0.0) / unit for p in curve.points],
        y=[p.value for p in curve.points],
        mode="markers",
        marker={"color": BLUE, "size": 8},
        name="improvements",
        customdata=[p.number for p in curve.points],
        hovertemplate="trial %{customdata} set a new best<br>" + objective + " %{y:.4g}<extra></extra>",
    )
    return _layout(fig, xaxis_title=title, yaxis_title=objective)


def search_colors(names: Sequence[str]) -> dict[str, str]:
    """One color per search, by its place in ``names``: the same in every figure of a page."""
    return {name: SEARCH_COLORS[i % len(SEARCH_COLORS)] for i, name in enumerate(dict.fromkeys(names))}


def _search_label(search: Any) -> str:
    return f"{search.name} ({search.strategy})"


def compare_curves(curves: Sequence[queries.Curve], by: str, colors: Mapping[str, str] | None = None) -> go.Figure:
    """Best-so-far lines of several searches, one color per search (``colors``, by name)."""
    colors = colors or search_colors([c.search.name for c in curves])
    fig = go.Figure()
    unit, title = _axis(curves, by)
    for c in curves:
        x, y = _steps(c, by, unit)
        fig.add_scatter(
            x=x,
            y=y,
            mode="lines",
            line={"shape": "hv", "color": colors[c.search.name], "width": 2.5},
            name=_search_label(c.search),
            legendgroup=c.search.name,
        )
    objectives = sorted({c.search.objectives[0] for c in curves})
    return _layout(fig, height=420, xaxis_title=title, yaxis_title=" / ".join(objectives))


def compare_pareto(
    fronts: Sequence[tuple[Any, Sequence[queries.ParetoPoint], Sequence[tuple[int, float, float]]]],
    cost: str,
    colors: Mapping[str, str],
) -> go.Figure:
    """The Pareto fronts of several searches against one cost, each over its faded cloud, one
    color per search. ``fronts``: ``(search record, front, cloud)`` per search."""
    fig = go.Figure()
    for search, front, cloud in fronts:
        color = colors[search.name]
        fig.add_scatter(
            x=[c for _, _, c in cloud],
            y=[v for _, v, _ in cloud],
            mode="markers",
            name=f"{search.name}: trials",
            legendgroup=search.name,
            showlegend=False,
            marker={"color": color, "size": 5, "opacity": 0.25},
            hovertemplate=search.name + "<br>" + cost + " %{x:,}<br>%{y:.4g}<extra></extra>",
        )
        hover = search.name + ": trial %{customdata}<br>" + cost + " %{x:,}<br>%{y:.4g}<extra></extra>"
        _front(fig, front, color, _search_label(search), hover, size=8, legendgroup=search.name)
    costs = [c for _, _, cloud in fronts for _, _, c in cloud if c > 0]
    log = bool(costs) and max(costs) / min(costs) > 50
    objectives = sorted({s.objectives[0] for s, _, _ in fronts})
    return _layout(fig, height=420, xaxis_title=cost, yaxis_title=" / ".join(objectives),
                   xaxis_type="log" if log else "linear")  # fmt: skip


def _front(
    fig: go.Figure,
    front: Sequence[queries.ParetoPoint],
    color: str,
    name: str,
    hover: str,
    *,
    size: int,
    legendgroup: str | None = None,
) -> None:
    """A Pareto front as a staircase of points (each point opens its trial)."""
    fig.add_scatter(
        x=[p.cost for p in front], y=[p.value for p in front], mode="lines+markers",
        line={"shape": "hv", "color": color, "width": 2},
        marker={"color": color, "size": size, "line": {"color": "white", "width": 1}},
        name=name, legendgroup=legendgroup, customdata=[p.number for p in front], hovertemplate=hover,
    )  # fmt: skip


def pareto_front(
    cloud: Sequence[tuple[int, float, float]], front: Sequence[queries.ParetoPoint], objective: str, cost: str
) -> go.Figure:
    """Objective against cost: every (thinned) completed trial, the Pareto front highlighted."""
    fig = go.Figure()
    fig.add_scatter(
        x=[c for _, _, c in cloud],
        y=[v for _, v, _ in cloud],
        mode="markers",
        name="completed trials",
        marker={"color": LIGHT, "size": 6},
        customdata=[n for n, _, _ in cloud],
        hovertemplate="trial %{customdata}<br>" + cost + " %{x:,}<br>" + objective + " %{y:.4g}<extra></extra>",
    )
    hover = "trial %{customdata} (front)<br>" + cost + " %{x:,}<br>" + objective + " %{y:.4g}<extra></extra>"
    _front(fig, front, ORANGE, "Pareto front", hover, size=9)
    costs = [c for _, _, c in cloud if c > 0]
    log = bool(costs) and max(costs) / min(costs) > 50
    return _layout(fig, xaxis_title=cost, yaxis_title=objective, xaxis_type="log" if log else "linear")


def _label(option: Any) -> str:
    if isinstance(option, list):
        return "[" + ", ".join(map(str, option)) + "]"
    return str(option)


_BIN = re.compile(r"^\[([^,\[\]]+), ([^,\[\]]+)[)\]]$")  # a range decision's bin: "[0.001, 0.00316)"


def _bin_edges(option: Any) -> tuple[float, float] | None:
    """The (low, high) of a bin label as the store writes it, or None for any other option."""
    m = _BIN.match(option) if isinstance(option, str) else None
    if m is None:
        return None
    try:
        return float(m.group(1)), float(m.group(2))
    except ValueError:
        return None


def _in_order(rows: Sequence[queries.DecisionStat]) -> list[queries.DecisionStat]:
    """A decision's options as the store orders them (like the space declares them); the bins of
    a float or log-integer decision by their lower edge (their labels sort wrongly as text)."""
    edges = [_bin_edges(r.option) for r in rows]
    if rows and all(e is not None for e in edges):
        return [r for _, r in sorted(zip(edges, rows, strict=True), key=lambda p: p[0])]
    return list(rows)


def _tick(label: str) -> str:
    """A bin label a little shorter on the axis: "[0.001, 0.00316)" -> "0.001-0.00316" (an en dash)."""
    edges = _bin_edges(label)
    if edges is None:
        return label
    low, high = label[1:-1].split(", ")
    return f"{low}\u2013{high}"


def decision_bars(stats: queries.DecisionStats) -> go.Figure:
    """One small chart per decision: each option's share among the top k and among all completed.
    Options are categories in the store's order (a range decision's bins from low to high)."""
    names = list(dict.fromkeys(r.name for r in stats.rows))
    if not names:
        return _layout(go.Figure(), height=120, title="no completed trials yet")
    cols = min(4, len(names))
    rows = math.ceil(len(names) / cols)
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=names, vertical_spacing=min(0.3, 0.6 / rows))
    for i, name in enumerate(names):
        r, c = divmod(i, cols)
        mine = _in_order([s for s in stats.rows if s.name == name])
        labels = [_label(s.option) for s in mine]
        ticks = [_tick(x) for x in labels]
        for key, label, color in (("top_share", f"top {stats.k}", BLUE), ("share", "all completed", LIGHT)):
            fig.add_bar(
                x=ticks,
                y=[getattr(s, key) for s in mine],
                name=label,
                marker_color=color,
                legendgroup=label,
                showlegend=i == 0,
                customdata=labels,
                hovertemplate=name + " = %{customdata}<br>" + label + ": %{y:.0%}<extra></extra>",
                row=r + 1,
                col=c + 1,
            )
        long = sum(len(x) for x in ticks) > 36  # they would overlap side by side: slant them
        fig.update_xaxes(type="category", categoryorder="array", categoryarray=ticks,
                         tickangle=-35 if long else 0, tickfont={"size": 11}, row=r + 1, col=c + 1)  # fmt: skip
    fig.update_yaxes(tickformat=".0%", rangemode="tozero")
    return _layout(fig, height=80 + 280 * rows, barmode="group", margin={"l": 50, "r": 20, "t": 60, "b": 60},
                   legend={"orientation": "h", "y": 1.0 + 0.3 / rows, "x": 0})  # fmt: skip


def learning_curve(steps: Sequence[StepRecord], objective: str) -> go.Figure:
    """Each numeric per-step metric against the step (epoch); the loss on a second axis."""
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    keys = sorted({k for s in steps for k, v in s.metrics.items() if isinstance(v, (int, float))})
    for key in keys:
        pts = [(s.step, s.metrics[key]) for s in steps if isinstance(s.metrics.get(key), (int, float))]
        second = "loss" in key.lower()
        fig.add_scatter(
            x=[p[0] for p in pts],
            y=[p[1] for p in pts],
            mode="lines+markers",
            name=key,
            line={"color": ORANGE if second else BLUE if key == objective else GREY, "width": 2.5},
            secondary_y=second,
        )
    fig.update_xaxes(title_text="step (epoch)", dtick=1 if len(steps) <= 20 else None)
    fig.update_yaxes(title_text=objective, secondary_y=False)
    fig.update_yaxes(title_text="loss", secondary_y=True, showgrid=False)
    return _layout(fig, height=320)


# -- architecture drawings ----------------------------------------------------------------------
