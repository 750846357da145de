"""`deepgrad experiment all --quick`, as a newcomer runs it: every registered study in one process
tree within a minute, each in its own folder with a results.json whose claims are judged by their
values, claims.json gathering every claim, and the index page (claims table first) that a real
browser renders with one row per claim."""

import html
import json
import os
import re
import shutil
import subprocess
import sys

import pytest
from support import check_claims

from deepgrad import experiments

CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="module")
def quick_all(tmp_path_factory):
    out = tmp_path_factory.mktemp("experiments")
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MPLBACKEND="Agg")
    done = subprocess.run(
        [sys.executable, "-m", "deepgrad", "experiment", "all", "--quick", "--out", str(out)],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr
    return out, done


def test_every_study_runs_and_its_claims_are_gathered(quick_all):
    out, done = quick_all
    names = list(experiments.registry())
    assert len(names) == 19
    assert not (out / "failures.json").exists()
    gathered = json.loads((out / "claims.json").read_text())
    per_study = []
    for name in names:
        results = json.loads((out / name / "results.json").read_text())
        check_claims(results)
        per_study += [{"study": name, **claim} for claim in results["claims"]]
        assert f"{name}/" in done.stdout
    assert gathered == per_study  # claims.json is every study's claims, in the registry's order
    assert all(claim["id"].startswith(f"{claim['study']}/") for claim in gathered)
    assert len({claim["id"] for claim in gathered}) == len(gathered)  # ids are unique


def test_the_index_opens_with_every_claim(quick_all):
    out, _ = quick_all
    claims = json.loads((out / "claims.json").read_text())
    page = (out / "index.html").read_text()
    body = page[page.index("<body>") :]
    first_table = body[body.index("<table>") : body.index("</table>")]
    counts = {verdict: sum(c["verdict"] == verdict for c in claims) for verdict in ("reproduced", "partly")}
    caption = f"{len(claims)} claims: {counts['reproduced']} reproduced, {counts['partly']} partly"
    assert caption in first_table
    assert first_table.count('<td class="claim">') == len(claims)
    for claim in claims:
        assert html.escape(claim["claim"]) in first_table
    for name in experiments.registry():
        assert f'id="{name}"' in body  # every claim's link lands on its study's section


def test_the_index_renders_in_chromium(quick_all):
    if shutil.which(CHROMIUM) is None:
        pytest.skip(f"needs {CHROMIUM} (apt-get install chromium)")
    out, _ = quick_all
    claims = json.loads((out / "claims.json").read_text())
    dom = subprocess.run(
        [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--dump-dom", (out / "index.html").as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    first_table = dom[dom.index("<table>") : dom.index("</table>")]
    assert first_table.count('<td class="claim">') == len(claims)
    verdicts = re.findall(r'<td class="(reproduced|partly|not-reproduced)">', first_table)
    assert verdicts == [claim["verdict"].replace(" ", "-") for claim in claims]
    assert dom.count('<td class="claim">') == 2 * len(claims)  # and again in each study's section
    images = re.findall(r"<img [^>]*src=\"([^\"]+)\"", dom)
    assert images  # the studies' figures are on the page
    for source in images:
        assert source.startswith("data:image/png;base64,") or (out / source).is_file(), source[:80]
