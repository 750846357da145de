"""Bad input gives a clear exception naming the op and the shapes/dtypes involved,
never a bare NumPy traceback from deep inside."""

import re

import numpy as np
import pytest

import deepgrad as dg


def raises(error, *fragments):
    """pytest.raises whose message must contain every fragment (literally, in order)."""
    return pytest.raises(error, match=".*".join(re.escape(f) for f in fragments))


@pytest.fixture
def x():
    return dg.randn(2, 3)


# ----------------------------------------------------------------------------
# Shape mismatches


def test_matmul_shape_mismatch_names_matmul_and_both_shapes(x):
    with raises(ValueError, "matmul", "(2, 3)", "(4, 5)"):
        x @ dg.randn(4, 5)
    with raises(ValueError, "matmul", "(3,)", "(2,)"):
        dg.matmul(dg.randn(3), dg.randn(2))
    with raises(ValueError, "matmul", "batch dimensions (2,) of (2, 3, 4) and (5,) of (5, 4, 2) do not broadcast"):
        dg.randn(2, 3, 4) @ dg.randn(5, 4, 2)  # batch dims do not broadcast
    with raises(ValueError, "matmul", "at least one dimension"):
        dg.tensor(1.0) @ x
    with raises(ValueError, "matmul", "(4, 5)", "(2, 3)"):
        np.ones((4, 5)) @ x  # reflected, from a NumPy array


@pytest.mark.parametrize(
    "op, name",
    [
        (lambda a, b: a + b, "add"),
        (lambda a, b: a - b, "sub"),
        (lambda a, b: a * b, "mul"),
        (lambda a, b: a / b, "div"),
        (dg.maximum, "maximum"),
        (lambda a, b: a**b, "pow"),
    ],
)
def test_broadcast_mismatch_names_the_op_and_both_shapes(x, op, name):
    with raises(ValueError, name, "(2, 3)", "(4,)"):
        op(x, dg.randn(4))
    with raises(ValueError, name, "(2, 3)", "(4,)"):
        op(x, np.ones(4))


def test_reshape_to_an_incompatible_shape(x):
    with raises(ValueError, "reshape", "(4,)", "(2, 3)"):
        x.reshape(4)
    with raises(ValueError, "reshape", "(2, 3)"):
        x.view(5, -1)
    with raises(ValueError, "reshape", "unknown dimension"):
        x.reshape(-1, -1)
    with raises(TypeError, "reshape", "integer"):
        x.reshape(2.0, 3)


@pytest.mark.parametrize("dims", [(0, 2), (0, 0), (1,), (0, 1, 2), (0, 5), (0, -3), ()])
def test_permute_with_a_bad_permutation(x, dims):
    with raises(ValueError, "permute", str(tuple(dims)), "(2, 3)"):
        x.permute(*dims)


def test_transpose_squeeze_unsqueeze_flatten_with_bad_dims(x):
    with raises(IndexError, "transpose", "dim 2"):
        x.transpose(0, 2)
    with raises(IndexError, "squeeze", "dim 3"):
        x.squeeze(3)
    with raises(IndexError, "unsqueeze", "dim 4"):
        x.unsqueeze(4)
    with raises(ValueError, "flatten", "start_dim 2", "end_dim 0"):
        dg.randn(2, 3, 4).flatten(2, 0)


def test_concatenate_and_stack_with_mismatched_shapes(x):
    with raises(ValueError, "concatenate", "(2, 3)", "(3, 3)", "dim 1"):
        dg.concatenate([x, dg.randn(3, 3)], dim=1)
    with raises(ValueError, "concatenate", "(2, 3)", "(3,)"):
        dg.concatenate([x, dg.randn(3)])
    with raises(IndexError, "concatenate", "dim 2"):
        dg.concatenate([x, x], dim=2)
    with raises(ValueError, "concatenate", "non-empty"):
        dg.concatenate([])
    with raises(ValueError, "stack", "(2, 3)", "(3, 2)"):
        dg.stack([x, dg.randn(3, 2)])


def test_expand_broadcast_to_pad_where(x):
    with raises(ValueError, "broadcast_to", "(2, 3)", "(4, 3)"):
        x.expand(4, 3)
    with raises(ValueError, "expand", "(2, 3)"):
        x.expand(3)
    with raises(ValueError, "pad", "2-d"):
        dg.pad(x, ((1, 1), (1, 1), (1, 1)))
    with raises(ValueError, "pad", "non-negative"):
        dg.pad(x, -1)
    with raises(ValueError, "pad", "0-d tensor"):
        dg.pad(dg.tensor(1.0), 1)
    with raises(ValueError, "pad", "mode", "'symmetric'"):
        dg.pad(x, 1, mode="symmetric")
    with raises(ValueError, "pad", "'reflect'", "at most 1", "axis 1 of size 2", "(2, 2)"):
        dg.pad(dg.zeros(3, 2), ((0, 0), (2, 2)), mode="reflect")
    with raises(ValueError, "pad", "'circular'", "at most 2", "(3, 0)"):
        dg.pad(dg.zeros(2), (3, 0), mode="circular")
    with raises(TypeError, "where", "boolean", "float64"):
        dg.where(np.ones(3), x, x)
    with raises(ValueError, "where", "(2, 3)"):
        dg.where(np.ones(4, dtype=bool), x, x)


def test_bad_indices(x):
    with raises(IndexError, "getitem", "index 5", "(2, 3)"):
        x[5]
    with raises(IndexError, "getitem", "integer or bool", "float64"):
        x[np.array([0.5])]
    with raises(IndexError, "getitem", "(2, 3)"):
        x[np.ones(4, dtype=bool)]


# ----------------------------------------------------------------------------
# Reductions


@pytest.mark.parametrize("name", ["sum", "mean", "max", "min", "var", "std", "argmax", "argmin"])
@pytest.mark.parametrize("dim", [2, -3, (0, 5)])
def test_reduction_with_an_out_of_range_dim(x, name, dim):
    bad = dim if isinstance(dim, int) else dim[1]
    with raises(IndexError, name, f"dim {bad}", "(2, 3)", "[-2, 1]"):
        getattr(x, name)(dim=dim)
    with raises(IndexError, name, f"dim {bad}", "(2, 3)"):
        getattr(x, name)(axis=dim)


def test_reduction_argument_errors(x):
    with raises(ValueError, "sum", "twice"):
        x.sum(dim=(0, -2))
    with raises(TypeError, "mean", "dim or axis"):
        x.mean(dim=0, axis=0)
    with raises(TypeError, "var", "correction or unbiased"):
        x.var(correction=0, unbiased=True)
    with raises(TypeError, "mean", "int64"):
        dg.tensor([1, 2]).mean()
    with raises(TypeError, "std", "int64"):
        dg.tensor([1, 2]).std()
    with raises(TypeError, "std", "correction or unbiased"):
        x.std(correction=0, unbiased=True)
    with raises(ValueError, "argmax", "single dim"):
        x.argmax(dim=(0, 1))


# ----------------------------------------------------------------------------
# Gradients


def test_requires_grad_on_an_int_tensor(x):
    with raises(TypeError, "tensor", "floating-point", "int64"):
        dg.tensor([1, 2], requires_grad=True)
    with raises(TypeError, "requires_grad_", "int64"):
        dg.tensor([1, 2]).requires_grad_()
    with raises(TypeError, "Tensor", "int64"):
        dg.Tensor(np.arange(3), requires_grad=True)
    with raises(TypeError, "floating-point", "int64"):
        dg.ones(2, dtype=dg.int64, requires_grad=True)


def test_backward_twice_through_a_freed_graph():
    w = dg.tensor([1.0, 2.0], requires_grad=True)
    loss = (w * w).sum()
    loss.backward()
    with raises(RuntimeError, "backward", "second time", "retain_graph=True"):
        loss.backward()


def test_backward_from_a_tensor_that_does_not_require_grad(x):
    with raises(RuntimeError, "backward", "does not require grad"):
        x.sum().backward()
    with dg.no_grad():
        y = (dg.tensor([1.0], requires_grad=True) * 2).sum()
    with raises(RuntimeError, "backward", "no_grad"):
        y.backward()


def test_backward_with_a_bad_grad():
    y = dg.tensor([1.0, 2.0], requires_grad=True) * 2
    with raises(ValueError, "backward", "(3,)", "(2,)"):
        y.backward(np.ones(3))
    with raises(TypeError, "backward", "<U1"):
        y.backward(np.array(["a", "b"]))
    with raises(RuntimeError, "backward", "one-element", "(2,)"):
        y.backward()


def test_conversion_errors():
    with raises(TypeError, "tensor", "<U3"):
        dg.tensor("abc")
    with raises(TypeError, "tensor", "complex"):
        dg.tensor(np.array([1j]))
    with raises(ValueError, "item", "one-element", "(2, 3)"):
        dg.randn(2, 3).item()
    with raises(ValueError, "clamp", "min and max"):
        dg.randn(2).clamp()


@pytest.mark.parametrize(
    "loss, options",
    [
        ("binary_cross_entropy_with_logits", ["weight", "pos_weight"]),
        ("binary_cross_entropy", ["weight"]),
        ("cross_entropy", ["weight"]),
        ("nll_loss", ["weight"]),
    ],
)
def test_a_loss_weight_that_requires_grad_is_refused_as_pytorch_refuses_its_gradient(loss, options):
    """No loss is differentiable in its weights (PyTorch raises at backward); a weight that requires
    grad would otherwise silently keep a None gradient."""
    import deepgrad.functional as F

    probabilities = dg.tensor(np.full((2, 3), 0.25), requires_grad=True)
    target = np.array([0, 2]) if loss in ("cross_entropy", "nll_loss") else np.zeros((2, 3))
    for option in options:
        weight = dg.ones(3, requires_grad=True)
        with raises(TypeError, loss, f"{option} requires grad", "not differentiable", "detached"):
            getattr(F, loss)(probabilities, target, **{option: weight})
        with dg.no_grad():
            getattr(F, loss)(probabilities, target, **{option: weight})
        getattr(F, loss)(probabilities, target, **{option: weight.detach()}).backward()


# ----------------------------------------------------------------------------
# gradcheck


class WrongSquare(dg.Function):
    """out = x²; its backward is wrong at element [1, 2] only."""

    def forward(self, x):
        self.x = x
        return x * x

    def backward(self, grad):
        dx = 2 * self.x * grad
        dx[1, 2] *= 1.5
        return (dx,)


class WrongSecondInput(dg.Function):
    """out = a · b; the gradient for b (input 1) is halved."""

    def forward(self, a, b):
        self.a, self.b = a, b
        return a * b

    def backward(self, grad):
        return grad * self.b, 0.5 * grad * self.a


def test_gradcheck_names_the_input_and_the_element():
    x = dg.tensor(np.random.default_rng(0).uniform(0.5, 1.5, (2, 3)), requires_grad=True)
    with raises(dg.GradcheckError, "input 0", "(2, 3)", "d out[1, 2] / d in[1, 2]", "1 of 36"):
        dg.gradcheck(lambda t: WrongSquare()(t), x)
    assert dg.gradcheck(lambda t: t * t, x)
    a = dg.tensor([1.0, 2.0], requires_grad=True)
    b = dg.tensor([3.0, -4.0], requires_grad=True)
    with raises(dg.GradcheckError, "input 1", "(2,)", "by backprop", "numerically"):
        dg.gradcheck(lambda a, b: WrongSecondInput()(a, b), [a, b])
    assert issubclass(dg.GradcheckError, AssertionError)


def test_gradcheck_argument_errors():
    with raises(ValueError, "gradcheck", "no input requires grad"):
        dg.gradcheck(lambda t: t * 2, [dg.tensor([1.0])])
    with raises(TypeError, "gradcheck", "Tensor", "float"):
        dg.gradcheck(lambda t: 1.0, [dg.tensor([1.0], requires_grad=True)])
