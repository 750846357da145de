"""The documentation site in a real browser (headless Chromium through Selenium, the network
switched off), opened from the file system as a reader who downloaded it would: the home page, the
API page of ``Trainer``, a guide and a notebook (its formulas typeset) render with no console
errors, nothing is requested outside the site's folder, and the search finds ``Trainer``.
Screenshots land in the test's tmp dir, and in $DEEPGRAD_SCREENSHOT_DIR when set, for people to
look at."""

import json
import os
import shutil
import time

from helpers import full_page_screenshot, headless_chromium

WIDTH = 1400  # wide enough for the navigation on the left and the table of contents on the right
PAGES = {  # screenshot name: (page of the site, the text its first heading must hold)
    "docs-home": ("index.html", "deepgrad"),
    "docs-trainer": ("api/train.html#deepgrad.train.Trainer", "deepgrad.train"),
    "docs-guide": ("guides/training.html", "Training from the CLI and from Python"),
    "docs-notebook": ("notebooks/03_batchnorm_softmax.html", "Batch normalization, softmax and frameworks"),
}


def requested_urls(driver):
    return [
        json.loads(entry["message"])["message"]["params"]["request"]["url"]
        for entry in driver.get_log("performance")
        if json.loads(entry["message"])["message"]["method"] == "Network.requestWillBeSent"
    ]


def search(driver, query):
    """The titles of the search results for ``query``, typed into the header's search box."""
    from selenium.webdriver.common.by import By

    driver.find_element(By.CSS_SELECTOR, "label.md-search__icon, .md-search__input").click()
    box = driver.find_element(By.CSS_SELECTOR, "input.md-search__input")
    box.send_keys(query)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        titles = driver.execute_script(
            "return Array.from(document.querySelectorAll('.md-search-result__item h1, .md-search-result__item h2'))"
            ".map((h) => h.textContent)"
        )
        if titles:
            return titles
        time.sleep(0.2)
    return []


def test_the_site_opens_from_the_file_system_without_errors_and_searches(site, tmp_path):
    folder = site[0]
    driver = headless_chromium(WIDTH)
    try:
        driver.execute_cdp_cmd("Network.enable", {})
        driver.execute_cdp_cmd(
            "Network.emulateNetworkConditions",
            {"offline": True, "latency": 0, "downloadThroughput": 0, "uploadThroughput": 0},
        )
        for name, (page, heading) in PAGES.items():
            driver.get((folder / page.split("#")[0]).as_uri() + ("#" + page.split("#")[1] if "#" in page else ""))
            time.sleep(0.5)
            assert heading in driver.execute_script("return document.querySelector('article h1').textContent"), name
            errors = [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
            assert not errors, (page, errors)
            if name == "docs-notebook":  # its formulas typeset by the vendored KaTeX, none left as $…$ text
                assert driver.execute_script("return document.querySelectorAll('.jupyter-wrapper .katex').length") > 10
                text = driver.execute_script("return document.querySelector('.jupyter-wrapper').innerText")
                assert "$\\mu" not in text and "\\frac" not in text
            if name == "docs-trainer":  # a long page: the window at the anchor, as a reader lands there
                trainer = driver.execute_script(
                    "return document.getElementById('deepgrad.train.Trainer').parentElement.textContent"
                )
                assert "clip_grad_norm: float | None = None" in trainer  # its arguments, with their type hints
                driver.save_screenshot(str(tmp_path / f"{name}.png"))
            else:
                full_page_screenshot(driver, WIDTH, tmp_path / f"{name}.png")

        driver.get((folder / "index.html").as_uri())
        assert any("Trainer" in title for title in search(driver, "Trainer"))
        assert not [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
        outside = [url for url in requested_urls(driver) if not url.startswith((folder.as_uri(), "data:", "blob:"))]
        assert not outside, outside
    finally:
        driver.quit()
    assert all((tmp_path / f"{name}.png").stat().st_size > 20_000 for name in PAGES)
    if os.environ.get("DEEPGRAD_SCREENSHOT_DIR"):
        os.makedirs(os.environ["DEEPGRAD_SCREENSHOT_DIR"], exist_ok=True)
        for name in PAGES:
            shutil.copy(tmp_path / f"{name}.png", os.environ["DEEPGRAD_SCREENSHOT_DIR"])
