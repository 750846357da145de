"""NumPy by hand: the floor. Forward, backward and the SGD update of each step are written out with
matmuls on buffers allocated once, weights stored (in, out): no autograd, no graph, no per-step
allocation of anything large. Only mlp, mlp-bn and cnn (and their -eval variants) are written."""

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .workloads import CLASSES, LR, MODEL_SEED

VERSION = np.__version__
f32 = np.float32


def he_normal(rng, fan_in, shape):
    return (rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(f32)


class Dense:
    """out = x W + b with W (in, out); the first layer of a net skips dx."""

    def __init__(self, rng, batch, n_in, n_out, bias=True, need_dx=True):
        self.w, self.dw = he_normal(rng, n_in, (n_in, n_out)), np.empty((n_in, n_out), f32)
        self.b = np.zeros(n_out, f32) if bias else None
        self.db = np.empty(n_out, f32) if bias else None
        self.out, self.dx = np.empty((batch, n_out), f32), np.empty((batch, n_in), f32) if need_dx else None
        self.params = [(self.w, self.dw)] + ([(self.b, self.db)] if bias else [])

    def forward(self, x, train):
        self.x = x
        np.matmul(x, self.w, out=self.out)
        if self.b is not None:
            self.out += self.b
        return self.out

    def backward(self, g):
        np.matmul(self.x.T, g, out=self.dw)
        if self.b is not None:
            np.sum(g, axis=0, out=self.db)
        if self.dx is not None:
            return np.matmul(g, self.w.T, out=self.dx)


class ReLU:
    """In place on its input (the previous layer's output buffer, which nothing else reads)."""

    params = []

    def __init__(self, shape):
        self.mask = np.empty(shape, bool)

    def forward(self, x, train):
        self.out = np.maximum(x, 0, out=x)
        return x

    def backward(self, g):
        np.greater(self.out, 0, out=self.mask)
        return np.multiply(g, self.mask, out=g)


class BatchNorm1d:
    """Batch statistics in training (running averages kept as PyTorch does), closed-form backward."""

    def __init__(self, batch, n, momentum=0.1, eps=1e-5):
        self.gamma, self.beta = np.ones(n, f32), np.zeros(n, f32)
        self.dgamma, self.dbeta = np.empty(n, f32), np.empty(n, f32)
        self.running_mean, self.running_var = np.zeros(n, f32), np.ones(n, f32)
        self.momentum, self.eps = momentum, eps
        self.xhat, self.tmp, self.out, self.dx = (np.empty((batch, n), f32) for _ in range(4))
        self.params = [(self.gamma, self.dgamma), (self.beta, self.dbeta)]

    def forward(self, x, train):
        m = self.momentum
        if train:
            mean = x.mean(axis=0)
            np.subtract(x, mean, out=self.xhat)
            var = np.square(self.xhat, out=self.tmp).mean(axis=0)
            self.inv_std = 1 / np.sqrt(var + self.eps)
            self.xhat *= self.inv_std
            n = len(x)
            self.running_mean *= 1 - m
            self.running_mean += m * mean
            self.running_var *= 1 - m
            self.running_var += (m * n / (n - 1)) * var
        else:
            np.subtract(x, self.running_mean, out=self.xhat)
            self.xhat *= 1 / np.sqrt(self.running_var + self.eps)
        np.multiply(self.xhat, self.gamma, out=self.out)
        self.out += self.beta
        return self.out

    def backward(self, g):
        n = len(g)
        np.sum(g, axis=0, out=self.dbeta)
        np.sum(np.multiply(g, self.xhat, out=self.tmp), axis=0, out=self.dgamma)
        # dx = γ/(σ·n) · (n·g − Σg − x̂·Σ(g·x̂))
        dx = np.multiply(g, n, out=self.dx)
        dx -= self.dbeta
        dx -= np.multiply(self.xhat, self.dgamma, out=self.tmp)
        dx *= self.gamma * self.inv_std / n
        return dx


class ConvReLUPool:
    """Conv k×k (valid, stride 1) → ReLU → max-pool 2×2, fused by hand; the first layer of a net (no dx).
    im2col into a preallocated buffer, activations channel-last (N, H, W, C), so pooling is a reshape."""

    def __init__(self, rng, batch, input_shape, channels, kernel_size):
        c, h, w = input_shape
        k, self.k = kernel_size, kernel_size
        self.ho, self.wo = h - k + 1, w - k + 1
        self.w, self.dw = he_normal(rng, c * k * k, (c * k * k, channels)), np.empty((c * k * k, channels), f32)
        self.b, self.db = np.zeros(channels, f32), np.empty(channels, f32)
        self.cols = np.empty((batch, self.ho, self.wo, c, k, k), f32)
        self.conv = np.empty((batch * self.ho * self.wo, channels), f32)
        self.pooled = np.empty((batch, self.ho // 2, self.wo // 2, channels), f32)
        self.dconv, self.is_max = np.empty_like(self.conv), np.empty(self.conv.shape, bool)
        self.params = [(self.w, self.dw), (self.b, self.db)]

    def _windows(self):  # (N, Ho/2, 2, Wo/2, 2, C) view of the conv output
        n, h2, w2, ch = self.pooled.shape
        return self.conv.reshape(n, h2, 2, w2, 2, ch)

    def forward(self, x, train):
        np.copyto(self.cols, sliding_window_view(x, (self.k, self.k), axis=(2, 3)).transpose(0, 2, 3, 1, 4, 5))
        np.matmul(self.cols.reshape(len(self.conv), -1), self.w, out=self.conv)
        self.conv += self.b
        np.maximum(self.conv, 0, out=self.conv)
        np.max(self._windows(), axis=(2, 4), out=self.pooled)
        return self.pooled.reshape(len(x), -1)

    def backward(self, g):
        pooled = self.pooled[:, :, None, :, None, :]
        g = g.reshape(pooled.shape) * (pooled > 0)  # ReLU' (a window whose max is 0 passes nothing)
        windows = self._windows()
        is_max = np.equal(windows, pooled, out=self.is_max.reshape(windows.shape))
        np.multiply(is_max, g, out=self.dconv.reshape(windows.shape))  # route to the window's maximum
        np.matmul(self.cols.reshape(len(self.conv), -1).T, self.dconv, out=self.dw)
        np.sum(self.dconv, axis=0, out=self.db)


class SoftmaxCrossEntropy:
    """Mean cross-entropy of softmax(logits) and class indices; returns (loss, dlogits)."""

    def __init__(self, batch):
        self.shifted, self.grad = np.empty((batch, CLASSES), f32), np.empty((batch, CLASSES), f32)
        self.rows = np.arange(batch)

    def __call__(self, logits, y):
        np.subtract(logits, logits.max(axis=1, keepdims=True), out=self.shifted)
        p = np.exp(self.shifted, out=self.grad)
        sums = p.sum(axis=1, keepdims=True)
        loss = float(np.mean(np.log(sums[:, 0]) - self.shifted[self.rows, y]))
        p /= sums
        p[self.rows, y] -= 1
        p *= 1 / len(y)
        return loss, p


class Net:
    def __init__(self, layers, batch):
        self.layers, self.loss = layers, SoftmaxCrossEntropy(batch)
        self.params = [pair for layer in layers for pair in layer.params]

    def predict(self, x, train=False):
        for layer in self.layers:
            x = layer.forward(x, train)
        return x

    def train_step(self, x, y):
        loss, g = self.loss(self.predict(x, train=True), y)
        for layer in reversed(self.layers):
            g = layer.backward(g)
        for param, grad in self.params:
            grad *= LR
            param -= grad
        return loss


def mlp(rng, batch, input_shape, hidden, activation, batch_norm):
    assert activation == "relu"
    layers, width = [], input_shape[0]
    for size in hidden:
        layers.append(Dense(rng, batch, width, size, bias=not batch_norm, need_dx=bool(layers)))
        layers += [BatchNorm1d(batch, size)] if batch_norm else []
        layers.append(ReLU((batch, size)))
        width = size
    return layers + [Dense(rng, batch, width, CLASSES)]


def simple_cnn(rng, batch, input_shape, channels, kernel_size, hidden):
    conv = ConvReLUPool(rng, batch, input_shape, channels, kernel_size)
    flat = conv.pooled[0].size
    return [conv, Dense(rng, batch, flat, hidden), ReLU((batch, hidden)), Dense(rng, batch, hidden, CLASSES)]


MODELS = {"mlp": mlp, "simple-cnn": simple_cnn}


def build(workload, x, y):
    if workload.model not in MODELS:
        raise NotImplementedError("only mlp, mlp-bn and cnn are written by hand")
    rng = np.random.default_rng(MODEL_SEED)
    net = Net(MODELS[workload.model](rng, workload.batch, workload.input_shape, **workload.options), workload.batch)
    n_params = sum(param.size for param, _ in net.params)
    if workload.train:
        return (lambda: net.train_step(x, y)), n_params
    return (lambda: net.predict(x)), n_params
