"""The study file: what ``vqa-shap run STUDY.yaml`` runs, parsed from YAML into typed frozen dataclasses.

Every value is checked when the file is read, before any work: a bad file is one
:class:`StudyError` naming the file, the key (``models[0].loader``) and, for a name, the valid ones
(the registries' own messages). Relative paths are relative to the study file's folder.
"""

from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Hashable, Mapping

from vqa_shap.errors import UsageError
from vqa_shap.explain_options import result_options, study_options

#: The study files shipped with vqa-shap (``vqa-shap run demo``): name -> file in this package.
BUNDLED = {"demo": "demo.yaml"}
#: Benchmarks whose source a study can generate (``generate:``): builder -> ``module:function``.
GENERATORS = {"synthetic": "vqa_shap.builders.shapes:generate_source"}


class StudyError(UsageError):
    """A study file that cannot be run (exit status 2); the message names the file and the key."""


def _numbers(self) -> dict[str, Any]:
    """The settings that determine the attributions (not batch size, device or threads)."""
    return {o.name: getattr(self, o.name) for o in result_options()}


#: The explain settings of one model (``explain:``, with the model's own ``explain:`` on top): a frozen
#: dataclass derived from the declared options a study may set (:func:`vqa_shap.explain_options.study_options`).
ExplainSpec = dataclasses.make_dataclass(
    "ExplainSpec", [(o.name, o.kind if o.default is not None else o.kind | None, dataclasses.field(default=o.default))
                    for o in study_options()],
    frozen=True, namespace={"numbers": _numbers})
ExplainSpec.__module__ = __name__


@dataclass(frozen=True)
class ModelSpec:
    """A model: ``name`` (its attributions configs are ``<name>__<questions config>``), the ``model``
    (``demo``, ``tiny-random/<family>``, a checkpoint folder or Hub id), its ``loader`` family
    (``None``: from the checkpoint) and its explain settings."""

    name: str
    model: str
    loader: str | None
    explain: ExplainSpec


@dataclass(frozen=True)
class GenerateSpec:
    """A generated source (``generate:``): ``questions`` questions from ``seed``."""

    questions: int = 12
    seed: int = 0


@dataclass(frozen=True)
class BenchmarkSpec:
    """A benchmark: ``name`` (its folder under ``OUT/benchmarks/``), the ``builder``, its ``source`` folder
    (or ``generate`` to write one), the ``videos`` root (default: the source), an optional ``subset``
    CSV and the builder's ``on_error`` policy."""

    name: str
    builder: str
    source: Path | None = None
    generate: GenerateSpec | None = None
    videos: Path | None = None
    subset: Path | None = None
    on_error: str = "raise"


@dataclass(frozen=True)
class AugmentSpec:
    """How variants are drawn: ``seed`` and ``dedupe`` (``False``: the paper's sampling)."""

    seed: int = 0
    dedupe: bool = True


@dataclass(frozen=True)
class MetricsSpec:
    """``metrics:`` (``vqa-shap metrics``): bootstrap resamples, interval level, seed, paper-compatible ratio."""

    bootstrap: int = 1000
    confidence: float = 0.95
    seed: int = 0
    paper_compat: bool = False


@dataclass(frozen=True)
class ReportSpec:
    """``report:`` (``vqa-shap report``): per-question images per config, bootstrap resamples."""

    max_questions: int | None = 3
    bootstrap: int = 200


@dataclass(frozen=True)
class ViewSpec:
    """``view:`` (``vqa-shap view``): bootstrap resamples of the index's intervals, the index heading."""

    bootstrap: int = 200
    title: str = "vqa-shap study"


@dataclass(frozen=True)
class Study:
    """A study: every model × benchmark × variant, explained, measured and drawn.

    Attributes:
        path: the study file.
        name: the study's name.
        models, benchmarks: what to explain on what.
        variants: ``original``, ``easy``, ``hard_<N>`` (in the file's order).
        augment: how variants are drawn.
        metrics, report, view: what to draw (``None``: not drawn).
        out: the output folder the file names (``None``: the caller's choice).
    """

    path: Path
    name: str
    models: tuple[ModelSpec, ...]
    benchmarks: tuple[BenchmarkSpec, ...]
    variants: tuple[str, ...]
    augment: AugmentSpec = AugmentSpec()
    metrics: MetricsSpec | None = MetricsSpec()
    report: ReportSpec | None = ReportSpec()
    view: ViewSpec | None = None
    out: Path | None = None


# --------------------------------------------------------------------------------------------
# reading


def find_study(name_or_path: str | os.PathLike) -> Path:
    """The study file a user named: a bundled study (:data:`BUNDLED`) or a path."""
    text = str(name_or_path)
    if text in BUNDLED and not Path(text).is_file():
        return Path(__file__).resolve().parent / BUNDLED[text]
    path = Path(text)
    if not path.is_file():
        hint = f"; bundled studies: {', '.join(BUNDLED)}"
        raise StudyError(f"{path}: no such study file" + (" (it is a folder)" if path.is_dir() else "") + hint)
    return path


def load_study(name_or_path: str | os.PathLike) -> Study:
    """Read and check a study file (YAML); see docs/study.md for its keys.

    Raises:
        StudyError: the file is missing, is not YAML, or a key is unknown, missing or has a bad value.
    """
    import yaml

    path = find_study(name_or_path)
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_unique_keys_loader())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        raise StudyError(f"{path}: not valid YAML{where}: {getattr(exc, 'problem', None) or exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise StudyError(f"{path}: cannot read the study file: {exc}") from None
    return _Reader(path).study(data)


#: A Hub model id as the Hub spells it: ``name`` or ``owner/name``.
_HUB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*(?:/[A-Za-z0-9][A-Za-z0-9_.-]*)?")


def _unique_keys_loader():
    """A YAML safe loader that refuses a key given twice in one mapping (YAML says keys are unique;
    PyYAML would let the later value win without a word)."""
    import yaml

    class UniqueKeyLoader(yaml.SafeLoader):
        def construct_mapping(self, node, deep=False):
            seen = set()
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=True)
                if isinstance(key, Hashable) and key in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"key {key!r} appears twice in one mapping (the later value would win)",
                        key_node.start_mark)
                seen.add(key)
            return super().construct_mapping(node, deep)

    return UniqueKeyLoader


class _Reader:
    """Checks one file's values; every error names the file and the key."""

    def __init__(self, path: Path):
        self.path, self.base = path, path.resolve().parent

    def fail(self, key: str, reason: str):
        raise StudyError(f"{self.path}: key '{key}': {reason}")

    def mapping(self, value: Any, key: str, valid: tuple[str, ...], required: tuple[str, ...] = ()) -> dict:
        if not isinstance(value, Mapping):
            self.fail(key or "(top level)", f"expected a mapping of keys ({', '.join(valid)}), got {_kind(value)}")
        for k in value:
            if k not in valid:
                self.fail(_join(key, k), f"unknown key; valid keys: {', '.join(valid)}")
        for k in required:
            if value.get(k) is None:
                self.fail(_join(key, k), "missing (required)")
        return dict(value)

    def section(self, cls, value: Any, key: str, checks: Mapping[str, Callable], base=None):
        """A dataclass from a mapping (``True``: the defaults, ``False``/absent: ``None``)."""
        if value is False or value is None:
            return None
        if value is True:
            return base if base is not None else cls()
        fields = [f.name for f in dataclasses.fields(cls)]
        data = self.mapping(value, key, tuple(fields))
        return dataclasses.replace(base if base is not None else cls(),
                                   **{k: checks[k](v, _join(key, k)) for k, v in data.items()})

    def study(self, data: Any) -> Study:
        from vqa_shap.study.checks import section_checks

        top = self.mapping(data, "", ("name", "models", "benchmarks", "variants", "explain", "augment", "metrics",
                                      "report", "view", "out"), required=("models", "benchmarks"))
        checks = section_checks(self)
        name = checks["name"](top.get("name", self.path.stem), "name")
        explain = self.section(ExplainSpec, top.get("explain", True), "explain", checks["explain"])
        models = self.entries(top["models"], "models", lambda v, k: self.model(v, k, explain, checks))
        benchmarks = self.entries(top["benchmarks"], "benchmarks", lambda v, k: self.benchmark(v, k, checks))
        variants = checks["variants"](top.get("variants", ["original"]), "variants")
        return Study(
            path=self.path, name=name, models=models, benchmarks=benchmarks, variants=variants,
            augment=self.section(AugmentSpec, top.get("augment", True), "augment", checks["augment"]),
            metrics=self.section(MetricsSpec, top.get("metrics", True), "metrics", checks["metrics"]),
            report=self.section(ReportSpec, top.get("report", True), "report", checks["report"]),
            view=self.section(ViewSpec, top.get("view", False), "view", checks["view"]),
            out=self.path_value(top["out"], "out") if top.get("out") is not None else None,
        )

    def entries(self, value: Any, key: str, read: Callable) -> tuple:
        if not isinstance(value, list) or not value:
            self.fail(key, f"expected a non-empty list, got {_kind(value)}")
        items = tuple(read(v, f"{key}[{i}]") for i, v in enumerate(value))
        names = [item.name for item in items]
        for i, name in enumerate(names):
            if name in names[:i]:
                self.fail(f"{key}[{i}].name", f"{name!r} is used twice; give each entry its own name")
        return items

    def model(self, value: Any, key: str, explain: ExplainSpec, checks) -> ModelSpec:
        from vqa_shap.explain.workdir import model_slug

        data = self.mapping(value, key, ("name", "model", "loader", "explain"), required=("model",))
        model = checks["model"](data["model"], _join(key, "model"))
        loader = checks["loader"](data["loader"], _join(key, "loader")) if data.get("loader") else None
        name = checks["name"](data.get("name", model_slug(model)), _join(key, "name"))
        local = Path(os.path.expanduser(model))
        local = local if local.is_absolute() else self.base / local
        if local.is_dir():  # a checkpoint folder, relative to the study file like every path; else a Hub id
            model = str(local)
        self.known_model(model, loader, _join(key, "model"))
        own = self.section(ExplainSpec, data.get("explain", True), _join(key, "explain"), checks["explain"],
                           base=explain)
        if own.shot_detector is not None and own.players != "shots":  # explain would refuse it at the step
            self.fail(_join(key, "explain.shot_detector"), f"{own.shot_detector!r} needs players: shots "
                                                           f"(players is {own.players!r})")
        return ModelSpec(name, model, loader, own)

    def known_model(self, model: str, loader: str | None, key: str) -> None:
        """Refuse a model no explain could load: an unknown tiny-random family, a folder that is not a
        checkpoint (no or unreadable config.json, unknown model_type), a missing path. A Hub id is
        accepted as written (checking it needs the network)."""
        from vqa_shap.loaders.demo_models import DEMO_MODELS
        from vqa_shap.errors import VqaShapError
        from vqa_shap.loaders import LOADERS, TINY_PREFIX, resolve_model

        if model.startswith(TINY_PREFIX):
            family = model[len(TINY_PREFIX):]
            if family not in LOADERS.names():
                self.fail(key, f"unknown tiny-random family {family!r}; valid: {', '.join(LOADERS.names())}")
            return
        if model in DEMO_MODELS:
            return
        if Path(model).is_dir():
            try:
                resolve_model(model, loader)
            except VqaShapError as exc:
                self.fail(key, str(exc))
            return
        if not _HUB_ID.fullmatch(model):
            self.fail(key, f"{model!r} is neither a checkpoint folder (relative to {self.base}) nor a Hub id "
                           "(owner/name), nor demo or tiny-random/<family>")

    def benchmark(self, value: Any, key: str, checks) -> BenchmarkSpec:
        data = self.mapping(value, key, ("name", "builder", "source", "generate", "videos", "subset", "on_error"),
                            required=("builder",))
        builder = checks["builder"](data["builder"], _join(key, "builder"))
        if (data.get("source") is None) == (data.get("generate") is None):
            self.fail(_join(key, "source"), "give either 'source' (a folder) or 'generate' (for "
                      f"{', '.join(GENERATORS)}), not both or neither")
        if data.get("generate") is not None and builder not in GENERATORS:
            self.fail(_join(key, "generate"), f"builder {builder!r} cannot generate its source; "
                      f"builders that can: {', '.join(GENERATORS)}")
        return BenchmarkSpec(
            name=checks["name"](data.get("name", builder), _join(key, "name")), builder=builder,
            source=self.path_value(data["source"], _join(key, "source"), folder=True) if data.get("source") else None,
            generate=self.section(GenerateSpec, data.get("generate"), _join(key, "generate"), checks["generate"]),
            videos=self.path_value(data["videos"], _join(key, "videos"), folder=True) if data.get("videos") else None,
            subset=self.path_value(data["subset"], _join(key, "subset"), file=True) if data.get("subset") else None,
            on_error=checks["on_error"](data.get("on_error", "raise"), _join(key, "on_error")),
        )

    def path_value(self, value: Any, key: str, *, folder: bool = False, file: bool = False) -> Path:
        if not isinstance(value, str) or not value:
            self.fail(key, f"expected a path, got {_kind(value)}")
        path = Path(os.path.expanduser(value))
        path = path if path.is_absolute() else self.base / path
        if folder and not path.is_dir():
            self.fail(key, f"folder {path} does not exist" if not path.exists() else f"{path} is not a folder")
        if file and not path.is_file():
            self.fail(key, f"file {path} does not exist" if not path.exists() else f"{path} is not a file")
        return path


def _join(key: str, sub: str) -> str:
    return f"{key}.{sub}" if key else sub


def _kind(value: Any) -> str:
    return "nothing" if value is None else f"{type(value).__name__} {value!r}"[:80]
