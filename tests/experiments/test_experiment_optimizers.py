"""`deepgrad experiment optimizers`: the five optimizers training one 4-hidden-layer ReLU MLP."""

import math

from support import run_quick

OPTIMIZERS = ("sgd", "momentum", "adagrad", "rmsprop", "adam")


def test_optimizers_writes_its_files_and_the_claims_hold(tmp_path):
    done, results, report = run_quick("optimizers", tmp_path)
    assert set(results) == set(OPTIMIZERS)
    steps = {len(values["loss"]) for values in results.values()}
    assert len(steps) == 1 and steps.pop() > 1  # a loss per step, as many for all
    for values in results.values():
        assert set(values) == {"loss", "final_loss", "test_accuracy"}
        assert all(math.isfinite(loss) for loss in values["loss"])
        assert 0 <= values["test_accuracy"] <= 1
    sgd = results["sgd"]
    assert sgd["loss"][0] > 2  # from ln 10 ≈ 2.3
    for opt in OPTIMIZERS[1:]:  # plain SGD lags at the book's rates
        assert results[opt]["final_loss"] < sgd["final_loss"], opt
        assert results[opt]["test_accuracy"] > sgd["test_accuracy"], opt
    assert "loss.png" in report and "plain SGD lags" in done.stdout
