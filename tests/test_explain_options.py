"""The explain options are declared once (vqa_shap.explain_options): the command line, the study file and
ExplainRun derive their arguments, keys, defaults, bounds and checks from that declaration."""

from __future__ import annotations

import dataclasses
import textwrap
from pathlib import Path

import pytest

from vqa_shap.explain_options import EXPLAIN_OPTIONS, MAX_PLAYERS, OPTIONS, study_options


def _explain_parser():
    from vqa_shap.cli import build_parser

    parser = build_parser("explain")
    return parser._subparsers._group_actions[0].choices["explain"]


def _actions():
    return {a.dest: a for a in _explain_parser()._actions if a.dest != "help"}


def test_every_option_is_an_explain_argument_with_its_default_bounds_and_help():
    actions = _actions()
    assert set(actions) == set(OPTIONS)  # no argument outside the declaration, none missing
    for option in EXPLAIN_OPTIONS:
        action = actions[option.name]
        if not option.positional:
            assert action.option_strings == [option.cli_flag] and action.default == option.default, option.name
            assert action.required == option.required, option.name
        assert action.help.replace("%%", "%") == option.help_text(), option.name
        if option.low is not None:
            assert (action.type.low, action.type.high) == (option.low, option.high), option.name
            assert f"{option.low} to {option.high}" in option.help_text() or option.high is None
        assert tuple(action.choices or ()) == tuple(option.choices or ()), option.name


def test_interactions_takes_the_shared_options_as_declared(capsys):
    """``vqa-shap interactions`` derives the options it shares with explain from the declaration: the same
    flag, default, bounds, check and help (budget and name: another help, the rest as declared; budget:
    interactions' own default, a game of k players, not explain's)."""
    from vqa_shap.interactions.interactions_run import DEFAULT_BUDGET
    from vqa_shap.cli import build_parser, main
    from vqa_shap.commands.interactions import SHARED

    parser = build_parser("interactions")._subparsers._group_actions[0].choices["interactions"]
    actions = {a.dest: a for a in parser._actions}
    for name in (*SHARED, "budget", "name"):
        option, action = OPTIONS[name], actions[name]
        if not option.positional:
            default = DEFAULT_BUDGET if name == "budget" else option.default
            assert action.option_strings == [option.cli_flag] and action.default == default, name
        if name not in ("budget", "name"):
            assert action.help.replace("%%", "%") == option.help_text(), name
        if option.low is not None:
            assert (action.type.low, action.type.high) == (option.low, option.high), name
    from vqa_shap.commands import argtypes

    # the Shapley values of a top-k game: explain's budget and estimator under another flag
    assert actions["phi_budget"].default == DEFAULT_BUDGET != OPTIONS["budget"].default
    assert (actions["phi_budget"].type.low, actions["phi_budget"].type.high) == (1, OPTIONS["budget"].high)
    assert actions["phi_estimator"].default == OPTIONS["estimator"].default
    assert actions["phi_estimator"].type is argtypes.estimator
    assert main(["interactions", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    for name in ("frames", "seed", "batch_size", "dtype", "protocol"):
        assert " ".join(OPTIONS[name].help_text().split()) in text, name
    assert f"frames per question (1 to {MAX_PLAYERS}; default: 8)" in text
    assert f"evaluations per question; exact when 2^k <= budget (1 to {OPTIONS['budget'].high}; default: 256)" in text


@pytest.mark.parametrize("command", ["rank", "mask-bench"])
def test_commands_that_replan_frames_take_the_declared_frame_options(command):
    """rank and mask-bench re-plan an attributions config's frames: explain's --frames, --sampler and
    --shot-detector with their declared checks and bounds, by default the card's value (None)."""
    from vqa_shap.cli import build_parser
    from vqa_shap.commands import argtypes

    parser = build_parser(command)._subparsers._group_actions[0].choices[command]
    actions = {a.dest: a for a in parser._actions}
    for name in ("frames", "sampler", "shot_detector"):
        action = actions[name]
        assert action.option_strings == [OPTIONS[name].cli_flag] and action.default is None, name
        assert action.type is getattr(argtypes, OPTIONS[name].cli_type), name
        assert "as recorded in the attributions card" in action.help, name


def test_explain_help_lists_every_flag(capsys):
    from vqa_shap.cli import main

    assert main(["explain", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    for option in EXPLAIN_OPTIONS:
        assert (option.name.upper() if option.positional else option.cli_flag) in text
    assert f"frames per question (1 to {MAX_PLAYERS}; default: 8)" in text


def test_the_study_explain_section_is_the_study_options_with_their_defaults():
    from vqa_shap.study.spec import ExplainSpec

    fields = {f.name: f.default for f in dataclasses.fields(ExplainSpec)}
    assert fields == {o.name: o.default for o in study_options()}
    assert "aks_scorer" in fields and "threads" in fields


def test_explain_run_defaults_are_the_declared_ones():
    from vqa_shap.explain.explain_run import ExplainRun

    fields = {f.name: f.default for f in dataclasses.fields(ExplainRun)}
    for option in EXPLAIN_OPTIONS:
        if option.run_field and not option.required and not option.positional:
            assert fields[option.name] == option.default, option.name


def test_the_frame_limit_is_the_player_limit_everywhere(tmp_path, capsys):
    from vqa_shap.commands import argtypes
    from vqa_shap.explain.explain_run import ExplainRun
    from vqa_shap.explain.workdir import ExplainInputError
    from vqa_shap.explain import question  # the module

    assert question.MAX_PLAYERS is MAX_PLAYERS and OPTIONS["frames"].high == MAX_PLAYERS
    assert argtypes.frames(str(MAX_PLAYERS)) == MAX_PLAYERS
    ExplainRun("q", "c", model="m", video_root="v", out="o", frames=MAX_PLAYERS)  # accepted
    with pytest.raises(ExplainInputError, match=f"frames: must be between 1 and {MAX_PLAYERS}, got {MAX_PLAYERS + 1}"):
        ExplainRun("q", "c", model="m", video_root="v", out="o", frames=MAX_PLAYERS + 1)
    err = _study_error(tmp_path, capsys, f"explain: {{frames: {MAX_PLAYERS + 1}}}\n")
    assert f"key 'explain.frames': must be between 1 and {MAX_PLAYERS}, got {MAX_PLAYERS + 1}" in err


BASE = "models: [{model: demo}]\nbenchmarks: [{builder: synthetic, generate: {questions: 2}}]\n"


def _study(tmp_path: Path, text: str):
    from vqa_shap.study.spec import load_study

    path = tmp_path / "study.yaml"
    path.write_text(textwrap.dedent(BASE + text))
    return load_study(path)


def _study_error(tmp_path: Path, capsys, text: str) -> str:
    from vqa_shap.cli import main

    path = tmp_path / "bad.yaml"
    path.write_text(BASE + text)
    assert main(["run", str(path), "--out", str(tmp_path / "out"), "--dry-run"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(path) in err, err
    return err


def _cli_error(capsys, flag: str, value: str) -> str:
    from vqa_shap.cli import main

    assert main(["explain", ".", "--config", "c", "--model", "m", "--video-root", ".", "--out", "o", flag, value]) == 2
    return capsys.readouterr().err.strip().splitlines()[-1]


@pytest.mark.parametrize("name", [o.name for o in study_options() if o.kind is int])
def test_an_integer_out_of_bounds_gets_the_same_reason_from_the_cli_and_the_study(name, tmp_path, capsys):
    option = OPTIONS[name]
    for bad in [option.low - 1] + ([option.high + 1] if option.high is not None else []):
        reason = f"must be between {option.low} and {option.high}, got {bad}"
        assert f"argument {option.cli_flag}: {reason}" in _cli_error(capsys, option.cli_flag, str(bad))
        assert f"key 'explain.{name}': {reason}" in _study_error(tmp_path, capsys, f"explain: {{{name}: {bad}}}\n")


@pytest.mark.parametrize("name, bad, reason", [
    ("estimator", "guess", "unknown estimator 'guess'; valid estimators: "),
    ("protocol", "mine", "unknown protocol 'mine'; valid protocols: pollard2025"),
    ("sampler", "zigzag", "unknown sampler 'zigzag'; valid samplers: "),
    ("dtype", "float8", "unknown dtype 'float8'; valid: auto, "),
    ("device", "gpu", "unknown device 'gpu'; valid: auto, cpu, cuda, cuda:N, mps"),
    ("aks_scorer", "clip:/no/such/folder", "/no/such/folder"),
    ("shot_detector", "cuts", "unknown shot detector 'cuts'; valid shot detectors: diff"),
])
def test_a_bad_name_gets_the_same_reason_from_the_cli_and_the_study(name, bad, reason, tmp_path, capsys):
    option = OPTIONS[name]
    assert reason in _cli_error(capsys, option.cli_flag, bad)
    err = _study_error(tmp_path, capsys, f"explain: {{{name}: '{bad}'}}\n")
    assert f"key 'explain.{name}': " in err and reason in err


def test_a_study_file_sets_the_aks_scorer_and_the_run_receives_it(tmp_path):
    from vqa_shap.explain_options import run_arguments

    clip = tmp_path / "clip"
    clip.mkdir()
    (clip / "config.json").write_text('{"model_type": "clip"}')  # the scorer's folder is checked at parse
    study = _study(tmp_path, f"explain: {{sampler: aks, aks_scorer: 'clip:{clip}'}}\n")
    spec = study.models[0].explain
    assert spec.sampler == "aks" and spec.aks_scorer == f"clip:{clip}"
    assert run_arguments(spec)["aks_scorer"] == f"clip:{clip}" and "threads" not in run_arguments(spec)
    assert spec.numbers()["aks_scorer"] == f"clip:{clip}"  # a changed scorer redoes the explain step
    assert _study(tmp_path, "explain: {sampler: aks, aks_scorer: model}\n").models[0].explain.aks_scorer == "model"


def test_an_unknown_explain_key_lists_every_study_option(tmp_path, capsys):
    err = _study_error(tmp_path, capsys, "explain: {budgte: 8}\n")
    assert "valid keys: " + ", ".join(o.name for o in study_options()) in err


def test_every_setting_that_determines_the_numbers_is_recorded_in_the_work_settings():
    from vqa_shap.explain.workdir import ExplainSettings
    from vqa_shap.explain_options import result_options

    recorded = {f.name for f in dataclasses.fields(ExplainSettings)}
    renamed = {"frames": "n_frames"}
    assert {renamed.get(o.name, o.name) for o in result_options()} <= recorded


def test_the_on_error_policies_are_the_builders_own(tmp_path, capsys):
    from vqa_shap.builders.base import ON_ERROR
    from vqa_shap.cli import build_parser, main

    build = build_parser("build")._subparsers._group_actions[0].choices["build"]
    assert next(a for a in build._actions if a.dest == "on_error").choices is ON_ERROR
    text = "models: [{model: demo}]\nbenchmarks: [{builder: synthetic, generate: {}, on_error: ignore}]\n"
    path = tmp_path / "s.yaml"
    path.write_text(text)
    assert main(["run", str(path), "--out", str(tmp_path / "out"), "--dry-run"]) == 2
    assert f"valid on_error values: {', '.join(ON_ERROR)}" in capsys.readouterr().err


def test_the_options_table_in_the_docs_is_generated_from_the_declaration():
    from vqa_shap.explain_options import DOC_END, DOC_START, options_table

    text = (Path(__file__).resolve().parents[1] / "docs" / "explain.md").read_text(encoding="utf-8")
    committed = text[text.index(DOC_START) + len(DOC_START):text.index(DOC_END)].strip()
    assert committed == options_table(), "regenerate it: python scripts/docs_options.py"
    for option in study_options():
        assert f"| `{option.cli_flag}` | `{option.name}` |" in committed
