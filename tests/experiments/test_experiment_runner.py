"""The experiment runner: a finished experiment's directory appears whole, a failed one leaves the
previous results as they were, and bad requests are clear errors."""

import os

import pytest

from deepgrad import experiments
from deepgrad.errors import ConfigError, DatasetError
from deepgrad.experiments.common import Figure, Report, Table


def fake_experiment(context):
    with open(context.path("figure.png"), "wb") as handle:
        handle.write(b"\x89PNG\r\n\x1a\nnot really")
    return Report(
        "A <fake> study",
        "It shows what it shows & more.",
        {"data": "none"},
        tables=[Table("numbers", ["setting", "value"], [["a<b", 1.5], ["c", None]])],
        figures=[Figure("figure.png", "a figure")],
        results={"a": 1.5},
    )


@pytest.fixture
def fake(monkeypatch):
    import types

    module = types.ModuleType("deepgrad.experiments.fake")
    module.run = fake_experiment
    monkeypatch.setitem(__import__("sys").modules, "deepgrad.experiments.fake", module)
    monkeypatch.setattr(experiments, "EXPERIMENTS", {"fake": ("fake", "a fake study")})
    return module


def test_an_experiment_writes_its_directory_whole(tmp_path, fake):
    report = experiments.run_experiment("fake", tmp_path)
    assert sorted(os.listdir(tmp_path)) == ["fake"]
    assert sorted(os.listdir(tmp_path / "fake")) == [
        ".deepgrad-experiment.json",
        "figure.png",
        "report.md",
        "results.json",
    ]
    assert report.setup["seed"] == 0 and "wall_seconds" in report.setup
    text = (tmp_path / "fake" / "report.md").read_text()
    assert "| a<b | 1.5 |" in text and "| c | – |" in text and "![a figure](figure.png)" in text


def test_a_failing_experiment_leaves_the_previous_results(tmp_path, fake):
    experiments.run_experiment("fake", tmp_path)
    before = (tmp_path / "fake" / "results.json").read_text()

    def failing(context):
        with open(context.path("figure.png"), "wb") as handle:
            handle.write(b"half")
        raise RuntimeError("crashed half way")

    fake.run = failing
    with pytest.raises(RuntimeError, match="crashed half way"):
        experiments.run_experiment("fake", tmp_path)
    assert sorted(os.listdir(tmp_path)) == ["fake"]  # no staging directory left
    assert (tmp_path / "fake" / "results.json").read_text() == before
    assert (tmp_path / "fake" / "figure.png").read_bytes().endswith(b"not really")


def test_only_a_previous_experiments_output_is_replaced(tmp_path, fake):
    """A folder holding anything the experiment did not write is refused before any work, and
    NAME.old (the user's, whatever it holds) is never touched."""
    user = tmp_path / "fake"
    user.mkdir()
    (user / "notes.txt").write_text("mine")
    (tmp_path / "fake.old").mkdir()
    (tmp_path / "fake.old" / "thesis.tex").write_text("mine too")
    with pytest.raises(ConfigError, match=r"fake holds files that deepgrad experiment did not write \(notes.txt\)"):
        experiments.run_experiment("fake", tmp_path)
    assert sorted(os.listdir(tmp_path)) == ["fake", "fake.old"]
    assert os.listdir(user) == ["notes.txt"]
    (user / "notes.txt").unlink()
    experiments.run_experiment("fake", tmp_path)  # an empty folder is fine
    experiments.run_experiment("fake", tmp_path)  # and its own output is replaced
    assert sorted(os.listdir(tmp_path)) == ["fake", "fake.old"]
    assert (tmp_path / "fake.old" / "thesis.tex").read_text() == "mine too"
    (user / "figure.png").unlink()
    (user / "extra.png").write_bytes(b"a user's figure")  # not in the manifest: not the experiment's
    with pytest.raises(ConfigError, match=r"did not write \(extra.png\)"):
        experiments.run_experiment("fake", tmp_path)


def test_an_output_from_before_manifests_is_recognized(tmp_path, fake):
    experiments.run_experiment("fake", tmp_path)
    (tmp_path / "fake" / ".deepgrad-experiment.json").unlink()  # as written by an earlier version
    experiments.run_experiment("fake", tmp_path)
    assert (tmp_path / "fake" / ".deepgrad-experiment.json").exists()


def test_the_index_page_never_replaces_a_file_deepgrad_did_not_write(tmp_path, fake):
    from deepgrad.report import write_experiments_index

    (tmp_path / "index.html").write_text("<html>my own site</html>")
    reports = experiments.run_all(tmp_path)
    with pytest.raises(ConfigError, match="index.html exists and is not a page deepgrad wrote"):
        write_experiments_index(reports, tmp_path)
    assert (tmp_path / "index.html").read_text() == "<html>my own site</html>"
    (tmp_path / "index.html").unlink()
    write_experiments_index(reports, tmp_path)
    write_experiments_index(reports, tmp_path)  # its own page is replaced


def test_index_page_escapes_and_links_each_experiment(tmp_path, fake):
    from deepgrad.report import write_experiments_index

    assert write_experiments_index(experiments.run_all(tmp_path), tmp_path) == str(tmp_path / "index.html")
    page = (tmp_path / "index.html").read_text()
    assert "A &lt;fake&gt; study" in page and "<fake>" not in page
    assert '<img src="fake/figure.png" alt="a figure">' in page and "a&lt;b" in page
    assert "<script" not in page and "http" not in page


def test_bad_requests_are_clear_errors(tmp_path):
    with pytest.raises(ConfigError, match="unknown experiment 'nope'; the experiments: init, vanishing, "):
        experiments.run_experiment("nope", tmp_path)
    with pytest.raises(ConfigError, match="unknown dataset 'cifar' for experiments; valid: digits, mnist, fashion"):
        experiments.run_experiment("init", tmp_path, dataset="cifar")
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match=f"cannot write the experiment into --out {tmp_path / 'file'}"):
        experiments.run_experiment("init", tmp_path / "file")
    with pytest.raises(DatasetError, match="mnist: .* not found in .*; point --data-dir"):
        experiments.run_experiment("vanishing", tmp_path / "out", dataset="mnist", data_dir=tmp_path / "none")
    assert os.listdir(tmp_path / "out") == []
