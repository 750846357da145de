"""`deepgrad experiment init`: the activations under four weight scales and three activations."""

from support import run_quick

ACTIVATIONS, INITS = ("sigmoid", "tanh", "relu"), ("std1", "std0.01", "xavier", "he")


def test_init_writes_its_files_and_the_claims_hold(tmp_path):
    done, results, report = run_quick("init", tmp_path)
    assert set(results) == {f"{a}/{i}" for a in ACTIVATIONS for i in INITS}
    for values in results.values():
        assert set(values) == {"std", "saturated", "dead"} and all(len(v) == 5 for v in values.values())
    assert min(results["sigmoid/std1"]["saturated"]) > 0.4  # std 1: the sigmoid saturates
    assert max(results["sigmoid/std0.01"]["std"][1:]) < 0.02  # std 0.01: it collapses towards 0.5
    assert min(results["sigmoid/xavier"]["std"]) > 0.1
    he = results["relu/he"]["std"]
    assert max(he) / min(he) < 1.3  # He keeps ReLU's spread
    assert results["relu/std0.01"]["std"][-1] < 1e-4 and results["relu/std1"]["std"][-1] > 1e3
    assert results["relu/he"]["saturated"] == [None] * 5
    assert "init_sigmoid.png" in report and "With std 1 the sigmoid" in done.stdout
