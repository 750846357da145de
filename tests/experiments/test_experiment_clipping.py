"""`deepgrad experiment clipping`: an exploding setting with and without gradient clipping."""

import math

from support import run_quick

MAX_NORM = 5.0


def test_clipping_writes_its_files_and_clipping_prevents_the_explosion(tmp_path):
    done, results, report = run_quick("clipping", tmp_path)
    assert set(results) == {"unclipped", "clipped"}
    for values in results.values():
        assert {"loss", "max_grad_norm", "diverged"} <= set(values)
        assert isinstance(values["diverged"], bool) and values["loss"]
        assert all(math.isfinite(loss) for loss in values["loss"])
    unclipped, clipped = results["unclipped"], results["clipped"]
    assert unclipped["loss"][0] == clipped["loss"][0]  # the same start
    assert unclipped["diverged"] and len(unclipped["loss"]) < 10  # explodes within a few steps
    assert max(unclipped["loss"]) > 1e6 * unclipped["loss"][0]
    assert not clipped["diverged"] and len(clipped["loss"]) > len(unclipped["loss"])
    assert clipped["loss"][-1] < clipped["loss"][0]  # and the clipped run learns
    assert clipped["max_grad_norm"] > MAX_NORM  # clipping had work to do
    assert unclipped["max_grad_norm"] > 10 * clipped["max_grad_norm"]
    assert "clipping.png" in report and "diverged" in done.stdout
