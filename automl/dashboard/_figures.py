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
    "architecture",
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
OP_COLORS = {
    "none": "#afb8c1",
    "skip_connect": "#2da44e",
    "nor_conv_1x1": "#1f6feb",
    "nor_conv_3x3": "#8250df",
    "avg_pool_3x3": "#e8590c",
}
TIMES = "\u00d7"  # the multiplication sign of "3x3" and "1x8x8"
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
        fig.add_scatter(
            x=[p.cost for p in front],
            y=[p.value for p in front],
            mode="lines+markers",
            line={"shape": "hv", "color": color, "width": 2},
            marker={"color": color, "size": 8, "line": {"color": "white", "width": 1}},
            name=_search_label(search),
            legendgroup=search.name,
            customdata=[p.number for p in front],
            hovertemplate=search.name + ": trial %{customdata}<br>" + cost + " %{x:,}<br>%{y:.4g}<extra></extra>",
        )
    costs = [c for _, _, cloud in fronts for _, _, c in cloud if c > 0]
    log = bool(costs) and max(costs) / min(costs) > 50
    objectives = sorted({s.objectives[0] for s, _, _ in fronts})
    return _layout(fig, height=420, xaxis_title=cost, yaxis_title=" / ".join(objectives),
                   xaxis_type="log" if log else "linear")  # fmt: skip


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
    fig.add_scatter(
        x=[p.cost for p in front],
        y=[p.value for p in front],
        mode="lines+markers",
        line={"shape": "hv", "color": ORANGE, "width": 2},
        marker={"color": ORANGE, "size": 9, "line": {"color": "white", "width": 1}},
        name="Pareto front",
        customdata=[p.number for p in front],
        hovertemplate="trial %{customdata} (front)<br>" + cost + " %{x:,}<br>" + objective + " %{y:.4g}<extra></extra>",
    )
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
_NB201 = re.compile(r"^(\d)<-(\d)$")


def architecture(arch: Mapping[str, Any], context: Mapping[str, Any] | None = None) -> go.Figure | None:
    """A drawing of ``arch``: the nb201 cell DAG, or the layer stack of a ``depth`` + ``layer{i}.*``
    macro space (cnn, mlp, user spaces of that shape); None when neither fits."""
    if arch and all(_NB201.match(k) for k in arch):
        return _cell(arch)
    if isinstance(arch.get("depth"), int):
        return _stack(arch, context or {})
    return None


_Point = tuple[float, float]


def _bezier(p0: _Point, p1: _Point, bend: float) -> tuple[list[float], list[float], _Point]:
    """Points of a quadratic curve from p0 to p1 bulging by ``bend``; and its middle point."""
    (x0, y0), (x1, y1) = p0, p1
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2 + bend
    ts = [i / 48 for i in range(49)]
    xs = [(1 - t) ** 2 * x0 + 2 * (1 - t) * t * cx + t * t * x1 for t in ts]
    ys = [(1 - t) ** 2 * y0 + 2 * (1 - t) * t * cy + t * t * y1 for t in ts]
    return xs, ys, (xs[24], ys[24])


def _cell(arch: Mapping[str, Any]) -> go.Figure:
    """The cell DAG: nodes on a line, edge i->j drawn as an arc labelled with its operation."""
    nodes = sorted({int(n) for k in arch for n in _NB201.match(k).groups()})  # type: ignore[union-attr]
    pos = {n: (float(n), 0.0) for n in nodes}
    fig = go.Figure()
    for key, op in arch.items():
        j, i = (int(x) for x in _NB201.match(key).groups())  # type: ignore[union-attr]
        span = j - i  # neighbours: a straight edge; longer edges arc, from an even node up, from an odd one down
        bend = 0.0 if span == 1 else 0.45 * span * (1 if i % 2 == 0 else -1)
        xs, ys, mid = _bezier(pos[i], pos[j], bend)
        color = OP_COLORS.get(str(op), GREY)
        dash = "dot" if op == "none" else "solid"
        fig.add_scatter(
            x=xs, y=ys, mode="lines", line={"color": color, "width": 3, "dash": dash}, name=f"{i}->{j}",
            hoverinfo="text", text=f"edge {i} -> {j}: {op}", showlegend=False,
        )  # fmt: skip
        h = next(k for k in range(len(xs) - 1, 0, -1) if math.hypot(xs[k] - xs[-1], ys[k] - ys[-1]) >= 0.14)
        fig.add_annotation(  # the arrow head, just outside the target node's circle
            x=xs[h], y=ys[h], ax=xs[h - 3], ay=ys[h - 3], xref="x", yref="y", axref="x", ayref="y", showarrow=True,
            arrowhead=2, arrowsize=1.3, arrowwidth=2, arrowcolor=color, text="",
        )  # fmt: skip
        offset = (0.13 if bend >= 0 else -0.13) * (-1 if span == 2 else 1)  # the label: span 2 inside its arc
        fig.add_annotation(
            x=mid[0], y=mid[1] + offset, text=f"<b>{op}</b>", showarrow=False,
            font={"color": color, "size": 13}, bgcolor="rgba(255,255,255,0.85)",
        )  # fmt: skip
    labels = {nodes[0]: "input", nodes[-1]: "output"}
    fig.add_scatter(
        x=[pos[n][0] for n in nodes],
        y=[pos[n][1] for n in nodes],
        mode="markers+text",
        marker={"size": 34, "color": "white", "line": {"color": "#24292f", "width": 2}},
        text=[str(n) for n in nodes],
        textfont={"size": 15},
        name="nodes",
        hovertext=[f"node {n}" + (f" ({labels[n]})" if n in labels else "") for n in nodes],
        hoverinfo="text",
        showlegend=False,
    )
    for n, text in labels.items():
        fig.add_annotation(x=pos[n][0], y=-0.32, text=text, showarrow=False, font={"color": GREY})
    top = max(0.25 * (nodes[-1] - nodes[0]), 0.6)
    fig.update_xaxes(visible=False, range=[nodes[0] - 0.4, nodes[-1] + 0.4])
    fig.update_yaxes(visible=False, range=[-top - 0.2, top + 0.2])
    groups = ["|" + "|".join(f"{arch.get(f'{j}<-{i}', '?')}~{i}" for i in range(j)) + "|" for j in nodes[1:]]
    title = f"cell {'+'.join(groups)}<br><sup>node j sums op(node i) over its edges i \u2192 j</sup>"
    return _layout(fig, height=400, title=title, showlegend=False, margin={"l": 20, "r": 20, "t": 70, "b": 10})


_LAYER = re.compile(r"^layer(\d+)\.(.+)$")


def _layer_text(fields: Mapping[str, Any]) -> str:
    """One box's text: the cnn/mlp fields said briefly, any other field as name=value."""
    f = dict(fields)
    parts: list[str] = []
    if "op" in f or "kernel" in f:
        k = f.pop("kernel", None)
        op = f.pop("op", "conv")
        parts.append(f"{op} {k}{TIMES}{k}" if k is not None else str(op))
    if "width" in f:
        parts.append(f"{f.pop('width')} channels" if parts else f"linear → {f.pop('width')}")
    if "activation" in f:
        parts.append(str(f.pop("activation")))
    if f.pop("batchnorm", False):
        parts.append("batchnorm")
    drop = f.pop("dropout", None)
    if drop:
        parts.append(f"dropout {drop}")
    if f.pop("skip", False):
        parts.append("+ residual")
    if f.pop("pool", False):
        parts.append("max pool /2")
    parts += [f"{k}={v}" for k, v in f.items()]
    return "<br>".join(parts) or "layer"


def _stack(arch: Mapping[str, Any], context: Mapping[str, Any]) -> go.Figure:
    """The layer stack of a macro space, left to right: input, layers, head."""
    depth = int(arch["depth"])
    layers: dict[int, dict[str, Any]] = {i: {} for i in range(depth)}
    others = {}
    for key, value in arch.items():
        m = _LAYER.match(key)
        if m and int(m.group(1)) in layers:
            layers[int(m.group(1))][m.group(2)] = value
        elif key != "depth":
            others[key] = value
    shape = context.get("input_shape")
    boxes = [("input" + (f"<br>{TIMES.join(map(str, shape))}" if shape else ""), GREY)]
    boxes += [(f"<b>layer {i}</b><br>{_layer_text(layers[i])}", BLUE) for i in range(depth)]
    classes = context.get("num_classes")
    head = "global pool → linear" if any("kernel" in layers[i] for i in layers) else "linear"
    boxes.append((f"{head}<br>→ {classes} classes" if classes else head, GREY))
    fig = go.Figure()
    w, gap = 1.0, 0.45
    for n, (text, color) in enumerate(boxes):
        x0 = n * (w + gap)
        fig.add_shape(type="rect", x0=x0, x1=x0 + w, y0=-0.5, y1=0.5, line={"color": color, "width": 2},
                      fillcolor="#f6f8fa" if color == GREY else "#ddf4ff")  # fmt: skip
        fig.add_annotation(x=x0 + w / 2, y=0, text=text, showarrow=False, font={"size": 12})
        if n:
            fig.add_annotation(x=x0, y=0, ax=x0 - gap, ay=0, xref="x", yref="y", axref="x", ayref="y",
                               showarrow=True, arrowhead=2, arrowwidth=2, arrowcolor="#24292f", text="")  # fmt: skip
        if 0 < n <= depth and layers[n - 1].get("skip"):  # residual: around the layer, above it
            left, right = x0 - gap / 2, x0 + w + gap / 2
            fig.add_scatter(x=[left, left, right, right], y=[0, 0.72, 0.72, 0.05], mode="lines", showlegend=False,
                            line={"color": ORANGE, "width": 2}, hoverinfo="skip", name="residual")  # fmt: skip
    # An invisible trace so the axes span the boxes (shapes alone do not set the range).
    fig.add_scatter(x=[0, len(boxes) * (w + gap) - gap], y=[-0.6, 0.9], mode="markers", marker={"opacity": 0},
                    hoverinfo="skip", showlegend=False, name="frame")  # fmt: skip
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False, range=[-0.7, 1.0])
    extra = ", ".join(f"{k}={v}" for k, v in others.items())
    title = f"{depth} layer{'s' if depth != 1 else ''}" + (f" ({extra})" if extra else "")
    return _layout(fig, height=300, title=title, showlegend=False, margin={"l": 10, "r": 10, "t": 40, "b": 10})
