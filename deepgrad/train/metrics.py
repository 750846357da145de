"""Metrics computed from a batch's outputs and targets: each returns a sum over the
batch, so epoch averages weigh every sample equally."""


def correct(outputs, targets):
    """Number of samples whose arg-max output is the target class (accuracy × batch size), as a 0-d
    integer on the arrays' device (``float()`` reads it)."""
    predicted = outputs.argmax(axis=-1)
    if targets.ndim == outputs.ndim:  # class probabilities
        targets = targets.argmax(axis=-1)
    return (predicted == targets).sum()


METRICS = {"accuracy": correct}


def resolve(names):
    unknown = [name for name in names if name not in METRICS]
    if unknown:
        raise ValueError(f"unknown metrics {unknown}; available: {sorted(METRICS)}")
    return {name: METRICS[name] for name in names}


def batch_size(targets):
    """The number of samples of a batch's target array (1 for a 0-d one)."""
    return int(targets.shape[0]) if targets.ndim else 1
