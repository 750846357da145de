"""``graph``: batch normalization written as the course notes' nine textbook steps, against the
fused op. (Notes 000 §1.)

The notes compute batch norm in steps and say that a framework, given the forward computation,
derives the backward by itself. On a batch of the data set's training inputs (256 samples,
float64, flattened), batch norm is written step by step with deepgrad ops — μ = mean(x), x − μ,
(x − μ)², σ² = mean((x − μ)²), σ̂ = √(σ² + ε), 1/σ̂, x̂ = (x − μ)·(1/σ̂), γx̂, γx̂ + β — so autograd
records ten elementary ops and derives the backward through them; ``F.batch_norm`` is one op with
a closed-form backward. Both get the same γ, β and upstream gradient (drawn per seed): the outputs
and the gradients with respect to x, γ and β are compared (float64, so any difference beyond
round-off is a bug), and forward + backward of each is timed, the median of 300 runs per seed. A
timing is noisy — other processes share the machine — so the speed claim is judged per seed with
a modest threshold (the fused op at least 1.2× faster) and the seeds give its spread. Both graphs
are drawn with ``dg.viz.graph`` (DOT, and PNG through Graphviz's ``dot`` when it is installed).
"""

import math
import statistics
import time
from collections import Counter

import numpy as np

from .. import functional as F
from ..errors import GraphvizError
from ..tensor import tensor
from ..viz import graph as draw_graph
from ..viz.seeds import seed_bars
from .claims import Claim, above, below
from .common import Figure, Report, Table

TITLE = "Batch norm: the nine textbook steps differentiated by autograd against the fused op"
QUESTION = (
    "Does autograd through batch norm's nine textbook steps give the same output and gradients as the fused op's "
    "closed-form backward, and how much faster is the fused op (000 §1)?"
)
SEEDS = 3

BATCH, EPS = 256, 1e-5
REPEATS, QUICK_REPEATS = 300, 30
AGREEMENT = 1e-10  # float64 round-off through ten ops stays far below this
FASTER = 1.2  # a timing is noisy: the fused op must be at least this much faster
GRAPHS = {"composite": "graph_composite", "fused": "graph_fused"}
SYMBOLS = {"x": "x", "gamma": "γ", "beta": "β"}


def composite_batch_norm(x, gamma, beta, names=None):
    """Batch norm over the batch axis as the notes' nine steps; ``names`` (a dict), when given, is
    filled with {intermediate tensor: its step's label} for the drawing."""
    mu = x.mean(dim=0)  # 1  μ
    xmu = x - mu  # 2  x − μ
    sq = xmu**2  # 3  (x − μ)²
    var = sq.mean(dim=0)  # 4  σ²
    sqrtvar = (var + EPS).sqrt()  # 5  σ̂ = √(σ² + ε)
    ivar = 1 / sqrtvar  # 6  1/σ̂
    xhat = xmu * ivar  # 7  x̂
    scaled = gamma * xhat  # 8  γx̂
    out = scaled + beta  # 9  γx̂ + β
    if names is not None:
        names.update(
            {
                mu: "1 μ",
                xmu: "2 x − μ",
                sq: "3 (x − μ)²",
                var: "4 σ²",
                sqrtvar: "5 σ̂ = √(σ² + ε)",
                ivar: "6 1/σ̂",
                xhat: "7 x̂",
                scaled: "8 γx̂",
                out: "9 γx̂ + β",
            }
        )
    return out


def fused_batch_norm(x, gamma, beta, names=None):
    """``F.batch_norm`` with the batch's statistics (no running averages): one recorded op, with
    nothing inside it to name (``names`` is left as it is)."""
    return F.batch_norm(x, None, None, gamma, beta, training=True, eps=EPS)


IMPLEMENTATIONS = {"composite": composite_batch_norm, "fused": fused_batch_norm}


def inputs(context, generator):
    """(x, γ, β, upstream gradient): the first BATCH training inputs as float64 rows, γ near 1 and
    β near 0 drawn from ``generator`` (so that both enter the gradients), and a random upstream."""
    x = context.splits().train.arrays[0][:BATCH]
    x = x.reshape(len(x), -1).astype(np.float64)
    features = x.shape[1]
    gamma = 1 + 0.1 * generator.standard_normal(features)
    beta = 0.1 * generator.standard_normal(features)
    return x, gamma, beta, generator.standard_normal(x.shape)


def leaves(x, gamma, beta):
    """Fresh tensors that require grad, by name."""
    return {
        "x": tensor(x, requires_grad=True),
        "gamma": tensor(gamma, requires_grad=True),
        "beta": tensor(beta, requires_grad=True),
    }


def forward_backward(implementation, arrays, upstream):
    """Run ``implementation`` forward and backward on fresh leaves: (output, {leaf name: gradient})."""
    named = leaves(*arrays)
    out = implementation(*named.values())
    out.backward(upstream)
    return out.data, {name: t.grad for name, t in named.items()}


def median_ms(implementation, arrays, upstream, repeats):
    """The median wall time of forward + backward, in milliseconds, over ``repeats`` runs after a
    warm-up one (the leaves are made once, outside the timing)."""
    named = leaves(*arrays)
    times = []
    for _ in range(repeats + 1):
        for t in named.values():
            t.grad = None
        start = time.perf_counter()
        implementation(*named.values()).backward(upstream)
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times[1:])


def recorded_ops(output):
    """The names of the ops recorded in the graph behind ``output``, each op once."""
    names, seen, stack = [], set(), [output.grad_fn]
    while stack:
        fn = stack.pop()
        if fn is None or id(fn) in seen:
            continue
        seen.add(id(fn))
        names.append(fn.name)
        stack += [t.grad_fn for t in fn.inputs]
    return names


def op_counts(names):
    """``names`` of ops as "mean ×2, sub, ..." in order of first appearance."""
    return ", ".join(name if count == 1 else f"{name} ×{count}" for name, count in Counter(names).items())


def draw(context, implementation, arrays, filename, title):
    """The graph of ``implementation`` as ``filename``.dot and, with Graphviz, .png; returns
    whether the PNG was rendered, and the ops recorded."""
    named = leaves(*arrays)
    names = {t: SYMBOLS[name] for name, t in named.items()}
    out = implementation(*named.values(), names=names)
    try:
        draw_graph(out, context.path(filename + ".png"), names=names, title=title)
        rendered = True
    except GraphvizError:  # no `dot` program: the .dot file is written all the same
        rendered = False
    return rendered, recorded_ops(out)


def differences(arrays, upstream):
    """Largest |composite − fused| of the outputs, and of the gradients per leaf."""
    (composite, composite_grads), (fused, fused_grads) = [
        forward_backward(implementation, arrays, upstream) for implementation in IMPLEMENTATIONS.values()
    ]
    grads = {leaf: float(np.abs(composite_grads[leaf] - fused_grads[leaf]).max()) for leaf in fused_grads}
    return float(np.abs(composite - fused).max()), grads


def measure(context):
    """One seed's γ, β and upstream gradient: the largest differences between the two and the
    median time of forward + backward of each."""
    generator = np.random.default_rng(context.seed)
    x, gamma, beta, upstream = inputs(context, generator)
    arrays = (x, gamma, beta)
    output_difference, grad_differences = differences(arrays, upstream)
    repeats = QUICK_REPEATS if context.quick else REPEATS
    timing = {
        name: median_ms(implementation, arrays, upstream, repeats) for name, implementation in IMPLEMENTATIONS.items()
    }
    return {
        "shape": list(x.shape),
        "max_output_difference": output_difference,
        "grad_differences": grad_differences,
        "max_difference": max(output_difference, *grad_differences.values()),
        "composite_ms": timing["composite"],
        "fused_ms": timing["fused"],
    }


def report(context, measured):
    first = measured[0]
    shape = " × ".join(map(str, first["shape"]))
    arrays = inputs(context, np.random.default_rng(context.seeds[0]))[:3]
    drawn = {
        name: draw(context, IMPLEMENTATIONS[name], arrays, GRAPHS[name], f"batch norm, {name}: {shape} float64")
        for name in GRAPHS
    }
    rendered = all(done for done, _ in drawn.values())
    ops = {name: recorded for name, (_, recorded) in drawn.items()}
    repeats = QUICK_REPEATS if context.quick else REPEATS
    draw_costs(context.path("batchnorm_cost.png"), measured, ops, shape, repeats)
    speedup = [seed["composite_ms"] / seed["fused_ms"] for seed in measured]
    claims = [
        Claim.judge(
            "graph/agrees",
            "000 §1",
            "Given the forward computation, autograd derives batch norm's backward: through the nine steps it gives "
            "the same output and gradients as the fused op's closed-form backward.",
            f"largest |composite − fused| over the output and the gradients for x, γ and β, all {len(measured)} "
            "seeds' draws (float64)",
            [max(seed["max_difference"] for seed in measured)],
            below(AGREEMENT),
        ),
        Claim.judge(
            "graph/faster",
            "000 §1",
            "One fused op with a closed-form backward does the same work faster than autograd through the steps.",
            f"forward + backward time, nine steps ÷ fused (median of {repeats} runs)",
            speedup,
            above(FASTER),
        ),
    ]
    figures = [
        Figure(
            "batchnorm_cost.png",
            f"Left: the median time of forward + backward over {repeats} runs, per seed (dots; bars the mean, "
            "whiskers the range); middle: the ops each graph records; right: the largest difference between the "
            "two, in the output and in each gradient (log scale; float64 round-off is about 1e-16).",
        )
    ]
    if rendered:
        figures += [
            Figure(
                f"{GRAPHS['composite']}.png",
                "The graph of the nine steps: ten recorded ops (step 5 is an add and a sqrt), each step's output named",
            ),
            Figure(f"{GRAPHS['fused']}.png", "The graph of F.batch_norm: one op"),
        ]
    mean = lambda values: math.fsum(values) / len(values)  # noqa: E731
    return Report(
        title=TITLE,
        question=QUESTION,
        setup={
            "data": f"the first {first['shape'][0]} {context.dataset} training inputs, flattened to {shape}, float64",
            "parameters": "γ = 1 + 0.1·N(0, 1), β = 0.1·N(0, 1) per feature; upstream gradient N(0, 1); drawn per seed",
            "timing": f"forward + backward, median of {repeats} runs after a warm-up, per seed",
            "graphs": "drawn with dg.viz.graph and rendered by Graphviz"
            if rendered
            else f"Graphviz's dot is not installed: only {GRAPHS['composite']}.dot and {GRAPHS['fused']}.dot "
            "were written (render them with dot -Tpng)",
        },
        claims=claims,
        tables=[
            Table(
                f"Forward + backward time (mean over {len(measured)} seeds) and ops recorded",
                ["implementation", "time (ms)", "ops", "op names"],
                [
                    [name, mean([seed[f"{name}_ms"] for seed in measured]), len(ops[name]), op_counts(ops[name])]
                    for name in IMPLEMENTATIONS
                ],
            ),
            Table(
                "Largest |composite − fused| per seed",
                ["seed", "output", *[f"∂/∂{SYMBOLS[leaf]}" for leaf in first["grad_differences"]]],
                [
                    [seed, m["max_output_difference"], *m["grad_differences"].values()]
                    for seed, m in zip(context.seeds, measured)
                ],
            ),
        ],
        figures=figures,
        results={"seeds": measured, "ops": ops, "graphs_rendered": rendered},
    )


def draw_costs(path, measured, ops, shape, repeats):
    """The timing, op-count and difference bars, each seed a dot."""
    differences = {"output": [seed["max_output_difference"] for seed in measured]}
    for leaf in measured[0]["grad_differences"]:
        differences[f"∂/∂{SYMBOLS[leaf]}"] = [seed["grad_differences"][leaf] for seed in measured]
    # a log axis cannot show an exact 0: such a quantity is named in the panel's title instead
    exact = [name for name, values in differences.items() if not any(values)]
    drawn = {name: values for name, values in differences.items() if name not in exact}
    title = "largest |composite − fused|" + (f"\n({', '.join(exact)}: exactly 0 in every seed)" if exact else "")
    seed_bars(
        {
            f"forward + backward (median of {repeats})": {
                "ylabel": "time (ms)",
                "bars": {name: [seed[f"{name}_ms"] for seed in measured] for name in IMPLEMENTATIONS},
            },
            "ops recorded in the graph": {
                "ylabel": "ops",
                "bars": {name: [len(ops[name])] for name in IMPLEMENTATIONS},
            },
            title: {
                "ylabel": "max |difference| (log)",
                "log_y": True,
                "bars": drawn,
                "references": {f"the claim's bound {AGREEMENT:g}": AGREEMENT},
            },
        },
        path,
        title=f"Batch norm on a {shape} float64 batch: nine textbook steps against the fused op",
    )
