"""`deepgrad experiment depth`: plain and residual MLPs with batch norm from 2 to 32 hidden layers."""

import math

import numpy as np
from support import run_quick

DEPTHS = ("2", "4", "8", "16", "24", "32")


def test_depth_measures_its_claims_over_seeds(tmp_path):
    done, record, report = run_quick("depth", tmp_path)
    results = record["results"]
    for net in ("plain", "residual"):
        assert set(results[net]) == set(DEPTHS)
        for depth in DEPTHS:
            errors = results[net][depth]["train_error"]
            assert len(errors) == 2 and all(0 <= float(e) <= 1 for e in errors)  # two seeds with --quick
    ids = [claim["id"] for claim in record["claims"]]
    assert ids == ["depth/degrades", "depth/residual-flat", "depth/residual-vs-plain"]
    claims = {claim["id"]: claim for claim in record["claims"]}
    # independent recomputations from the per-seed numbers
    for net, claim in (("plain", "depth/degrades"), ("residual", "depth/residual-flat")):
        per_seed = np.array([[float(e) for e in results[net][d]["train_error"]] for d in DEPTHS]).T  # seed x depth
        np.testing.assert_allclose(claims[claim]["values"], 100 * (per_seed[:, -1] - per_seed.min(axis=1)), rtol=1e-9)
    ratio = [
        float(p) / float(r)
        for p, r in zip(results["plain"]["32"]["train_loss"], results["residual"]["32"]["train_loss"])
    ]
    np.testing.assert_allclose(claims["depth/residual-vs-plain"]["values"], ratio, rtol=1e-12)
    # the onset: the first depth a point above the best shallower one, per seed
    for k, onset in enumerate(results["onset"]):
        errors = [float(results["plain"][d]["train_error"][k]) for d in DEPTHS]
        rises = [int(d) for i, d in enumerate(DEPTHS) if i and errors[i] > min(errors[:i]) + 0.01]
        assert onset == (rises[0] if rises else None)
    assert results["train_samples"] == 320 and math.isclose(0.5 / 320, 0.0015625)
    assert "depth.png" in report and "depth_curves.png" in report and "depth/" in done.stdout
