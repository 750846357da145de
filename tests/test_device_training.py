"""Training on a device: modules, optimizers, data loading, the Trainer and checkpoints.

Every test runs the same computation twice, once on the CPU and once on the
``device`` fixture's device ("fake", the strict stand-in GPU of
``fake_device.py``, and "cuda" when CuPy and a GPU are here), and compares:

* on "fake", which computes with the very same NumPy code, results must be
  bit-identical to the CPU's;
* on "cuda" they must agree within rtol 1e-5 (float32) or 1e-10 (float64).

Besides the values, the tests check where arrays live: parameters, gradients,
buffers, optimizer state and batches on the device; predictions, checkpoint
files and ``io.load`` results on the host, as exact ``numpy.ndarray``.

Dropout draws its masks on the device by default there; every comparison with the
CPU here draws them on the host (``host_masks``, an autouse fixture), and the tests
of device masks turn that off. On "fake", which records every host synchronization
a CuPy array would force, a training step is also checked to read nothing back.
"""

import copy

import numpy as np
import pytest
from helpers import OPTIMIZER_CONFIGS

import deepgrad as dg
import deepgrad.functional as F
from deepgrad import backend, io, nn, optim
from deepgrad.data import DataLoader, Dataset, Subset, TensorDataset, datasets
from deepgrad.nn import utils as nn_utils
from deepgrad.ops.dropout import host_masks
from deepgrad.optim import lr_scheduler
from deepgrad.train import Trainer, presets

pytestmark = pytest.mark.usefixtures("numpy_paths_on_the_cpu")


@pytest.fixture(autouse=True)
def _masks_as_on_the_cpu():
    """Dropout masks drawn on the host, so that a device run can equal the CPU's bit for bit."""
    with host_masks():
        yield


# ----------------------------------------------------------------------------
# Comparing a device run with the CPU's


def on(device, array):
    """Whether ``array`` lives on ``device`` (a name)."""
    return backend.device_of(array) is backend.get_device(device)


def is_host(array):
    """A plain NumPy array (not a device array, not even an ndarray subclass such as FakeArray)."""
    return type(array) is np.ndarray


def match(expected, actual, device, dtype=None, what=""):
    """Host values ``actual`` (from the device run) equal ``expected`` (from the CPU run):
    exactly on "fake", within the dtype's tolerance on "cuda"."""
    expected, actual = np.asarray(expected), np.asarray(actual)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    if device == "fake":
        assert actual.dtype == expected.dtype, f"{what}: dtype {actual.dtype} != {expected.dtype}"
        np.testing.assert_array_equal(actual, expected, err_msg=f"{what} (must be bit-identical on fake)")
    else:
        kind = np.dtype(dtype or expected.dtype)
        rtol = 0.0 if kind.kind not in "fc" else (1e-10 if kind == np.float64 else 1e-5)
        np.testing.assert_allclose(actual, expected, rtol=rtol, atol=rtol, err_msg=what)


def same(cpu_array, device_array, device, what=""):
    """``device_array`` lives on ``device``, has the CPU array's dtype and equals it."""
    assert on(device, device_array), f"{what}: on {backend.device_of(device_array)}, expected {device}"
    assert device_array.dtype == cpu_array.dtype, f"{what}: dtype {device_array.dtype} != {cpu_array.dtype}"
    match(cpu_array, backend.to_host(device_array), device, what=what)


def module_arrays(model):
    """{"param:name" / "grad:name" / "buffer:name": array} for everything a module holds."""
    arrays = {}
    for name, p in model.named_parameters():
        arrays[f"param:{name}"] = p.data
        if p.grad is not None:
            arrays[f"grad:{name}"] = p.grad
    for name, b in model.named_buffers():
        arrays[f"buffer:{name}"] = b
    return arrays


def same_module(cpu_model, device_model, device):
    """Parameters, gradients and buffers of the device model equal the CPU model's (and live on the device)."""
    expected, actual = module_arrays(cpu_model), module_arrays(device_model)
    assert actual.keys() == expected.keys()
    for key in expected:
        same(expected[key], actual[key], device, what=key)


def copies(build, device):
    """Two models built from the same seed: one stays on the CPU, the other is moved to ``device``."""
    cpu_model = build(np.random.default_rng(0))
    device_model = build(np.random.default_rng(0)).to(device)
    return cpu_model, device_model


def rng_data(shape, classes, n, seed=0):
    r = np.random.default_rng(seed)
    return r.standard_normal((n,) + shape).astype(np.float32), r.integers(0, classes, n)


# ----------------------------------------------------------------------------
# 1. Module.to


def bn_model(generator):
    """Conv → BatchNorm2d → ReLU → Linear → BatchNorm1d → Linear, for (N, 1, 6, 6) input."""
    return nn.Sequential(
        nn.Conv2d(1, 3, 3, generator=generator),
        nn.BatchNorm2d(3),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(3 * 4 * 4, 6, generator=generator),
        nn.BatchNorm1d(6),
        nn.ReLU(),
        nn.Linear(6, 4, generator=generator),
    )


def trained_once(model, seed=0):
    """``model`` after one training-mode forward and backward on the CPU: gradients set, BN statistics moved."""
    x, y = rng_data((1, 6, 6), 4, 5, seed)
    F.cross_entropy(model(dg.tensor(x)), dg.tensor(y)).backward()
    return model


def test_module_to_moves_parameters_grads_and_buffers_in_place(device):
    model = trained_once(bn_model(np.random.default_rng(0)))
    before = {key: array.copy() for key, array in module_arrays(model).items()}
    params = list(model.parameters())
    assert any(key.startswith("grad:") for key in before) and "buffer:1.num_batches_tracked" in before

    assert model.to(device) is model
    assert [id(p) for p in model.parameters()] == [id(p) for p in params]  # the same Parameter objects
    after = module_arrays(model)
    assert after.keys() == before.keys()
    for key, array in after.items():
        same(before[key], array, device, what=key)  # moved, bit for bit, dtype kept (int64 counter too)
    assert int(backend.to_host(model[1].num_batches_tracked)) == 1
    assert all(on(device, value) for value in model.state_dict().values())


def test_moved_module_computes_what_the_cpu_module_computes(device):
    cpu_model, device_model = copies(bn_model, device)
    x, _ = rng_data((1, 6, 6), 4, 5)
    for training in (True, False):
        cpu_model.train(training)
        device_model.train(training)
        out = device_model(dg.tensor(x, device=device))
        assert out.device is backend.get_device(device)
        same(cpu_model(dg.tensor(x)).data, out.data, device, what=f"training={training}")
    same_module(cpu_model, device_model, device)  # the train-mode pass updated the BN statistics alike


def test_load_state_dict_from_host_arrays_keeps_the_device(device):
    model = bn_model(np.random.default_rng(0)).to(device)
    params = list(model.parameters())
    source = trained_once(bn_model(np.random.default_rng(1)), seed=1)  # other weights, other statistics
    host_state = source.state_dict()
    assert all(is_host(a) for a in host_state.values())

    model.load_state_dict(host_state)
    assert [id(p) for p in model.parameters()] == [id(p) for p in params]
    state = model.state_dict()
    assert state.keys() == host_state.keys()
    for key in host_state:
        same(host_state[key], state[key], device, what=key)


def test_module_to_cpu_brings_everything_back(device):
    model = trained_once(bn_model(np.random.default_rng(0)))
    before = {key: array.copy() for key, array in module_arrays(model).items()}
    model.to(device).to("cpu")
    after = module_arrays(model)
    for key in before:
        assert is_host(after[key]), key
        np.testing.assert_array_equal(after[key], before[key], err_msg=key)
        assert after[key].dtype == before[key].dtype
    model.to(device).cpu()
    assert all(is_host(a) for a in module_arrays(model).values())


def test_module_to_device_and_float64_at_once(device):
    cpu_model = trained_once(bn_model(np.random.default_rng(0)))
    model = copy.deepcopy(cpu_model).to(device, dg.float64)
    for key, array in module_arrays(model).items():
        assert on(device, array), key
        expected = np.int64 if key.endswith("num_batches_tracked") else np.float64
        assert array.dtype == expected, key
        match(module_arrays(cpu_model)[key].astype(expected), backend.to_host(array), device, what=key)
    x, _ = rng_data((1, 6, 6), 4, 5)
    cpu_model.to(dg.float64).eval()
    model.eval()
    same(
        cpu_model(dg.tensor(x, dtype=dg.float64)).data,
        model(dg.tensor(x, dtype=dg.float64, device=device)).data,
        device,
        what="float64 output",
    )


INITIALIZERS = {
    "uniform_": lambda t, g: nn.init.uniform_(t, -0.5, 0.5, generator=g),
    "normal_": lambda t, g: nn.init.normal_(t, 0.0, 2.0, generator=g),
    "constant_": lambda t, g: nn.init.constant_(t, 0.25),
    "zeros_": lambda t, g: nn.init.zeros_(t),
    "xavier_uniform_": lambda t, g: nn.init.xavier_uniform_(t, generator=g),
    "kaiming_normal_": lambda t, g: nn.init.kaiming_normal_(t, generator=g),
    "sparse_": lambda t, g: nn.init.sparse_(t, sparsity=0.5, generator=g),
}


@pytest.mark.parametrize("name", list(INITIALIZERS))
def test_initializers_write_into_device_parameters(device, name):
    """Values are drawn on the host, so a generator state gives the same weights on every device."""
    cpu_weight = nn.Parameter(np.zeros((6, 4), dtype=np.float32))
    device_weight = nn.Parameter(backend.to_device(np.zeros((6, 4), dtype=np.float32), device))
    INITIALIZERS[name](cpu_weight, np.random.default_rng(7))
    INITIALIZERS[name](device_weight, np.random.default_rng(7))
    same(cpu_weight.data, device_weight.data, device, what=name)
    if name != "zeros_":
        assert np.any(cpu_weight.data != 0)


# ----------------------------------------------------------------------------
# 2. Training steps of the presets

PRESETS = {
    "mlp-bn-dropout": lambda g: presets.mlp((1, 8, 8), 5, hidden=(16, 12), batch_norm=True, dropout=0.3, generator=g),
    "simple-cnn": lambda g: presets.simple_cnn((1, 8, 8), 5, channels=4, kernel_size=3, hidden=16, generator=g),
    "resnet-small": lambda g: presets.resnet_small((1, 8, 8), 5, widths=(4, 8), generator=g),
}


def train_steps(model, x, y, device=None, steps=3):
    """``steps`` SGD-with-momentum steps on cross-entropy; returns the losses (dropout seeded first)."""
    optimizer = optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    x, y = dg.tensor(x, device=device), dg.tensor(y, device=device)
    dg.manual_seed(7)
    losses = []
    for _ in range(steps):
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


@pytest.mark.parametrize("name", list(PRESETS))
def test_preset_training_steps_match_the_cpu(device, name):
    cpu_model, device_model = copies(PRESETS[name], device)
    x, y = rng_data((1, 8, 8), 5, 6)
    cpu_losses = train_steps(cpu_model, x, y)
    device_losses = train_steps(device_model, x, y, device)
    assert len(set(cpu_losses)) == 3  # the steps did change the model
    match(cpu_losses, device_losses, device, dtype=np.float32, what="losses")
    same_module(cpu_model, device_model, device)  # parameters, gradients, BN statistics
    cpu_model.eval()
    device_model.eval()
    same(cpu_model(dg.tensor(x)).data, device_model(dg.tensor(x, device=device)).data, device, what="eval output")


# ----------------------------------------------------------------------------
# 3. Every optimizer (the configurations of tests/optim)


def small_mlp(generator):
    return nn.Sequential(nn.Linear(4, 8, generator=generator), nn.Tanh(), nn.Linear(8, 3, generator=generator))


class Run:
    """A small model, its optimizer (and schedule) and fixed data, on one device."""

    def __init__(self, case, device=None, scheduler=None):
        self.device = device
        self.model = small_mlp(np.random.default_rng(0))
        if device is not None:
            self.model.to(device)
        self.optimizer = OPTIMIZER_CONFIGS[case](self.model.parameters())
        self.scheduler = scheduler(self.optimizer) if scheduler else None
        x, y = rng_data((4,), 3, 10, seed=1)
        self.x, self.y = dg.tensor(x, device=device), dg.tensor(y, device=device)

    def train(self, steps):
        for _ in range(steps):
            self.optimizer.zero_grad()
            F.cross_entropy(self.model(self.x), self.y).backward()
            self.optimizer.step()
            if self.scheduler is not None:
                self.scheduler.step()
        return self

    def state(self):
        """{(parameter index, key): array} of the optimizer's state arrays."""
        index = {id(p): i for i, p in enumerate(self.model.parameters())}
        return {
            (index[id(p)], key): value
            for p, s in self.optimizer.state.items()
            for key, value in s.items()
            if hasattr(value, "shape")
        }


def same_state(cpu_run, device_run, device):
    expected, actual = cpu_run.state(), device_run.state()
    assert actual.keys() == expected.keys()
    for key in expected:
        same(expected[key], actual[key], device, what=f"state {key}")


@pytest.mark.parametrize("case", list(OPTIMIZER_CONFIGS))
def test_optimizer_steps_and_state_match_the_cpu(device, case):
    cpu_run, device_run = Run(case).train(3), Run(case, device).train(3)
    same_module(cpu_run.model, device_run.model, device)
    if case != "sgd":  # plain SGD keeps no state
        assert device_run.state()
    same_state(cpu_run, device_run, device)  # every state array on the device, equal to the CPU's


@pytest.mark.parametrize("case", ["sgd-momentum-dampening", "adam"])
def test_lr_scheduler_drives_an_optimizer_on_the_device(device, case):
    schedule = lambda opt: lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)  # noqa: E731
    cpu_run, device_run = Run(case, scheduler=schedule).train(3), Run(case, device, scheduler=schedule).train(3)
    base = OPTIMIZER_CONFIGS[case]([nn.Parameter(np.zeros(1))]).param_groups[0]["lr"]
    assert device_run.scheduler.get_last_lr() == cpu_run.scheduler.get_last_lr() == [base * 0.5**3]
    same_module(cpu_run.model, device_run.model, device)
    fixed = Run(case, device).train(3)  # without the schedule the parameters end elsewhere
    assert not np.array_equal(
        backend.to_host(fixed.model[0].weight.data), backend.to_host(device_run.model[0].weight.data)
    )


@pytest.mark.parametrize("source", ["device", "host"])
@pytest.mark.parametrize("case", list(OPTIMIZER_CONFIGS))
def test_optimizer_state_dict_round_trip_on_the_device(device, case, source):
    reference = Run(case).train(6)  # the uninterrupted CPU run
    first = Run(case, device if source == "device" else None).train(3)
    saved = first.optimizer.state_dict()
    snapshot = copy.deepcopy(saved)

    resumed = Run(case, device)
    resumed.model.load_state_dict(first.model.state_dict())
    resumed.optimizer.load_state_dict(saved)
    state = resumed.state()
    if case != "sgd":
        assert state and all(on(device, value) for value in state.values())
    resumed.train(3)
    same_module(reference.model, resumed.model, device)
    same_state(reference, resumed, device)
    if source == "device":  # the source optimizer goes on undisturbed by the copy ...
        first.train(3)
        same_module(reference.model, first.model, device)
        for i, entry in snapshot["state"].items():  # ... and its state_dict was a snapshot
            for key, value in entry.items():
                if hasattr(value, "shape"):
                    assert np.array_equal(backend.to_host(saved["state"][i][key]), backend.to_host(value)), (i, key)


# ----------------------------------------------------------------------------
# 4. nn.utils on device models


def backward_pair(device, build=small_mlp, scale=1.0):
    """A CPU model and its device copy after the same forward and backward (loss × ``scale``)."""
    cpu_model, device_model = copies(build, device)
    x, y = rng_data((4,), 3, 10, seed=2)
    for model, where in ((cpu_model, None), (device_model, device)):
        (F.cross_entropy(model(dg.tensor(x, device=where)), dg.tensor(y, device=where)) * scale).backward()
    return cpu_model, device_model


@pytest.mark.parametrize("norm_type", [2.0, 1.0, np.inf], ids=["l2", "l1", "inf"])
def test_clip_grad_norm_matches_the_cpu(device, norm_type):
    cpu_model, device_model = backward_pair(device, scale=10.0)
    cpu_total = nn_utils.clip_grad_norm_(cpu_model.parameters(), 0.1, norm_type)
    device_total = nn_utils.clip_grad_norm_(device_model.parameters(), 0.1, norm_type)
    assert cpu_total.item() > 0.1  # the gradients were clipped
    assert device_total.device is backend.get_device(device)  # as PyTorch: the norm where the gradients are
    match(cpu_total.item(), device_total.item(), device, dtype=np.float32, what="total norm")
    same_module(cpu_model, device_model, device)  # clipped gradients, still on the device


def test_clip_grad_value_matches_the_cpu(device):
    cpu_model, device_model = backward_pair(device)
    nn_utils.clip_grad_value_(cpu_model.parameters(), 0.02)
    nn_utils.clip_grad_value_(device_model.parameters(), 0.02)
    assert max(np.abs(p.grad).max() for p in cpu_model.parameters()) == np.float32(0.02)
    same_module(cpu_model, device_model, device)


def test_parameters_to_vector_on_the_device(device):
    cpu_model, device_model = copies(small_mlp, device)
    cpu_vector = nn_utils.parameters_to_vector(cpu_model.parameters())
    device_vector = nn_utils.parameters_to_vector(device_model.parameters())
    assert cpu_vector.shape == (4 * 8 + 8 + 8 * 3 + 3,)
    same(cpu_vector.data, device_vector.data, device)


def test_parameters_to_vector_backpropagates_on_the_device(device):
    cpu_model, device_model = copies(small_mlp, device)
    for model in (cpu_model, device_model):
        vector = nn_utils.parameters_to_vector(model.parameters())
        (vector * vector).sum().backward()  # d/dw Σw² = 2w
    same_module(cpu_model, device_model, device)
    for p in device_model.parameters():
        same(2 * backend.to_host(p.data), p.grad, device)


@pytest.mark.parametrize("kind", ["host-array", "device-tensor", "device-array"])
def test_vector_to_parameters_on_the_device(device, kind):
    cpu_model, device_model = copies(small_mlp, device)
    params = list(device_model.parameters())
    vector = np.random.default_rng(3).standard_normal(sum(p.data.size for p in params)).astype(np.float32)
    given = {
        "host-array": vector,
        "device-tensor": dg.tensor(vector, device=device),
        "device-array": backend.to_device(vector, device),
    }[kind]
    nn_utils.vector_to_parameters(vector, cpu_model.parameters())
    nn_utils.vector_to_parameters(given, device_model.parameters())
    assert [id(p) for p in device_model.parameters()] == [id(p) for p in params]
    same_module(cpu_model, device_model, device)
    np.testing.assert_array_equal(backend.to_host(nn_utils.parameters_to_vector(params).data), vector)


def weight_normed(generator):
    model = small_mlp(generator)
    nn_utils.weight_norm(model[0])
    nn_utils.weight_norm(model[2], dim=None)
    return model


@pytest.mark.parametrize("when", ["before-moving", "after-moving"])
def test_weight_norm_on_the_device(device, when):
    cpu_model = weight_normed(np.random.default_rng(0))
    if when == "before-moving":
        device_model = weight_normed(np.random.default_rng(0)).to(device)
    else:
        device_model = small_mlp(np.random.default_rng(0)).to(device)
        nn_utils.weight_norm(device_model[0])
        nn_utils.weight_norm(device_model[2], dim=None)
    assert {name for name, _ in device_model.named_parameters()} >= {"0.weight_g", "0.weight_v", "2.weight_g"}
    x, y = rng_data((4,), 3, 10, seed=4)
    cpu_losses = train_steps(cpu_model, x, y)
    device_losses = train_steps(device_model, x, y, device)
    match(cpu_losses, device_losses, device, dtype=np.float32, what="losses")
    same_module(cpu_model, device_model, device)  # g, v, their gradients after 3 steps
    for i in (0, 2):
        same(cpu_model[i].weight.data, device_model[i].weight.data, device, what=f"{i}.weight")
        nn_utils.remove_weight_norm(cpu_model[i])
        nn_utils.remove_weight_norm(device_model[i])
    same_module(cpu_model, device_model, device)  # the folded weights stay on the device


# ----------------------------------------------------------------------------
# 5. DataLoader(device=...)


class SampleBySample(Dataset):
    """A dataset without ``arrays``: the loader reads it one sample at a time."""

    def __init__(self, x, y):
        self.x, self.y = x, y

    def __len__(self):
        return len(self.x)

    def __getitem__(self, index):
        return self.x[index], self.y[index]


LOADER_DATASETS = {
    "tensor-dataset": lambda x, y: TensorDataset(x, y),
    "subset": lambda x, y: Subset(TensorDataset(x, y), np.arange(len(x))[::-1]),
    "sample-by-sample": lambda x, y: SampleBySample(x, y),
}


@pytest.mark.parametrize("dataset", list(LOADER_DATASETS))
def test_data_loader_yields_device_tensors_with_the_cpu_batches(device, dataset):
    x, y = rng_data((1, 3, 3), 4, 11)
    data = LOADER_DATASETS[dataset](x, y)
    cpu_loader = DataLoader(data, batch_size=4, shuffle=True, seed=5)
    device_loader = DataLoader(data, batch_size=4, shuffle=True, seed=5, device=device)
    for epoch in range(2):  # two epochs: two different orders
        cpu_batches, device_batches = list(cpu_loader), list(device_loader)
        assert [len(b[0]) for b in device_batches] == [4, 4, 3]
        for (cx, cy), (dx, dy) in zip(cpu_batches, device_batches, strict=True):
            assert dx.device is dy.device is backend.get_device(device)
            same(cx.data, dx.data, device, what=f"epoch {epoch} inputs")
            same(cy.data, dy.data, device, what=f"epoch {epoch} targets")
    seen = np.concatenate([backend.to_host(b[1].data) for b in device_batches])
    assert sorted(seen) == sorted(y)  # every sample once per epoch


def test_data_loader_over_a_dataset_of_device_tensors(device):
    """A TensorDataset already on the device is indexed with device indices: batches stay there."""
    x, y = rng_data((1, 3, 3), 4, 11)
    cpu_batches = list(DataLoader(TensorDataset(x, y), batch_size=4, shuffle=True, seed=5))
    on_device = TensorDataset(dg.tensor(x, device=device), dg.tensor(y, device=device))
    device_batches = list(DataLoader(on_device, batch_size=4, shuffle=True, seed=5))
    for (cx, cy), (dx, dy) in zip(cpu_batches, device_batches, strict=True):
        assert dx.device is dy.device is backend.get_device(device)
        same(cx.data, dx.data, device, what="inputs")
        same(cy.data, dy.data, device, what="targets")


# ----------------------------------------------------------------------------
# 6. The Trainer


def digits_loaders(loader_device=None):
    """Small slices of the embedded digits: 96 training samples (shuffled, batches of 16) and 48 validation ones."""
    splits = datasets.digits()
    train = DataLoader(Subset(splits.train, np.arange(96)), 16, shuffle=True, seed=3, device=loader_device)
    val = DataLoader(Subset(splits.val, np.arange(48)), 32, device=loader_device)
    return splits, train, val


def digits_trainer(device=None, seed=0):
    model = presets.mlp(
        (1, 8, 8), 10, hidden=(24,), batch_norm=True, dropout=0.2, generator=np.random.default_rng(seed)
    )
    optimizer = optim.Adam(model.parameters(), lr=0.01)
    return Trainer(
        model,
        optimizer,
        F.cross_entropy,
        scheduler=lr_scheduler.StepLR(optimizer, 1, gamma=0.5),
        clip_grad_norm=5.0,
        device=device,
    )


def without_seconds(history):
    return [{k: v for k, v in logs.items() if k != "seconds"} for logs in history.epochs]


def same_history(cpu_history, device_history, device):
    expected, actual = without_seconds(cpu_history), without_seconds(device_history)
    assert [logs.keys() for logs in actual] == [logs.keys() for logs in expected]
    for e, a in zip(expected, actual):
        for key in e:
            assert isinstance(a[key], (int, float)), (key, type(a[key]))
            match(e[key], a[key], device, dtype=np.float32, what=f"epoch {e['epoch']} {key}")


def cpu_reference(epochs=2):
    dg.manual_seed(11)
    splits, train, val = digits_loaders()
    trainer = digits_trainer()
    return splits, trainer, trainer.fit(train, val, epochs=epochs)


@pytest.mark.parametrize("loader_on_device", [False, True], ids=["host-loader", "device-loader"])
def test_trainer_fit_evaluate_and_predict_match_the_cpu(device, loader_on_device):
    splits, cpu_trainer, cpu_history = cpu_reference()
    dg.manual_seed(11)
    _, train, val = digits_loaders(device if loader_on_device else None)
    trainer = digits_trainer(device)
    history = trainer.fit(train, val, epochs=2)
    assert len(history) == 2 and history["train_loss"][1] < history["train_loss"][0]
    same_history(cpu_history, history, device)
    same_module(cpu_trainer.model, trainer.model, device)

    test = DataLoader(Subset(splits.test, np.arange(40)), 16)
    expected, result = cpu_trainer.evaluate(test), trainer.evaluate(test)
    assert result.keys() == expected.keys() == {"loss", "accuracy"}
    for key in expected:
        match(expected[key], result[key], device, dtype=np.float32, what=key)

    x = splits.test.arrays[0][:40]
    cpu_predictions = cpu_trainer.predict(x, batch_size=16)
    for given in (x, dg.tensor(x, device=device)):  # a host array, or a tensor already on the device
        predictions = trainer.predict(given, batch_size=16)
        assert type(predictions) is np.ndarray and predictions.shape == (40, 10)
        match(cpu_predictions, predictions, device)


def test_trainer_resumes_on_the_device_from_a_mid_way_checkpoint(device, tmp_path):
    _, cpu_trainer, cpu_history = cpu_reference()
    path = tmp_path / "epoch1.safetensors"

    dg.manual_seed(11)
    _, train, val = digits_loaders()
    trainer = digits_trainer(device)
    trainer.fit(train, val, epochs=1)
    trainer.save_checkpoint(path)
    uninterrupted = trainer.fit(train, val, epochs=2)

    dg.manual_seed(99)  # the checkpoint restores the random state, the weights and the data order
    _, fresh_train, fresh_val = digits_loaders()
    fresh_train.seed = 12345
    resumed_trainer = digits_trainer(device, seed=1)
    resumed = resumed_trainer.fit(fresh_train, fresh_val, epochs=2, resume_from=path)
    assert resumed_trainer.epoch == 2 and resumed_trainer.global_step == 12
    same_history(uninterrupted, resumed, device)
    same_history(cpu_history, resumed, device)
    same_module(cpu_trainer.model, resumed_trainer.model, device)
    for p in resumed_trainer.model.parameters():
        assert all(
            on(device, value) for value in resumed_trainer.optimizer.state[p].values() if hasattr(value, "shape")
        )


def host_arrays(value, path="checkpoint"):
    """Every array in a loaded checkpoint, as (path, array)."""
    if isinstance(value, dict):
        return [item for k, v in value.items() for item in host_arrays(v, f"{path}.{k}")]
    if isinstance(value, list):
        return [item for i, v in enumerate(value) for item in host_arrays(v, f"{path}.{i}")]
    return [(path, value)] if hasattr(value, "shape") else []


def test_device_checkpoint_is_readable_on_the_cpu(device, tmp_path):
    dg.manual_seed(11)
    splits, train, val = digits_loaders()
    trainer = digits_trainer(device)
    trainer.fit(train, val, epochs=1)
    path = tmp_path / "device.safetensors"
    trainer.save_checkpoint(path)

    state = io.load_checkpoint(path)
    arrays = host_arrays(state)
    assert len(arrays) > len(trainer.model.state_dict())
    for where, array in arrays:
        assert is_host(array), f"{where} is a {type(array).__name__}"
    model_state = trainer.model.state_dict()
    assert state["model"].keys() == model_state.keys()
    for key, array in model_state.items():
        np.testing.assert_array_equal(state["model"][key], backend.to_host(array), err_msg=key)
        assert state["model"][key].dtype == array.dtype

    cpu_model = digits_trainer(seed=1).model  # another initialization, overwritten by the checkpoint
    cpu_model.load_state_dict(state["model"])
    x = splits.test.arrays[0][:20]
    match(Trainer(cpu_model, optim.SGD(cpu_model.parameters()), F.cross_entropy).predict(x), trainer.predict(x), device)


# ----------------------------------------------------------------------------
# 7. deepgrad.io with device tensors


def test_io_save_of_device_tensors_loads_as_host_arrays(device, tmp_path):
    r = np.random.default_rng(6)
    data = {
        "weight": r.standard_normal((3, 4)).astype(np.float32),
        "bias": r.standard_normal(4),
        "count": np.array(7, dtype=np.int64),
        "strided": r.standard_normal((4, 6)).astype(np.float32),
    }
    state = {
        "weight": dg.tensor(data["weight"], device=device),
        "bias": dg.tensor(data["bias"], device=device),
        "count": backend.to_device(data["count"], device),  # a raw device array
        "strided": dg.tensor(data["strided"], device=device).transpose(0, 1),
    }  # a non-contiguous view
    data["strided"] = data["strided"].T
    assert all(on(device, v.data if isinstance(v, dg.Tensor) else v) for v in state.values())
    io.save(state, tmp_path / "tensors.safetensors")
    loaded = io.load(tmp_path / "tensors.safetensors")
    assert loaded.keys() == data.keys()
    for key, expected in data.items():
        assert is_host(loaded[key]), key
        assert loaded[key].dtype == expected.dtype and loaded[key].shape == expected.shape, key
        np.testing.assert_array_equal(loaded[key], expected, err_msg=key)


def test_io_save_checkpoint_of_nested_device_arrays(device, tmp_path):
    r = np.random.default_rng(8)
    a, b = r.standard_normal((2, 3)).astype(np.float32), r.standard_normal(5)
    io.save_checkpoint(
        {"step": 3, "arrays": [dg.tensor(a, device=device), {"b": backend.to_device(b, device)}]},
        tmp_path / "nested.safetensors",
    )
    loaded = io.load_checkpoint(tmp_path / "nested.safetensors")
    assert loaded["step"] == 3
    got_a, got_b = loaded["arrays"][0], loaded["arrays"][1]["b"]
    assert is_host(got_a) and is_host(got_b)
    np.testing.assert_array_equal(got_a, a)
    np.testing.assert_array_equal(got_b, b)
    assert got_a.dtype == np.float32 and got_b.dtype == np.float64


# ----------------------------------------------------------------------------
# 8. Device arrays where NumPy would convert (CuPy refuses np.asarray)


def test_subset_of_device_indices(device):
    x, y = rng_data((1, 3, 3), 4, 11)
    indices = np.array([3, 1, 4, 1, 5, 9, 2, 6])
    expected = list(DataLoader(Subset(TensorDataset(x, y), indices), batch_size=3))
    for data in (TensorDataset(x, y), TensorDataset(dg.tensor(x, device=device), dg.tensor(y, device=device))):
        subset = Subset(data, backend.to_device(indices, device))
        assert len(subset) == 8 and is_host(subset.indices)
        for (ex, ey), (bx, by) in zip(expected, DataLoader(subset, batch_size=3, device=device), strict=True):
            same(ex.data, bx.data, device, what="inputs")
            same(ey.data, by.data, device, what="targets")


def test_trainer_predict_takes_a_raw_device_array(device):
    _, cpu_trainer, _ = cpu_reference(epochs=1)
    trainer = digits_trainer(device)
    trainer.model.load_state_dict(cpu_trainer.model.state_dict())
    x = datasets.digits().test.arrays[0][:20]
    predictions = trainer.predict(backend.to_device(x, device), batch_size=8)
    assert is_host(predictions)
    match(cpu_trainer.predict(x, batch_size=8), predictions, device)


# ----------------------------------------------------------------------------
# 9. Dropout masks drawn on the device


def test_a_run_with_device_masks_resumes_with_the_same_masks(device, tmp_path):
    """Device masks come from seeds the default generator gives, so a checkpoint (which keeps its
    state) resumes the run that never stopped, bit for bit on "fake"."""
    with host_masks(False):
        dg.manual_seed(11)
        _, train, val = digits_loaders()
        trainer = digits_trainer(device)
        trainer.fit(train, val, epochs=1)
        trainer.save_checkpoint(tmp_path / "epoch1.safetensors")
        uninterrupted = trainer.fit(train, val, epochs=2)

        dg.manual_seed(99)
        _, fresh_train, fresh_val = digits_loaders()
        resumed_trainer = digits_trainer(device, seed=1)
        resumed = resumed_trainer.fit(fresh_train, fresh_val, epochs=2, resume_from=tmp_path / "epoch1.safetensors")
    same_history(uninterrupted, resumed, device)
    expected, actual = module_arrays(trainer.model), module_arrays(resumed_trainer.model)
    assert actual.keys() == expected.keys()
    for key in expected:
        same(backend.to_host(expected[key]), actual[key], device, what=key)
    _, cpu_history = cpu_reference()[1:]
    assert without_seconds(cpu_history) != without_seconds(uninterrupted)  # other masks than the CPU's


def test_the_host_masks_option_gives_a_run_on_the_device_the_cpu_runs_masks(device):
    """``host_masks`` (``--host-masks``) holds for the run's fit only; without it the device draws its own masks."""
    from deepgrad.ops.dropout import host_masks_enabled
    from deepgrad.train import build_run

    config = {"hidden": [32], "dropout": 0.3, "train_size": 200, "batch_size": 50, "epochs": 2, "threads": 1}
    with host_masks(False):
        cpu = build_run(config, progress=False)
        cpu.fit()
        host = build_run({**config, "device": device, "host_masks": True}, progress=False)
        host.fit()
        assert not host_masks_enabled()
        own = build_run({**config, "device": device}, progress=False)
        own.fit()
    same_history(cpu.trainer.history, host.trainer.history, device)
    assert without_seconds(cpu.trainer.history) != without_seconds(own.trainer.history)


# ----------------------------------------------------------------------------
# 10. Nothing in a training step waits for the device


def fake_only(device):
    if device != "fake":
        pytest.skip("host synchronizations are recorded by the stand-in device only")
    from fake_device import count_syncs

    return count_syncs


@pytest.mark.parametrize("masks", ["device-masks", "host-masks"])
def test_a_training_step_reads_nothing_back_from_the_device(device, masks):
    """Ten steps of a device loader's batches through BatchNorm and dropout, cross_entropy, backward,
    clip_grad_norm_ and Adam: no number is read back to the host (the losses stay on the device)."""
    count_syncs = fake_only(device)
    dg.manual_seed(3)
    model = presets.mlp(
        (1, 8, 8), 10, hidden=(24,), batch_norm=True, dropout=0.2, generator=np.random.default_rng(0)
    ).to(device)
    optimizer = optim.Adam(model.parameters(), lr=0.01)
    loader = DataLoader(Subset(datasets.digits().train, np.arange(160)), 16, shuffle=True, seed=3, device=device)
    losses = []
    with host_masks(masks == "host-masks"), count_syncs() as syncs:
        for inputs, targets in loader:
            loss = F.cross_entropy(model(inputs), targets)
            optimizer.zero_grad()
            loss.backward()
            nn_utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            losses.append(loss)
    assert syncs == []
    values = [loss.item() for loss in losses]  # read once, at the end
    assert len(values) == 10 and all(np.isfinite(values)) and values[-1] < values[0]


@pytest.mark.parametrize("name", list(PRESETS))
@pytest.mark.parametrize("case", ["sgd-momentum-dampening", "adamw"])
def test_preset_steps_read_nothing_back(device, name, case):
    """Convolutions, pooling, residual blocks and the optimizers' updates: no read back either."""
    count_syncs = fake_only(device)
    model = PRESETS[name](np.random.default_rng(0)).to(device)
    optimizer = OPTIMIZER_CONFIGS[case](model.parameters())
    x, y = rng_data((1, 8, 8), 5, 6)
    inputs, targets = dg.tensor(x, device=device), dg.tensor(y, device=device)
    with host_masks(False), count_syncs() as syncs:
        for _ in range(3):
            optimizer.zero_grad()
            F.cross_entropy(model(inputs), targets).backward()
            nn_utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
        model.eval()
        model(inputs)
    assert syncs == []


@pytest.mark.parametrize("norm_type", [2.0, 1.0, np.inf, 3.0], ids=["l2", "l1", "inf", "l3"])
def test_clip_grad_norm_reads_nothing_back_over_ten_steps(device, norm_type):
    count_syncs = fake_only(device)
    _, model = backward_pair(device, scale=10.0)
    with count_syncs() as syncs:
        totals = [nn_utils.clip_grad_norm_(model.parameters(), 0.5, norm_type) for _ in range(10)]
    assert syncs == []
    assert totals[0].item() > 0.5 and abs(totals[-1].item() - 0.5) < 1e-4  # clipped once, then within max_norm


CROSS_ENTROPY_CASES = {
    "indices": {},
    "ignore_index": {"ignore_index": 1},
    "label_smoothing": {"label_smoothing": 0.1},
    "weight": {"weight": np.array([1.0, 2.0, 0.5], dtype=np.float32)},
    "none": {"reduction": "none"},
    "nll": None,
}


@pytest.mark.parametrize("case", list(CROSS_ENTROPY_CASES))
def test_cross_entropy_reads_no_target_back_over_ten_steps(device, case):
    """The class-index range check (two reads of the targets per step on the host) is folded into the
    device computation: ten forward and backward passes read nothing back."""
    count_syncs = fake_only(device)
    x, y = rng_data((4,), 3, 10, seed=1)
    model = small_mlp(np.random.default_rng(0)).to(device)
    inputs, targets = dg.tensor(x, device=device), dg.tensor(y, device=device)
    kwargs = CROSS_ENTROPY_CASES[case]
    with count_syncs() as syncs:
        for _ in range(10):
            if kwargs is None:
                loss = F.nll_loss(F.log_softmax(model(inputs), dim=1), targets)
            else:
                loss = F.cross_entropy(model(inputs), targets, **kwargs)
            loss.sum().backward()
    assert syncs == []


def test_the_trainer_reads_the_device_once_every_read_every_steps(device):
    """Trainer.fit on a device loader (BatchNorm, dropout, clipping, Adam): the steps' losses and
    accuracies stay on the device, and the only read within the epoch is the divergence check's one
    transfer of the last ten losses at steps 10, 20 and 30; the epoch's sums are read at its end."""
    count_syncs = fake_only(device)
    import fake_device

    dg.manual_seed(3)
    trainer = digits_trainer(device)
    trainer.read_every = 10
    loader = DataLoader(Subset(datasets.digits().train, np.arange(480)), 16, shuffle=True, seed=3, device=device)
    seen = []

    class Reads:
        def on_step_end(self, trainer, logs):
            seen.append(len(fake_device.SYNCS))
            assert not is_host(logs["loss"]) and logs["loss"].dtype == np.float64

    trainer.callbacks.append(Reads())
    with host_masks(False), count_syncs() as syncs:
        history = trainer.fit(loader, epochs=1)
    reads = np.diff(seen).tolist()  # the reads made during steps 2, 3, ..., 30
    assert reads == [1 if step % 10 == 0 else 0 for step in range(2, 31)]
    assert syncs[0] == ("to_host", (10,))  # the ten losses in one transfer
    assert len(syncs) <= 3 + 2 + len(list(trainer.model.parameters()))  # + the epoch's sums and its weight check
    assert 0 < history["train_loss"][0] < 3 and 0 <= history["train_accuracy"][0] <= 1


def test_a_checkpoint_on_the_device_checks_the_deferred_losses_first(device, tmp_path):
    """A checkpoint asked for right after the step that diverged, before the Trainer's next read:
    the save finds the divergence and raises, and no file holds the weights that followed it."""
    from deepgrad.errors import TrainingDiverged

    fake_only(device)
    dg.manual_seed(5)
    model = small_mlp(np.random.default_rng(0))
    path = tmp_path / "last.safetensors"

    class SaveAtStep3:
        def on_step_end(self, trainer, logs):
            if trainer.global_step == 3:  # the step whose loss explodes (see the test below)
                trainer.save_checkpoint(str(path))

    optimizer = optim.SGD(model.parameters(), lr=1e4)
    trainer = Trainer(
        model,
        optimizer,
        F.cross_entropy,
        device=device,
        read_every=100,
        stop_on_divergence=True,
        callbacks=[SaveAtStep3()],
    )
    x, y = rng_data((4,), 3, 200, seed=1)
    with host_masks(True), pytest.raises(TrainingDiverged) as caught:
        trainer.fit(DataLoader(TensorDataset(x, y), 8, seed=0, device=device), epochs=1)
    assert caught.value.step == 3 and trainer.global_step == 3 and not path.exists()


def test_evaluate_on_the_device_reads_its_sums_once(device):
    """Ten batches evaluated: the loss and accuracy sums stay on the device, two reads at the end."""
    count_syncs = fake_only(device)
    trainer = digits_trainer(device)
    loader = DataLoader(Subset(datasets.digits().test, np.arange(160)), 16, device=device)
    with count_syncs() as syncs:
        results = trainer.evaluate(loader)
    assert [what for what, _ in syncs] == ["float", "float"] and set(results) == {"loss", "accuracy"}
    assert all(type(value) is float for value in results.values())


def test_a_divergence_on_the_device_is_found_late_with_its_exact_step_and_loss(device):
    """A run at lr 1e4 diverges at the same step on the device as on the CPU; on the stand-in the
    Trainer finds it at its next read, at most read_every steps later, naming that step, its loss
    and the last finite loss, as the CPU's check before the backward does."""
    from deepgrad.errors import TrainingDiverged

    errors, stopped = [], []
    for on in (None, device):
        dg.manual_seed(5)
        model = small_mlp(np.random.default_rng(0))
        trainer = Trainer(
            model,
            optim.SGD(model.parameters(), lr=1e4),
            F.cross_entropy,
            device=on,
            read_every=4,
            stop_on_divergence=True,
        )
        x, y = rng_data((4,), 3, 200, seed=1)
        with host_masks(True), pytest.raises(TrainingDiverged) as caught:
            trainer.fit(DataLoader(TensorDataset(x, y), 8, seed=0, device=on), epochs=3)
        errors.append(caught.value)
        stopped.append(trainer.global_step)
    cpu, dev = errors
    assert dev.step == cpu.step and stopped[0] == cpu.step - 1  # the CPU stops before the step's update
    assert stopped[1] == -(-cpu.step // 4) * 4  # the device finds it at the first read after it
    assert np.isnan(cpu.loss) == np.isnan(dev.loss) and dev.last_finite == pytest.approx(cpu.last_finite, rel=1e-5)


# ----------------------------------------------------------------------------
# 11. The loader copies one batch ahead


def test_device_loader_queues_the_next_batch_before_handing_out_the_current(device, monkeypatch):
    """A loader with a device queues the copy of batch k + 1 to it (the device's ``upload``: from
    pinned memory on a copy stream on CUDA) before batch k is trained on, and makes the work that
    follows wait for a batch's copy only when it hands the batch out; the batches are the CPU
    loader's (on "fake", a copy not waited for reads as NaN and -1)."""
    import dataclasses

    uploads, waits = [], []
    target = backend.get_device(device)

    def recorded(array):
        uploads.append(array.shape)
        copy, wait = target.upload(array)
        return copy, lambda: (waits.append(array.shape), wait())

    recording = dataclasses.replace(target, name=f"{device}-recording", upload=recorded)
    monkeypatch.setitem(backend._devices, recording.name, recording)  # registered for this test only
    x, y = rng_data((1, 3, 3), 4, 11)
    cpu_batches = list(DataLoader(TensorDataset(x, y), batch_size=4, shuffle=True, seed=5))
    loader = DataLoader(TensorDataset(x, y), batch_size=4, shuffle=True, seed=5, device=recording)
    for k, (bx, by) in enumerate(loader):
        assert len(uploads) == 2 * min(k + 2, len(loader))  # inputs and targets of this batch and the next
        assert len(waits) == 2 * (k + 1)  # ... but only this batch's copies are waited for
        assert isinstance(bx.data, target.array_type) and isinstance(by.data, target.array_type)
        match(cpu_batches[k][0].data, backend.to_host(bx.data), device, what="inputs")
        match(cpu_batches[k][1].data, backend.to_host(by.data), device, what="targets")
    assert len(uploads) == 2 * len(loader)
