"""`deepgrad experiment batchnorm`: with and without batch norm across weight scales; the BN paper's
3×100 sigmoid MLP."""

from support import run_quick


def test_batchnorm_writes_its_files_and_the_claims_hold(tmp_path):
    done, results, report = run_quick("batchnorm", tmp_path)
    assert {"scales", "plain_accuracy", "bn_accuracy", "sigmoid3x100"} <= set(results)
    scales, plain, bn = results["scales"], results["plain_accuracy"], results["bn_accuracy"]
    assert len(plain) == len(bn) == len(scales) and scales[0] == 1 and abs(scales[-1] - 1e-4) < 1e-12
    for scale, p, b in zip(scales, plain, bn):
        if scale <= 1e-2:
            assert p < 0.2 and b > p + 0.2, (scale, p, b)  # the plain net's signal vanishes; BN trains
    sigmoid = results["sigmoid3x100"]
    assert set(sigmoid) == {"steps", "plain_test_accuracy", "bn_test_accuracy"}
    steps = sigmoid["steps"]
    assert steps[0] == 0 and all(a < b for a, b in zip(steps, steps[1:]))
    assert len(sigmoid["plain_test_accuracy"]) == len(sigmoid["bn_test_accuracy"]) == len(steps)
    assert sigmoid["bn_test_accuracy"][-1] > sigmoid["plain_test_accuracy"][-1] + 0.2  # BN learns sooner
    assert "accuracy_vs_scale.png" in report and "sigmoid3x100.png" in report
    assert "Batch normalization trains" in done.stdout
