"""Explain a questions dataset with a model: the attributions dataset, resumable, shardable, mergeable.

``explain_questions`` maps every question of a questions config (a Hub-style folder, see
:mod:`vqa_shap.hub`) through a model with ``Dataset.map`` and writes one attributions row per question
(schema: :func:`vqa_shap.schema.attribution_features`).

How a long run survives:

* **Work files.** Every finished question is written at once to its own small JSON file in a work
  directory (default ``<out>/.work/<config>/``), to a temporary name first and then renamed with
  ``os.replace``, so a file is either complete or absent. A run killed at any point resumes by
  skipping the questions whose file exists: nothing finished is recomputed, nothing is duplicated.
* **Error rows.** A question that cannot be explained (missing or corrupt video, more options than
  the model supports, ...) gets a row whose ``error`` says why; the run goes on. ``retry_errors``
  recomputes those rows on a later run.
* **Settings guard.** The work directory records the settings that determine the numbers (model,
  protocol, estimator, budget, seed, frames, the question list); resuming with different settings
  is refused instead of mixing results (``restart`` discards the earlier results instead).
* **Shards.** With ``world_size > 1`` (``RANK``/``WORLD_SIZE`` from torchrun, ``SLURM_PROCID``/
  ``SLURM_NTASKS`` from SLURM, or explicit arguments) each process explains its contiguous part
  (``datasets.distributed.split_dataset_by_node``) into the shared work directory (or its own out
  folder); :func:`merge_shards` (``vqa-shap merge``) then assembles the config and refuses when a
  question is missing or was explained twice. A single-process run assembles the config itself.

Output config name: ``<model slug>__<questions config>``, e.g. ``tiny-random-llava_onevision__hd-epic``
(:func:`attributions_config`); the card (``cards/attributions.md.j2``) names model, loader, protocol,
estimator, budget and seed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from vqa_shap.errors import VqaShapError

logger = logging.getLogger(__name__)

#: Name of the hidden folder (inside the output folder) that holds per-question work files.
WORK_DIRNAME = ".work"
#: File (inside a config's work directory) recording the settings that determine the numbers.
SETTINGS_FILE = "settings.json"
#: Suffix of a per-question work file.
RESULT_SUFFIX = ".json"
#: Exceptions that make one question an error row instead of stopping the run. Anything else
#: (TypeError, AttributeError, ...) is a bug and stops the run loudly.
QUESTION_ERRORS: tuple[type[BaseException], ...] = (VqaShapError, OSError, ValueError, RuntimeError)

DEFAULT_FRAMES = 8
DEFAULT_BUDGET = 256
DEFAULT_ESTIMATOR = "default"
DEFAULT_BATCH_SIZE = 16
DEFAULT_PROTOCOL = "pollard2025"


class ExplainError(VqaShapError):
    """An explain or merge run cannot go on (inconsistent work directory, missing shards, ...)."""


# --------------------------------------------------------------------------------------------
# names


def model_slug(model: str) -> str:
    """A config-safe name of a model: ``tiny-random/llava_onevision`` -> ``tiny-random-llava_onevision``.

    A Hub id keeps its namespace (``/`` becomes ``-``); a local folder is named by its last component.
    Characters outside ``[A-Za-z0-9._-]`` become ``-``.
    """
    text = str(model).rstrip("/\\")
    if os.path.isabs(text) or text.startswith(".") or os.path.isdir(text):
        text = os.path.basename(text) or text
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", text.replace("/", "-")).strip("-._")
    if not slug:
        raise ExplainError(f"cannot make a config name from model {model!r}")
    return slug


def attributions_config(model: str, questions_config: str) -> str:
    """The attributions config name: ``<model slug>__<questions config>``."""
    return f"{model_slug(model)}__{questions_config}"


def _result_filename(qid: str) -> str:
    # Readable and collision-free: qids "a/b" and "a_b" get different hashes.
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", qid)[:80]
    digest = hashlib.sha1(qid.encode("utf-8")).hexdigest()[:10]
    return f"{safe}-{digest}{RESULT_SUFFIX}"


# --------------------------------------------------------------------------------------------
# shards


@dataclass(frozen=True)
class Shard:
    """This process's part of the run: ``rank`` of ``world_size`` contiguous parts."""

    rank: int = 0
    world_size: int = 1

    def __post_init__(self):
        if self.world_size < 1 or not 0 <= self.rank < self.world_size:
            raise ExplainError(f"invalid shard: rank {self.rank} of world size {self.world_size}")

    @classmethod
    def resolve(cls, rank: int | None = None, world_size: int | None = None,
                environ: Mapping[str, str] | None = None) -> "Shard":
        """Rank and world size from the arguments, else torchrun's ``RANK``/``WORLD_SIZE``, else
        SLURM's ``SLURM_PROCID``/``SLURM_NTASKS``, else a single process."""
        env = os.environ if environ is None else environ

        def from_env(*names: str) -> int | None:
            for name in names:
                value = env.get(name)
                if value not in (None, ""):
                    try:
                        return int(value)
                    except ValueError:
                        raise ExplainError(f"environment variable {name}={value!r} is not an integer") from None
            return None

        if world_size is None:
            world_size = from_env("WORLD_SIZE", "SLURM_NTASKS")
        if rank is None:
            # Take the rank from the same launcher as the world size.
            rank = from_env("RANK") if env.get("WORLD_SIZE") else from_env("SLURM_PROCID", "RANK")
        world_size = 1 if world_size is None else world_size
        rank = 0 if rank is None else rank
        return cls(rank=rank, world_size=world_size)


# --------------------------------------------------------------------------------------------
# settings and the work directory


@dataclass(frozen=True)
class ExplainSettings:
    """What determines an attributions config's numbers; a resumed or merged run must match them.

    Attributes:
        model: checkpoint id or local folder as given (``tiny-random/<family>`` for tiny models).
        loader: loader family name.
        protocol: protocol name.
        estimator: the estimator's registered name (``"default"`` resolved to the member it stands for).
        budget: evaluation budget per question.
        seed: estimator seed (the same for every question, so shards and resumes agree).
        n_frames: frames sampled per question.
        sampler: frame sampler name, or ``None`` for the protocol's default for the loader family.
        questions_config: the questions config explained.
        config: the attributions config written.
        qids: every qid of the questions config, in order (the completeness check of a merge).
        strict_budget: if ``False`` (default), a question whose players need more than ``budget``
            evaluations for the estimator to work at all (e.g. ``2F+1`` for one permutation) is
            explained at that minimum, recorded in its row's ``budget``; if ``True`` it becomes an
            error row instead.
    """

    model: str
    loader: str
    protocol: str
    estimator: str
    budget: int
    seed: int
    n_frames: int
    sampler: str | None
    questions_config: str
    config: str
    qids: tuple[str, ...] = ()
    strict_budget: bool = False

    def card_vars(self) -> dict[str, Any]:
        """Template variables for ``cards/attributions.md.j2``."""
        from vqa_shap import __version__

        return {
            "model": self.model, "loader": self.loader, "protocol": self.protocol,
            "estimator": self.estimator, "budget": self.budget, "seed": self.seed,
            "n_frames": self.n_frames, "sampler": self.sampler,
            "questions_config": self.questions_config, "config": self.config,
            "version": __version__,
        }

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["qids"] = list(self.qids)
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "ExplainSettings":
        data = dict(data)
        data["qids"] = tuple(data.get("qids") or ())
        return cls(**data)


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


class WorkDir:
    """The per-question result files of one attributions config (see the module docstring)."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"WorkDir({str(self.path)!r})"

    @property
    def settings_path(self) -> Path:
        return self.path / SETTINGS_FILE

    def exists(self) -> bool:
        return self.settings_path.is_file()

    def settings(self) -> ExplainSettings:
        """The settings recorded by the first run."""
        try:
            return ExplainSettings.from_json(json.loads(self.settings_path.read_text(encoding="utf-8")))
        except FileNotFoundError:
            raise ExplainError(f"{self.path}: not an explain work directory (no {SETTINGS_FILE})") from None
        except (json.JSONDecodeError, TypeError) as exc:
            raise ExplainError(f"{self.settings_path}: unreadable settings ({exc})") from None

    def claim(self, settings: ExplainSettings) -> None:
        """Record ``settings``, or check that they equal the recorded ones (resume, other shards)."""
        self.path.mkdir(parents=True, exist_ok=True)
        if self.exists():
            recorded = self.settings()
            if recorded != settings:
                diffs = [f"{k}: {getattr(recorded, k)!r} recorded, {getattr(settings, k)!r} now"
                         for k in ExplainSettings.__dataclass_fields__
                         if k != "qids" and getattr(recorded, k) != getattr(settings, k)]
                if recorded.qids != settings.qids:
                    diffs.append("the question list differs")
                raise ExplainError(
                    f"{self.path} holds results of a run with other settings ({'; '.join(diffs)}); "
                    "use another --out/--work-dir, or --restart to discard them"
                )
            return
        _atomic_write_text(self.settings_path, json.dumps(settings.to_json(), indent=1))

    def clear(self) -> None:
        """Delete this work directory (every finished result and the recorded settings)."""
        import shutil

        if self.path.is_dir():
            shutil.rmtree(self.path)

    def result_path(self, qid: str) -> Path:
        return self.path / _result_filename(qid)

    def write(self, row: Mapping[str, Any]) -> Path:
        """Write one attributions row atomically (temporary file, fsync, rename)."""
        path = self.result_path(row["qid"])
        _atomic_write_text(path, json.dumps(row, ensure_ascii=False))
        return path

    def read(self, path: Path) -> dict[str, Any]:
        try:
            row = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ExplainError(f"{path}: unreadable result file ({exc}); delete it to recompute") from None
        if not isinstance(row, dict) or "qid" not in row:
            raise ExplainError(f"{path}: not a result file (no 'qid'); delete it to recompute")
        return row

    def results(self) -> dict[str, dict[str, Any]]:
        """Every finished row, by qid."""
        rows: dict[str, dict[str, Any]] = {}
        if not self.path.is_dir():
            return rows
        for path in sorted(self.path.glob(f"*{RESULT_SUFFIX}")):
            if path.name == SETTINGS_FILE or path.name.startswith("."):
                continue
            row = self.read(path)
            if row["qid"] in rows:  # two files for one qid: only by hand-copying files
                raise ExplainError(f"{self.path}: qid {row['qid']!r} has two result files")
            rows[row["qid"]] = row
        return rows

    def finished_qids(self, *, retry_errors: bool = False) -> set[str]:
        """Qids whose result exists (without error rows when ``retry_errors``)."""
        return {qid for qid, row in self.results().items() if not (retry_errors and row.get("error"))}


def work_dir_for(out: str | os.PathLike, config: str, work_dir: str | os.PathLike | None = None) -> WorkDir:
    """The work directory of ``config``: ``work_dir`` if given, else ``<out>/.work/<config>``."""
    return WorkDir(Path(work_dir) if work_dir is not None else Path(out) / WORK_DIRNAME / config)


# --------------------------------------------------------------------------------------------
# one question


class QuestionExplainer:
    """Explains single questions with one loaded model (loaded once per process).

    Args:
        loader: a loaded :class:`vqa_shap.loaders.base.Loader`.
        settings: the run's settings.
        video_root: folder the questions' input paths are relative to.
        batch_size: coalitions per batched forward.
        protocol: the protocol instance (default: ``get_protocol(settings.protocol)``).
    """

    def __init__(self, loader, settings: ExplainSettings, video_root: str | os.PathLike, *,
                 batch_size: int = DEFAULT_BATCH_SIZE, protocol=None):
        from vqa_shap.estimators import get_estimator
        from vqa_shap.protocol import get_protocol

        self.loader = loader
        self.settings = settings
        self.video_root = Path(video_root)
        self.batch_size = int(batch_size)
        self.protocol = protocol if protocol is not None else get_protocol(settings.protocol)
        self.estimator = get_estimator(settings.estimator)

    def _record(self, question, **fields):
        from vqa_shap import __version__
        from vqa_shap.schema import Attribution

        s = self.settings
        return Attribution(
            qid=question.qid, benchmark=question.benchmark, task=question.task, variant=question.variant,
            model=s.model, loader=s.loader, protocol=s.protocol, answer=int(question.answer),
            estimator=s.estimator, budget=int(fields.pop("budget", s.budget)), seed=int(s.seed),
            version=__version__, **fields,
        )

    def explain(self, question):
        """The :class:`~vqa_shap.schema.Attribution` of ``question``; an error record (``error`` set)
        if it cannot be explained (see :data:`QUESTION_ERRORS`)."""
        import numpy as np

        from vqa_shap.game import Game

        start = time.perf_counter()
        game = None
        try:
            proto, loader, s = self.protocol, self.loader, self.settings
            plan = proto.plan_frames(question, self.video_root, s.n_frames, sampler=s.sampler,
                                     loader_family=loader.family)
            frames = proto.load_frames(question, self.video_root, plan)
            features = proto.features(question, plan, loader.temporal_unit)
            prepared = loader.prepare(question, frames, plan, proto)
            n_video = proto.n_video_players(plan, loader.temporal_unit)
            game = Game(lambda coalitions: loader.score(prepared, coalitions), n_features=len(features),
                        video_features=n_video)  # one call per request: the loader batches and shares prefixes
            budget = s.budget
            if not s.strict_budget:  # too few evaluations for one estimate: use the estimator's minimum
                budget = max(budget, self.estimator.min_budget(game.n_players))
            estimate = self.estimator.estimate(game, budget, s.seed)
            value_full = np.asarray(game.value_full(), dtype=np.float64)
            value_empty = np.asarray(game.value_empty(), dtype=np.float64)
            values = np.asarray(estimate.values, dtype=np.float64)
            if values.shape != (len(features), value_full.shape[0]):
                raise ExplainError(f"estimate has shape {values.shape}, expected "
                                   f"({len(features)}, {value_full.shape[0]})")
            return self._record(
                question, features=features, shapley=values, stderr=estimate.stderr,
                value_full=value_full.astype(np.float32).tolist(),
                value_empty=value_empty.astype(np.float32).tolist(),
                prediction=int(np.argmax(value_full)), evaluations=int(game.evaluations), budget=budget,
                runtime_s=time.perf_counter() - start,
            )
        except QUESTION_ERRORS as exc:
            reason = str(exc) if isinstance(exc, VqaShapError) else f"{type(exc).__name__}: {exc}"
            logger.warning("question %s could not be explained: %s", question.qid, reason)
            return self._record(
                question, features=(), shapley=[], error=reason or type(exc).__name__,
                evaluations=int(game.evaluations) if game is not None else 0,
                runtime_s=time.perf_counter() - start,
            )


# --------------------------------------------------------------------------------------------
# the run


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


def load_fresh(folder: str | os.PathLike, config: str):
    """``load_dataset(folder, name=config, split="test")``, never from a stale cache (see
    :func:`vqa_shap.hub.load_config`); errors are :class:`ExplainError`."""
    from vqa_shap import hub

    return _as_explain_error(hub.load_config, folder, config)


def _load_questions_dataset(questions: str | os.PathLike, config: str):
    from vqa_shap import hub

    return _as_explain_error(hub.load_questions_dataset, questions, config)


def _as_explain_error(call, *args):
    """``call(*args)``, with the hub's errors re-raised as :class:`ExplainError`."""
    try:
        return call(*args)
    except VqaShapError as exc:
        raise ExplainError(str(exc)) from exc


def _check_unique(qids: Sequence[str], where: str) -> None:
    dupes = [q for q, n in Counter(qids).items() if n > 1]
    if dupes:
        raise ExplainError(f"{where}: duplicate qids {dupes[:5]}{' ...' if len(dupes) > 5 else ''}")


def _config_exists(folder: Path, config: str) -> bool:
    from vqa_shap import hub

    try:
        return config in hub.list_configs(folder)
    except (FileNotFoundError, VqaShapError):
        return False


def _check_output_folder(out: Path) -> None:
    """Fail before any work if ``out`` holds another kind of dataset (e.g. the questions)."""
    from vqa_shap import hub

    kind = _as_explain_error(hub.folder_meta, out).get("kind")
    if kind not in (None, "attributions"):
        raise ExplainError(f"{out} holds a {kind!r} dataset; write attributions to another folder")


def explain_questions(
    questions: str | os.PathLike,
    config: str,
    *,
    model: str,
    video_root: str | os.PathLike,
    out: str | os.PathLike,
    frames: int = DEFAULT_FRAMES,
    budget: int = DEFAULT_BUDGET,
    estimator: str = DEFAULT_ESTIMATOR,
    seed: int = 0,
    batch_size: int = DEFAULT_BATCH_SIZE,
    device: str | None = None,
    dtype: str | None = None,
    loader: str | None = None,
    protocol: str = DEFAULT_PROTOCOL,
    sampler: str | None = None,
    name: str | None = None,
    work_dir: str | os.PathLike | None = None,
    rank: int | None = None,
    world_size: int | None = None,
    retry_errors: bool = False,
    overwrite: bool = False,
    restart: bool = False,
    strict_budget: bool = False,
    map_batch_size: int = 8,
    progress: bool = True,
) -> ExplainResult:
    """Explain every question of a questions config with a model; write the attributions config.

    Args:
        questions: Hub-style questions folder (see :mod:`vqa_shap.hub`).
        config: the questions config to explain (e.g. ``"hd-epic"``).
        model: checkpoint id, local ``save_pretrained`` folder, or ``tiny-random/<family>``.
        video_root: folder the questions' input paths are relative to.
        out: Hub-style output folder (created; other configs in it are kept).
        frames: frames sampled per question.
        budget: model evaluations per question for the estimator. A question whose players need
            more for a single estimate (e.g. ``2F+1`` for one permutation) gets that minimum,
            recorded in its row, unless ``strict_budget``.
        estimator: estimator name (``vqa_shap.estimators.ESTIMATORS``).
        seed: estimator seed (the same for every question).
        batch_size: coalitions per batched forward.
        device: torch device, or ``None`` for automatic.
        dtype: torch dtype name, or ``None`` for automatic.
        loader: loader family, or ``None`` to infer it from the checkpoint.
        protocol: protocol name.
        sampler: frame sampler, or ``None`` for the protocol's default for the loader family.
        name: attributions config name (default :func:`attributions_config`).
        work_dir: work directory (default ``<out>/.work/<config>``).
        rank: this process's rank (default from ``RANK`` / ``SLURM_PROCID``, else 0).
        world_size: number of processes (default from ``WORLD_SIZE`` / ``SLURM_NTASKS``, else 1).
        retry_errors: recompute questions whose earlier result is an error row.
        overwrite: replace an existing config of the same name in ``out``. Finished work files of
            a run with the same settings are still reused; see ``restart``.
        restart: discard the work directory's earlier results and explain everything again
            (single process only: shards would discard each other's work).
        strict_budget: make a question an error row instead of raising a too-small budget.
        map_batch_size: questions per ``Dataset.map`` batch.
        progress: show a progress bar (questions/s, evaluations/s).

    Returns:
        An :class:`ExplainResult`; with one process the config is written to ``out``, with several
        each process leaves its work files and :func:`merge_shards` assembles them.

    Raises:
        ExplainError: inconsistent work directory, existing config without ``overwrite``, bad input.
    """
    from datasets.distributed import split_dataset_by_node

    from vqa_shap.estimators import get_estimator
    from vqa_shap.loaders import resolve_model
    from vqa_shap.protocol import get_protocol
    from vqa_shap.schema import Question, attribution_features

    if frames < 1 or budget < 1 or batch_size < 1 or map_batch_size < 1:
        raise ExplainError("frames, budget, batch size and map batch size must be positive")
    if not Path(video_root).is_dir():
        raise ExplainError(f"video root {video_root} is not a folder")
    out = Path(out)
    _check_output_folder(out)
    shard = Shard.resolve(rank, world_size)
    config_out = name or attributions_config(model, config)
    if shard.world_size == 1 and not overwrite and _config_exists(out, config_out):
        raise ExplainError(f"{out} already has config {config_out!r}; pass --overwrite to replace it")

    ds = _load_questions_dataset(questions, config)
    all_qids = tuple(ds["qid"])
    _check_unique(all_qids, f"{questions} config {config!r}")
    loader_cls, checkpoint = resolve_model(model, loader)
    proto = get_protocol(protocol)
    # Record the estimator's own name ("default" is an alias that may change between versions).
    estimator_name = get_estimator(estimator).name
    settings = ExplainSettings(
        model=model, loader=loader_cls.family, protocol=proto.name, estimator=estimator_name,
        budget=int(budget), seed=int(seed), n_frames=int(frames), sampler=sampler, strict_budget=bool(strict_budget),
        questions_config=config, config=config_out, qids=all_qids,
    )
    work = work_dir_for(out, config_out, work_dir)
    if restart:
        if shard.world_size > 1:
            raise ExplainError(f"restart with {shard.world_size} shards would discard the other shards' work; "
                               f"delete {work.path} once before starting them instead")
        work.clear()
    work.claim(settings)

    part = split_dataset_by_node(ds, rank=shard.rank, world_size=shard.world_size)
    finished = work.finished_qids(retry_errors=retry_errors)
    todo = [q for q in part["qid"] if q not in finished]
    logger.info("%s: shard %d/%d has %d questions, %d already finished", config_out, shard.rank,
                shard.world_size, len(part), len(part) - len(todo))

    explainer = None
    if todo:  # load the model only when there is work (a finished shard resumes instantly)
        model_loader = loader_cls.load(checkpoint, device=device, dtype=dtype, batch_size=batch_size)
        explainer = QuestionExplainer(model_loader, settings, video_root, batch_size=batch_size, protocol=proto)

    stats = {"computed": 0, "evaluations": 0}
    bar = _progress_bar(len(part), len(part) - len(todo), f"explain {config_out}", enabled=progress)
    started = time.perf_counter()

    def explain_batch(batch: dict[str, list]) -> dict[str, list]:
        rows = []
        for i in range(len(batch["qid"])):
            qid = batch["qid"][i]
            path = work.result_path(qid)
            if qid in finished:
                rows.append(work.read(path))
                continue
            row = explainer.explain(Question.from_row({k: batch[k][i] for k in batch})).to_row()
            work.write(row)
            rows.append(row)
            stats["computed"] += 1
            stats["evaluations"] += row["evaluations"]
            if bar is not None:
                elapsed = max(time.perf_counter() - started, 1e-9)
                bar.set_postfix(q_per_s=f"{stats['computed'] / elapsed:.2f}",
                                evals_per_s=f"{stats['evaluations'] / elapsed:.0f}", refresh=False)
                bar.update(1)
        return {c: [r.get(c) for r in rows] for c in attribution_features()}

    fingerprint = hashlib.sha1(
        json.dumps([settings.to_json(), shard.rank, shard.world_size, time.time_ns()]).encode()
    ).hexdigest()
    try:
        with _datasets_progress_disabled():
            # keep_in_memory + an explicit fingerprint: no cache files, and the closure (holding the
            # model) is never hashed.
            result_ds = part.map(
                explain_batch, batched=True, batch_size=map_batch_size, remove_columns=part.column_names,
                features=attribution_features(), keep_in_memory=True, new_fingerprint=fingerprint,
            )
    finally:
        if bar is not None:
            bar.close()
    seconds = time.perf_counter() - started

    n_errors = sum(1 for e in result_ds["error"] if e)
    written = False
    if shard.world_size == 1:
        assemble(work, out, overwrite=overwrite)
        written = True
    result = ExplainResult(
        folder=out, config=config_out, shard=shard, n_questions=len(part),
        n_resumed=len(part) - len(todo), n_computed=stats["computed"], n_errors=n_errors,
        evaluations=stats["evaluations"], seconds=seconds, written=written, work_dir=work.path,
        dataset=result_ds,
    )
    if n_errors:
        reasons = Counter(e for e in result_ds["error"] if e).most_common(3)
        logger.warning("%d of %d questions are error rows; most common: %s", n_errors, len(part),
                       "; ".join(f"{n}x {r}" for r, n in reasons))
    return result


def _progress_bar(total: int, initial: int, desc: str, *, enabled: bool):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc=desc, unit="q", dynamic_ncols=True)


class _datasets_progress_disabled:
    """Hide ``Dataset.map``'s own bar while ours (with evaluations/s) runs; restore it after."""

    def __enter__(self):
        import datasets

        self._was_enabled = datasets.is_progress_bar_enabled()
        datasets.disable_progress_bars()

    def __exit__(self, *exc):
        import datasets

        if self._was_enabled:
            datasets.enable_progress_bars()
        return False


# --------------------------------------------------------------------------------------------
# assembling and merging


@dataclass(frozen=True)
class MergeResult:
    """One assembled attributions config.

    Attributes:
        folder: where the config was written.
        config: the config name.
        n_rows: rows written.
        n_errors: error rows among them.
        missing: qids of the questions config without a result (only with ``allow_partial``).
    """

    folder: Path
    config: str
    n_rows: int
    n_errors: int
    missing: tuple[str, ...] = ()


def _collect(work_dirs: Sequence[WorkDir]) -> tuple[ExplainSettings, dict[str, dict[str, Any]]]:
    """Settings (must agree) and rows by qid from work directories (a qid twice is an error)."""
    settings = work_dirs[0].settings()
    rows: dict[str, dict[str, Any]] = {}
    origin: dict[str, Path] = {}
    duplicates: list[str] = []
    for work in work_dirs:
        other = work.settings()
        if other != settings:
            raise ExplainError(f"{work.path} and {work_dirs[0].path} were explained with different settings; "
                               "they cannot be merged")
        for qid, row in work.results().items():
            if qid in rows:
                duplicates.append(f"{qid!r} ({origin[qid]} and {work.path})")
            rows[qid] = row
            origin[qid] = work.path
    if duplicates:
        raise ExplainError(f"{len(duplicates)} questions were explained in more than one shard folder: "
                           + "; ".join(duplicates[:5]) + (" ..." if len(duplicates) > 5 else ""))
    return settings, rows


def assemble(work_dirs: WorkDir | Sequence[WorkDir], out: str | os.PathLike, *,
             allow_partial: bool = False, overwrite: bool = False) -> MergeResult:
    """Write the attributions config of ``work_dirs`` into the Hub-style folder ``out``.

    Rows follow the questions order. Refuses when a question has no result (unless
    ``allow_partial``), when one was explained in two work directories, or when a result belongs to
    no question of the config.
    """
    import datasets

    from vqa_shap import hub
    from vqa_shap.schema import attribution_features

    if isinstance(work_dirs, WorkDir):
        work_dirs = [work_dirs]
    settings, rows = _collect(list(work_dirs))
    expected = settings.qids
    unknown = sorted(set(rows) - set(expected))
    if unknown:
        raise ExplainError(f"config {settings.config!r}: results for qids not in questions config "
                           f"{settings.questions_config!r}: {unknown[:5]}")
    missing = tuple(q for q in expected if q not in rows)
    if missing and not allow_partial:
        raise ExplainError(
            f"config {settings.config!r}: {len(missing)} of {len(expected)} questions have no result yet "
            f"(first: {', '.join(missing[:5])}); finish the missing shards (rerun explain with the same "
            "--rank/--world-size) or pass --allow-partial to write what exists"
        )
    ordered = [rows[q] for q in expected if q in rows]
    features = attribution_features()
    table = datasets.Dataset.from_list(ordered, features=features)
    hub.write_config(Path(out), settings.config, table, features=features, kind="attributions",
                     card_vars=settings.card_vars(), overwrite=overwrite)
    n_errors = sum(1 for r in ordered if r.get("error"))
    return MergeResult(folder=Path(out), config=settings.config, n_rows=len(ordered), n_errors=n_errors,
                       missing=missing)


def find_work_dirs(folder: str | os.PathLike) -> list[WorkDir]:
    """The work directories in ``folder``: itself if it is one, else ``<folder>/.work/*``."""
    folder = Path(folder)
    if (folder / SETTINGS_FILE).is_file():
        return [WorkDir(folder)]
    root = folder / WORK_DIRNAME
    return [WorkDir(p) for p in sorted(root.iterdir()) if (p / SETTINGS_FILE).is_file()] if root.is_dir() else []


def merge_shards(folders: Iterable[str | os.PathLike], *, out: str | os.PathLike | None = None,
                 configs: Sequence[str] | None = None, allow_partial: bool = False,
                 overwrite: bool = False) -> list[MergeResult]:
    """Assemble the shard outputs found in ``folders`` into attributions configs.

    Args:
        folders: output folders of the shards (or work directories themselves); the same folder
            when all shards shared one.
        out: destination Hub-style folder (default: the first folder).
        configs: only these configs (default: every config found).
        allow_partial: write what exists even when questions have no result.
        overwrite: replace existing configs in ``out``.

    Returns:
        One :class:`MergeResult` per config written.
    """
    unique: list[Path] = []
    for folder in map(Path, folders):
        if not folder.exists():
            raise ExplainError(f"{folder} does not exist")
        if folder.resolve() not in [u.resolve() for u in unique]:
            unique.append(folder)
    if not unique:
        raise ExplainError("no folders to merge")
    by_config: dict[str, list[WorkDir]] = {}
    for folder in unique:
        for work in find_work_dirs(folder):
            by_config.setdefault(work.settings().config, []).append(work)
    if not by_config:
        raise ExplainError(f"no explain work directories in {', '.join(map(str, unique))} "
                           f"(expected {WORK_DIRNAME}/<config>/{SETTINGS_FILE})")
    wanted = list(configs) if configs else sorted(by_config)
    absent = [c for c in wanted if c not in by_config]
    if absent:
        raise ExplainError(f"no work files for config(s) {absent}; found: {sorted(by_config)}")
    destination = Path(out) if out is not None else unique[0]
    if not overwrite:
        taken = [c for c in wanted if _config_exists(destination, c)]
        if taken:
            raise ExplainError(f"{destination} already has config(s) {taken}; pass --overwrite to replace")
    return [assemble(by_config[c], destination, allow_partial=allow_partial, overwrite=overwrite)
            for c in wanted]
