"""Bad input to a layer is a ValueError that names the layer (or op) and the
shapes involved, raised before any state changes; never a NumPy error from
deep inside."""

import re

import numpy as np
import pytest

import deepgrad as dg
import deepgrad.functional as F
import deepgrad.nn as nn


def zeros(*shape):
    return dg.tensor(np.zeros(shape))


def raises(fn, *fragments):
    """``fn()`` raises a ValueError whose message contains every fragment; returns the message."""
    with pytest.raises(ValueError) as info:
        fn()
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    return message


# ----------------------------------------------------------------------------
# Linear


def test_linear_given_images():
    message = raises(lambda: nn.Linear(784, 100)(zeros(8, 28, 28)), "Linear(", "784", "(8, 28, 28)")
    assert "Flatten" in message  # says how to fix it


def test_linear_wrong_features():
    raises(lambda: nn.Linear(4, 2)(zeros(3, 5)), "Linear(", "(N, 4)", "(3, 5)")
    raises(lambda: F.linear(zeros(3, 5), zeros(2, 4)), "linear", "(3, 5)", "(2, 4)")


def test_linear_bias_of_the_wrong_size():
    raises(lambda: F.linear(zeros(3, 4), zeros(2, 4), zeros(3)), "linear", "bias", "(3,)", "(2,)")
    raises(lambda: F.linear(zeros(3, 4), zeros(2, 4), zeros(1)), "linear", "bias", "(1,)")  # no silent broadcast


# ----------------------------------------------------------------------------
# Batch normalization


def test_batch_norm1d_wrong_features():
    raises(lambda: nn.BatchNorm1d(100)(zeros(8, 50)), "BatchNorm1d(100", "(N, 100)", "(8, 50)")


@pytest.mark.parametrize("shape", [(8, 3, 5), (8, 3), (2, 3, 4, 4, 4)])
def test_batch_norm2d_wrong_rank(shape):
    raises(lambda: nn.BatchNorm2d(3)(zeros(*shape)), "BatchNorm2d(3", "(N, 3, H, W)", str(shape))


def test_batch_norm1d_given_images():
    raises(lambda: nn.BatchNorm1d(3)(zeros(2, 3, 4, 4)), "BatchNorm1d(3", "(2, 3, 4, 4)")


@pytest.mark.parametrize(
    "layer, shape", [(nn.BatchNorm1d, (1, 4)), (nn.BatchNorm1d, (1, 4, 1)), (nn.BatchNorm2d, (1, 4, 1, 1))]
)
def test_batch_norm_training_needs_more_than_one_value_per_channel(layer, shape):
    # PyTorch: "Expected more than 1 value per channel when training, got input size ..."
    module = layer(4)
    raises(lambda: module(zeros(*shape)), "more than 1 value per channel", str(shape))
    np.testing.assert_array_equal(module.running_mean, 0)  # the running statistics are untouched
    np.testing.assert_array_equal(module.running_var, 1)


def test_batch_norm_one_value_per_channel_is_fine_where_pytorch_allows_it():
    assert nn.BatchNorm1d(4)(zeros(1, 4, 2)).shape == (1, 4, 2)  # two values per channel
    assert nn.BatchNorm1d(4).eval()(zeros(1, 4)).shape == (1, 4)  # eval uses the running statistics
    without_stats = nn.BatchNorm1d(4, track_running_stats=False).eval()  # batch statistics even in eval
    raises(lambda: without_stats(zeros(1, 4)), "more than 1 value per channel")


@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_per_channel_arrays_of_the_wrong_size(training):
    x = zeros(4, 3)
    mean, var = np.zeros(3), np.ones(3)
    raises(lambda: F.batch_norm(x, np.zeros(4), var, training=training), "batch_norm", "running_mean", "(4,)", "(4, 3)")
    raises(lambda: F.batch_norm(x, mean, np.ones(2), training=training), "batch_norm", "running_var", "(2,)")
    raises(lambda: F.batch_norm(x, mean, var, zeros(4), zeros(3), training), "batch_norm", "weight", "(4,)")
    raises(lambda: F.batch_norm(x, mean, var, zeros(3), zeros(1), training), "batch_norm", "bias", "(1,)")
    np.testing.assert_array_equal(mean, 0)  # nothing was updated on the way to the error
    np.testing.assert_array_equal(var, 1)


# ----------------------------------------------------------------------------
# Convolution and pooling


def test_conv2d_given_three_dims():
    raises(lambda: nn.Conv2d(3, 8, 3)(zeros(2, 28, 28)), "Conv2d(3, 8", "(N, 3, H, W)", "(2, 28, 28)")
    raises(lambda: F.conv2d(zeros(2, 28, 28), zeros(8, 3, 3, 3)), "conv2d", "(N, C, H, W)", "(2, 28, 28)")


def test_conv2d_wrong_channel_count():
    raises(lambda: nn.Conv2d(3, 8, 3)(zeros(2, 4, 8, 8)), "Conv2d(3, 8", "(N, 3, H, W)", "(2, 4, 8, 8)")
    raises(lambda: F.conv2d(zeros(2, 4, 8, 8), zeros(8, 3, 3, 3)), "conv2d", "(8, 3, 3, 3)", "(2, 4, 8, 8)")


def test_conv2d_padding_mode_unknown():
    raises(lambda: nn.Conv2d(1, 1, 3, padding_mode="mirror"), "Conv2d", "padding_mode", "'mirror'", "'reflect'")


def test_conv2d_groups_that_do_not_fit():
    raises(lambda: nn.Conv2d(6, 4, 3, groups=4), "Conv2d", "in_channels 6", "out_channels 4", "groups 4")
    raises(lambda: nn.Conv2d(4, 4, 3, groups=0), "Conv2d", "groups must be a positive int", "0")
    raises(
        lambda: F.conv2d(zeros(1, 4, 5, 5), zeros(6, 4, 3, 3), groups=2),
        "conv2d",
        "groups=2",
        "8 channels",
        "(1, 4, 5, 5)",
    )
    raises(lambda: F.conv2d(zeros(1, 4, 5, 5), zeros(3, 2, 3, 3), groups=2), "conv2d", "divisible by 2")


def test_conv_transpose2d_bad_input():
    raises(
        lambda: nn.ConvTranspose2d(3, 4, 3)(zeros(1, 2, 5, 5)), "ConvTranspose2d(3, 4", "(N, 3, H, W)", "(1, 2, 5, 5)"
    )
    raises(lambda: nn.ConvTranspose2d(4, 6, 3, groups=4), "ConvTranspose2d", "out_channels 6", "groups 4")
    raises(lambda: nn.ConvTranspose2d(2, 2, 3, padding_mode="reflect"), "ConvTranspose2d", "padding_mode='zeros'")
    raises(
        lambda: F.conv_transpose2d(zeros(1, 2, 4, 4), zeros(2, 3, 3, 3), stride=2, output_padding=2),
        "conv_transpose2d",
        "output_padding (2, 2)",
        "stride (2, 2)",
    )
    raises(
        lambda: F.conv_transpose2d(zeros(1, 3, 4, 4), zeros(2, 3, 3, 3)),
        "conv_transpose2d",
        "(2, 3, 3, 3)",
        "2 channels",
    )
    raises(
        lambda: F.conv_transpose2d(zeros(1, 2, 1, 1), zeros(2, 3, 1, 1), padding=1),
        "conv_transpose2d",
        "output of size",
    )


def test_conv2d_bias_of_the_wrong_size():
    raises(lambda: F.conv2d(zeros(1, 3, 5, 5), zeros(8, 3, 3, 3), zeros(4)), "conv2d", "bias", "(4,)", "(8,)")


@pytest.mark.parametrize(
    "make, shape, op",
    [
        (lambda: nn.Conv2d(1, 1, 5), (1, 1, 4, 4), "conv2d"),
        (lambda: nn.Conv2d(1, 1, (5, 2), padding=(0, 1)), (1, 1, 4, 4), "conv2d"),
        (lambda: nn.Conv2d(1, 1, 3, dilation=3), (1, 1, 6, 6), "conv2d"),
        (lambda: nn.MaxPool2d(5), (1, 1, 4, 4), "max_pool2d"),
        (lambda: nn.AvgPool2d(5, padding=1), (1, 1, 2, 2), "avg_pool2d"),
    ],
    ids=["conv", "conv-padded", "conv-dilated", "max-pool", "avg-pool"],
)
def test_kernel_larger_than_padded_input(make, shape, op):
    message = raises(lambda: make()(zeros(*shape)), op, str(shape), "too small for kernel")
    assert re.search(r"kernel \(\d+, \d+\) with padding \(\d+, \d+\)", message)


@pytest.mark.parametrize("layer", [nn.MaxPool2d(2), nn.AvgPool2d(2), nn.AdaptiveAvgPool2d(1)])
def test_pooling_given_three_dims(layer):
    raises(lambda: layer(zeros(3, 4, 4)), "pool2d", "(N, C, H, W)", "(3, 4, 4)")


@pytest.mark.parametrize(
    "layer, op", [(nn.MaxPool2d(3, padding=2), "max_pool2d"), (nn.AvgPool2d(3, padding=2), "avg_pool2d")]
)
def test_pooling_padding_beyond_half_the_kernel(layer, op):
    raises(lambda: layer(zeros(1, 1, 6, 6)), op, "padding (2, 2)", "at most half of kernel_size (3, 3)")


@pytest.mark.parametrize(
    "indices, output_size, words",
    [
        (np.zeros((1, 1, 2, 3), np.int64), None, ["integer indices of the input's shape (1, 1, 2, 2)", "(1, 1, 2, 3)"]),
        (np.zeros((1, 1, 2, 2)), None, ["integer indices", "float64"]),
        (np.full((1, 1, 2, 2), 16), None, ["index 16", "4x4"]),
        (np.full((1, 1, 2, 2), -1), None, ["index -1", "4x4"]),
        (np.zeros((1, 1, 2, 2), np.int64), (6, 4), ["output_size (6, 4)", "dim 0 must be between 2 and 6"]),
        (np.zeros((1, 1, 2, 2), np.int64), (1, 4, 4), ["output_size should have 2 or 4 elements"]),
    ],
    ids=["shape", "float", "past-the-end", "negative", "output-size-out-of-range", "output-size-length"],
)
def test_max_unpool2d_bad_indices_and_sizes(indices, output_size, words):
    raises(lambda: nn.MaxUnpool2d(2)(zeros(1, 1, 2, 2), indices, output_size), "max_unpool2d", *words)


@pytest.mark.parametrize("divisor", [0, True])
def test_avg_pool2d_divisor_override_must_be_a_non_zero_int(divisor):
    raises(lambda: nn.AvgPool2d(2, divisor_override=divisor)(zeros(1, 1, 4, 4)), "avg_pool2d", "divisor_override")


@pytest.mark.parametrize(
    "call, error, words",
    [
        (lambda: nn.Embedding(5, 2)(np.array([0.0, 1.0])), TypeError, ["embedding", "integer indices", "float64"]),
        (lambda: nn.Embedding(5, 2)(np.array([0, 5])), IndexError, ["embedding", "index 5", "5 rows"]),
        (lambda: nn.Embedding(5, 2)(np.array([-1, 2])), IndexError, ["embedding", "index -1", "5 rows"]),
        (lambda: nn.Embedding(5, 2, padding_idx=5), ValueError, ["Embedding", "padding_idx 5", "5 rows"]),
        (
            lambda: F.embedding(np.array([0]), zeros(5)),
            ValueError,
            ["embedding", "(num_embeddings, embedding_dim)", "(5,)"],
        ),
        (lambda: nn.Embedding(5, 2, sparse=True)(np.array([0])), NotImplementedError, ["embedding", "sparse"]),
    ],
    ids=["float-indices", "index-too-large", "negative-index", "padding-outside", "1d-weight", "sparse"],
)
def test_embedding_bad_input(call, error, words):
    with pytest.raises(error) as raised:
        call()
    for word in words:
        assert word in str(raised.value)


# ----------------------------------------------------------------------------
# Residual, layer and group normalization


def test_residual_with_mismatched_shapes():
    raises(lambda: nn.Residual(nn.Linear(3, 4))(zeros(2, 3)), "Residual", "(2, 4)", "(2, 3)", "shortcut")
    block = nn.Residual(nn.Conv2d(2, 4, 3, padding=1), shortcut=nn.Conv2d(2, 4, 1, stride=2))
    raises(lambda: block(zeros(1, 2, 4, 4)), "Residual", "(1, 4, 4, 4)", "(1, 4, 2, 2)")


def test_group_norm_channels_not_divisible_by_groups():
    raises(lambda: F.group_norm(zeros(2, 6, 4), 4), "group_norm", "(2, 6, 4)", "6 channels", "4 groups")
    raises(lambda: nn.GroupNorm(4, 6), "GroupNorm", "6", "4")


def test_group_norm_wrong_input():
    raises(lambda: nn.GroupNorm(2, 6)(zeros(2, 4, 3)), "GroupNorm(2, 6", "(N, 6, ...)", "(2, 4, 3)")
    raises(lambda: F.group_norm(zeros(6), 2), "group_norm", "(N, C, ...)", "(6,)")
    raises(lambda: F.group_norm(zeros(2, 6), 2, zeros(4), zeros(6)), "group_norm", "weight", "(4,)", "(2, 6)")


def test_layer_norm_wrong_input():
    raises(lambda: nn.LayerNorm(5)(zeros(2, 4)), "layer_norm", "(5,)", "(2, 4)")
    raises(
        lambda: nn.LayerNorm((2, 3))(
            zeros(
                3,
            )
        ),
        "layer_norm",
        "(2, 3)",
        "(3,)",
    )
    raises(lambda: F.layer_norm(zeros(2, 4), 4, zeros(1), zeros(4)), "layer_norm", "weight", "(1,)", "(4,)")
