"""Stochastic gradient descent, with PyTorch's momentum, and the seed notes' Momentum."""

from __future__ import annotations

import numpy as np

from ..backend import Array
from ..tensor import Tensor
from .optimizer import Optimizer, ParamGroup, Params, ParamState, check_hyperparameter


def decayed_gradient(optimizer: Optimizer, param: Tensor, grad: Array, weight_decay: float) -> Array:
    """g + λ·w (L2 weight decay added to the gradient) in a scratch buffer; g itself if λ = 0."""
    if not weight_decay:
        return grad
    scratch = optimizer.scratch_buffer(param)
    np.multiply(param.data, weight_decay, out=scratch)
    scratch += grad
    return scratch


class SGD(Optimizer):
    """w ← w − lr·g, where with momentum μ:  b ← μ·b + (1 − dampening)·g  (b = g at the first step)
    and g ← b (or g + μ·b with Nesterov). ``weight_decay`` adds λ·w to g (L2)."""

    def __init__(
        self,
        params: Params,
        lr: float = 1e-3,
        momentum: float = 0.0,
        dampening: float = 0.0,
        weight_decay: float = 0.0,
        nesterov: bool = False,
        maximize: bool = False,
    ) -> None:
        super().__init__(
            params,
            dict(
                lr=lr,
                momentum=momentum,
                dampening=dampening,
                weight_decay=weight_decay,
                nesterov=nesterov,
                maximize=maximize,
            ),
        )

    def validate(self, group: ParamGroup) -> None:
        super().validate(group)
        check_hyperparameter(group["momentum"], "momentum", "SGD")
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError("SGD: Nesterov momentum requires a momentum > 0 and zero dampening")

    def update(self, param: Tensor, grad: Array, state: ParamState, group: ParamGroup) -> None:
        if group["maximize"]:
            grad = -grad
        grad = decayed_gradient(self, param, grad, group["weight_decay"])
        momentum = group["momentum"]
        if momentum:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = grad.astype(param.dtype, copy=True)
            else:
                buf *= momentum
                buf += (1 - group["dampening"]) * grad
            grad = grad + momentum * buf if group["nesterov"] else buf
        param.data -= np.multiply(grad, group["lr"], out=self.scratch_buffer(param))


class Momentum(Optimizer):
    """The seed notes' classic momentum:  v ← β·v − α·∇w,  w ← w + v.

    Under a constant learning rate this is SGD(momentum=β): v = −α·b.
    """

    def __init__(self, params: Params, lr: float = 1e-2, momentum: float = 0.9) -> None:
        super().__init__(params, dict(lr=lr, momentum=momentum))

    def validate(self, group: ParamGroup) -> None:
        super().validate(group)
        check_hyperparameter(group["momentum"], "momentum", "Momentum", high=1.0, high_open=True)

    def init_state(self, param: Tensor, group: ParamGroup) -> ParamState:
        return {"velocity": np.zeros_like(param.data)}

    def update(self, param: Tensor, grad: Array, state: ParamState, group: ParamGroup) -> None:
        velocity = state["velocity"]
        velocity *= group["momentum"]
        velocity -= group["lr"] * grad
        param.data += velocity
