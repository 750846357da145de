"""``deepgrad report`` on the command line: a page for the runs given or found below a folder,
one-line errors for what is not a run."""

import shutil
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
    assert page.count("Plotly.newPlot(") >= 3 and page.count("window.PlotlyConfig") == 1

    folder = deepgrad("report", tmp_path, "--out", tmp_path / "all.html")  # the runs below a folder
    assert folder.returncode == 0, folder.stderr
    assert "&lt;b&gt;run&lt;/b&gt;" in (tmp_path / "all.html").read_text()

    (tmp_path / "empty").mkdir()
    refused = deepgrad("report", run, tmp_path / "empty", "--out", tmp_path / "other.html")
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1 and "Traceback" not in refused.stderr
    assert str(tmp_path / "empty") in refused.stderr and "config.json" in refused.stderr
    assert "holds none" in refused.stderr and not (tmp_path / "other.html").exists()


def test_report_counts_what_it_found_and_filter_keeps_the_runs_whose_path_matches(tmp_path):
    runs = tmp_path / "runs"
    trained = deepgrad("train", "--epochs", 1, "--train-size", 200, "--hidden", 16, "--out", runs / "first", "--quiet")
    assert trained.returncode == 0, trained.stderr
    shutil.copytree(runs / "first", runs / "second")
    everything = deepgrad("report", runs, "--out", tmp_path / "all.html")
    assert everything.stdout.strip() == f"report of 2 runs written to {tmp_path / 'all.html'}"
    kept = deepgrad("report", runs, "--filter", "sec+ond$", "--out", tmp_path / "second.html")
    assert kept.returncode == 0, kept.stderr
    assert kept.stdout.strip() == f"report of 1 run written to {tmp_path / 'second.html'}"
    page = (tmp_path / "second.html").read_text()
    assert 'href="#run-1">second<' in page and ">first<" not in page
    none = deepgrad("report", runs, "--filter", "rmsprop", "--out", tmp_path / "none.html")
    assert none.returncode == 2 and none.stderr.count("\n") == 1 and "Traceback" not in none.stderr
    assert "--filter 'rmsprop' matches none of the 2 found: first, second" in none.stderr
    assert not (tmp_path / "none.html").exists()
