"""The plan of a study: its steps, in order, from the study file and what its output folder holds.

Layout of the output folder ``OUT``::

    OUT/attributions/                 Hub-style attributions: one config <model>__<questions config>
                                      per model × benchmark × variant (explain work files in .work/)
    OUT/metrics.json, metrics.md      the modality metrics of every config (vqa-shap metrics)
    OUT/benchmarks/<name>/source/     a generated source (``generate:``)
    OUT/benchmarks/<name>/questions/  Hub-style questions: the built configs and their variants
    OUT/benchmarks/<name>/report/     the report of the benchmark's configs (vqa-shap report)
    OUT/benchmarks/<name>/site/       its viewer site (vqa-shap view)
    OUT/.study/                       the finished steps' records

A benchmark's variant and explain steps are known once it is built (a builder may write several
benchmarks, or variants itself, e.g. ``pollard2025``); until then the plan shows them as one line.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from vqa_shap.study.spec import BenchmarkSpec, Study, StudyError
from vqa_shap.study.steps import Fingerprints, Step
from vqa_shap.study import actions


@dataclass(frozen=True)
class Layout:
    """The paths of a study's output folder."""

    out: Path

    @property
    def attributions(self) -> Path:
        return self.out / "attributions"

    def bench(self, bench: BenchmarkSpec) -> Path:
        return self.out / "benchmarks" / bench.name

    def source(self, bench: BenchmarkSpec) -> Path:
        return bench.source if bench.source is not None else self.bench(bench) / "source"

    def videos(self, bench: BenchmarkSpec) -> Path:
        return bench.videos if bench.videos is not None else self.source(bench)

    def questions(self, bench: BenchmarkSpec) -> Path:
        return self.bench(bench) / "questions"


@dataclass(frozen=True)
class Plan:
    """The steps (in order) and, per benchmark not built yet, ``(build step id, what follows it)``."""

    steps: tuple[Step, ...]
    pending: tuple[tuple[str, str], ...] = ()


def make_plan(study: Study, layout: Layout, prints: Fingerprints, *, progress: bool = True) -> Plan:
    """Every step of ``study`` given what ``layout.out`` holds now."""
    steps: list[Step] = []
    pending: list[tuple[str, str]] = []
    explained: list[tuple[str, str]] = []  # (attributions config, explain step id), over all benchmarks
    owner: dict[str, str] = {}  # attributions config -> benchmark name
    for bench in study.benchmarks:
        ctx = actions.BenchContext(study, bench, layout.out, layout.source(bench), layout.videos(bench), layout.questions(bench),
                                   layout.attributions, layout.bench(bench), prints, progress)
        if bench.generate is not None:
            steps.append(actions.generate_step(ctx))
        build = actions.build_step(ctx, deps=(steps[-1].id,) if bench.generate is not None else ())
        steps.append(build)
        originals = actions.built_originals(ctx)
        if not originals:
            pending.append((build.id, f"augment and explain {bench.name}: variants {', '.join(study.variants)} × "
                                      f"models {', '.join(m.name for m in study.models)}, planned once it is built"))
        bench_configs: list[tuple[str, str]] = []
        for original in originals:
            for qconfig, source_step in _variant_steps(ctx, original, build, steps):
                for model in study.models:
                    step = actions.explain_step(ctx, model, qconfig, deps=(source_step,))
                    config = step.settings["config"]
                    if config in owner:
                        raise StudyError(f"{study.path}: benchmarks {owner[config]!r} and {bench.name!r} both give "
                                         f"attributions config {config!r}; build them under different builders "
                                         "or in separate studies")
                    owner[config] = bench.name
                    steps.append(step)
                    bench_configs.append((config, step.id))
        waits = (build.id,) + tuple(s for _, s in bench_configs)
        if study.report is not None:
            steps.append(actions.report_step(ctx, bench_configs, deps=waits))
        if study.view is not None:
            report = (f"report-{bench.name}",) if study.report is not None else ()
            steps.append(actions.view_step(ctx, bench_configs, deps=waits + report))
        explained += bench_configs
    if study.metrics is not None:
        builds = tuple(s.id for s in steps if s.kind == "build")
        steps.append(actions.metrics_step(study, layout.out, layout.attributions, explained, prints,
                                          deps=builds + tuple(s for _, s in explained)))
    return Plan(tuple(steps), tuple(pending))


def _variant_steps(ctx: "actions.BenchContext", original: str, build: Step, steps: list[Step]):
    """``(questions config, id of the step that writes it)`` per variant of ``original``; adds augment steps."""
    from vqa_shap.hub.card import config_vars
    from vqa_shap.schema.records import config_name

    benchmark = config_vars(ctx.questions, original).get("benchmark") or original
    for variant in ctx.study.variants:
        qconfig = original if variant == "original" else config_name(benchmark, variant)
        if variant == "original" or actions.built_config(ctx, qconfig):
            yield qconfig, build.id
            continue
        step = actions.augment_step(ctx, original, variant, qconfig, deps=(build.id,))
        steps.append(step)
        yield qconfig, step.id
