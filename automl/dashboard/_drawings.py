"""Drawings of one architecture for the trial page: the NAS-Bench-201 cell as a graph, or the
layer stack of a macro space (``cnn``, ``mlp``, ``cnn1d``...)."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

import plotly.graph_objects as go

from automl.dashboard._figures import BLUE, GREY, ORANGE, _layout

__all__ = ["architecture"]

OP_COLORS = {
    "none": "#afb8c1",
    "skip_connect": "#2da44e",
    "nor_conv_1x1": "#1f6feb",
    "nor_conv_3x3": "#8250df",
    "avg_pool_3x3": "#e8590c",
}
TIMES = "\u00d7"  # the multiplication sign of "3x3" and "1x8x8"

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
