"""The run: a questions config through a model with ``Dataset.map`` -> the attributions rows."""

from __future__ import annotations

import hashlib
import json
import logging
import numbers
import os
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from vqa_shap.errors import VqaShapError
from vqa_shap.explain.job import ATTRIBUTIONS, AttributionsJob
from vqa_shap.explain.question import QuestionExplainer
from vqa_shap.explain.workdir import (
    ExplainError, ExplainInputError, ExplainSettings, Shard, WorkDir,
    check_config_name, question_digest, work_dir_for,
)
from vqa_shap.explain_options import EXPLAIN_OPTIONS, OPTIONS, OptionError

logger = logging.getLogger(__name__)


def _default(name: str):
    """The declared default of an explain option (:data:`vqa_shap.explain_options.EXPLAIN_OPTIONS`)."""
    return OPTIONS[name].default


@dataclass(frozen=True)
class ExplainRun:
    """Everything one ``explain`` process is asked to do (the arguments of :func:`explain_questions`).

    Defaults and value checks are the declared options' (:mod:`vqa_shap.explain_options`).

    Attributes:
        questions: Hub-style questions folder (see :mod:`vqa_shap.hub.folder`).
        config: the questions config to explain (e.g. ``"hd-epic"``).
        model: checkpoint id, local ``save_pretrained`` folder, or ``tiny-random/<family>``.
        video_root: folder the questions' input paths are relative to.
        out: Hub-style output folder (created; other configs in it are kept).
        frames: frames sampled per question.
        budget: model evaluations per question for the estimator. A question whose players need
            more for a single estimate (e.g. ``2F+1`` for one permutation) gets that minimum,
            recorded in its row, unless ``strict_budget``.
        target_error: adaptive budget: evaluate until the estimated relative error of the chosen
            option's values (the row's ``relative_error``) is below it, or ``budget`` is spent;
            ``None``: spend ``budget``.
        estimator: estimator name (``vqa_shap.estimators.ESTIMATORS``).
        seed: estimator seed (the same for every question).
        batch_size: coalitions per batched forward.
        device: torch device, or ``None`` for automatic.
        dtype: torch dtype name, or ``None`` for automatic.
        loader: loader family, or ``None`` to infer it from the checkpoint.
        protocol: protocol name.
        sampler: frame sampler, or ``None`` for the protocol's default for the loader family.
        aks_scorer: relevance scorer of ``sampler="aks"``: ``"model"`` / ``None`` (the explained
            model's confidence) or ``"clip:PATH"`` (:class:`vqa_shap.long_video.aks.ClipScorer` from a folder).
        players: ``"frames"`` (default, the paper's) or ``"shots"``: one video player per shot, its
            sampled frames masked together (docs/shots.md).
        shot_detector: shot detector name for ``players="shots"`` (default
            :func:`vqa_shap.long_video.shots.default_detector`).
        name: attributions config name (default :func:`attributions_config`).
        work_dir: work directory (default ``<out>/.work/<config>``).
        rank: this process's rank (default from ``RANK`` / ``SLURM_PROCID``, else 0).
        world_size: number of processes (default from ``WORLD_SIZE`` / ``SLURM_NTASKS``, else 1).
        retry_errors: recompute questions whose earlier result is an error row.
        overwrite: replace an existing config of the same name in ``out``. Finished work files of
            a run with the same settings and the same question content are still reused.
        restart: discard the work directory's earlier results and explain everything again
            (single process only: shards would discard each other's work).
        strict_budget: make a question an error row instead of raising a too-small budget.
        map_batch_size: questions per ``Dataset.map`` batch.
        progress: show a progress bar (questions/s, evaluations/s).
        job: what is computed per question (``None``: Shapley attributions, :data:`ATTRIBUTIONS`);
            see :class:`AttributionsJob` for what a job provides.
    """

    questions: str | os.PathLike
    config: str
    model: str
    video_root: str | os.PathLike
    out: str | os.PathLike
    frames: int = _default("frames")
    budget: int = _default("budget")
    target_error: float | None = _default("target_error")
    estimator: str = _default("estimator")
    seed: int = _default("seed")
    batch_size: int = _default("batch_size")
    device: str | None = None
    dtype: str | None = None
    loader: str | None = None
    protocol: str = _default("protocol")
    sampler: str | None = None
    aks_scorer: str | None = None
    players: str = _default("players")
    shot_detector: str | None = None
    name: str | None = None
    work_dir: str | os.PathLike | None = None
    rank: int | None = None
    world_size: int | None = None
    retry_errors: bool = False
    overwrite: bool = False
    restart: bool = False
    strict_budget: bool = False
    map_batch_size: int = 8
    progress: bool = True
    job: Any = None

    def __post_init__(self):
        for option in EXPLAIN_OPTIONS:
            # names, detectors and scorers are resolved with the model (``_settings``), with their context
            if option.run_field and option.kind in (int, float, bool) or option.choices is not None:
                try:
                    option.check(getattr(self, option.name))
                except OptionError as exc:
                    raise ExplainInputError(f"{option.name}: {exc}") from None
        if isinstance(self.map_batch_size, bool) or not isinstance(self.map_batch_size, numbers.Integral) \
                or self.map_batch_size < 1:
            raise ExplainInputError(f"map_batch_size: expected a positive integer, got {self.map_batch_size!r}")
        if self.name is not None:
            check_config_name(self.name)

    def config_name(self) -> str:
        """The attributions config written: ``name`` or ``<model slug>__<questions config>``."""
        return self.name or self.the_job().config_name(self)

    def the_job(self) -> "AttributionsJob":
        """The job (:data:`ATTRIBUTIONS` unless ``job`` is set)."""
        return self.job if self.job is not None else ATTRIBUTIONS


@dataclass(frozen=True)
class ExplainResult:
    """What one explain process did.

    Attributes:
        folder: the output folder.
        config: the attributions config.
        shard: this process's shard.
        n_questions: questions in this shard.
        n_resumed: questions found finished in the work directory (not recomputed).
        n_computed: questions explained by this run.
        n_errors: error rows in this shard (resumed or new).
        evaluations: model rows scored by this run.
        seconds: wall time of the explaining part.
        written: whether the config was assembled into ``folder`` (single process, or ``merge``).
        work_dir: the work directory.
        dataset: this shard's attributions rows (a ``datasets.Dataset``), questions order.
    """

    folder: Path
    config: str
    shard: Shard
    n_questions: int
    n_resumed: int
    n_computed: int
    n_errors: int
    evaluations: int
    seconds: float
    written: bool
    work_dir: Path
    dataset: Any = field(default=None, repr=False, compare=False)

    @property
    def questions_per_s(self) -> float:
        return self.n_computed / self.seconds if self.seconds > 0 else 0.0

    @property
    def evaluations_per_s(self) -> float:
        return self.evaluations / self.seconds if self.seconds > 0 else 0.0


# --------------------------------------------------------------------------------------------
# helpers


def load_fresh(folder: str | os.PathLike, config: str):
    """``load_dataset(folder, name=config, split="test")``, never from a stale cache (see
    :func:`vqa_shap.hub.folder.load_config`); errors are :class:`ExplainError`."""
    from vqa_shap.hub import folder as hub

    return _as_explain_error(hub.load_config, folder, config)


def _as_explain_error(call, *args):
    """``call(*args)``, with the hub's errors re-raised as :class:`ExplainError`."""
    try:
        return call(*args)
    except VqaShapError as exc:
        raise ExplainError(str(exc)) from exc


def _check_unique(qids: Sequence[str], where: str) -> None:
    dupes = [q for q, n in Counter(qids).items() if n > 1]
    if dupes:
        raise ExplainInputError(f"{where}: duplicate qids {dupes[:5]}{' ...' if len(dupes) > 5 else ''}")


def config_exists(folder: Path, config: str) -> bool:
    """Whether the Hub-style ``folder`` lists ``config``."""
    from vqa_shap.hub import folder as hub

    try:
        return config in hub.list_configs(folder)
    except (FileNotFoundError, VqaShapError):
        return False


def _check_folders(run: ExplainRun, config_out: str, shard: Shard) -> Path:
    """Fail before any work: missing video root, an output folder of another kind, an existing config."""
    from vqa_shap.hub.card import folder_meta

    video_root = Path(run.video_root)
    if not video_root.is_dir():
        raise ExplainInputError(f"video root {video_root} is not a folder")
    out = Path(run.out)
    if out.exists() and not out.is_dir():
        raise ExplainInputError(f"output folder {out} is a file")
    try:
        kind = folder_meta(out).get("kind")
    except VqaShapError as exc:
        raise ExplainInputError(str(exc)) from exc
    job = run.the_job()
    if kind not in (None, job.kind):
        raise ExplainInputError(f"{out} holds a {kind!r} dataset; write {job.kind} to another folder")
    if shard.world_size == 1 and not run.overwrite and config_exists(out, config_out):
        raise ExplainInputError(f"{out} already has config {config_out!r}; pass --overwrite to replace it")
    return out


def _settings(run: ExplainRun, loader_family: str, config_out: str, qids: tuple[str, ...]) -> ExplainSettings:
    from vqa_shap.protocol.samplers import SAMPLERS
    from vqa_shap.protocol import get_protocol

    if run.sampler is not None and run.sampler not in SAMPLERS:
        raise ExplainInputError(f"unknown sampler {run.sampler!r}; valid samplers: {', '.join(SAMPLERS)}")
    aks_scorer = None
    if run.aks_scorer not in (None, "model"):
        from vqa_shap.long_video.aks import parse_scorer

        if run.sampler != "aks":
            raise ExplainInputError(f"aks_scorer {run.aks_scorer!r} needs sampler 'aks', got {run.sampler!r}")
        try:
            kind, path = parse_scorer(run.aks_scorer)
        except VqaShapError as exc:
            raise ExplainInputError(str(exc)) from exc
        aks_scorer = f"{kind}:{os.path.abspath(path)}"
    shot_detector = None
    if run.shot_detector is not None and run.players != "shots":  # it would be ignored without a word
        raise ExplainInputError(f"shot_detector {run.shot_detector!r} needs players 'shots', got {run.players!r}")
    if run.players == "shots":
        from vqa_shap.long_video.shots import get_detector

        try:
            shot_detector = get_detector(run.shot_detector).spec
        except VqaShapError as exc:
            raise ExplainInputError(str(exc)) from exc
    try:
        protocol = get_protocol(run.protocol).name
        estimator = run.the_job().estimator_name(run)
    except VqaShapError as exc:
        raise ExplainInputError(str(exc)) from exc
    return ExplainSettings(
        model=run.model, loader=loader_family, protocol=protocol, estimator=estimator,
        budget=int(run.budget), target_error=None if run.target_error is None else float(run.target_error),
        seed=int(run.seed), n_frames=int(run.frames), sampler=run.sampler,
        strict_budget=bool(run.strict_budget), questions_config=run.config, config=config_out, qids=qids,
        video_root=os.path.abspath(run.video_root), dtype=run.dtype, players=run.players,
        shot_detector=shot_detector, aks_scorer=aks_scorer, extra=run.the_job().settings_extra(),
    )


def _load_questions(run: ExplainRun):
    from vqa_shap.hub import folder as hub

    path = Path(run.questions)
    if path.is_file():
        raise ExplainInputError(f"questions {path} is a file; give the Hub-style folder that holds it")
    try:
        return hub.load_questions_dataset(path, run.config)
    except VqaShapError as exc:
        raise ExplainInputError(str(exc)) from exc


# --------------------------------------------------------------------------------------------
# the run


def explain_questions(run: ExplainRun) -> ExplainResult:
    """Explain every question of a questions config with a model; write the attributions config.

    Args:
        run: what to explain, with which model and settings, and where to write (see :class:`ExplainRun`).

    Returns:
        An :class:`ExplainResult`; with one process the config is written to ``run.out``, with
        several each process leaves its work files and :func:`~vqa_shap.explain.merge_shards`
        assembles them.

    Raises:
        ExplainInputError: bad input, found before any work (the CLI exits with status 2).
        ExplainError: inconsistent work directory.
    """
    from vqa_shap.device import resolve_runtime
    from vqa_shap.loaders import resolve_model

    shard = Shard.resolve(run.rank, run.world_size)
    config_out = run.config_name()
    check_config_name(config_out, "config name")
    out = _check_folders(run, config_out, shard)
    ds = _load_questions(run)
    all_qids = tuple(ds["qid"])
    _check_unique(all_qids, f"{run.questions} config {run.config!r}")
    try:
        loader_cls, checkpoint = resolve_model(run.model, run.loader)
        resolve_runtime(run.device, run.dtype)  # e.g. CUDA asked for but absent: refuse before any work
    except VqaShapError as exc:
        raise ExplainInputError(str(exc)) from exc
    settings = _settings(run, loader_cls.family, config_out, all_qids)
    work = work_dir_for(out, config_out, run.work_dir)
    if run.work_dir is not None:
        work.check_not_foreign()
    if shard.world_size > 1 and run.job is not None:
        raise ExplainInputError(f"{run.the_job().kind} runs in one process (no shards); unset WORLD_SIZE/SLURM_NTASKS")
    if run.restart and shard.world_size > 1:
        raise ExplainInputError(f"restart with {shard.world_size} shards would discard the other shards' work; "
                                f"delete {work.path} once before starting them instead")
    with work.lock(shard):
        if run.restart:
            work.clear()
        work.claim(settings)
        start, end = shard.bounds(len(ds))
        part = ds.select(range(start, end)) if start < end else ds.select([])  # an empty shard is fine
        return _explain_part(run, settings, work, shard, part, loader_cls, checkpoint, out)


def _explain_part(run: ExplainRun, settings: ExplainSettings, work: WorkDir, shard: Shard, part,
                  loader_cls, checkpoint, out: Path) -> ExplainResult:
    """Map this shard's questions to attributions rows (reusing finished ones); write the config."""
    from vqa_shap.hub import folder as hub

    job = run.the_job()
    digests = {row["qid"]: question_digest(row) for row in part}
    finished = work.finished(digests, retry_errors=run.retry_errors)
    todo = [q for q in digests if q not in finished]
    logger.info("%s: shard %d/%d has %d questions, %d already finished", settings.config, shard.rank,
                shard.world_size, len(part), len(finished))
    explainer = None
    if todo:  # load the model only when there is work (a finished shard resumes instantly)
        model_loader = loader_cls.load(checkpoint, device=run.device, dtype=run.dtype, batch_size=run.batch_size)
        explainer = job.explainer(model_loader, settings, run, shot_cache=work.path / "shots")
    started = time.perf_counter()
    rows = _map_rows(part, _RowMaker(explainer, work, digests, finished, job.features()), settings, shard, todo,
                     map_batch_size=run.map_batch_size, progress=run.progress)
    seconds = time.perf_counter() - started
    if shard.world_size == 1:
        hub.write_config(out, settings.config, rows, features=job.features(), kind=job.kind,
                         card_vars=settings.card_vars(), overwrite=run.overwrite)
    computed = set(todo)
    evaluations = sum(e or 0 for q, e in zip(rows["qid"], rows["evaluations"]) if q in computed)
    errors = [e for e in rows["error"] if e]
    if errors:
        reasons = Counter(errors).most_common(3)
        logger.warning("%d of %d questions are error rows; most common: %s", len(errors), len(part),
                       "; ".join(f"{n}x {r}" for r, n in reasons))
    return ExplainResult(
        folder=out, config=settings.config, shard=shard, n_questions=len(part), n_resumed=len(finished),
        n_computed=len(todo), n_errors=len(errors), evaluations=evaluations, seconds=seconds,
        written=shard.world_size == 1, work_dir=work.path, dataset=rows,
    )


class _RowMaker:
    """The ``Dataset.map`` function: a batch of question rows -> their attributions rows.

    A finished question's row is read from its work file; any other is explained and its row
    written to its work file at once (atomically), so a killed run loses at most the questions
    in flight.
    """

    def __init__(self, explainer: QuestionExplainer | None, work: WorkDir, digests: dict[str, str],
                 finished: dict[str, dict[str, Any]], features):
        self.explainer, self.work, self.digests, self.finished = explainer, work, digests, finished
        self.features = features
        self.bar = None

    def __call__(self, batch: dict[str, list]) -> dict[str, list]:
        from vqa_shap.schema.records import Question

        rows = []
        for i, qid in enumerate(batch["qid"]):
            row = self.finished.get(qid)
            if row is None:
                row = self.explainer.explain(Question.from_row({k: batch[k][i] for k in batch})).to_row()
                self.work.write(row, self.digests[qid])
                if self.bar is not None:
                    self.bar.add(row["evaluations"])
            rows.append(row)
        return {c: [r.get(c) for r in rows] for c in self.features}


def _map_rows(part, maker: _RowMaker, settings: ExplainSettings, shard: Shard, todo: Sequence[str], *,
              map_batch_size: int, progress: bool):
    """``part.map(maker)`` in memory, with our progress bar instead of ``datasets``' own."""
    import datasets

    features = maker.features
    if len(part) == 0:  # map skips an empty dataset and would return it without the output columns
        return datasets.Dataset.from_dict({c: [] for c in features}, features=features)
    # The fingerprint names the result by what determines it (never by hashing the closure, which
    # holds the model); keep_in_memory: no cache files next to the questions.
    fingerprint = hashlib.sha1(json.dumps(
        [settings.to_json(), shard.rank, shard.world_size, sorted(maker.digests.items()), sorted(todo)]
    ).encode()).hexdigest()
    maker.bar = _Progress(len(part), len(part) - len(todo), f"explain {settings.config}") if progress else None
    was_enabled = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()
    try:
        return part.map(maker, batched=True, batch_size=map_batch_size, remove_columns=part.column_names,
                        features=features, keep_in_memory=True, new_fingerprint=fingerprint)
    finally:
        if was_enabled:
            datasets.enable_progress_bars()
        if maker.bar is not None:
            maker.bar.close()


class _Progress:
    """A tqdm bar of questions with questions/s and evaluations/s."""

    def __init__(self, total: int, initial: int, desc: str):
        from tqdm.auto import tqdm

        self.bar = tqdm(total=total, initial=initial, desc=desc, unit="q", dynamic_ncols=True)
        self.started, self.computed, self.evaluations = time.perf_counter(), 0, 0

    def add(self, evaluations: int) -> None:
        self.computed += 1
        self.evaluations += int(evaluations or 0)
        elapsed = max(time.perf_counter() - self.started, 1e-9)
        self.bar.set_postfix(q_per_s=f"{self.computed / elapsed:.2f}",
                             evals_per_s=f"{self.evaluations / elapsed:.0f}", refresh=False)
        self.bar.update(1)

    def close(self) -> None:
        self.bar.close()
