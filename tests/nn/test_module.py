"""Module, Parameter and the containers: registration, traversal, modes,
gradients, dtype conversion, state dicts, repr and forward hooks."""

import re

import numpy as np
import pytest

import deepgrad as dg
import deepgrad.nn as nn


def make_mlp(seed=0, dtype=np.float32):
    """Linear - BatchNorm1d - ReLU - Dropout - Linear, initialized from ``seed``."""
    rng = np.random.default_rng(seed)
    return nn.Sequential(
        nn.Linear(3, 4, dtype=dtype, generator=rng),
        nn.BatchNorm1d(4, dtype=dtype),
        nn.ReLU(),
        nn.Dropout(0.5),
        nn.Linear(4, 2, dtype=dtype, generator=rng),
    )


MLP_STATE_KEYS = [
    "0.weight",
    "0.bias",
    "1.weight",
    "1.bias",
    "1.running_mean",
    "1.running_var",
    "1.num_batches_tracked",
    "4.weight",
    "4.bias",
]


def warm_up(model, seed=1, steps=3):
    """A few training forwards, so that the BatchNorm running statistics move away from 0 and 1."""
    rng = np.random.default_rng(seed)
    model.train()
    for _ in range(steps):
        model(dg.tensor(rng.standard_normal((8, 3)) * 2 + 1, dtype=np.float32))
    return model


def snapshot(model):
    return {key: np.array(value, copy=True) for key, value in model.state_dict().items()}


def assert_state_equal(model, expected):
    state = model.state_dict()
    assert list(state) == list(expected)
    for key, value in expected.items():
        np.testing.assert_array_equal(state[key], value, err_msg=key)


class Block(nn.Module):
    """A hand-written module: one Parameter, one sub-module, one buffer, and plain attributes."""

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(np.ones(2, dtype=np.float32))
        self.inner = nn.Linear(2, 2)
        self.register_buffer("count", np.zeros((), dtype=np.int64))
        self.constant = dg.tensor([1.0, 2.0])  # a plain Tensor: not a parameter
        self.width = 2

    def forward(self, x):
        return self.inner(x) * self.scale


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.block = Block()
        self.head = nn.Sequential(nn.Linear(2, 3), nn.Tanh())

    def forward(self, x):
        return self.head(self.block(x))


# ----------------------------------------------------------------------------
# Registration and traversal


def test_parameter_is_a_leaf_tensor_that_requires_grad():
    p = nn.Parameter(np.zeros((2, 3), dtype=np.float64))
    assert isinstance(p, dg.Tensor) and p.is_leaf and p.requires_grad
    assert p.dtype == np.float64 and p.shape == (2, 3)
    assert not nn.Parameter(np.zeros(2), requires_grad=False).requires_grad
    from_tensor = nn.Parameter(dg.tensor([1.0, 2.0]))
    assert isinstance(from_tensor, nn.Parameter) and from_tensor.dtype == np.float32
    assert repr(p).startswith("Parameter containing:\ntensor(")


def test_assignment_registers_parameters_modules_and_not_plain_values():
    block = Block()
    assert list(block._parameters) == ["scale"]
    assert list(block._modules) == ["inner"]
    assert list(block._buffers) == ["count"]
    assert block.scale is block._parameters["scale"]  # a plain attribute read
    assert isinstance(block.constant, dg.Tensor) and block.width == 2
    assert [name for name, _ in block.named_parameters()] == ["scale", "inner.weight", "inner.bias"]


def test_assigning_before_module_init_is_an_error():
    class Broken(nn.Module):
        def __init__(self):
            self.weight = nn.Parameter(np.zeros(2))

    with pytest.raises(AttributeError, match=r"'weight'.*Module.__init__\(\).*Broken"):
        Broken()


def test_reassigning_and_deleting_attributes_updates_the_registries():
    block = Block()
    block.inner = None
    assert [name for name, _ in block.named_parameters()] == ["scale"]
    assert list(block.children()) == []
    block.extra = nn.Linear(2, 1)
    assert [name for name, _ in block.named_children()] == ["extra"]
    del block.extra
    assert list(block.children()) == [] and not hasattr(block, "extra")
    del block.scale
    assert list(block.parameters()) == []
    # A name moves from one registry to another when its kind changes.
    block.thing = nn.Parameter(np.zeros(1))
    block.thing = nn.Identity()
    assert "thing" not in block._parameters and block._modules["thing"] is block.thing


def test_assigning_a_non_parameter_to_a_parameter_slot_raises_type_error():
    layer = nn.Linear(2, 3)
    with pytest.raises(TypeError, match=r"Linear.*'weight'.*Parameter"):
        layer.weight = dg.tensor(np.zeros((3, 2), dtype=np.float32))
    with pytest.raises(TypeError, match="'bias'"):
        layer.bias = np.zeros(3, dtype=np.float32)
    assert isinstance(layer.weight, nn.Parameter)  # unchanged
    replacement = nn.Parameter(np.ones((3, 2), dtype=np.float32))
    layer.weight = replacement
    layer.bias = None  # an absent optional parameter is allowed
    assert layer._parameters["weight"] is replacement and layer._parameters["bias"] is None
    assert [name for name, _ in layer.named_parameters()] == ["weight"]
    assert list(layer.state_dict()) == ["weight"]


def test_named_parameters_use_pytorch_keys():
    model = make_mlp()
    names = [name for name, _ in model.named_parameters()]
    assert names == ["0.weight", "0.bias", "1.weight", "1.bias", "4.weight", "4.bias"]
    assert all(isinstance(p, nn.Parameter) for p in model.parameters())
    assert [p for _, p in model.named_parameters()] == list(model.parameters())
    assert model[0].weight is dict(model.named_parameters())["0.weight"]
    nested = Net()
    assert [name for name, _ in nested.named_parameters()] == [
        "block.scale",
        "block.inner.weight",
        "block.inner.bias",
        "head.0.weight",
        "head.0.bias",
    ]
    assert [name for name, _ in nested.named_parameters(prefix="net")][0] == "net.block.scale"
    assert [name for name, _ in nested.block.named_parameters(recurse=False)] == ["scale"]
    assert len(list(nested.parameters(recurse=False))) == 0


def test_shared_parameters_and_modules_are_listed_once():
    shared = nn.Linear(3, 3)
    model = nn.Sequential(shared, nn.ReLU(), shared)
    assert [name for name, _ in model.named_parameters()] == ["0.weight", "0.bias"]
    assert [name for name, _ in model.named_modules()] == ["", "0", "1"]

    tied = nn.Sequential(nn.Linear(3, 3), nn.Linear(3, 3))
    tied[1].weight = tied[0].weight
    assert [name for name, _ in tied.named_parameters()] == ["0.weight", "0.bias", "1.bias"]
    assert len(list(tied.parameters())) == 3


def test_buffers_and_named_buffers():
    model = make_mlp()
    assert [name for name, _ in model.named_buffers()] == ["1.running_mean", "1.running_var", "1.num_batches_tracked"]
    running_mean, running_var, count = model.buffers()
    assert running_mean is model[1].running_mean and isinstance(running_mean, np.ndarray)
    np.testing.assert_array_equal(running_var, np.ones(4, dtype=np.float32))
    assert count.dtype == np.int64 and count.shape == ()
    assert list(model.buffers(recurse=False)) == []
    assert [name for name, _ in model[1].named_buffers(prefix="bn")][0] == "bn.running_mean"
    # A None buffer (no running statistics) is a slot, not a buffer.
    assert list(nn.BatchNorm1d(4, track_running_stats=False).named_buffers()) == []


def test_modules_children_and_named_modules():
    net = Net()
    assert [name for name, _ in net.named_modules()] == ["", "block", "block.inner", "head", "head.0", "head.1"]
    assert list(net.modules())[0] is net
    assert [type(m).__name__ for m in net.modules()] == ["Net", "Block", "Linear", "Sequential", "Linear", "Tanh"]
    assert list(net.children()) == [net.block, net.head]
    assert [name for name, _ in net.named_children()] == ["block", "head"]
    assert [name for name, _ in net.named_modules(prefix="m")][1] == "m.block"


def test_apply_visits_children_before_the_module():
    net = Net()
    visited = []
    assert net.apply(lambda m: visited.append(type(m).__name__)) is net
    assert visited == ["Linear", "Block", "Linear", "Tanh", "Sequential", "Net"]


def test_train_and_eval_propagate_training_to_every_descendant():
    net = Net()
    assert all(m.training for m in net.modules())
    assert net.eval() is net
    assert not any(m.training for m in net.modules())
    assert net.train() is net
    assert all(m.training for m in net.modules())
    net.train(False)
    assert not any(m.training for m in net.modules())
    net.block.train()
    assert [m.training for m in net.modules()] == [False, True, True, False, False, False]


def test_eval_mode_changes_the_forward_of_dropout_and_batchnorm():
    model = warm_up(make_mlp())
    x = dg.tensor(np.random.default_rng(2).standard_normal((5, 3)), dtype=np.float32)
    model.eval()
    first, second = model(x).data, model(x).data
    np.testing.assert_array_equal(first, second)  # deterministic: running stats, no dropout
    count = int(model[1].num_batches_tracked)
    model(x)
    assert int(model[1].num_batches_tracked) == count  # eval does not update the statistics


# ----------------------------------------------------------------------------
# Gradients


def _backward_once(model):
    x = dg.tensor(np.random.default_rng(3).standard_normal((4, 2)), dtype=np.float32)
    model(x).sum().backward()


def test_zero_grad_sets_grads_to_none_by_default():
    net = Net()
    _backward_once(net)
    assert all(p.grad is not None for p in net.parameters())
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())


def test_zero_grad_without_set_to_none_zeroes_the_arrays_in_place():
    net = Net()
    _backward_once(net)
    net.head[0].bias.grad = None  # a parameter without a gradient stays without one
    before = {name: p.grad for name, p in net.named_parameters()}
    net.zero_grad(set_to_none=False)
    for name, p in net.named_parameters():
        if before[name] is None:
            assert p.grad is None
        else:
            assert p.grad is before[name], name  # same array, zeroed in place
            assert p.grad.shape == p.shape and p.grad.dtype == p.dtype and not p.grad.any(), name


def test_requires_grad_toggles_every_parameter():
    net = Net()
    assert net.requires_grad_(False) is net
    assert not any(p.requires_grad for p in net.parameters())
    out = net(dg.tensor(np.ones((1, 2), dtype=np.float32)))
    assert not out.requires_grad
    net.head.requires_grad_()
    assert [p.requires_grad for p in net.parameters()] == [False, False, False, True, True]
    _backward_once(net)
    assert net.block.scale.grad is None and net.head[0].weight.grad is not None


# ----------------------------------------------------------------------------
# dtype


@pytest.mark.parametrize("convert", ["double", "to"])
def test_double_converts_parameters_buffers_and_grads(convert):
    model = warm_up(make_mlp())
    model(dg.tensor(np.ones((2, 3), dtype=np.float32))).sum().backward()
    expected = snapshot(model)
    result = model.double() if convert == "double" else model.to(dg.float64)
    assert result is model
    for name, p in model.named_parameters():
        assert p.dtype == np.float64 and p.grad.dtype == np.float64, name
        assert isinstance(p, nn.Parameter) and p.requires_grad, name
    state = model.state_dict()
    assert state["1.running_mean"].dtype == np.float64 and state["1.running_var"].dtype == np.float64
    assert model[1].running_mean is state["1.running_mean"]
    assert state["1.num_batches_tracked"].dtype == np.int64  # integer buffers keep their dtype
    for key, value in expected.items():
        np.testing.assert_array_equal(state[key], value, err_msg=key)  # float32 -> float64 is exact
    model.eval()
    assert model(dg.tensor(np.ones((2, 3)))).dtype == np.float64


def test_float_converts_back_and_the_model_still_trains():
    model = make_mlp(dtype=np.float64)
    assert model.float() is model
    assert all(v.dtype == np.float32 for k, v in model.state_dict().items() if k != "1.num_batches_tracked")
    out = model(dg.tensor(np.ones((4, 3), dtype=np.float32)))
    assert out.dtype == np.float32
    out.sum().backward()
    assert all(p.grad.dtype == np.float32 for p in model.parameters())


def test_to_accepts_cpu_and_rejects_unknown_devices_and_non_float_dtypes():
    model = make_mlp()
    assert model.to("cpu") is model
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        model.to("tpu")
    if not dg.backend.is_available("cuda"):
        with pytest.raises(RuntimeError, match="cuda.*CuPy"):
            model.to("cuda")
    with pytest.raises(TypeError, match=r"Sequential.to.*floating.*int64"):
        model.to(np.int64)
    assert all(p.dtype == np.float32 for p in model.parameters())


# ----------------------------------------------------------------------------
# state_dict / load_state_dict


def test_state_dict_keys_and_values():
    model = make_mlp()
    state = model.state_dict()
    assert list(state) == MLP_STATE_KEYS
    assert all(isinstance(v, np.ndarray) for v in state.values())
    assert state["0.weight"] is model[0].weight.data  # the arrays themselves, as PyTorch's share storage
    assert state["0.weight"].shape == (4, 3) and state["4.bias"].shape == (2,)
    assert list(nn.BatchNorm1d(3, affine=False).state_dict()) == ["running_mean", "running_var", "num_batches_tracked"]


def test_state_dict_round_trip_gives_identical_outputs():
    source = warm_up(make_mlp(seed=0)).eval()
    target = make_mlp(seed=99).eval()
    x = dg.tensor(np.random.default_rng(5).standard_normal((6, 3)), dtype=np.float32)
    assert not np.array_equal(source(x).data, target(x).data)

    state = {key: value.copy() for key, value in source.state_dict().items()}
    result = target.load_state_dict(state)
    assert result.missing_keys == [] and result.unexpected_keys == []
    np.testing.assert_array_equal(target(x).data, source(x).data)
    assert int(target[1].num_batches_tracked) == 3
    # The values were copied, not aliased.
    state["0.weight"][...] = 0
    assert target[0].weight.data.any()
    assert target[0].weight.data is not state["0.weight"]


def test_load_state_dict_accepts_tensors_and_keeps_the_models_dtype():
    source = warm_up(make_mlp(seed=0, dtype=np.float64)).eval()
    target = make_mlp(seed=1).eval()
    as_tensors = {key: dg.tensor(value) for key, value in source.state_dict().items()}
    as_tensors["0.weight"] = nn.Parameter(source[0].weight.data)
    target.load_state_dict(as_tensors)
    for key, value in target.state_dict().items():
        expected = source.state_dict()[key]
        assert value.dtype == (np.int64 if key.endswith("num_batches_tracked") else np.float32), key
        np.testing.assert_array_equal(value, expected.astype(value.dtype), err_msg=key)
    assert isinstance(target[0].weight, nn.Parameter) and target[0].weight.requires_grad


def test_load_state_dict_strict_names_missing_and_unexpected_keys():
    model = make_mlp()
    before = snapshot(model)
    state = snapshot(make_mlp(seed=3))
    del state["1.running_var"]
    state["5.weight"] = np.zeros((2, 2), dtype=np.float32)
    with pytest.raises(RuntimeError) as info:
        model.load_state_dict(state)
    message = str(info.value)
    assert "Sequential.load_state_dict" in message
    assert re.search(r"missing keys \['1.running_var'\]", message)
    assert re.search(r"unexpected keys \['5.weight'\]", message)
    assert_state_equal(model, before)  # nothing loaded


def test_load_state_dict_shape_mismatch_names_the_key_and_both_shapes():
    model = make_mlp()
    before = snapshot(model)
    state = snapshot(make_mlp(seed=3))  # valid new values for every key but the last one
    state["4.bias"] = np.zeros(5, dtype=np.float32)
    with pytest.raises(RuntimeError, match=r"'4\.bias'.*\(5,\).*\(2,\)"):
        model.load_state_dict(state)
    assert_state_equal(model, before)  # the earlier keys were not loaded either
    with pytest.raises(RuntimeError, match=r"'4\.bias'"):
        model.load_state_dict(state, strict=False)  # a size mismatch is an error even when not strict
    assert_state_equal(model, before)


def test_load_state_dict_non_strict_returns_missing_and_unexpected_keys():
    model = make_mlp()
    source = snapshot(make_mlp(seed=7))
    partial = {"0.weight": source["0.weight"], "0.bias": source["0.bias"], "head.weight": np.zeros(2)}
    result = model.load_state_dict(partial, strict=False)
    assert result.missing_keys == [key for key in MLP_STATE_KEYS if not key.startswith("0.")]
    assert result.unexpected_keys == ["head.weight"]
    missing, unexpected = result  # a named tuple, like PyTorch's
    assert missing == result.missing_keys and unexpected == ["head.weight"]
    np.testing.assert_array_equal(model[0].weight.data, source["0.weight"])
    np.testing.assert_array_equal(model[0].bias.data, source["0.bias"])


# ----------------------------------------------------------------------------
# Containers


def test_sequential_indexing_len_iter_and_slicing():
    model = make_mlp()
    layers = list(model)
    assert len(model) == 5 and len(layers) == 5
    assert model[0] is layers[0] and model[-1] is layers[4]
    assert isinstance(model[1], nn.BatchNorm1d)
    with pytest.raises(IndexError):
        model[5]
    head = model[:2]
    assert isinstance(head, nn.Sequential) and len(head) == 2
    assert head[0] is model[0] and head[1] is model[1]  # the same modules, not copies
    assert [name for name, _ in model[3:].named_parameters()] == ["1.weight", "1.bias"]
    model.eval()
    x = dg.tensor(np.random.default_rng(0).standard_normal((3, 3)), dtype=np.float32)
    np.testing.assert_array_equal(model(x).data, model[2:](model[:2](x)).data)


def test_sequential_forward_is_the_composition_and_append_registers():
    model = nn.Sequential(nn.Linear(2, 3), nn.Tanh())
    x = dg.tensor(np.random.default_rng(0).standard_normal((4, 2)), dtype=np.float32)
    np.testing.assert_array_equal(model(x).data, model[1](model[0](x)).data)
    assert model.append(nn.Linear(3, 1)) is model
    assert len(model) == 3 and model(x).shape == (4, 1)
    assert [name for name, _ in model.named_parameters()][-1] == "2.bias"
    empty = nn.Sequential()
    assert len(empty) == 0 and empty(x) is x


def test_sequential_rejects_non_modules():
    with pytest.raises(TypeError, match=r"Sequential: argument 1 is a function"):
        nn.Sequential(nn.ReLU(), lambda x: x)


def test_module_list_registers_indexes_and_slices():
    class Tower(nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = nn.ModuleList([nn.Linear(2, 2) for _ in range(3)])

        def forward(self, x):
            for layer in self.layers:
                x = layer(x)
            return x

    tower = Tower()
    assert [name for name, _ in tower.named_parameters()][:3] == ["layers.0.weight", "layers.0.bias", "layers.1.weight"]
    assert len(list(tower.parameters())) == 6
    layers = tower.layers
    assert len(layers) == 3 and list(layers) == [layers[0], layers[1], layers[2]] and layers[-1] is layers[2]
    sliced = layers[1:]
    assert isinstance(sliced, nn.ModuleList) and list(sliced) == [layers[1], layers[2]]
    assert layers.append(nn.Linear(2, 2)) is layers and len(layers) == 4
    layers.extend([nn.Linear(2, 2), nn.Linear(2, 2)])
    assert [name for name, _ in tower.named_parameters()][-1] == "layers.5.bias"
    assert tower(dg.tensor(np.ones((1, 2), dtype=np.float32))).shape == (1, 2)
    with pytest.raises(TypeError, match=r"ModuleList.*int"):
        layers.append(3)
    with pytest.raises(NotImplementedError, match="ModuleList"):
        layers(dg.tensor([1.0]))


# ----------------------------------------------------------------------------
# repr


def test_repr_is_readable_and_nested():
    model = nn.Sequential(
        nn.Linear(3, 4, bias=False),
        nn.Sequential(nn.ReLU(), nn.Dropout(0.25)),
        nn.Linear(4, 2),
    )
    assert repr(model) == (
        "Sequential(\n"
        "  (0): Linear(in_features=3, out_features=4, bias=False)\n"
        "  (1): Sequential(\n"
        "    (0): ReLU()\n"
        "    (1): Dropout(p=0.25)\n"
        "  )\n"
        "  (2): Linear(in_features=4, out_features=2, bias=True)\n"
        ")"
    )
    assert repr(nn.ReLU()) == "ReLU()"
    assert repr(Net()).startswith("Net(\n  (block): Block(\n    (inner): Linear(in_features=2, out_features=2")


def test_repr_shows_extra_repr_before_the_children():
    class Scaled(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Identity()

        def extra_repr(self):
            return "factor=2"

    assert repr(Scaled()) == "Scaled(\n  factor=2\n  (body): Identity()\n)"


# ----------------------------------------------------------------------------
# Hooks


def test_forward_hook_is_called_with_module_inputs_and_output():
    layer = nn.Linear(3, 2)
    calls = []
    handle = layer.register_forward_hook(lambda module, inputs, output: calls.append((module, inputs, output)))
    x = dg.tensor(np.ones((4, 3), dtype=np.float32))
    out = layer(x)
    assert len(calls) == 1
    module, inputs, output = calls[0]
    assert module is layer and isinstance(inputs, tuple) and len(inputs) == 1 and inputs[0] is x
    assert output is out
    handle.remove()
    layer(x)
    assert len(calls) == 1
    handle.remove()  # removing twice is harmless


def test_forward_hook_can_replace_the_output():
    layer = nn.Linear(3, 2)
    x = dg.tensor(np.ones((4, 3), dtype=np.float32))
    plain = layer(x).data
    handle = layer.register_forward_hook(lambda module, inputs, output: output * 2)
    np.testing.assert_array_equal(layer(x).data, plain * 2)
    layer.register_forward_hook(lambda module, inputs, output: None)  # None keeps the output
    np.testing.assert_array_equal(layer(x).data, plain * 2)
    handle.remove()
    np.testing.assert_array_equal(layer(x).data, plain)


def test_hooks_run_in_registration_order_and_see_the_previous_replacement():
    layer = nn.Identity()
    layer.register_forward_hook(lambda m, i, o: o + 1)
    layer.register_forward_hook(lambda m, i, o: o * 10)
    assert layer(dg.tensor([1.0])).item() == 20.0


def test_forward_pre_hook_sees_and_can_replace_the_inputs():
    layer = nn.Linear(3, 2)
    x = dg.tensor(np.ones((4, 3), dtype=np.float32))
    seen = []
    first = layer.register_forward_pre_hook(lambda module, inputs: seen.append((module, inputs)))
    plain = layer(x).data
    module, inputs = seen[0]
    assert module is layer and isinstance(inputs, tuple) and len(inputs) == 1 and inputs[0] is x
    first.remove()

    doubled = layer(x * 2).data
    handle = layer.register_forward_pre_hook(lambda module, inputs: inputs[0] * 2)  # a single value
    np.testing.assert_array_equal(layer(x).data, doubled)
    handle.remove()
    handle = layer.register_forward_pre_hook(lambda module, inputs: (inputs[0] * 2,))  # a tuple
    np.testing.assert_array_equal(layer(x).data, doubled)
    handle.remove()
    np.testing.assert_array_equal(layer(x).data, plain)
    assert len(seen) == 1
    assert not layer._forward_pre_hooks and not layer._forward_hooks


def test_forward_hook_receives_the_replaced_inputs():
    layer = nn.Identity()
    received = []
    layer.register_forward_pre_hook(lambda m, inputs: inputs[0] + 1)
    layer.register_forward_hook(lambda m, inputs, output: received.append(inputs[0].item()))
    assert layer(dg.tensor([1.0])).item() == 2.0
    assert received == [2.0]


def test_handle_works_as_a_context_manager():
    layer = nn.Identity()
    calls = []
    with layer.register_forward_hook(lambda m, i, o: calls.append(1)):
        layer(dg.tensor([1.0]))
    layer(dg.tensor([1.0]))
    assert calls == [1]


def test_hooks_record_per_layer_activations_of_a_sequential():
    model = make_mlp().eval()
    activations = {}

    def recorder(name):
        def hook(module, inputs, output):
            activations[name] = output.data.copy()

        return hook

    handles = [module.register_forward_hook(recorder(name)) for name, module in model.named_children()]
    x = dg.tensor(np.random.default_rng(4).standard_normal((5, 3)), dtype=np.float32)
    out = model(x)
    assert list(activations) == ["0", "1", "2", "3", "4"]
    expected = x
    for name, module in model.named_children():
        with dg.no_grad():
            expected = module.forward(expected)
        np.testing.assert_array_equal(activations[name], expected.data, err_msg=name)
    np.testing.assert_array_equal(activations["4"], out.data)
    assert (activations["2"] >= 0).all()  # after the ReLU
    for handle in handles:
        handle.remove()
    activations.clear()
    model(x)
    assert activations == {}
