"""The study's steps, each calling the library function its ``vqa-shap`` command calls: the synthetic
source generator, :func:`~vqa_shap.builders.folder.build_folder` (build),
:func:`~vqa_shap.builders.folder.augment_folder` (augment), :func:`~vqa_shap.explain.explain_questions`
(explain: resumes per question from its work files), :func:`~vqa_shap.analysis.metrics_table.compute`
(metrics), :func:`~vqa_shap.analysis.report_folder.report_folder` (report) and
:func:`~vqa_shap.view.folder.site_from_folder` (view)."""

from __future__ import annotations

import importlib
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, TypeVar

from vqa_shap.study.spec import GENERATORS, BenchmarkSpec, ModelSpec, Study
from vqa_shap.study.steps import Fingerprints, Outcome, Step

T = TypeVar("T")


@dataclass(frozen=True)
class BenchContext:
    """What the steps of one benchmark share: the study, the benchmark and its folders."""

    study: Study
    bench: BenchmarkSpec
    out: Path
    source: Path
    videos: Path
    questions: Path
    attributions: Path
    folder: Path
    prints: Fingerprints
    progress: bool = True


def _configs(folder: Path) -> list[str]:
    from vqa_shap.hub import folder as hub

    try:
        return hub.list_configs(folder)
    except Exception:  # noqa: BLE001 - an unreadable card means nothing usable was written yet
        return []


def _has_config(folder: Path, config: str) -> bool:
    from vqa_shap.hub.card import config_dir

    return config in _configs(folder) and any((folder / config_dir(config)).glob("*.parquet"))


def _staging(target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".tmp-{target.name}-", dir=target.parent))


def _swap(staging: Path, target: Path, write: Callable[[], T]) -> T:
    """``write()`` into ``staging``, then put ``staging`` in the place of ``target``; ``staging`` never stays.
    Files the user added to ``target`` are carried over (:func:`vqa_shap.output_folder.replace_folder`);
    a ``target`` without a manifest was written by an earlier study (it is inside the study's output)."""
    import shutil

    from vqa_shap.output_folder import replace_folder

    try:
        result = write()
        replace_folder(staging, target, "run", legacy_owned=True)
        return result
    finally:
        shutil.rmtree(staging, ignore_errors=True)


# --------------------------------------------------------------------------------------------
# questions: generate, build, augment


def generate_step(ctx: BenchContext) -> Step:
    gen = ctx.bench.generate
    settings = {"generator": GENERATORS[ctx.bench.builder], "questions": gen.questions, "seed": gen.seed}

    def execute() -> Outcome:
        module, _, function = GENERATORS[ctx.bench.builder].partition(":")
        staging = _staging(ctx.source)  # written aside and swapped in: no file of an earlier run is left over
        _swap(staging, ctx.source, lambda: getattr(importlib.import_module(module), function)(
            staging, gen.questions, seed=gen.seed))
        return Outcome(f"{gen.questions} {ctx.bench.builder} questions (seed {gen.seed}) in {ctx.source}")

    return Step(f"generate-{ctx.bench.name}", "generate", f"generate the {ctx.bench.builder} source of "
                f"{ctx.bench.name}", settings, (), lambda: {}, lambda: any(ctx.source.glob("*.json")), execute)


def built_config(ctx: BenchContext, config: str) -> bool:
    """Whether ``config`` of the questions folder was written by this benchmark's builder."""
    from vqa_shap.hub.card import config_vars

    return _has_config(ctx.questions, config) and config_vars(ctx.questions, config).get("builder") == ctx.bench.builder


def built_originals(ctx: BenchContext) -> list[str]:
    """The original (not variant) configs the builder wrote into the questions folder."""
    from vqa_shap.hub.card import config_vars

    return [c for c in _configs(ctx.questions)
            if built_config(ctx, c) and config_vars(ctx.questions, c).get("variant") == "original"]


def build_step(ctx: BenchContext, deps: tuple[str, ...]) -> Step:
    bench = ctx.bench
    settings = {"builder": bench.builder, "on_error": bench.on_error,
                "subset": str(bench.subset) if bench.subset else None}

    def inputs():
        return {"source": ctx.prints.folder(ctx.source),
                "subset": ctx.prints.folder(bench.subset) if bench.subset else None}

    def execute() -> Outcome:
        from vqa_shap.builders.folder import build_folder

        built = build_folder(bench.builder, ctx.source, ctx.questions, subset=bench.subset, on_error=bench.on_error,
                             skip_report=ctx.folder / "skipped.json", overwrite=True)
        configs = ", ".join(f"{i.name} ({i.num_rows})" for i in built.configs)
        return Outcome(f"built {configs} into {ctx.questions}; {built.result.skip_summary()}")

    return Step(f"build-{bench.name}", "build", f"build {bench.name} ({bench.builder}) from {ctx.source}",
                settings, deps, inputs, lambda: bool(built_originals(ctx)), execute)


def augment_step(ctx: BenchContext, original: str, variant: str, config: str, deps: tuple[str, ...]) -> Step:
    augment = ctx.study.augment
    settings = {"source_config": original, "variant": variant, "seed": augment.seed, "dedupe": augment.dedupe}

    def execute() -> Outcome:
        from vqa_shap.builders.folder import augment_folder

        info = augment_folder(ctx.questions, original, variant, seed=augment.seed, dedupe=augment.dedupe,
                              overwrite=True)
        return Outcome(f"{info.name}: {info.num_rows} questions")

    return Step(f"augment-{ctx.bench.name}-{config}", "augment", f"augment {original} -> {config}", settings, deps,
                lambda: {"questions": ctx.prints.config(ctx.questions, original)},
                lambda: _has_config(ctx.questions, config), execute)


# --------------------------------------------------------------------------------------------
# explain


def explain_step(ctx: BenchContext, model: ModelSpec, qconfig: str, deps: tuple[str, ...]) -> Step:
    from vqa_shap.explain.workdir import work_dir_for

    config = f"{model.name}__{qconfig}"
    settings = {"config": config, "model": model.model, "loader": model.loader, "questions_config": qconfig,
                "video_root": str(ctx.videos.resolve()), **model.explain.numbers()}
    step_id = f"explain-{config}"
    work = work_dir_for(ctx.attributions, config)

    def progress():
        done = len(work.finished_qids()) if work.path.is_dir() else 0
        return f"{done} question(s) already explained in {work.path}" if done else None

    def inputs():  # the questions, and the videos they name: a video rewritten under its name redoes the step
        return {"questions": ctx.prints.config(ctx.questions, qconfig),
                "videos": ctx.prints.videos(ctx.questions, qconfig, ctx.videos)}

    def execute() -> Outcome:
        # which videos the work files were computed from: the step record is rewritten before a step
        # runs, so it is kept beside it (a video rewritten under its name must not be resumed from)
        from vqa_shap.atomic_files import atomic_write_text
        from vqa_shap.study.steps import Records

        marker = Records(ctx.out).folder / f"{step_id}.videos"
        videos = str(ctx.prints.videos(ctx.questions, qconfig, ctx.videos))
        stale = work.exists() and marker.is_file() and marker.read_text(encoding="utf-8") != videos
        restart = stale or _must_restart(ctx, step_id, settings, qconfig, work)
        if not restart:  # what is resumed was computed from these videos
            atomic_write_text(marker, videos, mkdir=True)
        outcome = _explain(ctx, model, qconfig, config, restart)
        atomic_write_text(marker, videos, mkdir=True)
        return outcome

    return Step(step_id, "explain", f"explain {qconfig} with {model.name} -> {config}", settings, deps,
                inputs, lambda: _has_config(ctx.attributions, config), execute, progress)


def _must_restart(ctx: BenchContext, step_id: str, settings, qconfig: str, work) -> bool:
    """Whether the work files are this study's results under other settings or of another question list:
    discard them (``restart``). Work files of someone else's run with other settings stop the run
    with explain's own error instead."""
    from vqa_shap.hub import folder as hub
    from vqa_shap.study.steps import Records, canonical

    if not work.exists():
        return False
    earlier = Records(ctx.out).previous_settings(step_id)  # the record itself already holds the new settings
    if earlier is not None and earlier != canonical(settings):
        return True
    qids = tuple(hub.load_questions_dataset(ctx.questions, qconfig)["qid"])
    return work.settings().qids != qids


def _explain(ctx: BenchContext, model: ModelSpec, qconfig: str, config: str, restart: bool) -> Outcome:
    from vqa_shap.explain.explain_run import ExplainRun, explain_questions
    from vqa_shap.explain_options import run_arguments

    spec = model.explain
    if spec.threads is not None:
        import torch

        torch.set_num_threads(spec.threads)
    result = explain_questions(ExplainRun(
        ctx.questions, qconfig, model=model.model, video_root=ctx.videos, out=ctx.attributions, loader=model.loader,
        name=config, overwrite=True, restart=restart, progress=ctx.progress, **run_arguments(spec),
    ))
    return Outcome(f"{result.n_questions} questions, {result.n_computed} explained now, {result.n_resumed} resumed, "
                   f"{result.n_errors} errors, {result.evaluations} evaluations in {result.seconds:.1f} s"
                   + (" (earlier work files of other settings discarded)" if restart else ""), result.evaluations)


# --------------------------------------------------------------------------------------------
# metrics, report, view


def _attributions_inputs(prints: Fingerprints, attributions: Path, configs) -> dict:
    return {c: prints.config(attributions, c) for c, _ in configs}


def metrics_step(study: Study, out: Path, attributions: Path, configs, prints: Fingerprints,
                 deps: tuple[str, ...]) -> Step:
    spec = study.metrics
    paths = (out / "metrics.json", out / "metrics.md")

    def execute() -> Outcome:
        from vqa_shap.analysis.metrics_table import compute, json_ready, markdown_report, paper_table
        from vqa_shap.atomic_files import atomic_write_text

        if not configs:
            return Outcome("no attributions configs")
        rows, _ = compute(attributions, [c for c, _ in configs], paper_compat=spec.paper_compat,
                          bootstrap=spec.bootstrap, confidence=spec.confidence, seed=spec.seed)
        atomic_write_text(paths[0], json.dumps(json_ready(rows), indent=2, allow_nan=False) + "\n", mkdir=True)
        atomic_write_text(paths[1], markdown_report(rows) + "\n", mkdir=True)
        table = paper_table(rows).replace("\n", "\n    ")
        return Outcome(f"{len(rows)} rows -> {paths[0]}, {paths[1]}\n    {table}")

    return Step("metrics", "metrics", f"modality metrics of every config -> {paths[0]}",
                {**vars(spec), "configs": [c for c, _ in configs]}, deps,
                lambda: _attributions_inputs(prints, attributions, configs),
                lambda: all(p.is_file() for p in paths), execute)


def report_step(ctx: BenchContext, configs, deps: tuple[str, ...]) -> Step:
    spec, target = ctx.study.report, ctx.folder / "report"

    def execute() -> Outcome:
        from vqa_shap.analysis.report_folder import report_folder

        staging = _staging(target)  # drawn aside and swapped in: no figure of an earlier run is left over
        result = _swap(staging, target, lambda: report_folder(
            ctx.attributions, staging, configs=[c for c, _ in configs], questions=ctx.questions,
            video_root=ctx.videos, max_questions=spec.max_questions, bootstrap=spec.bootstrap, progress=ctx.progress))
        return Outcome(f"{len(result.questions)} question reports and the summary figures in {target}")

    return Step(f"report-{ctx.bench.name}", "report", f"report of {ctx.bench.name}'s configs -> {target}", {**vars(spec), "configs": [c for c, _ in configs]}, deps,
                lambda: _attributions_inputs(ctx.prints, ctx.attributions, configs),
                lambda: (target / "index.md").is_file() and bool(configs), execute)


def view_step(ctx: BenchContext, configs, deps: tuple[str, ...]) -> Step:
    spec, target, report = ctx.study.view, ctx.folder / "site", ctx.folder / "report"
    with_report = ctx.study.report is not None

    def inputs():
        return {"attributions": _attributions_inputs(ctx.prints, ctx.attributions, configs),
                "report": ctx.prints.files(report.glob("*.png")) if with_report else None}

    def execute() -> Outcome:
        from vqa_shap.view.folder import site_from_folder

        built = site_from_folder(ctx.attributions, target, configs=[c for c, _ in configs], questions=ctx.questions,
                                 video_root=ctx.videos, report=report if with_report else None,
                                 bootstrap=spec.bootstrap, title=f"{spec.title}: {ctx.bench.name}",
                                 progress=ctx.progress)
        return Outcome(f"{built.site.n_questions} questions, {built.site.n_thumbnails} thumbnails -> "
                       f"{target / 'index.html'}")

    return Step(f"view-{ctx.bench.name}", "view", f"viewer site of {ctx.bench.name} -> {target}",
                {**vars(spec), "configs": [c for c, _ in configs], "report": with_report}, deps, inputs,
                lambda: (target / "index.html").is_file() and bool(configs), execute)
