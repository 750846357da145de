"""Running an experiment as `deepgrad experiment NAME --quick` in a subprocess, and checking what it
wrote: valid non-empty PNGs, report.md, and results.json."""

import json
import os
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
    assert "## What was run" in report and "seed: " in report and "wall seconds: " in report
    with open(os.path.join(directory, "results.json")) as handle:
        results = json.load(handle)
    assert not [f for f in os.listdir(str(out)) if f.startswith(".")]  # no staging directory left behind
    return done, results, report
