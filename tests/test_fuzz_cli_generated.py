"""The careless user's second round (issue 24), with generated cases: each class of bad input is drawn
by ``hypothesis`` strategies (malformed attributions rows, work files, paper CSV cells, user files in
output folders) and run through the real entry point (``cli.main``) or the one owner of the check.

Every bad input must end in exit status 2 with one line ``vqa-shap CMD: error: ...`` naming the file or
config, the record (qid) and the field/player; no user file is ever deleted or overwritten.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vqa_shap.cli import main
from vqa_shap.loaders import LOADERS

MODEL = "tiny-random/llava_onevision"
CONFIG = "toy"
ATTRS = "tiny-random-llava_onevision__toy"
EXPLAIN = ["--config", CONFIG, "--model", MODEL, "--frames", "2", "--budget", "8", "--threads", "1", "--no-progress"]
FAMILIES = LOADERS.names()
FEW = settings(max_examples=8, deadline=None, derandomize=True,
               suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def _questions(n: int = 4):
    from vqa_shap.schema.records import Question, VisualInput

    return [Question(f"q{i}", "egoschema", "summary", f"What does c do {i}?", ("cut", "wash", "read"), i % 3,
                     inputs=(VisualInput("video", f"v/q{i}.mp4"),)) for i in range(n)]


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    """A questions folder, its videos and one explain output (with its work directory), made through the CLI."""
    import torch

    from vqa_shap.hub.folder import write_questions
    from vqa_shap.synthetic_inputs import synthesize_inputs

    root = tmp_path_factory.mktemp("fuzz2")
    write_questions(root / "qs", CONFIG, _questions())
    synthesize_inputs(_questions(), root / "videos", n_frames=8, size=(32, 32), seed=0)
    threads = torch.get_num_threads()
    try:
        assert main(["explain", str(root / "qs"), "--video-root", str(root / "videos"), "--out", str(root / "attrs"),
                     *EXPLAIN]) == 0
    finally:
        torch.set_num_threads(threads)
    return {"root": root, "Q": root / "qs", "V": root / "videos", "A": root / "attrs"}


def _one_line_error(capsys, status: int, command: str) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    assert status == 2, err
    lines = [line for line in err.splitlines() if "error" in line.lower()]
    assert len(lines) == 1 and lines[0].startswith(f"vqa-shap {command}: error: "), err
    return lines[0]


def _files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


# --------------------------------------------------------------------------------------------
# class 1: bad values in an attributions dataset are refused at load


#: A corruption of one attributions row: (kind, row index, player index, option index, value).
corruptions = st.tuples(st.sampled_from(["cell", "player", "all", "value_full", "duplicate"]),
                        st.integers(0, 3), st.integers(0, 50), st.integers(0, 2),
                        st.sampled_from([math.nan, math.inf, -math.inf]))
#: The commands that read an attributions dataset (``{BAD}``: the corrupted folder, ``{O}``: a new folder).
READERS = {
    "metrics": "metrics {BAD} --bootstrap 0",
    "view": "view {BAD} --out {O} --bootstrap 0 --no-progress",
    "report": f"report {{BAD}} --config {ATTRS} --out {{O}} --bootstrap 0 --no-progress",
    "rank": f"rank {{BAD}} --config {ATTRS} --ranker random",
    "mask-bench": f"mask-bench {{BAD}} --config {ATTRS} --questions {{Q}} --video-root {{V}} --out {{O}} --no-progress",
}


def _corrupt(rows: list[dict], corruption) -> tuple[str, str | None]:
    """Apply ``corruption`` to ``rows`` in place; return the qid and player name the error must name."""
    kind, index, player, option, value = corruption
    row = rows[index]
    player %= len(row["shapley"])
    name = row["features"][player]["name"]
    if kind == "cell":
        row["shapley"][player][option] = value
    elif kind == "player":
        row["shapley"][player] = [value] * len(row["shapley"][player])
    elif kind == "all":  # an all-NaN Shapley row: the first player is named
        row["shapley"] = [[value] * len(r) for r in row["shapley"]]
        name = row["features"][0]["name"]
    elif kind == "value_full":
        row["value_full"][option] = value
        name = "value_full"
    else:
        rows.append(dict(rows[index]))
        name = None
    return row["qid"], name


def _write_attributions(ws, folder: Path, rows: list[dict]) -> None:
    from vqa_shap.hub import folder as hub
    from vqa_shap.hub.card import folder_meta
    from vqa_shap.schema.arrow import attribution_features

    card = folder_meta(ws["A"])["configs"][ATTRS]
    hub.write_config(folder, ATTRS, rows, features=attribution_features(), kind="attributions", card_vars=card,
                     overwrite=True)


@FEW
@given(corruption=corruptions, command=st.sampled_from(list(READERS)))
def test_non_finite_values_and_repeated_qids_are_refused_at_load(ws, tmp_path_factory, capsys, corruption, command):
    from vqa_shap.hub import folder as hub

    tmp = tmp_path_factory.mktemp("bad")
    rows = hub.load_config(ws["A"], ATTRS).to_list()
    qid, name = _corrupt(rows, corruption)
    _write_attributions(ws, tmp / "bad", rows)
    argv = READERS[command].format(BAD=tmp / "bad", O=tmp / "out", Q=ws["Q"], V=ws["V"]).split()
    capsys.readouterr()
    line = _one_line_error(capsys, main(argv), command)
    assert f"config {ATTRS!r}" in line and repr(qid) in line, line
    assert (f"'{name}'" if name else "appear more than once") in line, line
    assert not (tmp / "out").exists()


def test_an_error_row_is_kept_as_it_is(ws, tmp_path, capsys):
    """A run's own error rows (no values) pass the load checks and are counted as errors."""
    from vqa_shap.hub import folder as hub

    rows = hub.load_config(ws["A"], ATTRS).to_list()
    rows[1].update(shapley=[], stderr=None, features=[], value_full=None, value_empty=None, error="video missing")
    _write_attributions(ws, tmp_path / "a", rows)
    assert main(["metrics", str(tmp_path / "a"), "--bootstrap", "0", "--json", str(tmp_path / "m.json")]) == 0


def test_a_config_named_twice_is_reported_once(ws, tmp_path):
    out = tmp_path / "m.json"
    assert main(["metrics", str(ws["A"]), "--config", ATTRS, "--config", ATTRS, "--bootstrap", "0",
                 "--json", str(out)]) == 0
    once = tmp_path / "once.json"
    assert main(["metrics", str(ws["A"]), "--config", ATTRS, "--bootstrap", "0", "--json", str(once)]) == 0
    assert json.loads(out.read_text()) == json.loads(once.read_text())


@FEW
@given(corruption=corruptions.filter(lambda c: c[0] != "duplicate"))
def test_merge_refuses_a_work_file_with_non_finite_values(ws, tmp_path_factory, capsys, corruption):
    tmp = tmp_path_factory.mktemp("merge")
    out = shutil.copytree(ws["A"], tmp / "a")
    work = out / ".work" / ATTRS
    files = sorted(p for p in work.glob("*.json") if p.name != "settings.json")
    file = files[corruption[1] % len(files)]
    row = json.loads(file.read_text())
    qid, name = _corrupt([row], (corruption[0], 0, *corruption[2:]))
    file.write_text(json.dumps(row))  # json writes NaN / Infinity
    capsys.readouterr()
    line = _one_line_error(capsys, main(["merge", str(out), "--overwrite"]), "merge")
    assert file.name in line and repr(qid) in line and f"'{name}'" in line, line


@FEW
@given(cell=st.sampled_from(["nan", "NaN", "inf", "-inf", "Infinity", "-Infinity", "+INF", " nan "]),
       row=st.integers(0, 100), column=st.integers(0, 2))
def test_paper_csv_with_a_non_finite_cell_names_file_row_and_column(ws, tmp_path_factory, cell, row, column):
    from vqa_shap.hub import folder as hub
    from vqa_shap.analysis.paper_csv import read_paper_csv, write_csv
    from vqa_shap.errors import RecordError
    from vqa_shap.schema.records import Attribution

    attr = Attribution.from_row(hub.load_config(ws["A"], ATTRS)[0])
    path = write_csv(attr, tmp_path_factory.mktemp("csv") / "q0.csv")
    lines = path.read_text().splitlines()
    row = 1 + row % (len(lines) - 1)
    cells = lines[row].split(",")
    cells[1 + column] = cell
    lines[row] = ",".join(cells)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(RecordError) as info:
        read_paper_csv(path)
    assert str(path) in str(info.value) and f"row {row + 1}" in str(info.value) and repr(cell) in str(info.value)


# --------------------------------------------------------------------------------------------
# class 2: a user's files in a folder vqa-shap writes to


_names = st.text("abcxyz_-", min_size=1, max_size=6)
#: Relative paths of the user's files: notes at the top or inside the tool's subfolders.
user_paths = st.lists(st.tuples(st.sampled_from(["", "data/", "assets/", "report/", "deep/er/"]), _names)
                      .map(lambda t: f"{t[0]}{t[1]}.note"), min_size=1, max_size=4, unique=True)


@FEW
@given(owned=st.lists(_names, min_size=1, max_size=4, unique=True),
       fresh=st.lists(_names, min_size=1, max_size=4, unique=True),
       user=st.lists(_names, min_size=0, max_size=4, unique=True))
def test_replace_folder_keeps_every_user_file_and_refuses_a_clash(tmp_path_factory, owned, fresh, user):
    """Property of the one output-folder policy: after a rebuild the folder holds exactly the new
    build's files plus the user's; a user file in the way of a new file refuses and changes nothing."""
    from vqa_shap.output_folder import ForeignFolderError, replace_folder

    tmp = tmp_path_factory.mktemp("policy")
    target, first = tmp / "out", tmp / "first"
    for name in owned:
        (first / name).parent.mkdir(parents=True, exist_ok=True)
        (first / name).write_text(f"old {name}")
    replace_folder(first, target, "view")
    user = [u + ".mine" if u in owned else u for u in user]  # the user adds files beside the build's
    for name in user:
        (target / name).write_text(f"user {name}")
    before = _files(target)
    staging = tmp / "second"
    staging.mkdir()
    for name in fresh:
        (staging / name).write_text(f"new {name}")
    if set(user) & set(fresh):
        with pytest.raises(ForeignFolderError, match="was not written by vqa-shap view"):
            replace_folder(staging, target, "view")
        assert _files(target) == before
        return
    replace_folder(staging, target, "view")
    after = {k: v for k, v in _files(target).items() if not k.startswith(".vqa-shap")}
    assert after == {**{n: f"new {n}".encode() for n in fresh}, **{u: f"user {u}".encode() for u in user}}
    assert sorted(p.name for p in tmp.iterdir()) == ["out"]


@FEW
@given(paths=user_paths)
def test_view_rebuild_keeps_the_users_files(ws, tmp_path_factory, paths):
    site = tmp_path_factory.mktemp("site") / "site"
    assert main(["view", str(ws["A"]), "--out", str(site), "--bootstrap", "0", "--no-progress"]) == 0
    for rel in paths:
        (site / rel).parent.mkdir(parents=True, exist_ok=True)
        (site / rel).write_text(rel)
    assert main(["view", str(ws["A"]), "--out", str(site), "--bootstrap", "0", "--no-progress"]) == 0
    assert all((site / rel).read_text() == rel for rel in paths)


@pytest.mark.parametrize("mine", ["index.md", "words.csv", "notes.txt"])
def test_report_refuses_a_folder_of_the_users_and_keeps_notes_in_its_own(ws, tmp_path, capsys, mine):
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / mine).write_text("mine")
    argv = ["report", str(ws["A"]), "--config", ATTRS, "--bootstrap", "0", "--max-questions", "1", "--no-progress"]
    capsys.readouterr()
    line = _one_line_error(capsys, main(argv + ["--out", str(foreign)]), "report")
    assert str(foreign) in line and "not written by vqa-shap report" in line
    assert _files(foreign) == {mine: b"mine"}
    out = tmp_path / "report"
    assert main(argv + ["--out", str(out)]) == 0
    (out / "notes.txt").write_text("mine")
    assert main(argv + ["--out", str(out)]) == 0
    assert (out / "notes.txt").read_text() == "mine" and (out / "index.md").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine", "report"]


@FEW
@given(names=st.lists(st.sampled_from(["notes.json", "settings.json", "a-0123456789.json", "x.txt", "q0.json"]),
                      min_size=1, max_size=3, unique=True))
def test_explain_work_dir_of_the_users_is_refused_even_with_restart(ws, tmp_path_factory, capsys, names):
    tmp = tmp_path_factory.mktemp("wd")
    mine = tmp / "mine"
    mine.mkdir()
    for name in names:
        (mine / name).write_text("{}")
    before = _files(mine)
    argv = ["explain", str(ws["Q"]), "--video-root", str(ws["V"]), "--out", str(tmp / "out"), "--work-dir",
            str(mine), "--restart", *EXPLAIN]
    capsys.readouterr()
    line = _one_line_error(capsys, main(argv), "explain")
    assert str(mine) in line and "not written by vqa-shap" in line
    assert _files(mine) == before


def test_restart_deletes_only_the_work_files_of_a_real_work_dir(ws, tmp_path):
    out = shutil.copytree(ws["A"], tmp_path / "a")
    work = out / ".work" / ATTRS
    (work / "notes.json").write_text("mine")
    argv = ["explain", str(ws["Q"]), "--video-root", str(ws["V"]), "--out", str(out), "--overwrite", "--restart",
            *EXPLAIN]
    assert main(argv) == 0
    assert (work / "notes.json").read_text() == "mine"


# --------------------------------------------------------------------------------------------
# class 5: tracebacks become one-line errors


@pytest.mark.parametrize("device", ["mps", "cuda", "cuda:3"])
def test_a_device_the_machine_lacks_is_one_line(ws, tmp_path, capsys, device):
    import torch

    if device == "mps" and getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        pytest.skip("this machine has MPS")
    if device.startswith("cuda") and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    argv = ["explain", str(ws["Q"]), "--video-root", str(ws["V"]), "--out", str(tmp_path / "out"), *EXPLAIN,
            "--device", device]
    capsys.readouterr()
    line = _one_line_error(capsys, main(argv), "explain")
    assert repr(device) in line and "not available" in line
    assert not (tmp_path / "out").exists()


#: config.json texts that are not a JSON object.
bad_configs = st.one_of(st.text(max_size=20).filter(lambda t: not _is_json_object(t)),
                        st.sampled_from(["{", '{"model_type": "llava_onevision",}', "[]", "null", "\xff\xfe"]))


def _is_json_object(text: str) -> bool:
    try:
        return isinstance(json.loads(text), dict)
    except ValueError:
        return False


@FEW
@given(text=bad_configs, with_loader=st.booleans())
def test_a_model_folder_with_an_unreadable_config_is_one_line(ws, tmp_path_factory, capsys, text, with_loader):
    tmp = tmp_path_factory.mktemp("model")
    (tmp / "model").mkdir()
    (tmp / "model" / "config.json").write_bytes(text.encode("utf-8", "surrogateescape"))
    argv = ["explain", str(ws["Q"]), "--video-root", str(ws["V"]), "--out", str(tmp / "out"), *EXPLAIN]
    argv[argv.index(MODEL)] = str(tmp / "model")
    if with_loader:
        argv += ["--loader", "llava_onevision"]
    capsys.readouterr()
    line = _one_line_error(capsys, main(argv), "explain")
    assert str(tmp / "model" / "config.json") in line, line
    assert not (tmp / "out").exists()


# --------------------------------------------------------------------------------------------
# class 6: study files

STUDY = """\
name: s
models:
  - model: demo
benchmarks:
  - builder: synthetic
    generate: {questions: 2, seed: 1}
explain: {frames: 2, budget: 8, estimator: permutation, threads: 1}
metrics: {bootstrap: 0}
report: false
"""

#: (path of a mapping in STUDY, a key that mapping has, a value): the key is written a second time there.
duplicates = st.sampled_from([((), "name", "t"), ((), "report", False), (("explain",), "budget", 16),
                              (("explain",), "frames", 4), (("metrics",), "bootstrap", 3),
                              (("benchmarks", 0), "builder", "synthetic"), (("models", 0), "model", "demo"),
                              (("benchmarks", 0, "generate"), "seed", 2)])


def _with_duplicate(value, where: tuple, key: str, again, path: tuple = ()) -> str:
    """``value`` as YAML (JSON is YAML), with ``key: again`` written a second time in the mapping at ``where``."""
    if isinstance(value, dict):
        items = [f"{json.dumps(k)}: {_with_duplicate(v, where, key, again, (*path, k))}" for k, v in value.items()]
        if path == where:
            items.append(f"{json.dumps(key)}: {json.dumps(again)}")
        return "{" + ",\n".join(items) + "}"
    if isinstance(value, list):
        return "[" + ",\n".join(_with_duplicate(v, where, key, again, (*path, i)) for i, v in enumerate(value)) + "]"
    return json.dumps(value)


def _dry_run_error(tmp: Path, text: str, capsys) -> str:
    path = tmp / "study.yaml"
    path.write_text(text)
    capsys.readouterr()
    line = _one_line_error(capsys, main(["run", str(path), "--out", str(tmp / "out"), "--dry-run"]), "run")
    assert str(path) in line and not (tmp / "out").exists()
    return line


@FEW
@given(duplicate=duplicates)
def test_a_key_written_twice_in_a_study_file_is_refused(tmp_path_factory, capsys, duplicate):
    import yaml

    where, key, value = duplicate
    text = _with_duplicate(yaml.safe_load(STUDY), where, key, value)
    line = _dry_run_error(tmp_path_factory.mktemp("dup"), text, capsys)
    assert f"key {key!r} appears twice" in line and "line " in line, (text, line)


@FEW
@given(model=st.one_of(
    st.from_regex(r"tiny-random/[a-z_]{1,10}", fullmatch=True).filter(lambda m: m.split("/")[1] not in FAMILIES),
    st.from_regex(r"\./[a-z]{1,8}", fullmatch=True),
    st.from_regex(r"[a-z]{1,5}/[a-z]{1,5}/[a-z]{1,5}", fullmatch=True)))
def test_an_unknown_model_fails_the_dry_run(tmp_path_factory, capsys, model):
    tmp = tmp_path_factory.mktemp("model")
    line = _dry_run_error(tmp, STUDY.replace("model: demo", f"model: {model}"), capsys)
    assert "key 'models[0].model'" in line and (model.split("/")[-1] in line or model in line), line


@FEW
@given(inner=st.lists(st.sampled_from(["out", "a", "b.c"]), min_size=0, max_size=2),
       field=st.sampled_from(["source", "videos"]))
def test_an_output_folder_inside_a_benchmark_folder_is_refused(tmp_path_factory, capsys, inner, field):
    tmp = tmp_path_factory.mktemp("inside")
    (tmp / "src").mkdir()
    (tmp / "src" / "q.json").write_text("{}")
    text = STUDY.replace("    generate: {questions: 2, seed: 1}\n", f"    source: {tmp / 'src'}\n" + (
        f"    videos: {tmp / 'src'}\n" if field == "videos" else ""))
    out = Path(tmp / "src", *inner)
    path = tmp / "study.yaml"
    path.write_text(text)
    before = _files(tmp / "src")
    capsys.readouterr()
    for extra in (["--dry-run"], []):
        line = _one_line_error(capsys, main(["run", str(path), "--out", str(out), *extra]), "run")
        assert "benchmarks[0]." in line and f"output folder {out} is inside" in line, line
    assert _files(tmp / "src") == before


def test_a_changed_budget_redoes_explain_and_keeps_the_users_notes(tmp_path, capsys):
    from vqa_shap.hub import folder as hub

    path, out = tmp_path / "study.yaml", tmp_path / "out"
    path.write_text(STUDY)
    assert main(["run", str(path), "--out", str(out), "--no-progress"]) == 0
    notes = {out / "notes.md": "mine", out / "benchmarks" / "synthetic" / "source" / "notes.md": "mine too"}
    for file, text in notes.items():
        file.write_text(text)
    budgets = [set(hub.load_config(out / "attributions", "demo__synthetic")["budget"])]
    for budget, seed in ((40, 1), (60, 2)):  # the budget, then the budget and the generated source, change
        path.write_text(STUDY.replace("budget: 8", f"budget: {budget}").replace("seed: 1}", f"seed: {seed}}}"))
        capsys.readouterr()
        assert main(["run", str(path), "--out", str(out), "--no-progress"]) == 0, capsys.readouterr().err
        assert "discarded" in capsys.readouterr().out
        budgets.append(set(hub.load_config(out / "attributions", "demo__synthetic")["budget"]))
    assert budgets[1:] == [{40}, {60}] and not budgets[0] & {40, 60}, budgets  # each run's own budget
    assert main(["run", str(path), "--out", str(out), "--no-progress"]) == 0
    assert "0 step(s) run" in capsys.readouterr().out
    assert all(file.read_text() == text for file, text in notes.items())


# --------------------------------------------------------------------------------------------
# class 3: interactions at small budgets


def _pair_game(n: int, seed: int):
    import numpy as np

    rng = np.random.default_rng(seed)
    w, pairs = rng.normal(size=n), np.triu(rng.normal(size=(n, n)), 1)

    def value(coalitions):
        c = np.asarray(coalitions, dtype=float)
        return np.stack([c @ w + np.einsum("bi,ij,bj->b", c, pairs, c), np.tanh(c @ w)], axis=1)

    return value


@settings(max_examples=12, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(n=st.integers(3, 8), budget=st.integers(4, 300), seed=st.integers(0, 3),
       approximator=st.sampled_from(["KernelSHAPIQ", "InconsistentKernelSHAPIQ", "SVARMIQ", "SHAPIQ",
                                     "PermutationSamplingSII"]))
def test_a_small_interaction_budget_is_raised_and_said(n, budget, seed, approximator, caplog):
    import logging

    import numpy as np

    from vqa_shap.game import Game
    from vqa_shap.interactions import index
    from vqa_shap.interactions.index import exact_interactions, interactions, min_approximation_budget

    index._RAISED.clear()
    exact = exact_interactions(Game(_pair_game(n, seed), n))
    with caplog.at_level(logging.WARNING, logger="vqa_shap"):
        caplog.clear()
        result = interactions(Game(_pair_game(n, seed), n), budget, approximator=approximator, seed=seed)
    need = min(min_approximation_budget(n), 2 ** n)
    assert result.budget >= need
    assert (budget < need) == any("too small for pairwise interactions" in r.getMessage() for r in caplog.records)
    assert not np.all(result.values == 0)  # PermutationSamplingSII returned zeros below a permutation's cost
    if result.estimator == "exact":
        np.testing.assert_allclose(result.values, exact.values, atol=1e-9)
    elif "Kernel" in approximator:  # regression on twice its unknowns: near the exact pair values
        error = np.abs(result.values[:, 0] - exact.values[:, 0]).mean() / np.abs(exact.values[:, 0]).mean()
        assert error < 0.5, error


# --------------------------------------------------------------------------------------------
# class 4: what a run costs, and a sign of life without a progress bar


@settings(max_examples=4, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(frames=st.integers(9, 24))
def test_repeated_frames_and_a_raised_budget_are_said_up_front(ws, tmp_path_factory, caplog, monkeypatch, frames):
    import logging

    from vqa_shap.explain import question as question_module

    monkeypatch.setattr(question_module.Heartbeat, "every", 0.0)  # every scored batch says so
    tmp = tmp_path_factory.mktemp("cost")
    argv = ["explain", str(ws["Q"]), "--video-root", str(ws["V"]), "--out", str(tmp / "out"), *EXPLAIN]
    argv[argv.index("--frames") + 1] = str(frames)
    with caplog.at_level(logging.INFO, logger="vqa_shap"):
        caplog.clear()
        assert main(argv) == 0
    said = [r.getMessage() for r in caplog.records]
    repeats = [m for m in said if "distinct frame" in m]
    assert len(repeats) == 1 and f"{frames} frames requested but its video has only 8" in repeats[0]
    assert "players instead of" in repeats[0]
    cost = [m for m in said if "more than --budget 8" in m]
    assert len(cost) == 1 and "--strict-budget" in cost[0]
    assert any("coalitions scored so far" in m for m in said)


# --------------------------------------------------------------------------------------------
# class 7: options accepted and ignored


@FEW
@given(detector=st.sampled_from(["diff", "content", "adaptive"]), command=st.sampled_from(["explain", "features"]))
def test_a_shot_detector_without_shot_players_is_refused(ws, tmp_path_factory, capsys, detector, command):
    tmp = tmp_path_factory.mktemp("shots")
    if command == "explain":
        argv = ["explain", str(ws["Q"]), "--video-root", str(ws["V"]), "--out", str(tmp / "out"), *EXPLAIN]
    else:
        argv = ["features", str(ws["Q"]), "--config", CONFIG, "--video-root", str(ws["V"]),
                "--json", str(tmp / "out" / "f.json")]
    capsys.readouterr()
    line = _one_line_error(capsys, main(argv + ["--shot-detector", detector]), command)
    assert detector in line and "shots" in line
    assert not (tmp / "out").exists()


@FEW
@given(detector=st.sampled_from(["diff", "content", "adaptive"]), where=st.sampled_from(["top", "model"]))
def test_a_study_with_a_shot_detector_without_shot_players_fails_the_dry_run(tmp_path_factory, capsys, detector,
                                                                              where):
    text = (STUDY.replace("threads: 1}", f"threads: 1, shot_detector: {detector}}}") if where == "top" else
            STUDY.replace("  - model: demo\n", f"  - model: demo\n    explain: {{shot_detector: {detector}}}\n"))
    line = _dry_run_error(tmp_path_factory.mktemp("shots"), text, capsys)
    assert "key 'models[0].explain.shot_detector'" in line and "needs players: shots" in line, line


@FEW
@given(name=st.text("abcdefghijklmnopqrstuvwxyz_0123456789", min_size=1, max_size=12).filter(
    lambda n: n not in FAMILIES))
def test_features_refuses_an_unknown_loader(ws, tmp_path_factory, capsys, name):
    out = tmp_path_factory.mktemp("loader") / "f.json"
    capsys.readouterr()
    line = _one_line_error(capsys, main(["features", str(ws["Q"]), "--config", CONFIG, "--loader", name,
                                         "--json", str(out)]), "features")
    assert f"unknown loader {name!r}" in line and not out.exists()


@FEW
@given(config=st.one_of(st.none(), st.just("{oops"), st.just('{"model_type": "clip"}'), st.just("[]")))
def test_an_aks_scorer_folder_that_is_no_model_stops_the_run_once(ws, tmp_path_factory, capsys, config):
    tmp = tmp_path_factory.mktemp("aks")
    (tmp / "clip").mkdir()
    (tmp / "clip" / "notes.txt").write_text("not a model")
    if config is not None:
        (tmp / "clip" / "config.json").write_text(config)
    argv = ["explain", str(ws["Q"]), "--video-root", str(ws["V"]), "--out", str(tmp / "out"), *EXPLAIN,
            "--sampler", "aks", "--aks-scorer", f"clip:{tmp / 'clip'}"]
    capsys.readouterr()
    line = _one_line_error(capsys, main(argv), "explain")
    assert str(tmp / "clip") in line
    assert not (tmp / "out" / "README.md").exists()  # no config with an error row per question


# --------------------------------------------------------------------------------------------
# class 8: inputs that deserve a notice


def test_features_says_when_frames_repeat_and_when_qids_repeat(tmp_path, capsys, caplog):
    import dataclasses
    import logging

    from vqa_shap.hub.folder import write_questions
    from vqa_shap.synthetic_inputs import synthesize_inputs

    questions = _questions(3)
    questions[2] = dataclasses.replace(questions[2], qid="q0")
    write_questions(tmp_path / "qs", CONFIG, questions)
    synthesize_inputs(_questions(3), tmp_path / "videos", n_frames=1, size=(32, 32), seed=0)
    with caplog.at_level(logging.WARNING, logger="vqa_shap"):
        assert main(["features", str(tmp_path / "qs"), "--config", CONFIG, "--video-root", str(tmp_path / "videos"),
                     "--frames", "4", "--json", str(tmp_path / "f.json")]) == 0
    out = capsys.readouterr().out
    assert "q1: its video has only 1 distinct frame(s) for 4 requested" in out
    assert any("1 qid(s) appear more than once ('q0')" in r.getMessage() for r in caplog.records)
    entries = json.loads((tmp_path / "f.json").read_text())["questions"]
    assert [e["qid"] for e in entries] == ["q0", "q1", "q0"] and all("distinct frame" in e["note"] for e in entries)


@FEW
@given(value=st.sampled_from([0.0, 0.25, -1.5]), row=st.integers(0, 3))
def test_rank_on_frames_of_equal_value_says_no_information(ws, tmp_path_factory, capsys, value, row):
    from vqa_shap.hub import folder as hub

    tmp = tmp_path_factory.mktemp("rank")
    rows = hub.load_config(ws["A"], ATTRS).to_list()
    for i, feature in enumerate(rows[row]["features"]):
        if feature["modality"] == "video":
            rows[row]["shapley"][i] = [value] * len(rows[row]["shapley"][i])
    _write_attributions(ws, tmp / "a", rows)
    capsys.readouterr()
    assert main(["rank", str(tmp / "a"), "--config", ATTRS, "--ranker", "shapley", "--against", "shapley",
                 "--json", str(tmp / "r.json")]) == 0
    result = json.loads((tmp / "r.json").read_text())
    assert result["summary"]["n_errors"] == 1
    failed = [q for q in result["questions"] if q["error"]]
    assert [q["qid"] for q in failed] == [f"q{row}"] and "no information" in failed[0]["error"]
    assert failed[0]["spearman"] is None


# --------------------------------------------------------------------------------------------
# class 9: a full disk or an unwritable cache names the path


def _disk_full(errno_code: int):
    import os

    def full(*args, **kwargs):
        raise OSError(errno_code, os.strerror(errno_code))  # as a write() on a full disk: no file name

    return full


@FEW
@given(errno_name=st.sampled_from(["ENOSPC", "EDQUOT"]), command=st.sampled_from(["features", "report", "build",
                                                                                    "view", "metrics"]))
def test_a_full_disk_names_the_path_and_leaves_no_partial_output(ws, tmp_path_factory, capsys, errno_name, command):
    import errno

    from vqa_shap import atomic_files as io
    from vqa_shap.hub import folder as hub
    from vqa_shap.analysis import report
    from vqa_shap.builders import SAMPLE_DIR
    from vqa_shap.view import site

    tmp = tmp_path_factory.mktemp("full")
    full = _disk_full(getattr(errno, errno_name))
    target, argv = {
        "features": (tmp / "f.json", ["features", str(ws["Q"]), "--config", CONFIG, "--json", str(tmp / "f.json")]),
        "metrics": (tmp / "m.json", ["metrics", str(ws["A"]), "--bootstrap", "0", "--json", str(tmp / "m.json")]),
        "report": (tmp / "rep", ["report", str(ws["A"]), "--out", str(tmp / "rep"), "--bootstrap", "0",
                                 "--no-progress"]),
        "view": (tmp / "site", ["view", str(ws["A"]), "--out", str(tmp / "site"), "--bootstrap", "0", "--no-progress"]),
        "build": (tmp / "built", ["build", "egoschema", str(SAMPLE_DIR), "--out", str(tmp / "built")]),
    }[command]
    patch = {"features": (io.os, "fsync"), "metrics": (io.os, "fsync"), "report": (report, "plot_modality_shares"),
             "view": (site, "_copy_assets"), "build": (hub, "_write_shards")}[command]
    mp = pytest.MonkeyPatch()
    mp.setattr(*patch, full)
    try:
        capsys.readouterr()
        line = _one_line_error(capsys, main(argv), command)
    finally:
        mp.undo()
    assert str(target) in line and ("no space left" in line or "quota" in line), line
    assert not target.exists()
    assert sorted(p.name for p in tmp.iterdir()) == []


@FEW
@given(errno_name=st.sampled_from(["EROFS", "EACCES", "ENOSPC"]))
def test_an_unwritable_datasets_cache_is_named_as_the_cache(ws, capsys, errno_name):
    import errno
    import os

    import datasets

    cache = datasets.config.HF_DATASETS_CACHE
    code = getattr(errno, errno_name)

    def unwritable(*args, **kwargs):
        try:
            raise OSError(code, os.strerror(code), os.path.join(str(cache), "parquet", "lock"))
        except OSError as exc:
            raise datasets.exceptions.DatasetGenerationError("An error occurred while generating the dataset") from exc

    mp = pytest.MonkeyPatch()
    mp.setattr(datasets, "load_dataset", unwritable)
    try:
        capsys.readouterr()
        line = _one_line_error(capsys, main(["metrics", str(ws["A"]), "--bootstrap", "0"]), "metrics")
    finally:
        mp.undo()
    assert "datasets cache folder" in line and str(cache) in line and "HF_DATASETS_CACHE" in line, line
    assert "cannot be loaded as the card" not in line
