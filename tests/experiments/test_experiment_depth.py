"""`deepgrad experiment depth`: plain against residual MLPs from 4 to 32 hidden layers."""

from support import run_quick

DEPTHS = ("4", "8", "16", "32")


def test_depth_writes_its_files_and_the_claims_hold(tmp_path):
    done, results, report = run_quick("depth", tmp_path)
    assert {"plain", "residual"} <= set(results)
    for net in ("plain", "residual"):
        assert set(results[net]) == set(DEPTHS) and all(0 <= a <= 1 for a in results[net].values())
    plain, residual = results["plain"], results["residual"]
    assert residual["32"] > plain["32"] + 0.1  # the deepest plain net lags behind
    assert residual["32"] > 0.7 and plain["4"] > 0.8  # while both kinds train when shallow or residual
    assert "depth.png" in report and "Trained alike" in done.stdout
