"""The explain options, each declared once: name, type, default, bounds or valid names, help.

``vqa-shap explain``'s arguments (and the command line's value types,
:mod:`vqa_shap.commands.argtypes`), the study file's ``explain:`` keys and their checks, and the
validation of :class:`vqa_shap.explain.ExplainRun` are derived from :data:`EXPLAIN_OPTIONS`, so a
setting cannot drift between them. Importing this is cheap: names are checked by their registries,
imported only when a value is checked.
"""

from __future__ import annotations

import numbers
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from vqa_shap.errors import UsageError, VqaShapError

#: Most players (frames + question words + option words) a question may have, hence most frames.
#: Far above any benchmark question; a game this large cannot be estimated usefully.
MAX_PLAYERS = 4096
#: Largest seed numpy's generators and torch accept everywhere (seeds are unsigned 32-bit).
MAX_SEED = 2**32 - 1
#: Model evaluations per question (a million forward passes are already days of compute).
MAX_BUDGET = 10_000_000
#: Coalitions per forward pass, CPU threads: generous sanity bounds.
MAX_BATCH = 65_536
MAX_THREADS = 1024
DEFAULT_FRAMES = 8
#: Model evaluations per question, chosen from the calibration table of docs/estimators.md: enough for an
#: expected relative error below 0.5 on the trained long-video games (what ``budget``'s help quotes).
DEFAULT_BUDGET = 4096
DEFAULT_BATCH_SIZE = 16
DEFAULT_PROTOCOL = "pollard2025"
#: Video player layouts: one player per sampled frame (the paper's), or per shot.
PLAYERS = ("frames", "shots")

_DEVICE = re.compile(r"^(?:auto|cpu|mps|cuda(?::\d+)?)$")
_CONFIG_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")


class OptionError(UsageError, ValueError):
    """A bad option value; the message is the one-line reason (the caller names the flag or key)."""


def check_range(value: int, low: int, high: int | None) -> int:
    """``value`` if ``low <= value <= high`` (``high=None``: unbounded); else :class:`OptionError`."""
    if value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f">= {low}"
        raise OptionError(f"must be {bound}, got {value}")
    return value


@dataclass(frozen=True)
class Option:
    """One explain setting.

    Attributes:
        name: the ``ExplainRun`` field and study key; the flag is ``--name-with-dashes``.
        kind: ``int``, ``float`` (a positive number), ``str``, ``bool`` or ``Path``.
        default: the default (``None``: automatic, said in ``help``).
        help: one line for ``--help``; the bounds and the default are appended.
        low, high: bounds of an integer (``high=None``: unbounded).
        choices: the valid values of a fixed-choice option.
        validate: checks (and normalises) a string value, raising :class:`OptionError` (names by their
            registries, device and dtype names, detector and scorer specs).
        cli_type: the name of its command-line type in :mod:`~vqa_shap.commands.argtypes` (which, for
            an integer or a checked string, is built from this option's bounds or ``validate``).
        required, positional: command-line shape.
        study: a study file's ``explain:`` may set it.
        result: it determines the attributions' numbers (recorded; a study step redoes work on a change).
        run_field: it is a field of ``ExplainRun`` (``threads`` is applied by the caller instead).
        flag: the command-line flag when not derived from the name (``--no-progress`` stores ``False``).
    """

    name: str
    kind: type
    default: Any
    help: str
    low: int | None = None
    high: int | None = None
    choices: tuple[str, ...] | None = None
    validate: Callable[[str], str] | None = None
    cli_type: str | None = None
    required: bool = False
    positional: bool = False
    study: bool = False
    result: bool = False
    run_field: bool = True
    flag: str | None = None

    @property
    def cli_flag(self) -> str:
        return self.flag or "--" + self.name.replace("_", "-")

    def help_text(self) -> str:
        """``help`` with the bounds and the default appended (what ``--help`` shows)."""
        notes = []
        if self.low is not None:
            notes.append(f"{self.low} to {self.high}" if self.high is not None else f">= {self.low}")
        if self.default is not None and self.kind is not bool:
            notes.append(f"default: {self.default}")
        return self.help + (f" ({'; '.join(notes)})" if notes else "")

    def check(self, value: Any) -> Any:
        """``value`` (as a study file or a Python caller gives it) checked and normalised.

        Raises:
            OptionError: its one-line reason.
        """
        if value is None and self.default is None:
            return None
        if self.kind is bool:
            if not isinstance(value, bool):
                raise OptionError(f"expected true or false, got {_show(value)}")
            return value
        if self.kind is int:
            if isinstance(value, bool) or not isinstance(value, numbers.Integral):
                raise OptionError(f"expected an integer, got {_show(value)}")
            return check_range(int(value), self.low, self.high) if self.low is not None else int(value)
        if self.kind is float:
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 < value < float("inf"):
                raise OptionError(f"expected a positive number (e.g. 0.2), got {_show(value)}")
            return float(value)
        if self.kind is Path:
            if not isinstance(value, (str, os.PathLike)) or not str(value):
                raise OptionError(f"expected a path, got {_show(value)}")
            return value
        if not isinstance(value, str) or not value.strip():
            raise OptionError(f"expected a non-empty string, got {_show(value)}")
        if self.choices is not None and value not in self.choices:
            raise OptionError(f"unknown {self.name} value {_show(value)}; valid: {', '.join(self.choices)}")
        return self.validate(value) if self.validate is not None else value


def _show(value: Any) -> str:
    return "nothing" if value is None else repr(value)[:60]


# --------------------------------------------------------------------------------------------
# string checks (each registry words its own "unknown NAME; valid NAMEs: ..." message)


def _registered(get: Callable[[str], Any]) -> Callable[[str], str]:
    def validate(text: str) -> str:
        try:
            get(text)
        except VqaShapError as exc:
            raise OptionError(str(exc)) from None
        return text
    return validate


def _estimator(spec: str):
    """A name or spec ``name:key=value,...`` (:mod:`vqa_shap.estimators.spec`), its options checked by
    building the estimator."""
    from vqa_shap.estimators import get_estimator
    from vqa_shap.estimators.base import EstimatorError

    try:
        return get_estimator(spec)
    except (EstimatorError, TypeError, ValueError) as exc:
        raise OptionError(str(exc)) from None


def _protocol(name: str):
    from vqa_shap.protocol import PROTOCOLS

    return PROTOCOLS.target(name)


def check_sampler(text: str) -> str:
    """A frame sampler name (:data:`vqa_shap.protocol.samplers.SAMPLERS`)."""
    from vqa_shap.protocol.samplers import SAMPLERS

    if text not in SAMPLERS:
        raise OptionError(f"unknown sampler {text!r}; valid samplers: {', '.join(SAMPLERS)}")
    return text


def check_device(text: str) -> str:
    """A torch device: ``auto``, ``cpu``, ``cuda``, ``cuda:N`` or ``mps``."""
    if not _DEVICE.match(text):
        raise OptionError(f"unknown device {text!r}; valid: auto, cpu, cuda, cuda:N, mps")
    return text


def check_dtype(text: str) -> str:
    """A torch dtype name or alias (:data:`vqa_shap.device.DTYPES`), or ``auto``."""
    from vqa_shap.device import _DTYPE_ALIASES, DTYPES

    if text != "auto" and _DTYPE_ALIASES.get(text, text) not in DTYPES:
        raise OptionError(f"unknown dtype {text!r}; valid: auto, {', '.join(DTYPES)} (or {', '.join(_DTYPE_ALIASES)})")
    return text


def check_aks_scorer(text: str) -> str:
    """An AKS relevance scorer: ``model`` or ``clip:PATH`` with PATH a folder (made absolute)."""
    from vqa_shap.long_video.aks import parse_scorer

    try:
        kind, path = parse_scorer(text)
    except VqaShapError as exc:
        raise OptionError(str(exc)) from None
    return kind if path is None else f"{kind}:{Path(path).absolute()}"


def check_shot_detector(text: str) -> str:
    """A shot detector name or ``transnetv2:PATH`` (the weights file loaded and checked now; imports
    torch only then); its spec, the path made absolute."""
    from vqa_shap.long_video.shots import get_detector

    try:
        return get_detector(text).spec
    except VqaShapError as exc:
        raise OptionError(str(exc)) from None


def valid_config_name(text: str) -> str:
    """A config name: letters, digits, ``_``, ``-``, ``.``, starting with a letter or digit (no path)."""
    if not _CONFIG_NAME.match(text) or text == "data":
        raise OptionError(f"invalid name {text!r}: use letters, digits, '_', '-', '.', starting with a letter or "
                          "digit (not 'data')")
    return text


check_estimator = _registered(_estimator)
check_protocol = _registered(_protocol)

_SHOTS_HELP = ("shot detector for --players shots: diff, content, adaptive, transnetv2 (the published weights of the "
               "'shots' extra) or transnetv2:PATH (a TransNet V2 weights .pth; default: transnetv2 with the 'shots' "
               "extra, else diff)")

#: Every option of ``vqa-shap explain`` (and ``ExplainRun``), in ``--help`` order.
EXPLAIN_OPTIONS: tuple[Option, ...] = (
    Option("questions", Path, None, "Hub-style questions folder", cli_type="folder", positional=True),
    Option("config", str, None, "questions config to explain, e.g. hd-epic", validate=valid_config_name,
           cli_type="config_name", required=True),
    Option("model", str, None, "checkpoint id, local save_pretrained folder, demo, demo-long, demo-realistic or "
                               "tiny-random/<family>", required=True),
    Option("video_root", Path, None, "folder the questions' video paths are relative to", cli_type="folder",
           required=True),
    Option("out", Path, None, "Hub-style output folder (other configs in it are kept)", cli_type="out_folder",
           required=True),
    Option("frames", int, DEFAULT_FRAMES, "frames per question", 1, MAX_PLAYERS, cli_type="frames",
           study=True, result=True),
    Option("budget", int, DEFAULT_BUDGET, "model evaluations per question (the cap with --target-error); the "
           "default gives an expected relative error of 0.32-0.47 with permutations (the paper's estimator) on trained "
           "73-74-player games, where 256 gives 1.65-2.42, i.e. noise (calibration table, docs/estimators.md)", 1, MAX_BUDGET,
           cli_type="budget", study=True, result=True),
    Option("target_error", float, None, "keep evaluating (doubling from budget/16) until the estimated relative "
           "error of the chosen option's values is below this (e.g. 0.5), or the next stage would go over --budget, "
           "a hard cap (an estimator whose stages do not reuse earlier coalitions, e.g. text_flips, then ends "
           "below it); each row's relative_error says which (default: spend --budget)", cli_type="target_error", study=True, result=True),
    Option("strict_budget", bool, False, "record an error for a question whose players need more evaluations than "
           "--budget (default: explain it at the estimator's minimum, e.g. 2F+1)", study=True, result=True),
    Option("estimator", str, "default", "Shapley estimator ('default': the member chosen by measured error per "
           "unit of compute on the benchmark games; with video players and a budget of 4 permutations or more a "
           "two-permutation pilot sends a rough game, a trained model's, to 'forest_msr', which reached shap's error "
           "with 3-4x less compute there, docs/estimators.md)", validate=check_estimator, cli_type="estimator",
           study=True, result=True),
    Option("seed", int, 0, "estimator seed, the same for every question", 0, MAX_SEED, cli_type="seed",
           study=True, result=True),
    Option("batch_size", int, DEFAULT_BATCH_SIZE, "coalitions per batched forward", 1, MAX_BATCH,
           cli_type="batch_size", study=True),
    Option("device", str, None, "torch device (default: cuda if available, else cpu)", validate=check_device,
           cli_type="device", study=True),
    Option("dtype", str, None, "torch dtype (default: bfloat16 on GPU, float32 on CPU)", validate=check_dtype,
           cli_type="dtype", study=True, result=True),
    Option("threads", int, None, "CPU threads for torch (default: torch's; 1 is fastest for tiny models or a busy "
           "CPU)", 1, MAX_THREADS, cli_type="threads", study=True, run_field=False),
    Option("loader", str, None, "loader family (default: from the checkpoint)"),
    Option("protocol", str, DEFAULT_PROTOCOL, "protocol", validate=check_protocol, cli_type="protocol",
           study=True, result=True),
    Option("sampler", str, None, "frame sampler (default: the protocol's for the model family)",
           validate=check_sampler, cli_type="sampler", study=True, result=True),
    Option("aks_scorer", str, None, "relevance of candidate frames for --sampler aks: 'model' (default: the "
           "explained model's confidence with one frame) or 'clip:PATH' (a local CLIP/SigLIP folder)",
           validate=check_aks_scorer, cli_type="aks_scorer", study=True, result=True),
    Option("players", str, "frames", "video players: one per sampled frame (the paper's) or one per shot (the "
           "frames of a shot masked together; docs/shots.md)", choices=PLAYERS, study=True, result=True),
    Option("shot_detector", str, None, _SHOTS_HELP, validate=check_shot_detector, cli_type="shot_detector",
           study=True, result=True),
    Option("name", str, None, "output config name (default: <model-slug>__<config>)", validate=valid_config_name,
           cli_type="config_name"),
    Option("work_dir", Path, None, "per-question work files (default: OUT/.work/<name>)", cli_type="out_folder"),
    Option("rank", int, None, "shard index (default: $RANK or $SLURM_PROCID, else 0)", 0, cli_type="shard_rank"),
    Option("world_size", int, None, "number of shards (default: $WORLD_SIZE or $SLURM_NTASKS, else 1)", 1,
           cli_type="positive_int"),
    Option("retry_errors", bool, False, "recompute questions recorded as errors"),
    Option("overwrite", bool, False, "replace an existing config of the same name (finished work files are reused)"),
    Option("restart", bool, False, "discard earlier work files of this config and explain every question again"),
    Option("progress", bool, True, "no progress bar", flag="--no-progress"),
)

#: The options by name.
OPTIONS: dict[str, Option] = {option.name: option for option in EXPLAIN_OPTIONS}


def study_options() -> tuple[Option, ...]:
    """The options a study file's ``explain:`` may set."""
    return tuple(o for o in EXPLAIN_OPTIONS if o.study)


def result_options() -> tuple[Option, ...]:
    """The options that determine the attributions' numbers."""
    return tuple(o for o in EXPLAIN_OPTIONS if o.result)


def run_arguments(values: Any) -> dict[str, Any]:
    """The ``ExplainRun`` keyword arguments among ``values``' attributes (an argparse namespace, a study spec)."""
    return {o.name: getattr(values, o.name) for o in EXPLAIN_OPTIONS if o.run_field and hasattr(values, o.name)}


#: The markers of the options table in docs/explain.md (written by scripts/docs_options.py).
DOC_START, DOC_END = "<!-- explain-options:start -->", "<!-- explain-options:end -->"


def options_table() -> str:
    """The markdown table of every option: flag, study key, type, default, bounds or values, help."""
    lines = ["| option | study key | type | default | valid | what |", "|---|---|---|---|---|---|"]
    for o in EXPLAIN_OPTIONS:
        flag = o.name.upper() if o.positional else o.cli_flag
        valid = (f"{o.low} to {o.high}" if o.high is not None else f">= {o.low}") if o.low is not None else \
            " / ".join(o.choices) if o.choices else ""
        default = "required" if o.required or o.positional else "" if o.default in (None, False, True) \
            else f"`{o.default}`"
        kind = {Path: "path", bool: "flag"}.get(o.kind, o.kind.__name__)
        lines.append(f"| `{flag}` | {f'`{o.name}`' if o.study else ''} | {kind} | {default} | {valid} | "
                     f"{o.help.replace('|', '/').replace('<', '&lt;')} |")
    return "\n".join(lines)
