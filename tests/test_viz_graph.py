"""dg.viz.graph: the computational graph behind a tensor as Graphviz DOT (and SVG/PNG through `dot`)."""

import os
import re
import shutil
import sys
import xml.etree.ElementTree as ElementTree

import numpy as np
import pytest

import deepgrad as dg
import deepgrad.functional as F
import deepgrad.nn as nn
from deepgrad.viz import GraphvizError, graph

needs_dot = pytest.mark.skipif(
    shutil.which("dot") is None, reason="needs Graphviz's dot program (apt-get install graphviz)"
)

NODE = re.compile(r"^  n(\d+) \[label=<(.*)>, (.*)\];$")
EDGE = re.compile(r"^  n(\d+) -> n(\d+);$")


def parse(dot_text):
    """{node id: (label, attributes)} and the [(source, target)] edges of a DOT file written by graph()."""
    nodes, edges = {}, []
    for line in dot_text.splitlines():
        if match := NODE.match(line):
            nodes[int(match[1])] = (match[2], match[3])
        elif match := EDGE.match(line):
            edges.append((int(match[1]), int(match[2])))
    return nodes, edges


def written(tensor, tmp_path, **kwargs):
    (path,) = graph(tensor, str(tmp_path / "graph.dot"), **kwargs)
    with open(path, encoding="utf-8") as handle:
        return handle.read()


def op_count(dot_text):
    return sum('rounded,filled"' in attributes for _, attributes in parse(dot_text)[0].values())


def tiny_graph():
    """(x * w + b).sum() with x a constant, w a tensor that requires grad, b a parameter."""
    x = dg.tensor([[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]])
    w = dg.tensor([1.0, 2.0, 3.0], requires_grad=True)
    b = nn.Parameter(dg.zeros(3))
    return (x * w + b).sum(), x, w, b


def batch_norm_in_nine_steps(x, gamma, beta, eps=1e-5):
    mu = x.mean(dim=0)
    xmu = x - mu
    sq = xmu**2
    var = sq.mean(dim=0)
    sqrtvar = (var + eps).sqrt()
    ivar = 1 / sqrtvar
    xhat = xmu * ivar
    return gamma * xhat + beta


def test_a_tiny_graph_has_one_node_per_op_and_leaf_and_edges_from_inputs_to_ops(tmp_path):
    loss, x, w, b = tiny_graph()
    text = written(loss, tmp_path, names={w: "w"})
    assert text.startswith("digraph deepgrad {\n") and text.endswith("}\n")
    nodes, edges = parse(text)
    # visit order: the output, sum, add, then add's inputs (mul, b), then mul's (x, w)
    assert sorted(nodes) == list(range(7))
    assert edges == [(1, 0), (2, 1), (3, 2), (4, 2), (5, 3), (6, 3)]
    labels = {i: label for i, (label, _) in nodes.items()}
    assert "<B>output</B>" in labels[0] and "() float32" in labels[0]
    assert "<B>sum</B>" in labels[1] and "() float32" in labels[1]
    assert "<B>add</B>" in labels[2] and "(2, 3) float32" in labels[2]
    assert "<B>mul</B>" in labels[3] and "(2, 3) float32" in labels[3]
    assert "<B>parameter</B>" in labels[4] and "(3,) float32" in labels[4]
    assert "<B>constant</B>" in labels[5] and "(2, 3) float32" in labels[5]
    assert "<B>w</B>" in labels[6] and "(3,) float32" in labels[6]
    styles = {i: attributes for i, (_, attributes) in nodes.items()}
    assert styles[4] == styles[6] != styles[5]  # what requires grad looks alike, constants differ
    assert "filled" in styles[6] and "dashed" in styles[5]
    assert len({styles[0], styles[1], styles[4], styles[5]}) == 4  # output, op, requires grad, constant


def test_operands_keep_their_order_and_a_reused_tensor_or_op_appears_once(tmp_path):
    x = dg.tensor([1.0, 2.0], requires_grad=True)
    h = x.exp()
    text = written((h * h - x).sum(), tmp_path, names={x: "x"})
    nodes, edges = parse(text)
    by_heading = {re.match(r"<B>(.*?)</B>", label)[1]: i for i, (label, _) in nodes.items()}
    assert set(by_heading) == {"output", "sum", "sub", "mul", "exp", "x"} and len(nodes) == 6
    assert [source for source, target in edges if target == by_heading["mul"]] == [by_heading["exp"]] * 2
    assert [source for source, target in edges if target == by_heading["sub"]] == [by_heading["mul"], by_heading["x"]]
    assert "ordering=in" in text  # Graphviz draws the operands left to right in argument order


def test_the_same_graph_gives_the_same_text(tmp_path):
    first, *_ = tiny_graph()
    second, *_ = tiny_graph()
    assert written(first, tmp_path) == written(second, tmp_path) == written(first, tmp_path)
    assert not re.search(r"n\d{6,}", written(first, tmp_path))  # ids by visit order, not id()


def test_labels_are_escaped(tmp_path):
    w = dg.tensor([1.0], requires_grad=True)
    name = 'say "hi" \\ <b> & μ'
    text = written((w * 2.0).sum(), tmp_path, names={w: name}, title="a <title>")
    label = next(label for label, _ in parse(text)[0].values() if "say" in label)
    assert "<B>say &quot;hi&quot; \\ &lt;b&gt; &amp; &#956;</B>" in label
    assert text.isascii()
    assert "label=<<B>a &lt;title&gt;</B>>;" in text


@needs_dot
def test_escaped_labels_render_as_written(tmp_path):
    w = dg.tensor([1.0], requires_grad=True)
    name = 'say "hi" \\ <b> & μ'
    _, svg = graph((w * 2.0).sum(), str(tmp_path / "graph.svg"), names={w: name})
    texts = [element.text for element in ElementTree.parse(svg).getroot().iter() if element.text]
    assert name in texts


def test_a_3000_op_chain_needs_no_recursion(tmp_path):
    x = dg.tensor([0.5, -0.5], requires_grad=True)
    y = x
    for _ in range(3000):
        y = y.tanh()
    assert 3000 > sys.getrecursionlimit() / 2
    nodes, edges = parse(written(y.sum(), tmp_path))
    assert len(nodes) == 3000 + 3  # the tanh ops, sum, the output and x
    assert len(edges) == len(nodes) - 1


def test_parameters_are_named_after_the_module(tmp_path):
    dg.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    loss = F.cross_entropy(model(dg.randn(5, 4)), dg.tensor([0, 1, 0, 1, 1]))
    labels = [label for label, _ in parse(written(loss, tmp_path, names=model))[0].values()]
    headings = sorted(re.match(r"<B>(.*?)</B>", label)[1] for label in labels)
    assert headings == sorted(
        [
            "output",
            "softmaxcrossentropyindices",
            "linear",
            "relu",
            "linear",
            "0.weight",
            "0.bias",
            "2.weight",
            "2.bias",
            "constant",
        ]
    )
    assert any("<B>0.weight</B>" in label and "(3, 4) float32" in label for label in labels)


def test_a_freed_graph_is_an_error_that_says_what_to_do(tmp_path):
    loss, *_ = tiny_graph()
    loss.backward()
    with pytest.raises(RuntimeError, match=r"freed by backward\(\).*before backward\(\).*retain_graph=True"):
        graph(loss, str(tmp_path / "graph.dot"))


def test_show_values_includes_values_and_the_gradients_backward_kept(tmp_path):
    loss, x, w, b = tiny_graph()
    loss.backward(retain_graph=True)
    text = written(loss, tmp_path, names={w: "w"}, show_values=True)
    labels = [label for label, _ in parse(text)[0].values()]
    w_label = next(label for label in labels if "<B>w</B>" in label)
    assert "value [1, 2, 3]" in w_label and "grad [3, 5, 7]" in w_label
    assert any("<B>output</B>" in label and "value 34" in label for label in labels)
    assert any("<B>constant</B>" in label and "value in [0, 5]" in label for label in labels)


def test_a_tensor_without_a_graph_is_one_node(tmp_path):
    leaf = dg.tensor([1.0, 2.0], requires_grad=True)
    nodes, edges = parse(written(leaf, tmp_path))
    assert len(nodes) == 1 and edges == []
    with dg.no_grad():
        made_without_grad = leaf * 2.0
    nodes, edges = parse(written(made_without_grad, tmp_path))
    assert len(nodes) == 1 and edges == [] and "(2,) float32" in nodes[0][0]


def test_batch_norm_in_nine_steps_has_many_more_ops_than_the_fused_op(tmp_path):
    dg.manual_seed(0)
    x = dg.randn(8, 4, requires_grad=True)
    gamma, beta = nn.Parameter(dg.ones(4)), nn.Parameter(dg.zeros(4))
    composite = written(batch_norm_in_nine_steps(x, gamma, beta).sum(), tmp_path)
    fused = written(F.batch_norm(x, None, None, gamma, beta, training=True).sum(), tmp_path)
    assert op_count(composite) == 10 + 1  # the nine steps (√(σ² + ε) is add and sqrt) and the sum
    assert op_count(fused) == 1 + 1
    for op in ("mean", "sub", "powscalar", "add", "sqrt", "div", "mul"):
        assert f"<B>{op}</B>" in composite
    assert "<B>batchnorm</B>" in fused and "<B>1e-05</B>" in composite  # ε, a Python number, shows its value


@needs_dot
@pytest.mark.parametrize("image_format", ["svg", "png"])
def test_rendering_writes_the_dot_file_and_the_image(tmp_path, image_format):
    dg.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    loss = F.cross_entropy(model(dg.randn(5, 4)), dg.tensor([0, 1, 0, 1, 1]))
    dot_path, image_path = graph(loss, str(tmp_path / f"loss.{image_format}"), names=model, title="an MLP")
    assert (dot_path, image_path) == (str(tmp_path / "loss.dot"), str(tmp_path / f"loss.{image_format}"))
    assert sorted(os.listdir(tmp_path)) == sorted(["loss.dot", f"loss.{image_format}"])  # no temporary left
    if image_format == "svg":
        texts = {element.text for element in ElementTree.parse(image_path).getroot().iter()}
        assert {"linear", "relu", "softmaxcrossentropyindices", "0.weight", "an MLP"} <= texts
    else:
        with open(image_path, "rb") as handle:
            assert handle.read(8) == b"\x89PNG\r\n\x1a\n"


@needs_dot
def test_format_renders_next_to_the_dot_path(tmp_path):
    loss, *_ = tiny_graph()
    assert graph(loss, str(tmp_path / "g.dot"), format="png") == (str(tmp_path / "g.dot"), str(tmp_path / "g.png"))


def test_without_dot_the_error_says_how_to_install_it_and_the_dot_file_is_written(tmp_path, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda program: None)
    loss, *_ = tiny_graph()
    with pytest.raises(GraphvizError, match=r"'dot'.*apt-get install graphviz.*brew install graphviz") as error:
        graph(loss, str(tmp_path / "loss.svg"))
    assert isinstance(error.value, dg.DeepgradError)
    assert os.listdir(tmp_path) == ["loss.dot"]


@pytest.mark.skipif(os.name == "nt", reason="the stand-in dot is a shell script")
def test_a_failing_dot_is_an_error_with_its_stderr(tmp_path, monkeypatch):
    failing_dot = tmp_path / "dot"
    failing_dot.write_text("#!/bin/sh\necho 'Error: syntax error in line 1' >&2\nexit 3\n")
    failing_dot.chmod(0o755)
    monkeypatch.setattr(shutil, "which", lambda program: str(failing_dot))
    loss, *_ = tiny_graph()
    out = tmp_path / "out"
    with pytest.raises(GraphvizError, match=r"exit code 3.*loss\.dot.*loss\.png.*syntax error in line 1"):
        graph(loss, str(out / "loss.png"))
    assert os.listdir(out) == ["loss.dot"]  # no half-written image


def test_bad_arguments_name_what_was_expected(tmp_path):
    loss, *_ = tiny_graph()
    with pytest.raises(ValueError, match="format must be one of"):
        graph(loss, str(tmp_path / "g.dot"), format="pdf")
    with pytest.raises(ValueError, match=r"ends in '\.svg' but format='png'"):
        graph(loss, str(tmp_path / "g.svg"), format="png")
    with pytest.raises(TypeError, match="names must be a Module or a mapping"):
        graph(loss, str(tmp_path / "g.dot"), names=["w"])
    with pytest.raises(TypeError, match="keys of names must be tensors"):
        graph(loss, str(tmp_path / "g.dot"), names={"w": "w"})
    with pytest.raises(TypeError, match="expected a Tensor, got ndarray"):
        graph(np.zeros(3), str(tmp_path / "g.dot"))
    assert os.listdir(tmp_path) == []
