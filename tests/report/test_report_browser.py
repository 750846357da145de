"""The run report in a real browser (headless Chromium through Selenium, the network switched off):
five runs found below one folder — two finished (one with --monitor), one that diverged in its
first epoch, one interrupted by Ctrl-C mid-epoch and one still running (its summary names this
test's own process) — each shown with its state; the best run marked; hovering a curve shows its
value; a run's legend entry hides it in every chart; the controls switch the x axis, the loss axis
and the smoothing; the results table sorts and fits 800 px; no console errors; nothing requested
but the page itself. Full-page screenshots at 1400 and 800 px land in the test's tmp dir, and in
$DEEPGRAD_SCREENSHOT_DIR when set, for people to look at.

Uses Debian's chromium and chromium-driver (``helpers.headless_chromium``); skips, saying what is
missing, without selenium, chromium or chromedriver.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import pytest
from helpers import full_page_screenshot, headless_chromium

from deepgrad.report import write_report

WIDE, NARROW = 1400, 800
TRAIN = ["--epochs", "3", "--train-size", "200", "--quiet"]
RUNS = {  # name: flags of deepgrad train
    "adam-lr-3e-3": [],
    "tanh-monitored": ["--lr", "0.03", "--activation", "tanh", "--monitor", "--monitor-every", "2"],
    "diverged": ["--lr", "1e6", "--stop-on-divergence"],
}
CHARTS = ".curves .js-plotly-plot"
TRACES_DRAWN = f"""return Array.from(document.querySelectorAll('{CHARTS}'))
                    .map((c) => c.querySelectorAll('.scatterlayer .trace').length)"""
SORTABLE_HEADS = "Array.from(document.querySelectorAll('table.sortable th'))"


def deepgrad_train(out, flags):
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MPLBACKEND="Agg")
    command = [sys.executable, "-m", "deepgrad", "train", "--out", str(out), *TRAIN, *flags]
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def make_runs(root):
    """The five runs in ``root/runs/``, trained at the same time as `deepgrad train` processes: the
    interrupted one is a long run sent SIGINT once it has logged a few steps; the running one a
    finished run whose summary.json is put back to what a run in training writes (with this
    process's pid) and whose metrics.jsonl ends in a line being written."""
    runs = root / "runs"
    processes = {name: deepgrad_train(runs / name, flags) for name, flags in RUNS.items()}
    processes["running"] = deepgrad_train(runs / "running", ["--epochs", "2"])
    long = deepgrad_train(runs / "interrupted", ["--epochs", "500", "--train-size", "1000"])
    steps = runs / "interrupted" / "steps.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and (not steps.exists() or steps.read_text().count("\n") < 5):
        time.sleep(0.05)
    long.send_signal(signal.SIGINT)
    output = long.communicate(timeout=120)[0]
    assert long.returncode == 130 and "interrupted" in output, output
    for name, process in processes.items():
        output = process.communicate(timeout=300)[0]
        assert process.returncode == (2 if name == "diverged" else 0), (name, output)
    assert not (runs / "diverged" / "metrics.jsonl").exists()  # diverged in its first epoch
    summary = {"state": "running", "pid": os.getpid(), "host": socket.gethostname(), "epochs_done": 0, "steps_done": 0}
    (runs / "running" / "summary.json").write_text(json.dumps(summary))
    with open(runs / "running" / "metrics.jsonl", "a") as handle:
        handle.write('{"epoch": 3, "train_loss": 0.4')
    return runs


def chart_data(driver, title):
    """The Plotly data (name, legendgroup, visible, meta kind) of the curve chart titled ``title``."""
    return driver.execute_script(
        """
        const chart = Array.from(document.querySelectorAll(arguments[0]))
          .find((c) => c.layout.title.text === arguments[1]);
        return chart.data.map((t) => [t.name, t.legendgroup, t.visible === undefined ? true : t.visible,
                                      (t.meta || {}).kind, t.hovertext || null]);
        """,
        CHARTS,
        title,
    )


def hover_a_point(driver, title):
    """Move the mouse onto the middle point of the first line of the chart titled ``title``; returns
    the hover label's text."""
    from selenium.webdriver.common.action_chains import ActionChains

    chart, x, y = driver.execute_script(
        """
        const chart = Array.from(document.querySelectorAll(arguments[0]))
          .find((c) => c.layout.title.text === arguments[1]);
        const trace = chart.data.findIndex((t) => (t.meta || {}).kind === "line" && t.y.some((v) => v !== null));
        const data = chart.data[trace], layout = chart._fullLayout;
        const points = data.x.map((x, i) => [x, data.y[i]]).filter(([x, y]) => x !== null && y !== null);
        const [x, y] = points[Math.floor(points.length / 2)];
        const box = chart.getBoundingClientRect();
        return [chart, layout.xaxis._offset + layout.xaxis.l2p(layout.xaxis.d2l(x)) - box.width / 2,
                layout.yaxis._offset + layout.yaxis.l2p(layout.yaxis.d2l(y)) - box.height / 2];
        """,
        CHARTS,
        title,
    )
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", chart)
    ActionChains(driver).move_to_element_with_offset(chart, int(x), int(y)).perform()
    time.sleep(0.3)
    return driver.execute_script(
        "return Array.from(arguments[0].querySelectorAll('.hoverlayer .hovertext')).map((h) => h.textContent)",
        chart,
    )


def test_the_report_of_five_runs_is_explorable_in_a_browser(tmp_path):
    driver = headless_chromium(WIDE)
    try:
        runs = make_runs(tmp_path)
        report = write_report([runs], tmp_path / "report.html")
        driver.execute_cdp_cmd("Network.enable", {})
        driver.execute_cdp_cmd(
            "Network.emulateNetworkConditions",
            {"offline": True, "latency": 0, "downloadThroughput": 0, "uploadThroughput": 0},
        )
        driver.get(report.as_uri())
        time.sleep(1)
        full_page_screenshot(driver, WIDE, tmp_path / "report-1400.png")  # as it opens

        # every run shows its state, in the results table and in its section
        states = driver.execute_script(
            "return Array.from(document.querySelectorAll('table.sortable tbody tr'))"
            ".map((row) => [row.cells[0].textContent, row.cells[1].textContent])"
        )
        interrupted = json.loads((runs / "interrupted" / "summary.json").read_text())
        assert interrupted["state"] == "interrupted" and interrupted["steps_done"] > 0
        diverged = json.loads((runs / "diverged" / "summary.json").read_text())
        assert dict(states) == {
            "adam-lr-3e-3": "finished",
            "diverged": f"diverged at step {diverged['diverged_at']}",
            "interrupted": f"interrupted at step {interrupted['steps_done']}",
            "running": "running",
            "tanh-monitored": "finished",
        }
        sections = driver.execute_script(
            "return Array.from(document.querySelectorAll('section p.state')).map((p) => p.textContent)"
        )
        assert any(text.startswith(f"running (process {os.getpid()}") for text in sections), sections
        assert any("last finite loss" in text for text in sections), sections

        # the best run is marked: the highest validation accuracy and the lowest loss among the finished
        finished = {
            name: json.loads((runs / name / "summary.json").read_text()) for name in ("adam-lr-3e-3", "tanh-monitored")
        }
        marked = driver.execute_script(
            """
            const heads = Array.from(document.querySelectorAll('table.sortable th')).map((th) => th.textContent);
            return Array.from(document.querySelectorAll('table.sortable td.best')).map((cell) =>
              [heads[cell.cellIndex], cell.parentNode.cells[0].textContent, cell.textContent]);
            """
        )
        best_test = max(finished, key=lambda name: finished[name]["test_accuracy"])
        assert ["test accuracy", best_test] in [row[:2] for row in marked], marked
        assert all("★" in row[2] for row in marked)

        # the curves: loss, accuracy and learning rate per step, loss and accuracy per epoch, for every run
        titles = driver.execute_script(
            f"return Array.from(document.querySelectorAll('{CHARTS}')).map((c) => c.layout.title.text)"
        )
        assert titles == ["loss per step", "loss per epoch", "accuracy per step", "accuracy per epoch", "learning rate"]
        drawn = driver.execute_script(TRACES_DRAWN)
        assert all(count >= 4 for count in drawn), drawn
        loss = chart_data(driver, "loss per step")
        assert {name for name, _, _, kind, _ in loss if kind == "line"} == {name for name, _ in states}
        marks = [hover for _, _, _, kind, hover in loss if kind == "mark"]  # the diverged step, above the curves
        assert len(marks) == 1 and marks[0][0].startswith("diverged: batch loss ")
        assert f"at step {diverged['diverged_at']}" in marks[0][0]

        # hovering a curve shows its value
        label = hover_a_point(driver, "loss per epoch")
        assert label and any("loss " in text and "epoch" in text for text in label), label

        # a run's legend entry hides it in every curve chart, and shows it again
        group = next(group for name, group, _, _, _ in loss if name == "adam-lr-3e-3")
        entry = driver.execute_script(
            f"""return Array.from(document.querySelector('{CHARTS}').querySelectorAll('.legend .traces'))
                .find((t) => t.textContent === 'adam-lr-3e-3')"""
        )
        before = driver.execute_script(TRACES_DRAWN)
        entry.click()
        time.sleep(0.8)
        for title in titles:
            hidden = {visible for _, g, visible, _, _ in chart_data(driver, title) if g == group}
            assert hidden == {"legendonly"}, (title, hidden)
        after = driver.execute_script(TRACES_DRAWN)
        assert all(a < b for a, b in zip(after, before)), (before, after)
        entry.click()
        time.sleep(0.8)
        assert {visible for _, g, visible, _, _ in chart_data(driver, "loss per step") if g == group} == {True}

        # the controls: x axis, loss axis, smoothing
        select = "document.querySelector('[data-setting=\"{}\"]')"
        for setting, value in (("x", "epoch"), ("y", "linear"), ("smooth", "heavy")):
            driver.execute_script(
                f"const s = {select.format(setting)}; s.value = '{value}'; s.dispatchEvent(new Event('change'))"
            )
        time.sleep(0.8)
        axes = driver.execute_script(
            f"""return Array.from(document.querySelectorAll('{CHARTS}')).map((c) =>
                [c.layout.xaxis.title.text, c.layout.yaxis.type])"""
        )
        assert all(x == "epoch" for x, _ in axes) and axes[0][1] == axes[1][1] == "linear", axes
        smoothed = driver.execute_script(
            f"""const c = document.querySelector('{CHARTS}');
                const i = c.data.findIndex((t) => t.meta && t.meta.kind === 'line' && t.y.length > 3);
                return [c.data[i].y, c.data[i].meta.y.none, c.data[i].x, c.data[i].meta.x.epoch]"""
        )
        assert smoothed[0] != smoothed[1] and smoothed[2] == smoothed[3]

        # the results table sorts (missing values last)
        header = driver.execute_script(f"return {SORTABLE_HEADS}.find((th) => th.textContent === 'val loss')")
        header.click()
        column = driver.execute_script(
            f"""const i = {SORTABLE_HEADS}.map((th) => th.textContent).indexOf('val loss');
                return Array.from(document.querySelectorAll('table.sortable tbody tr'))
                  .map((r) => r.cells[i].dataset.sort)"""
        )
        numbers = [float(value) for value in column if value]
        assert numbers == sorted(numbers) and column[-1] == "" and len(numbers) == 4, column

        errors = [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
        assert not errors, errors

        # at 800 px the page does not overflow: the table scrolls within its box, the charts fit
        for setting, value in (("x", "step"), ("y", "log"), ("smooth", "none")):
            driver.execute_script(
                f"const s = {select.format(setting)}; s.value = '{value}'; s.dispatchEvent(new Event('change'))"
            )
        time.sleep(0.8)
        ranges = driver.execute_script(  # back on the log axis, with the range the page starts with
            f"""return Array.from(document.querySelectorAll('{CHARTS}')).filter((c) => c.layout.meta.toggle)
                .map((c) => [c.layout.yaxis.type, c.layout.yaxis.range, c.layout.meta.range.log])"""
        )
        assert len(ranges) == 2 and all(t == "log" and r == pytest.approx(m) for t, r, m in ranges), ranges
        full_page_screenshot(driver, NARROW, tmp_path / "report-800.png")
        widths = driver.execute_script(
            """const box = document.querySelector('.table-box').getBoundingClientRect();
               const charts = Array.from(document.querySelectorAll('.js-plotly-plot'))
                 .map((c) => c.getBoundingClientRect().right);
               return [document.documentElement.scrollWidth, document.documentElement.clientWidth, box.right,
                       Math.max(...charts)]"""
        )
        assert widths[0] <= widths[1] and widths[2] <= widths[1] and widths[3] <= widths[1], widths

        # nothing was requested but the page itself, and it rendered with the network off
        requests = [
            json.loads(entry["message"])["message"]["params"]["request"]["url"]
            for entry in driver.get_log("performance")
            if json.loads(entry["message"])["message"]["method"] == "Network.requestWillBeSent"
        ]
        assert requests and all(url == report.as_uri() or url.startswith(("data:", "blob:")) for url in requests), (
            requests
        )
    finally:
        driver.quit()
    assert (tmp_path / "report-1400.png").stat().st_size > 50_000
    if os.environ.get("DEEPGRAD_SCREENSHOT_DIR"):
        os.makedirs(os.environ["DEEPGRAD_SCREENSHOT_DIR"], exist_ok=True)
        for name in ("report-1400.png", "report-800.png"):
            shutil.copy(tmp_path / name, os.environ["DEEPGRAD_SCREENSHOT_DIR"])
