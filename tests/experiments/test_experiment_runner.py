"""The experiment runner: studies × seeds on the search's executors, a finished experiment's
directory appears whole with its judged claims, a failed one leaves the previous results and does
not stop the others, claims.json and the index (claims first) follow the folder, and bad requests
are clear errors."""

import json
import os

import pytest

from deepgrad import experiments
from deepgrad.errors import ConfigError, DatasetError
from deepgrad.experiments.claims import Claim, above
from deepgrad.experiments.common import Figure, Report, Table


def fake_measure(context):
    return {"seed": context.seed, "value": 1.0 + context.seed}


def fake_report(context, measured):
    with open(context.path("figure.png"), "wb") as handle:
        handle.write(b"\x89PNG\r\n\x1a\nnot really")
    values = [m["value"] for m in measured]
    claims = [
        Claim.judge("fake/works", "001 §1", "It <works>.", "value", values, above(0.5)),
        Claim.judge("fake/big", "002 §5.2", "Values are big.", "value", values, above(1.5)),
    ]
    return Report(
        "A <fake> study",
        "Does it <work>?",
        {"data": "none"},
        claims=claims,
        tables=[Table("numbers", ["setting", "value"], [["a<b", 1.5], ["c", None]])],
        figures=[Figure("figure.png", "a figure")],
        results={"seeds": [m["seed"] for m in measured]},
    )


@pytest.fixture
def fake(monkeypatch):
    import types

    module = types.ModuleType("deepgrad.experiments.fake")
    module.SEEDS, module.measure, module.report = 3, fake_measure, fake_report
    monkeypatch.setitem(__import__("sys").modules, "deepgrad.experiments.fake", module)
    monkeypatch.setattr(experiments, "EXPERIMENTS", {"fake": ("fake", "a fake study")})
    return module


def test_an_experiment_writes_its_directory_whole(tmp_path, fake):
    report = experiments.run_experiment("fake", tmp_path, backend="serial")
    assert sorted(os.listdir(tmp_path)) == ["fake"]
    assert sorted(os.listdir(tmp_path / "fake")) == [
        ".deepgrad-experiment.json",
        "figure.png",
        "report.md",
        "results.json",
    ]
    assert report.setup["seeds"] == "0, 1, 2" and "wall_seconds" in report.setup
    text = (tmp_path / "fake" / "report.md").read_text()
    assert "| a<b | 1.5 |" in text and "| c | – |" in text and "![a figure](figure.png)" in text
    assert "| It <works>. | 001 §1 | value | 1, 2, 3 | 2 ± 1 | value > 0.5 | reproduced |" in text
    assert "| Values are big. | 002 §5.2 | value | 1, 2, 3 | 2 ± 1 | value > 1.5 | partly |" in text
    results = json.loads((tmp_path / "fake" / "results.json").read_text())
    assert results["results"] == {"seeds": [0, 1, 2]} and results["question"] == "Does it <work>?"
    assert [claim["verdict"] for claim in results["claims"]] == ["reproduced", "partly"]


def test_seeds_run_on_the_local_processes_and_with_the_seeds_asked_for(tmp_path, fake):
    report = experiments.run_experiment("fake", tmp_path, backend="local", jobs=2, seed=5, seeds=4)
    assert report.setup["seeds"] == "5, 6, 7, 8" and report.claims[0].values == (6.0, 7.0, 8.0, 9.0)
    fake.SEEDS = 1  # a study whose numbers do not depend on a seed is measured once
    assert experiments.run_experiment("fake", tmp_path, backend="serial", seeds=4).setup["seeds"] == "0"


def test_a_failing_experiment_leaves_the_previous_results(tmp_path, fake):
    experiments.run_experiment("fake", tmp_path, backend="serial")
    before = (tmp_path / "fake" / "results.json").read_text()

    def failing(context, measured):
        with open(context.path("figure.png"), "wb") as handle:
            handle.write(b"half")
        raise RuntimeError("crashed half way")

    fake.report = failing
    with pytest.raises(experiments.ExperimentFailed, match="experiment fake failed: RuntimeError: crashed half way"):
        experiments.run_experiment("fake", tmp_path, backend="serial")
    assert sorted(os.listdir(tmp_path)) == ["failures.json", "fake"]  # no staging directory left
    assert (tmp_path / "fake" / "results.json").read_text() == before
    assert (tmp_path / "fake" / "figure.png").read_bytes().endswith(b"not really")
    fake.report = fake_report
    experiments.run_experiment("fake", tmp_path, backend="serial")
    assert sorted(os.listdir(tmp_path)) == ["fake"]  # the failure is taken off once it ran again


def test_a_study_that_fails_does_not_stop_the_others(tmp_path, fake, monkeypatch):
    import types

    broken = types.ModuleType("deepgrad.experiments.broken")
    broken.SEEDS = 2

    def measure(context):
        if context.seed == 1:
            raise ValueError("seed 1 cannot be measured")
        return {}

    broken.measure, broken.report = measure, fake_report
    monkeypatch.setitem(__import__("sys").modules, "deepgrad.experiments.broken", broken)
    monkeypatch.setattr(experiments, "EXPERIMENTS", {"broken": ("broken", "fails"), "fake": ("fake", "works")})
    outcome = experiments.run_all(tmp_path, backend="local", jobs=2)
    assert list(outcome.reports) == ["fake"]
    assert outcome.failures == {"broken": "seed 1: ValueError: seed 1 cannot be measured"}
    assert json.loads((tmp_path / "failures.json").read_text()) == outcome.failures
    claims = json.loads((tmp_path / "claims.json").read_text())
    assert [(claim["study"], claim["id"]) for claim in claims] == [("fake", "fake/works"), ("fake", "fake/big")]
    from deepgrad.report import write_experiments_index

    page = (tmp_path / write_experiments_index(str(tmp_path), experiments.registry())).read_text()
    assert "failed: broken (seed 1: ValueError: seed 1 cannot be measured)" in page


def test_only_a_previous_experiments_output_is_replaced(tmp_path, fake):
    """A folder holding anything the experiment did not write is refused before any work, and
    NAME.old (the user's, whatever it holds) is never touched."""
    user = tmp_path / "fake"
    user.mkdir()
    (user / "notes.txt").write_text("mine")
    (tmp_path / "fake.old").mkdir()
    (tmp_path / "fake.old" / "thesis.tex").write_text("mine too")
    with pytest.raises(ConfigError, match=r"fake holds files that deepgrad experiment did not write \(notes.txt\)"):
        experiments.run_experiment("fake", tmp_path, backend="serial")
    assert sorted(os.listdir(tmp_path)) == ["fake", "fake.old"]
    assert os.listdir(user) == ["notes.txt"]
    (user / "notes.txt").unlink()
    experiments.run_experiment("fake", tmp_path, backend="serial")  # an empty folder is fine
    experiments.run_experiment("fake", tmp_path, backend="serial")  # and its own output is replaced
    assert sorted(os.listdir(tmp_path)) == ["fake", "fake.old"]
    assert (tmp_path / "fake.old" / "thesis.tex").read_text() == "mine too"
    (user / "figure.png").unlink()
    (user / "extra.png").write_bytes(b"a user's figure")  # not in the manifest: not the experiment's
    with pytest.raises(ConfigError, match=r"did not write \(extra.png\)"):
        experiments.run_experiment("fake", tmp_path, backend="serial")


def test_an_output_from_before_manifests_is_recognized(tmp_path, fake):
    experiments.run_experiment("fake", tmp_path, backend="serial")
    (tmp_path / "fake" / ".deepgrad-experiment.json").unlink()  # as written by an earlier version
    experiments.run_experiment("fake", tmp_path, backend="serial")
    assert (tmp_path / "fake" / ".deepgrad-experiment.json").exists()


def test_the_index_page_never_replaces_a_file_deepgrad_did_not_write(tmp_path, fake):
    from deepgrad.report import write_experiments_index

    (tmp_path / "index.html").write_text("<html>my own site</html>")
    experiments.run_all(tmp_path, backend="serial")
    with pytest.raises(ConfigError, match="index.html exists and is not a page deepgrad wrote"):
        write_experiments_index(str(tmp_path), experiments.registry())
    assert (tmp_path / "index.html").read_text() == "<html>my own site</html>"
    (tmp_path / "index.html").unlink()
    write_experiments_index(str(tmp_path), experiments.registry())
    write_experiments_index(str(tmp_path), experiments.registry())  # its own page is replaced


def test_the_index_starts_with_every_claim_escapes_and_links_each_experiment(tmp_path, fake):
    from deepgrad.report import write_experiments_index

    experiments.run_all(tmp_path, backend="serial")
    assert write_experiments_index(str(tmp_path), experiments.registry()) == str(tmp_path / "index.html")
    page = (tmp_path / "index.html").read_text()
    body = page[page.index("<body>") :]
    assert body.index("<table>") < body.index("<ul>")  # the claims table comes first
    assert "2 claims: 1 reproduced, 1 partly, 0 not reproduced" in page
    assert '<td class="reproduced">reproduced</td>' in page and '<td class="partly">partly</td>' in page
    assert "A &lt;fake&gt; study" in page and "<fake>" not in page and "It &lt;works&gt;." in page
    assert '<img src="fake/figure.png" alt="a figure">' in page and "a&lt;b" in page
    assert "<script" not in page and "http" not in page


def test_rerunning_one_study_writes_the_claims_and_the_index_anew(tmp_path, fake):
    from deepgrad import cli

    assert cli.main(["experiment", "all", "--out", str(tmp_path), "--backend", "serial", "--quiet"]) == 0
    fake.measure = lambda context: {"seed": context.seed, "value": 0.1}
    assert cli.main(["experiment", "fake", "--out", str(tmp_path), "--backend", "serial", "--quiet"]) == 0
    claims = json.loads((tmp_path / "claims.json").read_text())
    assert [claim["verdict"] for claim in claims] == ["not reproduced", "not reproduced"]
    assert "0 reproduced, 0 partly, 2 not reproduced" in (tmp_path / "index.html").read_text()


def test_bad_requests_are_clear_errors(tmp_path):
    with pytest.raises(
        ConfigError, match="unknown experiment 'nope'; the experiments: gradcheck, softmax, losses, init, "
    ):
        experiments.run_experiment("nope", tmp_path)
    with pytest.raises(ConfigError, match="unknown dataset 'cifar' for experiments; valid: digits, mnist, fashion"):
        experiments.run_experiment("init", tmp_path, dataset="cifar")
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match=f"cannot write the experiment into --out {tmp_path / 'file'}"):
        experiments.run_experiment("init", tmp_path / "file")
    with pytest.raises(DatasetError, match="mnist: .* not found in .*; point --data-dir"):
        experiments.run_experiment("lr-decay", tmp_path / "out", dataset="mnist", data_dir=tmp_path / "none")
    assert not (tmp_path / "out").exists() or os.listdir(tmp_path / "out") == []
    with pytest.raises(ConfigError, match="--seeds must be a whole number >= 1, got 0"):
        experiments.run_experiment("lr-decay", tmp_path, seeds=0)
