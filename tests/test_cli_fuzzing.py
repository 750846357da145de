"""Fuzzing the command line's file arguments: hostile TOML option files, run directories whose
config.json, metrics, summary or diagnostics hold garbage (huge integers, 1e308 and infinities,
absurd nesting, wrong types, bytes that are not UTF-8), and paths that are directories, files or
symlink loops where the other is expected. Every outcome is a result or one line with exit code 2
(a DeepgradError), never a traceback. Derandomized, so a failure reproduces in CI."""

import json
import os
import shutil

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deepgrad import cli
from deepgrad.errors import DeepgradError
from deepgrad.train import build_run
from deepgrad.train import config as options

FUZZ = settings(
    derandomize=True,
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# JSON values that break naive readers: long integers (beyond Python's 4300-digit parse limit), floats
# that overflow to infinity, deep nesting, and every JSON type where another is expected.
HOSTILE_JSON = st.one_of(
    st.just("1" * 5000),
    st.just("1e999"),
    st.just("-1e309"),
    st.just("[" * 5000 + "]" * 5000),
    st.just('{"a":' * 3000 + "1" + "}" * 3000),
    st.just("NaN"),
    st.just("Infinity"),
    st.just('"text"'),
    st.just("null"),
    st.just("[]"),
    st.just("{}"),
    st.integers(-(2**70), 2**70).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(json.dumps),
    st.text(max_size=20).map(json.dumps),
)
OPTION_NAMES = sorted(options.OPTIONS)


def one_line_or_result(*argv):
    """cli.main's exit code; a DeepgradError would have been printed as one line (exit 2)."""
    return cli.main([str(a) for a in argv])


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("fuzz") / "run"
    build_run(
        {"hidden": [8], "train_size": 64, "epochs": 2, "monitor": True, "monitor_every": 4},
        out=str(out),
        progress=False,
    ).fit()
    return out


@FUZZ
@given(name=st.sampled_from(OPTION_NAMES), value=HOSTILE_JSON)
def test_a_config_json_with_hostile_values_is_one_line(tmp_path, run_dir, capsys, name, value):
    run = tmp_path / "run"
    shutil.rmtree(run, ignore_errors=True)
    shutil.copytree(run_dir, run)
    config = (run / "config.json").read_text()
    (run / "config.json").write_text(config.replace("{", "{" + json.dumps(name) + ": " + value + ", ", 1))
    code = one_line_or_result("evaluate", run)
    err = capsys.readouterr().err
    assert code in (0, 2) and (code == 0 or err.count("\n") == 1), err


@FUZZ
@given(
    name=st.sampled_from(OPTION_NAMES),
    value=st.one_of(
        st.just("inf"),
        st.just("-inf"),
        st.just("nan"),
        st.just("1" * 5000),
        st.just("1e999"),
        st.just('"x"'),
        st.just("[1, 'a', true]"),
        st.just("{ a = 1 }"),
        st.just("1979-05-27T07:32:00Z"),
        st.just("[[[[[[1]]]]]]"),
        st.integers(-(2**70), 2**70).map(str),
        st.floats(allow_nan=False).map(repr),
    ),
)
def test_a_toml_option_file_with_hostile_values_is_one_line(tmp_path, name, value):
    path = tmp_path / "run.toml"
    path.write_text(f"{name} = {value}\n")
    try:
        options.resolve(options.load_file(str(path)))
    except DeepgradError as error:
        assert "\n" not in str(error)


@FUZZ
@given(raw=st.binary(max_size=200))
def test_a_toml_option_file_of_random_bytes_is_one_line(tmp_path, raw):
    path = tmp_path / "run.toml"
    path.write_bytes(raw)
    try:
        options.resolve(options.load_file(str(path)))
    except DeepgradError as error:
        assert "\n" not in str(error)


@settings(
    derandomize=True,
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    file=st.sampled_from(["metrics.jsonl", "summary.json", "diagnostics.jsonl", "config.json"]),
    value=HOSTILE_JSON,
    where=st.sampled_from(["line", "field"]),
)
def test_a_report_of_runs_with_hostile_records_is_one_line(tmp_path, run_dir, capsys, file, value, where):
    run = tmp_path / "run"
    shutil.rmtree(run, ignore_errors=True)
    shutil.copytree(run_dir, run)
    path = run / file
    lines = path.read_text().splitlines() if file.endswith("jsonl") else [json.dumps(json.loads(path.read_text()))]
    if where == "line":  # a whole line (the last of a JSON-lines file) replaced
        lines[-1] = value
    else:  # one field of the first object given the value, the rest kept
        first = json.loads(lines[0])
        key = sorted(first)[len(value) % len(first)]
        lines[0] = json.dumps(first).replace(json.dumps(key) + ": ", json.dumps(key) + ": " + value + ', "_": ', 1)
    path.write_text("\n".join(lines) + "\n")
    code = one_line_or_result("report", run, "--out", tmp_path / "report.html")
    err = capsys.readouterr().err
    assert code in (0, 2) and (code == 0 or err.count("\n") == 1), err


def test_directories_files_and_symlink_loops_where_the_other_is_expected(tmp_path, run_dir, capsys):
    folder, text = tmp_path / "folder", tmp_path / "notes.txt"
    folder.mkdir()
    text.write_text("mine")
    loop = tmp_path / "loop.toml"
    os.symlink(loop, loop)
    bad = tmp_path / "bad-run"
    shutil.copytree(run_dir, bad)
    (bad / "config.json").unlink()
    (bad / "config.json").mkdir()  # a directory where config.json should be
    cases = [
        ["train", "--config", folder, "--quiet"],
        ["train", "--config", loop, "--quiet"],
        ["train", "--out", text / "run", "--quiet"],
        ["evaluate", text],
        ["evaluate", folder],
        ["evaluate", loop],
        ["evaluate", bad],
        ["predict", run_dir, "--input", folder / "nothing.npy"],
        ["report", text],
        ["report", run_dir, "--out", folder],
        ["train", "--resume", "--out", text, "--quiet"],
    ]
    for argv in cases:
        code = one_line_or_result(*argv)
        err = capsys.readouterr().err
        assert code == 2 and err.count("\n") == 1 and "Traceback" not in err, (argv, err)


PARTS = ["scheduler", "divergence", "position", "train_loader", "rng", "history", "epoch", "global_step", "optimizer"]


@settings(
    derandomize=True,
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    part=st.sampled_from(PARTS),
    value=st.one_of(
        st.just(2**70),
        st.just(-1),
        st.just(1e308),
        st.just(float("inf")),
        st.just("text"),
        st.just(None),
        st.just([]),
        st.just({}),
        st.just([[[[[[]]]]]]),
        st.just({"until": "x", "schedule": {}}),
        st.just({"batch": -3}),
        st.just({"batch": 2, "totals": {"loss": "x"}, "count": 1}),
        st.just({"first_loss": [1]}),
        st.just({"rates": "x"}),
    ),
)
def test_a_checkpoint_with_hostile_parts_resumes_or_is_one_line(tmp_path, capsys, part, value):
    from deepgrad import io

    out = tmp_path / "run"
    if not out.exists():
        build_run(
            {
                "hidden": [8],
                "train_size": 64,
                "epochs": 1,
                "schedule": "cosine",
                "final_lr": 1e-4,
                "checkpoint_every": 3,
            },
            out=str(out),
            progress=False,
        ).fit()
        (tmp_path / "good.safetensors").write_bytes((out / "checkpoints" / "last.safetensors").read_bytes())
    state = io.load_checkpoint(str(tmp_path / "good.safetensors"))
    state[part] = value
    io.save_checkpoint(state, str(out / "checkpoints" / "last.safetensors"))
    code = one_line_or_result("train", "--out", out, "--resume", "--epochs", 2, "--quiet")
    err = capsys.readouterr().err
    assert code in (0, 2) and (code == 0 or err.count("\n") == 1), err
