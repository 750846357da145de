"""The affine map of a fully connected layer: z = x Wᵀ + b, and its backward in three GEMMs."""

from __future__ import annotations

from ..tensor import Function, Tensor
from .arguments import check_shape


class Linear(Function):
    """out = x Wᵀ + b (x: (..., in), W: (out, in));  dx = g W,  dW = gᵀ x,  db = Σ g"""

    def forward(self, x, weight, bias=None):
        self.x, self.weight = x, weight
        out = x @ weight.T
        if bias is not None:
            out += bias
        return out

    def backward(self, grad):
        x, weight = self.x, self.weight
        needs = self.needs_input_grad
        dx = dweight = dbias = None
        if needs[0]:
            dx = grad @ weight
        rows = grad if grad.ndim == 2 else grad.reshape(-1, grad.shape[-1])
        if needs[1]:
            dweight = rows.T @ (x if x.ndim == 2 else x.reshape(-1, x.shape[-1]))
        if len(needs) > 2 and needs[2]:
            dbias = rows.sum(axis=0)
        return dx, dweight, dbias


def linear(input: Tensor, weight: Tensor, bias: Tensor | None = None, *, check: bool = True) -> Tensor:
    """x Wᵀ + b with W of shape (out_features, in_features), as PyTorch.

    ``check=False`` skips the shape checks, for a caller that made sure of them (a Linear layer checks
    its input's last dim; its own weight and bias fit by construction).
    """
    if check:
        x_shape, w_shape = input.shape, weight.shape
        if len(w_shape) != 2 or not x_shape or x_shape[-1] != w_shape[1]:
            raise ValueError(
                f"linear: input of shape {tuple(x_shape)} does not match weight {tuple(w_shape)}: "
                f"expected input (..., {w_shape[-1]})"
            )
        check_shape("linear", "bias", bias, w_shape[:1], input)
    return Linear()(input, weight) if bias is None else Linear()(input, weight, bias)
