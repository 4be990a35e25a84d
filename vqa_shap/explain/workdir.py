"""Names, shards, the settings that determine the numbers, and the per-question work directory."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping

from vqa_shap.errors import UsageError, VqaShapError
from vqa_shap.atomic_files import atomic_write_json, atomic_write_text, safe_stem

#: Name of the hidden folder (inside the output folder) that holds per-question work files.
WORK_DIRNAME = ".work"
#: File (inside a config's work directory) recording the settings that determine the numbers.
SETTINGS_FILE = "settings.json"
#: Suffix of a per-question work file.
RESULT_SUFFIX = ".json"
#: Key of a work file holding the digest of the question it was computed from (see :func:`question_digest`).
DIGEST_KEY = "question_sha1"

_CONFIG_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")


class ExplainError(VqaShapError):
    """An explain or merge run cannot go on (inconsistent work directory, missing shards, ...)."""


class ExplainInputError(ExplainError, UsageError):
    """Bad input found before any work (an argument, a name, a folder); the CLI exits with status 2."""


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
        raise ExplainInputError(f"cannot make a config name from model {model!r}")
    return slug


def attributions_config(model: str, questions_config: str) -> str:
    """The attributions config name: ``<model slug>__<questions config>``."""
    return f"{model_slug(model)}__{questions_config}"


def check_config_name(name: str, what: str = "--name") -> str:
    """``name`` if it is a valid config name (a single folder name: letters, digits, ``_.-``)."""
    if not isinstance(name, str) or not _CONFIG_NAME.match(name) or name in (".", ".."):
        raise ExplainInputError(f"{what} {name!r} is not a valid config name (letters, digits, '_', '.', '-'; "
                                "starting with a letter or digit; no '/')")
    return name


def _result_filename(qid: str) -> str:
    return safe_stem(qid) + RESULT_SUFFIX


#: The names :func:`_result_filename` gives (``safe_stem``: readable part, ``-``, 10 hex digits).
_RESULT_NAME = re.compile(r"[A-Za-z0-9._-]*-[0-9a-f]{10}" + re.escape(RESULT_SUFFIX))


def question_digest(row: Mapping[str, Any]) -> str:
    """Digest of a question's content (every field: text, options, answer, inputs, ...).

    A work file records the digest of the question it explains; a question changed since (e.g. a
    corrected answer rebuilt with ``build --overwrite``) no longer matches and is explained again.
    """
    text = json.dumps(dict(row), sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha1(text.encode("utf-8", errors="surrogatepass")).hexdigest()


# --------------------------------------------------------------------------------------------
# shards


@dataclass(frozen=True)
class Shard:
    """This process's part of the run: ``rank`` of ``world_size`` contiguous parts."""

    rank: int = 0
    world_size: int = 1

    def __post_init__(self):
        if self.world_size < 1 or not 0 <= self.rank < self.world_size:
            raise ExplainInputError(f"invalid shard: rank {self.rank} of world size {self.world_size}")

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
                        raise ExplainInputError(f"environment variable {name}={value!r} is not an integer") from None
            return None

        if world_size is None:
            world_size = from_env("WORLD_SIZE", "SLURM_NTASKS")
        if rank is None:
            # Take the rank from the same launcher as the world size.
            rank = from_env("RANK") if env.get("WORLD_SIZE") else from_env("SLURM_PROCID", "RANK")
        world_size = 1 if world_size is None else world_size
        rank = 0 if rank is None else rank
        return cls(rank=rank, world_size=world_size)

    def bounds(self, n: int) -> tuple[int, int]:
        """``[start, end)`` of this shard's contiguous part of ``n`` items (possibly empty)."""
        base, extra = divmod(n, self.world_size)
        start = self.rank * base + min(self.rank, extra)
        return start, start + base + (1 if self.rank < extra else 0)


# --------------------------------------------------------------------------------------------
# settings


def _public_spec(spec: str | None) -> str | None:
    """``kind:PATH`` -> ``kind:<file or folder name>`` (no local path in a public card); names unchanged."""
    if spec is None or ":" not in spec:
        return spec
    kind, _, path = spec.partition(":")
    return f"{kind}:{Path(path).name}"


@dataclass(frozen=True)
class ExplainSettings:
    """What determines an attributions config's numbers; a resumed or merged run must match them.

    Attributes:
        model: checkpoint id or local folder as given (``tiny-random/<family>`` for tiny models).
        loader: loader family name.
        protocol: protocol name.
        estimator: the estimator's registered name (``"default"`` resolved to the member it stands for).
        budget: evaluation budget per question (the cap, with ``target_error``).
        target_error: adaptive budget's target relative error, or ``None``.
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
        video_root: the folder the videos were read from (absolute), or ``None`` if not recorded.
        dtype: the torch dtype asked for (``None``: automatic).
        players: the video players: ``"frames"`` (one per sampled frame, or per ``temporal_unit``
            frames; the paper's) or ``"shots"`` (the frames of one shot masked together).
        shot_detector: the shot detector's spec (``players == "shots"``: its name, or
            ``"transnetv2:<absolute weights file>"``), else ``None``.
        aks_scorer: the relevance scorer of ``sampler == "aks"`` other than the model's own
            (``"clip:<absolute folder>"``), else ``None``.
        extra: settings of a job other than Shapley attributions (e.g. ``vqa-shap interactions``),
            as canonical JSON text; ``None`` for attributions.
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
    video_root: str | None = None
    dtype: str | None = None
    players: str = "frames"
    shot_detector: str | None = None
    aks_scorer: str | None = None
    extra: str | None = None
    target_error: float | None = None

    def card_vars(self) -> dict[str, Any]:
        """Template variables for ``cards/attributions.md.j2``."""
        from vqa_shap import __version__

        card = {
            "model": self.model, "loader": self.loader, "protocol": self.protocol,
            "estimator": self.estimator, "budget": self.budget, "seed": self.seed,
            "n_frames": self.n_frames, "sampler": self.sampler,
            "questions_config": self.questions_config, "config": self.config,
            "version": __version__,
            **(json.loads(self.extra) if self.extra else {}),
        }
        if self.players != "frames":  # the paper's layout is the default and stays unrecorded
            card.update(players=self.players, shot_detector=_public_spec(self.shot_detector))
        if self.aks_scorer is not None:  # the model's own scorer is the default and stays unrecorded
            card.update(aks_scorer=_public_spec(self.aks_scorer))
        if self.target_error is not None:  # the budget is then a cap
            card.update(target_error=self.target_error)
        return card

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["qids"] = list(self.qids)
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "ExplainSettings":
        data = dict(data)
        data["qids"] = tuple(data.get("qids") or ())
        return cls(**data)

    def differences(self, other: "ExplainSettings") -> list[str]:
        """Human-readable differences (``field: X recorded, Y now``) from ``other``, the recorded settings."""
        diffs = [f"{k}: {getattr(other, k)!r} recorded, {getattr(self, k)!r} now"
                 for k in ExplainSettings.__dataclass_fields__
                 if k != "qids" and getattr(other, k) != getattr(self, k)]
        if other.qids != self.qids:
            diffs.append("the question list differs")
        return diffs


# --------------------------------------------------------------------------------------------
# the work directory


class WorkDir:
    """The per-question result files of one attributions config.

    Every finished question is one small JSON file (written atomically, so it is complete or
    absent); ``settings.json`` records the settings of the first run; a run holds a lock file per
    shard while it works.
    """

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
        except (json.JSONDecodeError, TypeError, ValueError) as exc:
            raise ExplainError(f"{self.settings_path}: unreadable settings ({exc})") from None

    def claim(self, settings: ExplainSettings) -> None:
        """Record ``settings``, or check that they equal the recorded ones (resume, other shards)."""
        self.path.mkdir(parents=True, exist_ok=True)
        if self.exists():
            recorded = self.settings()
            if recorded != settings:
                raise ExplainInputError(
                    f"{self.path} holds results of a run with other settings "
                    f"({'; '.join(settings.differences(recorded))}); "
                    "use another --out/--work-dir, or --restart to discard them"
                )
            return
        atomic_write_json(self.settings_path, settings.to_json(), indent=1)

    def clear(self) -> None:
        """Delete every finished result and the recorded settings (lock files stay); files whose names a
        work directory never uses (e.g. the user's, when ``--work-dir`` is their folder) are left alone."""
        if self.path.is_dir():
            for path in self.path.glob(f"*{RESULT_SUFFIX}"):
                if path.name == SETTINGS_FILE or _RESULT_NAME.fullmatch(path.name):
                    path.unlink()

    def check_not_foreign(self) -> None:
        """Refuse a folder given as the work directory that holds files and is not one (no settings).

        Raises:
            ForeignFolderError: the folder has files other than lock files and no explain settings.
        """
        from vqa_shap.output_folder import check_output_folder

        locks_only = self.path.is_dir() and all(p.name.startswith(".lock-") for p in self.path.iterdir())
        check_output_folder(self.path, "explain (--work-dir)", legacy_owned=locks_only or self._has_settings())

    def _has_settings(self) -> bool:
        """Whether the folder records the settings of an explain run (readable ones, not any settings.json)."""
        try:
            self.settings()
        except ExplainError:
            return False
        return True

    @contextlib.contextmanager
    def lock(self, shard: Shard) -> Iterator[None]:
        """Hold this shard's lock for the duration of a run; refuse at once if another process has it.

        Two explains of the same shard into one work directory would both do all the work; the
        second stops before any instead. The lock is released when the process ends, even by
        ``kill -9``.
        """
        try:
            import fcntl
        except ImportError:  # no advisory locks on this platform: run unlocked
            yield
            return
        self.path.mkdir(parents=True, exist_ok=True)
        path = self.path / f".lock-{shard.rank}-of-{shard.world_size}"
        with open(path, "a+", encoding="utf-8") as handle:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise ExplainInputError(
                    f"another explain is already working on {self.path} (shard {shard.rank} of "
                    f"{shard.world_size}); wait for it or use another --out/--work-dir"
                ) from None
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    def result_path(self, qid: str) -> Path:
        return self.path / _result_filename(qid)

    def write(self, row: Mapping[str, Any], digest: str | None = None) -> Path:
        """Write one attributions row atomically, with the digest of the question it explains."""
        path = self.result_path(row["qid"])
        data = dict(row) if digest is None else {**row, DIGEST_KEY: digest}
        atomic_write_text(path, json.dumps(data, ensure_ascii=False))
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

    def finished(self, digests: Mapping[str, str], *, retry_errors: bool = False) -> dict[str, dict[str, Any]]:
        """The reusable rows among ``digests`` (qid -> question digest), by qid.

        A row is reusable when it was computed from the same question content (its recorded digest
        matches) and, with ``retry_errors``, is not an error row.
        """
        rows = {}
        for qid, digest in digests.items():
            path = self.result_path(qid)
            if not path.is_file():
                continue
            row = self.read(path)
            if row.get(DIGEST_KEY) == digest and not (retry_errors and row.get("error")):
                rows[qid] = row
        return rows

    def finished_qids(self, *, retry_errors: bool = False) -> set[str]:
        """Qids whose result exists (without error rows when ``retry_errors``), whatever their content."""
        return {qid for qid, row in self.results().items() if not (retry_errors and row.get("error"))}


def work_dir_for(out: str | os.PathLike, config: str, work_dir: str | os.PathLike | None = None) -> WorkDir:
    """The work directory of ``config``: ``work_dir`` if given, else ``<out>/.work/<config>``."""
    check_config_name(config, "config")
    return WorkDir(Path(work_dir) if work_dir is not None else Path(out) / WORK_DIRNAME / config)
