"""Adaptive learning-rate methods: AdaGrad, RMSProp, Adam and AdamW (PyTorch's formulas).

The seed notes' δ = 1e-7 is ``eps=1e-7``; it is added outside the square root,
as in PyTorch.
"""

from __future__ import annotations

import math

import numpy as np

from ..backend import Array
from ..tensor import Tensor
from .optimizer import Optimizer, ParamGroup, Params, ParamState, check_hyperparameter
from .sgd import decayed_gradient


class Adagrad(Optimizer):
    """s ← s + g²;  w ← w − lr_t · g / (√s + eps),  lr_t = lr / (1 + (t − 1)·lr_decay)"""

    def __init__(
        self,
        params: Params,
        lr: float = 1e-2,
        lr_decay: float = 0.0,
        weight_decay: float = 0.0,
        initial_accumulator_value: float = 0.0,
        eps: float = 1e-10,
    ) -> None:
        super().__init__(
            params,
            dict(
                lr=lr,
                lr_decay=lr_decay,
                weight_decay=weight_decay,
                initial_accumulator_value=initial_accumulator_value,
                eps=eps,
            ),
        )

    def validate(self, group: ParamGroup) -> None:
        super().validate(group)
        for key in ("lr_decay", "initial_accumulator_value", "eps"):
            check_hyperparameter(group[key], key, "Adagrad")

    def init_state(self, param: Tensor, group: ParamGroup) -> ParamState:
        return {"step": 0, "sum": np.full_like(param.data, group["initial_accumulator_value"])}

    def update(self, param: Tensor, grad: Array, state: ParamState, group: ParamGroup) -> None:
        state["step"] += 1
        grad = decayed_gradient(self, param, grad, group["weight_decay"])
        lr = group["lr"] / (1 + (state["step"] - 1) * group["lr_decay"])
        total, work, change = state["sum"], self.scratch_buffer(param, 1), self.scratch_buffer(param, 2)
        total += np.multiply(grad, grad, out=work)
        denominator = np.sqrt(total, out=work)
        denominator += group["eps"]
        param.data -= np.divide(np.multiply(grad, lr, out=change), denominator, out=change)


class RMSprop(Optimizer):
    """v ← α·v + (1 − α)·g²;  w ← w − lr · g / (√v + eps)

    ``centered`` subtracts the squared running mean of g from v; ``momentum``
    accumulates b ← μ·b + g/(√v + eps) and steps by lr·b.
    """

    def __init__(
        self,
        params: Params,
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        momentum: float = 0.0,
        centered: bool = False,
    ) -> None:
        super().__init__(
            params, dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum, centered=centered)
        )

    def validate(self, group: ParamGroup) -> None:
        super().validate(group)
        check_hyperparameter(group["alpha"], "alpha", "RMSprop", high=1.0)
        check_hyperparameter(group["eps"], "eps", "RMSprop")
        check_hyperparameter(group["momentum"], "momentum", "RMSprop")

    def init_state(self, param: Tensor, group: ParamGroup) -> ParamState:
        state = {"step": 0, "square_avg": np.zeros_like(param.data)}
        if group["momentum"] > 0:
            state["momentum_buffer"] = np.zeros_like(param.data)
        if group["centered"]:
            state["grad_avg"] = np.zeros_like(param.data)
        return state

    def update(self, param: Tensor, grad: Array, state: ParamState, group: ParamGroup) -> None:
        state["step"] += 1
        grad = decayed_gradient(self, param, grad, group["weight_decay"])
        alpha = group["alpha"]
        square_avg, work, change = state["square_avg"], self.scratch_buffer(param, 1), self.scratch_buffer(param, 2)
        square_avg *= alpha
        square_avg += np.multiply(np.multiply(grad, 1 - alpha, out=work), grad, out=work)
        if group["centered"]:
            grad_avg = state["grad_avg"]
            grad_avg += np.multiply(np.subtract(grad, grad_avg, out=work), 1 - alpha, out=work)
            denominator = np.sqrt(
                np.subtract(square_avg, np.multiply(grad_avg, grad_avg, out=work), out=work), out=work
            )
        else:
            denominator = np.sqrt(square_avg, out=work)
        denominator += group["eps"]
        if group["momentum"] > 0:
            buf = state["momentum_buffer"]
            buf *= group["momentum"]
            buf += np.divide(grad, denominator, out=change)
            param.data -= np.multiply(buf, group["lr"], out=change)
        else:
            param.data -= np.divide(np.multiply(grad, group["lr"], out=change), denominator, out=change)


class Adam(Optimizer):
    """m ← β1·m + (1 − β1)·g;  v ← β2·v + (1 − β2)·g²;
    w ← w − lr · m̂ / (√v̂ + eps) with m̂ = m/(1 − β1ᵗ), v̂ = v/(1 − β2ᵗ).

    ``weight_decay`` adds λ·w to g (L2 regularization, coupled with the
    adaptive scaling); AdamW decouples it. ``amsgrad`` uses the running
    maximum of v.
    """

    decoupled_weight_decay = False

    def __init__(
        self,
        params: Params,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        amsgrad: bool = False,
    ) -> None:
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad))

    def validate(self, group: ParamGroup) -> None:
        super().validate(group)
        name = type(self).__name__
        check_hyperparameter(group["eps"], "eps", name)
        betas = group["betas"]
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise ValueError(f"{name}: betas must be a pair (beta1, beta2), got {betas!r}")
        group["betas"] = beta1, beta2 = tuple(betas)
        check_hyperparameter(beta1, "beta1", name, high=1.0, high_open=True)
        check_hyperparameter(beta2, "beta2", name, high=1.0, high_open=True)

    def init_state(self, param: Tensor, group: ParamGroup) -> ParamState:
        state = {"step": 0, "exp_avg": np.zeros_like(param.data), "exp_avg_sq": np.zeros_like(param.data)}
        if group["amsgrad"]:
            state["max_exp_avg_sq"] = np.zeros_like(param.data)
        return state

    def update(self, param: Tensor, grad: Array, state: ParamState, group: ParamGroup) -> None:
        state["step"] += 1
        step, lr = state["step"], group["lr"]
        beta1, beta2 = group["betas"]
        if self.decoupled_weight_decay:
            param.data *= 1 - lr * group["weight_decay"]
        else:
            grad = decayed_gradient(self, param, grad, group["weight_decay"])
        exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
        work, change = self.scratch_buffer(param, 1), self.scratch_buffer(param, 2)  # no new arrays
        exp_avg += np.multiply(np.subtract(grad, exp_avg, out=work), 1 - beta1, out=work)
        exp_avg_sq *= beta2
        exp_avg_sq += np.multiply(np.multiply(grad, 1 - beta2, out=work), grad, out=work)
        if group["amsgrad"]:
            second = np.maximum(state["max_exp_avg_sq"], exp_avg_sq, out=state["max_exp_avg_sq"])
        else:
            second = exp_avg_sq
        # m̂/(√v̂ + eps) = (√(1 − β2ᵗ)/(1 − β1ᵗ))·m/(√v + eps·√(1 − β2ᵗ)): the bias corrections
        # become scalars (the rearrangement of Kingma & Ba, section 2), one pass fewer.
        correction2 = math.sqrt(1 - beta2**step)
        denominator = np.sqrt(second, out=work)
        denominator += group["eps"] * correction2
        step_size = lr * correction2 / (1 - beta1**step)
        param.data -= np.divide(np.multiply(exp_avg, step_size, out=change), denominator, out=change)


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter): w ← w·(1 − lr·λ) before the Adam step."""

    decoupled_weight_decay = True

    def __init__(
        self,
        params: Params,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
    ) -> None:
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad)
