"""`deepgrad experiment overfitting`: 300 training samples, 7 layers: none, weight decay, dropout."""

from support import run_quick


def test_overfitting_writes_its_files_and_the_claims_hold(tmp_path):
    done, results, report = run_quick("overfitting", tmp_path)
    assert set(results) == {"none", "weight-decay", "dropout"}
    for values in results.values():
        assert {"train_accuracy", "test_accuracy"} <= set(values)
        assert len(values["train_accuracy"]) == len(values["test_accuracy"]) == len(values["epochs"]) > 10
    none = results["none"]
    assert none["train_accuracy"][0] < 0.3  # epoch 0: before training
    assert none["train_accuracy"][-1] > 0.9  # it fits its 300 samples ...
    assert none["train_accuracy"][-1] - none["test_accuracy"][-1] > 0.03  # ... better than the test set
    assert "overfitting_accuracy.png" in report and "accuracy gap" in report
    assert "Without regularization the net fits" in done.stdout
