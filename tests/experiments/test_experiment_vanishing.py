"""`deepgrad experiment vanishing`: gradient flow per layer in deep MLPs and three cures."""

from support import run_quick


def test_vanishing_writes_its_files_and_the_claims_hold(tmp_path):
    done, results, report = run_quick("vanishing", tmp_path)
    assert {"sigmoid", "relu-he", "sigmoid-bn", "residual"} <= set(results)
    for values in results.values():
        assert set(values) == {"grad_norm", "first_last_ratio", "train_accuracy"} and len(values["grad_norm"]) == 6
    sigmoid, relu = results["sigmoid"], results["relu-he"]
    assert sigmoid["first_last_ratio"] < relu["first_last_ratio"] / 100  # orders of magnitude apart
    norms = sigmoid["grad_norm"]
    assert all(a < b for a, b in zip(norms, norms[1:]))  # shrinking towards the input
    assert norms[3] / norms[0] > 30  # the notes' "~100x" first/fourth
    for cure in ("relu-he", "sigmoid-bn", "residual"):
        hidden = results[cure]["grad_norm"][:-1]
        assert max(hidden) / min(hidden) < 5, cure  # the hidden layers alike
