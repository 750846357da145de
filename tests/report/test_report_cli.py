"""``deepgrad report`` on the command line: a page for the runs given, one-line errors for what is
not a run."""

import subprocess
import sys


def deepgrad(*args):
    return subprocess.run(
        [sys.executable, "-m", "deepgrad", *map(str, args)], capture_output=True, text=True, timeout=300
    )


def test_report_command_writes_the_page_and_refuses_a_directory_that_is_not_a_run(tmp_path):
    run = tmp_path / "<b>run</b>"
    trained = deepgrad("train", "--epochs", 1, "--train-size", 200, "--hidden", 16, "--out", run, "--quiet")
    assert trained.returncode == 0, trained.stderr
    done = deepgrad("report", run, "--out", tmp_path / "page.html", "--title", "one & only")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"report of 1 run written to {tmp_path / 'page.html'}"
    page = (tmp_path / "page.html").read_text()
    assert "<title>one &amp; only</title>" in page and "&lt;b&gt;run&lt;/b&gt;" in page and "<b>run" not in page
    assert page.count("<svg") >= 3

    (tmp_path / "empty").mkdir()
    refused = deepgrad("report", run, tmp_path / "empty", "--out", tmp_path / "other.html")
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1 and "Traceback" not in refused.stderr
    assert str(tmp_path / "empty") in refused.stderr and "config.json" in refused.stderr
    assert not (tmp_path / "other.html").exists()
