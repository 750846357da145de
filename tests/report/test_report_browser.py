"""The run report in a real browser: three short `deepgrad train` runs (two learning rates, one
with --monitor), their report opened in headless Chromium through Selenium, its charts drawn and
visible, no console errors, and a full-page screenshot (in the test's tmp dir, and in
$DEEPGRAD_SCREENSHOT_DIR when set, for people to look at).

Uses Debian's chromium and chromium-driver, passed explicitly so that Selenium Manager never
downloads a browser; skips, saying what is missing, without selenium, chromium or chromedriver.
"""

import os
import shutil
import subprocess
import sys

import pytest

from deepgrad.report import write_report

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
WIDTH = 1400

RUNS = {
    "adam-lr-3e-3": [],
    "adam-lr-3e-2": ["--lr", "0.03"],
    "tanh-monitored": ["--activation", "tanh", "--monitor", "--monitor-every", "2"],
}


def browser():
    """A headless Chromium under Selenium that keeps the page's console messages; skips when absent."""
    webdriver = pytest.importorskip("selenium.webdriver", reason="needs selenium (pip install 'deepgrad[test]')")
    from selenium.webdriver.chrome.service import Service

    for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not os.path.exists(path):
            pytest.skip(f"needs {path} (apt-get install {package})")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        f"--window-size={WIDTH},1000",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)


def train_runs(root):
    """The runs of RUNS, trained at the same time as subprocesses of `deepgrad train`."""
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MPLBACKEND="Agg")
    processes = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "deepgrad",
                "train",
                "--epochs",
                "3",
                "--train-size",
                "200",
                "--out",
                str(root / name),
                "--quiet",
                *flags,
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for name, flags in RUNS.items()
    ]
    for process in processes:
        output = process.communicate(timeout=300)[0]
        assert process.returncode == 0, output
    return [root / name for name in RUNS]


def full_page_screenshot(driver, path):
    """The whole page (not only the window) as a PNG at ``path``."""
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(WIDTH, height)
    driver.save_screenshot(str(path))


def test_the_report_renders_in_a_browser(tmp_path):
    driver = browser()
    try:
        report = write_report(train_runs(tmp_path), tmp_path / "report.html")
        driver.get(report.as_uri())
        charts = driver.find_elements("css selector", ".charts svg")
        assert len(charts) == 7  # loss, accuracy, lr; the monitored run's gradient flow, update size, dead units,
        #                           and saturated outputs (tanh saturates)
        for chart in charts:
            label = chart.get_attribute("aria-label")
            assert chart.is_displayed(), label
            size = driver.execute_script(
                "const r = arguments[0].getBoundingClientRect(); return [r.width, r.height]", chart
            )
            assert min(size) > 100, (label, size)
            drawn = driver.execute_script("return arguments[0].querySelectorAll('path, line, use').length", chart)
            assert drawn > 10, label
        legend_names = driver.execute_script(
            "return Array.from(document.querySelectorAll('.charts svg text')).map(t => t.textContent)"
        )
        assert all(legend_names.count(name) == 3 for name in RUNS), legend_names
        errors = [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
        assert not errors, errors
        full_page_screenshot(driver, tmp_path / "report.png")
    finally:
        driver.quit()
    assert (tmp_path / "report.png").stat().st_size > 10_000
    if os.environ.get("DEEPGRAD_SCREENSHOT_DIR"):
        os.makedirs(os.environ["DEEPGRAD_SCREENSHOT_DIR"], exist_ok=True)
        shutil.copy(tmp_path / "report.png", os.environ["DEEPGRAD_SCREENSHOT_DIR"])
