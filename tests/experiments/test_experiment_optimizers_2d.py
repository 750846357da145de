"""`deepgrad experiment optimizers-2d`: the five optimizers on the narrow bowl and the saddle."""

from support import run_quick

FUNCTIONS, OPTIMIZERS = ("bowl", "saddle"), ("sgd", "momentum", "adagrad", "rmsprop", "adam")
STEPS = 30


def test_optimizers_2d_writes_its_files_and_the_claims_hold(tmp_path):
    done, results, report = run_quick("optimizers-2d", tmp_path)
    assert set(results) == {f"{f}/{opt}" for f in FUNCTIONS for opt in OPTIMIZERS}
    for values in results.values():
        assert {"path", "final_f"} <= set(values)
        assert len(values["path"]) == STEPS + 1 and all(len(point) == 2 for point in values["path"])
        assert isinstance(values["final_f"], float)
    assert results["bowl/sgd"]["path"][0] == [-7.0, 2.0] and results["saddle/adam"]["path"][0] == [1.0, 1e-3]
    bowl = {opt: results[f"bowl/{opt}"] for opt in OPTIMIZERS}
    assert bowl["sgd"]["y_reversals"] >= 20 and bowl["sgd"]["y_travel"] > 10  # SGD zig-zags
    for opt in ("rmsprop", "adagrad"):
        assert bowl[opt]["y_reversals"] == 0 and bowl[opt]["y_travel"] < 1.01  # straight down
        assert bowl[opt]["final_f"] < bowl["sgd"]["final_f"] / 5  # and closer to the minimum
    assert bowl["adam"]["y_reversals"] <= 2 and bowl["adam"]["final_distance"] < 0.5
    escape = {opt: results[f"saddle/{opt}"]["escape_step"] for opt in OPTIMIZERS}
    assert max(escape[opt] for opt in ("adagrad", "rmsprop", "adam")) < min(escape["sgd"], escape["momentum"])
    assert "bowl.png" in report and "saddle.png" in report and "SGD zig-zags" in done.stdout
