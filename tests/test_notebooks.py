"""The notebooks of notebooks/: stored without outputs, executed top to bottom without an error and
within the time the issue allows (2 minutes each on 2 cores), every claim's verdict computed; and
the execution machinery (``deepgrad notebooks``) naming the notebook and cell that fail."""

import json
import re
import sys
from pathlib import Path

import pytest

from deepgrad import cli, notebooks
from deepgrad.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent
STORED = sorted((ROOT / "notebooks").glob("*.ipynb"))
MINUTES_ALLOWED = 2
VERDICT_LITERAL = re.compile(r"""["'](reproduced|partly|not reproduced)["']""")


def cells(path):
    return json.loads(path.read_text(encoding="utf-8"))["cells"]


def test_there_is_a_notebook_per_seed_note_in_order():
    assert [path.name[:3] for path in STORED] == ["01_", "02_", "03_", "04_", "05_"]
    assert notebooks.notebook_paths() == STORED


@pytest.mark.parametrize("path", STORED, ids=lambda path: path.name)
def test_notebooks_are_stored_without_outputs_or_paths_outside_the_repository(path):
    for cell in cells(path):
        text = "".join(cell["source"])
        assert "/work/" not in text and "../" not in text and "seeds/" not in text, text[:80]
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [] and cell["execution_count"] is None, f"{path.name}: outputs kept"
            assert "execution" not in cell.get("metadata", {}), f"{path.name}: execution timings kept"
            assert not VERDICT_LITERAL.search(text), f"{path.name}: a verdict written by hand: {text[:80]}"


def test_every_notebook_executes_without_error_in_time(executed_notebooks):
    assert [path.name for path in executed_notebooks] == [path.name for path in STORED]
    for path in executed_notebooks:
        notebook = json.loads(path.read_text(encoding="utf-8"))
        assert notebook["metadata"]["deepgrad"]["seconds"] < MINUTES_ALLOWED * 60, path.name
        outputs = [output for cell in notebook["cells"] if cell["cell_type"] == "code" for output in cell["outputs"]]
        assert not [output for output in outputs if output["output_type"] == "error"], path.name
        html = "".join("".join(output.get("data", {}).get("text/html", "")) for output in outputs)
        figures = [output for output in outputs if "image/png" in output.get("data", {})]
        assert figures, f"{path.name} draws no figure"
        verdicts = re.findall(r">(reproduced|partly|not reproduced)</td>", html)
        assert verdicts, f"{path.name} shows no claim's verdict"


def notebook_of(*sources):
    nbformat = pytest.importorskip("nbformat")
    return nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source) for source in sources])


def test_a_failing_cell_is_named_with_its_notebook_and_the_copy_is_written(tmp_path, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    pytest.importorskip("nbclient")
    folder = tmp_path / "notebooks"
    folder.mkdir()
    nbformat.write(notebook_of("x = 1", "print(x)"), folder / "01_fine.ipynb")
    nbformat.write(notebook_of("y = 2", "raise ValueError('the cell fails')", "z = 3"), folder / "02_broken.ipynb")
    monkeypatch.setattr(notebooks, "NOTEBOOKS", folder)
    out = tmp_path / "out"
    with pytest.raises(notebooks.NotebookFailed, match=r"02_broken\.ipynb: cell 2 .*ValueError: the cell fails"):
        notebooks.execute_all(out)
    fine = json.loads((out / "01_fine.ipynb").read_text())
    assert "".join(fine["cells"][1]["outputs"][0]["text"]) == "1\n" and fine["metadata"]["deepgrad"]["seconds"] > 0
    broken = json.loads((out / "02_broken.ipynb").read_text())
    assert broken["cells"][1]["outputs"][0]["output_type"] == "error"


def test_the_cli_writes_the_executed_copies(tmp_path, monkeypatch, capsys):
    nbformat = pytest.importorskip("nbformat")
    pytest.importorskip("nbclient")
    folder = tmp_path / "notebooks"
    folder.mkdir()
    nbformat.write(notebook_of("import sys; print(sys.executable)"), folder / "01_only.ipynb")
    monkeypatch.setattr(notebooks, "NOTEBOOKS", folder)
    assert cli.main(["notebooks", "--out", str(tmp_path / "out")]) == 0
    assert "executed" in capsys.readouterr().out
    executed = json.loads((tmp_path / "out" / "01_only.ipynb").read_text())
    assert "".join(executed["cells"][0]["outputs"][0]["text"]).strip() == sys.executable  # this interpreter's kernel


def test_the_executed_copies_never_overwrite_the_notebooks(tmp_path, monkeypatch):
    with pytest.raises(ConfigError, match="notebooks' own folder"):
        notebooks.execute_all(notebooks.NOTEBOOKS)
    monkeypatch.setattr(notebooks, "NOTEBOOKS", tmp_path / "nothing")
    with pytest.raises(ConfigError, match="no notebooks"):
        notebooks.execute_all(tmp_path / "out")
