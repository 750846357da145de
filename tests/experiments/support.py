"""Running an experiment as `deepgrad experiment NAME --quick` in a subprocess, and checking what it
wrote: valid non-empty PNGs, report.md, and results.json whose claims' verdicts follow from their
values."""

import json
import os
import re
import subprocess
import sys

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def run_quick(name, out, *extra):
    """Run the experiment in a fresh process; returns (completed process, results dict, report text)."""
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MPLBACKEND="Agg")
    done = subprocess.run(
        [sys.executable, "-m", "deepgrad", "experiment", name, "--quick", "--out", str(out), *map(str, extra)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    directory = os.path.join(str(out), name)
    files = os.listdir(directory)
    pngs = [f for f in files if f.endswith(".png")]
    assert pngs, files
    for png in pngs:
        with open(os.path.join(directory, png), "rb") as handle:
            data = handle.read()
        assert data.startswith(PNG_SIGNATURE) and len(data) > 10_000, png
    with open(os.path.join(directory, "report.md")) as handle:
        report = handle.read()
    for png in pngs:
        assert f"]({png})" in report, png  # every figure is in the report
    assert "## What was run" in report and "seeds: " in report and "wall seconds: " in report
    with open(os.path.join(directory, "results.json")) as handle:
        results = json.load(handle)
    check_claims(results)
    assert not [f for f in os.listdir(str(out)) if f.startswith(".")]  # no staging directory left behind
    return done, results, report


def check_claims(results):
    """Every claim of a study's results.json: a note of the seeds, one value per seed, and the verdict,
    mean and spread that its values give (recomputed here)."""
    from deepgrad.experiments.claims import Claim

    assert results["claims"], "a study declares its claims"
    seeds = len(results["setup"]["seeds"].split(", "))
    for record in results["claims"]:
        claim = Claim.from_dict(record)
        assert re.fullmatch(r"00[0-4]( §[\w.]+)?", claim.note), claim.note
        assert len(claim.values) in (1, seeds), (claim.id, claim.values)
        assert record["verdict"] == claim.verdict, claim.id
        assert record["mean"] == claim.to_dict()["mean"], claim.id
