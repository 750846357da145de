"""The computational graph behind a tensor, as a Graphviz DOT file (and SVG or PNG through ``dot``)."""

from __future__ import annotations

import html
import os
import shutil
import subprocess
from collections.abc import Mapping

import numpy as np

from .. import backend
from ..errors import GraphvizError
from ..io import StrPath, atomic_write, write_text
from ..nn import Module, Parameter
from ..tensor import Tensor

RENDERED_FORMATS = ("svg", "png")
RENDER_TIMEOUT_S = 120
SMALL_TENSOR_SIZE = 4  # with show_values, tensors up to this many elements are printed in full

GRAPH_ATTRIBUTES = 'rankdir=TB, ordering=in, nodesep=0.3, ranksep=0.3, fontname="Helvetica", fontsize=16, labelloc=t'
NODE_DEFAULTS = 'fontname="Helvetica", fontsize=11, margin="0.12,0.05", height=0.3'
EDGE_DEFAULTS = 'color="#666666", arrowsize=0.6'
STYLES = {
    "op": 'shape=box, style="rounded,filled", fillcolor="#ececec", color="#888888"',
    "requires_grad": 'shape=box, style="filled", fillcolor="#cfe0fc", color="#3b6fc4"',
    "constant": 'shape=box, style="dashed", color="#999999", fontcolor="#555555"',
    "output": 'shape=box, style="rounded,filled,bold", fillcolor="#d4edd2", color="#3c8a3a"',
}


def graph(
    tensor: Tensor,
    path: StrPath,
    format: str | None = None,
    title: str | None = None,
    show_values: bool = False,
    names: Module | Mapping[Tensor, object] | None = None,
) -> tuple[str, ...]:
    """Write the computational graph that produced ``tensor`` to ``path`` as Graphviz DOT.

    The figure shows what ``backward()`` will walk, data flowing top to bottom: one grey rounded box
    per recorded op (its name, e.g. ``matmul``, ``linear``, ``batchnorm``,
    ``softmaxcrossentropyindices``, and its output's shape and dtype), one box per leaf tensor (blue
    and filled when it requires grad: parameters, and inputs made with ``requires_grad=True``; dashed
    when it is a constant such as the data, with a Python number shown as its value), an arrow from
    each input to the op that consumes it (operands left to right in argument order), and a green
    box for ``tensor`` itself. Each op appears once, however many ops use its output.

    ``names`` labels tensors: a Module (its parameters by their ``named_parameters()`` names, such as
    ``0.weight``) or a mapping {tensor: name}; a named op output reads ``name = op``.
    ``show_values`` adds each tensor's value (in full up to four elements, else its range) and its
    ``.grad`` where one is kept. ``title`` goes above the graph.

    ``format="svg"`` or ``"png"``, or a ``path`` ending in ``.svg``/``.png``, also runs Graphviz's
    ``dot`` to render the image next to the DOT file (``loss.svg`` -> ``loss.dot`` and ``loss.svg``);
    that needs Graphviz installed (``apt-get install graphviz``, ``brew install graphviz``). Returns
    the paths written: the DOT file, then the image if one was rendered. Files are written through a
    temporary file renamed into place.

    Call it before ``backward()`` (which frees the graph) or after ``backward(retain_graph=True)``.
    Batch normalization written as the nine steps of the course notes draws as ten elementary ops
    (step 5 is an ``add`` and a ``sqrt``), where ``F.batch_norm`` is one fused ``batchnorm`` op::

        mu = x.mean(dim=0)                  # 1  mean
        xmu = x - mu                        # 2  x − μ
        sq = xmu ** 2                       # 3  (x − μ)²
        var = sq.mean(dim=0)                # 4  σ²
        sqrtvar = (var + eps).sqrt()        # 5  √(σ² + ε)
        ivar = 1 / sqrtvar                  # 6  1/σ̂
        xhat = xmu * ivar                   # 7  x̂
        out = gamma * xhat + beta           # 8, 9  γx̂ + β
        dg.viz.graph(out.sum(), "batchnorm.png", names={x: "x", gamma: "γ", beta: "β", mu: "μ", xhat: "x̂"})
    """
    if not isinstance(tensor, Tensor):
        raise TypeError(f"graph: expected a Tensor, got {type(tensor).__name__}")
    dot_path, image_path = _output_paths(os.fspath(path), format)
    nodes, edges = _walk(tensor)
    write_text(dot_path, _dot_text(nodes, edges, _names_by_id(names), title, show_values))
    if image_path is None:
        return (dot_path,)
    _render(dot_path, image_path)
    return dot_path, image_path


def _output_paths(path, format):
    """(DOT path, image path or None) for ``path`` and ``format``."""
    stem, suffix = os.path.splitext(path)
    suffix_format = suffix[1:].lower() if suffix[1:].lower() in RENDERED_FORMATS else None
    if format is not None and format not in RENDERED_FORMATS:
        raise ValueError(f"graph: format must be one of {RENDERED_FORMATS} or None (DOT only), got {format!r}")
    if format is not None and suffix_format is not None and format != suffix_format:
        raise ValueError(f"graph: path {path!r} ends in {suffix!r} but format={format!r}; make them agree")
    format = format or suffix_format
    if format is None:
        return path, None
    return (stem + ".dot" if suffix_format else path), f"{stem}.{format}"


def _walk(root):
    """The nodes behind ``root`` in visit order, iteratively (any depth), each Function once.

    Returns ``(nodes, edges)``: nodes are ``(kind, tensor, fn)`` with kind "output" (root itself),
    "op" (``fn`` and the tensor it made) or "leaf" (fn None); edges are (input node, consumer node)
    index pairs, each consumer's in argument order.
    """
    root_fn = root.grad_fn
    if root_fn is None:
        return [("leaf", root, None)], []
    nodes, edges = [("output", root, None), ("op", root, root_fn)], [(1, 0)]
    index = {id(root_fn): 1}  # id of a Function, or of a leaf tensor -> its node's index
    stack = [root_fn]
    while stack:
        fn = stack.pop()
        inputs = fn.inputs
        if inputs is None:
            raise RuntimeError(
                f"graph: the graph behind this tensor was freed by backward() (at {fn.name}); call graph() "
                "before backward(), or pass retain_graph=True to backward()"
            )
        for t in inputs:
            producer = t.grad_fn
            key = id(t) if producer is None else id(producer)
            if key not in index:
                index[key] = len(nodes)
                if producer is None:
                    nodes.append(("leaf", t, None))
                else:
                    nodes.append(("op", t, producer))
                    stack.append(producer)
            edges.append((index[key], index[id(fn)]))
    return nodes, edges


def _names_by_id(names):
    """{id(tensor): name} from ``names``: None, a Module or a mapping {tensor: name}."""
    if names is None:
        return {}
    if isinstance(names, Module):
        return {id(param): name for name, param in names.named_parameters()}
    if not isinstance(names, Mapping):
        raise TypeError(f"graph: names must be a Module or a mapping {{tensor: name}}, got {type(names).__name__}")
    for key in names:
        if not isinstance(key, Tensor):
            raise TypeError(f"graph: the keys of names must be tensors, got a {type(key).__name__} ({key!r})")
    return {id(t): str(name) for t, name in names.items()}


def _dot_text(nodes, edges, names, title, show_values):
    lines = ["digraph deepgrad {", f"  graph [{GRAPH_ATTRIBUTES}];"]
    if title:
        lines.append(f"  label=<<B>{_escape(title)}</B>>;")
    lines += [f"  node [{NODE_DEFAULTS}];", f"  edge [{EDGE_DEFAULTS}];"]
    for i, (kind, tensor, fn) in enumerate(nodes):
        style, heading, details = _describe(kind, tensor, fn, names.get(id(tensor)), show_values)
        lines.append(f"  n{i} [label={_label(heading, details)}, {STYLES[style]}];")
    lines += [f"  n{source} -> n{target};" for source, target in edges]
    lines.append("}")
    return "\n".join(lines) + "\n"


def _describe(kind, tensor, fn, name, show_values):
    """(style, heading, detail lines) of one node."""
    if kind == "leaf" and not tensor.requires_grad and name is None and tensor.ndim == 0:
        return "constant", _number(backend.to_host(tensor.data)), [str(tensor.dtype)]  # a Python number
    details = [f"{tuple(tensor.shape)} {tensor.dtype}"] + (_values(tensor) if show_values else [])
    if kind == "op":
        return "op", (fn.name if name is None else f"{name} = {fn.name}"), details
    if kind == "output":
        return "output", "output", details
    if tensor.requires_grad:
        return "requires_grad", (name or ("parameter" if isinstance(tensor, Parameter) else "input")), details
    return "constant", (name or "constant"), details


def _values(tensor):
    """Detail lines with the tensor's value and, where backward kept one, its gradient."""
    lines = [f"value {_summary(backend.to_host(tensor.data))}"]
    if tensor.grad is not None:
        lines.append(f"grad {_summary(backend.to_host(tensor.grad))}")
    return lines


def _summary(array):
    if array.size <= SMALL_TENSOR_SIZE:
        text = np.array2string(array, separator=", ", formatter={"all": _number})
        return " ".join(text.split())
    return f"in [{_number(array.min())}, {_number(array.max())}]"


def _number(value):
    value = np.asarray(value).item()
    return format(value, ".4g") if isinstance(value, float) else str(value)


def _label(heading, details):
    """An HTML-like Graphviz label: the heading in bold, then each detail line small and grey."""
    rows = [f"<B>{_escape(heading)}</B>"]
    rows += [f'<FONT POINT-SIZE="9" COLOR="#444444">{_escape(line)}</FONT>' for line in details]
    return "<" + "<BR/>".join(rows) + ">"


def _escape(text):
    """``text`` safe inside an HTML-like label: markup characters and non-ASCII as character references,
    line breaks as ``<BR/>``."""
    escaped = html.escape(str(text)).encode("ascii", "xmlcharrefreplace").decode("ascii")
    return "<BR/>".join(escaped.splitlines())


def _render(dot_path, image_path):
    """Run Graphviz's ``dot`` on ``dot_path``, writing ``image_path`` (its format from its suffix)."""
    program = shutil.which("dot")
    if program is None:
        raise GraphvizError(
            f"graph: rendering {image_path} needs Graphviz's 'dot' program, which is not on PATH; install "
            f"Graphviz (apt-get install graphviz, or brew install graphviz) — the DOT file {dot_path} was written"
        )
    image_format = os.path.splitext(image_path)[1][1:]

    def run_dot(temporary):
        command = [program, f"-T{image_format}", "-o", temporary, dot_path]
        try:
            result = subprocess.run(command, capture_output=True, text=True, errors="replace", timeout=RENDER_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            raise GraphvizError(
                f"graph: dot took more than {RENDER_TIMEOUT_S} s to lay out {dot_path}; the graph is "
                "too large to render, use the DOT file or graph a smaller tensor"
            ) from None
        if result.returncode != 0:
            raise GraphvizError(
                f"graph: dot failed (exit code {result.returncode}) rendering {dot_path} to "
                f"{image_path}: {result.stderr.strip()}"
            )

    atomic_write(image_path, run_dot)
