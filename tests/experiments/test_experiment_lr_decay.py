"""`deepgrad experiment lr-decay`: constant, linear decay to a floor, step and cosine learning rates."""

import math

from support import run_quick

SCHEDULES = ("constant", "linear-decay", "step", "cosine")
LR, FLOOR = 0.3, 0.003


def test_lr_decay_writes_its_files_and_the_schedules_hold(tmp_path):
    done, results, report = run_quick("lr-decay", tmp_path)
    assert set(results) == set(SCHEDULES)
    steps = len(results["constant"]["loss"])
    for schedule in SCHEDULES:
        values = results[schedule]
        assert {"loss", "test_accuracy"} <= set(values)
        assert len(values["loss"]) == len(values["lr"]) == steps > 0
        assert all(math.isfinite(loss) and loss > 0 for loss in values["loss"])
        assert 0 <= values["test_accuracy"] <= 1
        assert values["loss"][0] == results["constant"]["loss"][0]  # same start: only the rate differs
        assert values["lr"][0] == LR
    assert set(results["constant"]["lr"]) == {LR}
    for decaying in ("linear-decay", "cosine"):  # down towards the floor, never below
        lrs = results[decaying]["lr"]
        assert all(a >= b for a, b in zip(lrs, lrs[1:])) and FLOOR <= lrs[-1] < LR / 10
    assert sorted({round(lr, 12) for lr in results["step"]["lr"]}, reverse=True)[:3] == [LR, LR / 10, LR / 100]
    assert "lr_decay.png" in report and "final model's training loss is: constant" in done.stdout
