"""The interactions dataset: one row per question, pairwise k-SII of its players for every option score."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Mapping

import numpy as np

__all__ = ["INTERACTION_COLUMNS", "InteractionPlayer", "InteractionRecord", "interaction_features"]

#: Column order of the interactions dataset.
INTERACTION_COLUMNS = (
    "qid", "benchmark", "task", "variant", "model", "loader", "protocol", "features", "players", "pairs",
    "interactions", "main", "value_full", "value_empty", "answer", "prediction", "index", "players_kind",
    "phi_source", "estimator", "budget", "evaluations", "seed", "runtime_s", "version", "error",
)


@lru_cache(maxsize=None)
def interaction_features():
    """The ``datasets.Features`` of the interactions dataset."""
    from datasets import Features, List, Value

    from vqa_shap.schema.arrow import attribution_features

    return Features({
        **{c: Value("string") for c in ("qid", "benchmark", "task", "variant", "model", "loader", "protocol")},
        "features": attribution_features()["features"],
        "players": List({"name": Value("string"), "features": List(Value("int32"))}),
        "pairs": List(List(Value("int32"))),
        "interactions": List(List(Value("float64"))),
        "main": List(List(Value("float64"))),
        "value_full": List(Value("float64")),
        "value_empty": List(Value("float64")),
        "answer": Value("int32"),
        "prediction": Value("int32"),
        **{c: Value("string") for c in ("index", "players_kind", "phi_source", "estimator")},
        "budget": Value("int64"),
        "evaluations": Value("int64"),
        "seed": Value("int64"),
        "runtime_s": Value("float64"),
        "version": Value("string"),
        "error": Value("string"),
    })


@dataclass(frozen=True)
class InteractionPlayer:
    """One player of the interaction game: a name and the feature indices it switches."""

    name: str
    features: tuple[int, ...]


@dataclass(frozen=True)
class InteractionRecord:
    """One row of the interactions dataset.

    Attributes:
        qid, benchmark, task, variant: copied from the question.
        model, loader, protocol: what scored the question.
        features: every feature (:class:`~vqa_shap.schema.records.Feature`) of the question, as in attributions.
        players: the interaction game's players (features outside every player stay kept).
        pairs: ``(i, j)`` player pairs, ``i < j``.
        interactions: ``float64[n_pairs, K]`` pair values of the index.
        main: ``float64[P, K]`` order-1 values of the index.
        value_full, value_empty: the K scores with every player present / absent (features outside
            the players kept).
        answer, prediction: ground truth and the model's choice on the unmasked input.
        index: the interaction index (``k-SII``: pair values are the SII).
        players_kind: ``modality`` or ``top-k``.
        phi_source: where the top-k ranking came from (``attributions`` or ``computed:<estimator>``).
        estimator, budget, evaluations, seed: how the values were computed.
        runtime_s, version, error: as in attributions (an error row has empty values).
    """

    qid: str
    benchmark: str
    task: str
    variant: str
    model: str
    loader: str
    protocol: str
    features: tuple = ()
    players: tuple[InteractionPlayer, ...] = ()
    pairs: tuple[tuple[int, int], ...] = ()
    interactions: Any = ()
    main: Any = ()
    value_full: tuple[float, ...] | None = None
    value_empty: tuple[float, ...] | None = None
    answer: int | None = None
    prediction: int | None = None
    index: str = ""
    players_kind: str = ""
    phi_source: str | None = None
    estimator: str = ""
    budget: int = 0
    evaluations: int = 0
    seed: int | None = None
    runtime_s: float | None = None
    version: str = ""
    error: str | None = None

    def pair_value(self, a: int, b: int, column: int) -> float:
        """The interaction of players ``a`` and ``b`` (any order) for output ``column``."""
        key = (min(a, b), max(a, b))
        return float(np.asarray(self.interactions)[self.pairs.index(key), column])

    def to_row(self) -> dict[str, Any]:
        """The dataset row (lists and plain floats)."""
        return {
            "qid": self.qid, "benchmark": self.benchmark, "task": self.task, "variant": self.variant,
            "model": self.model, "loader": self.loader, "protocol": self.protocol,
            "features": [f.to_row() for f in self.features],
            "players": [{"name": p.name, "features": [int(i) for i in p.features]} for p in self.players],
            "pairs": [[int(i), int(j)] for i, j in self.pairs],
            "interactions": np.asarray(self.interactions, dtype=np.float64).tolist(),
            "main": np.asarray(self.main, dtype=np.float64).tolist(),
            "value_full": None if self.value_full is None else [float(v) for v in self.value_full],
            "value_empty": None if self.value_empty is None else [float(v) for v in self.value_empty],
            "answer": None if self.answer is None else int(self.answer), "prediction": self.prediction, "index": self.index,
            "players_kind": self.players_kind, "phi_source": self.phi_source, "estimator": self.estimator,
            "budget": int(self.budget), "evaluations": int(self.evaluations), "seed": self.seed,
            "runtime_s": self.runtime_s, "version": self.version, "error": self.error,
        }

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> "InteractionRecord":
        """A record from a dataset row (values as ``float64`` arrays)."""
        from vqa_shap.schema.records import Feature

        data = {k: row.get(k) for k in INTERACTION_COLUMNS}
        data["features"] = tuple(Feature.from_row(f) for f in row.get("features") or ())
        data["players"] = tuple(InteractionPlayer(p["name"], tuple(p["features"])) for p in row.get("players") or ())
        data["pairs"] = tuple((int(i), int(j)) for i, j in row.get("pairs") or ())
        for key in ("interactions", "main"):
            data[key] = np.asarray(row.get(key) or [], dtype=np.float64)
        for key in ("value_full", "value_empty"):
            data[key] = None if row.get(key) is None else tuple(row[key])
        return cls(**data)
