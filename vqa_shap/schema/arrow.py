"""The ``datasets.Features`` of the two datasets (questions, attributions), built lazily because
``datasets`` is a heavy import; :mod:`vqa_shap.schema.records` re-exports them next to the typed records."""

from __future__ import annotations

from functools import lru_cache


@lru_cache(maxsize=None)
def question_features():
    """The ``datasets.Features`` of the questions dataset."""
    from datasets import Features, List, Value

    return Features(
        {
            "qid": Value("string"),
            "benchmark": Value("string"),
            "task": Value("string"),
            "question": Value("string"),
            "options": List(Value("string")),
            "answer": Value("int32"),
            "inputs": List(
                {
                    "kind": Value("string"),
                    "path": Value("string"),
                    "start": Value("float64"),
                    "end": Value("float64"),
                    "time": Value("float64"),
                    "fps": Value("float64"),
                    "label": Value("string"),
                }
            ),
            "variant": Value("string"),
            "option_origin": List({"qid": Value("string"), "index": Value("int32")}),
            "extra": Value("string"),
        }
    )


@lru_cache(maxsize=None)
def attribution_features():
    """The ``datasets.Features`` of the attributions dataset."""
    from datasets import Features, List, Value

    return Features(
        {
            "qid": Value("string"),
            "benchmark": Value("string"),
            "task": Value("string"),
            "variant": Value("string"),
            "model": Value("string"),
            "loader": Value("string"),
            "protocol": Value("string"),
            "features": List(
                {
                    "name": Value("string"),
                    "modality": Value("string"),
                    "option": Value("int32"),
                    "input": Value("int32"),
                    "time": Value("float64"),
                }
            ),
            # float64: imported published tables (and estimator output) round-trip exactly.
            "shapley": List(List(Value("float64"))),
            "stderr": List(List(Value("float64"))),
            "relative_error": Value("float64"),
            "value_full": List(Value("float32")),
            "value_empty": List(Value("float32")),
            "answer": Value("int32"),
            "prediction": Value("int32"),
            "estimator": Value("string"),
            "budget": Value("int64"),
            "evaluations": Value("int64"),
            "seed": Value("int64"),
            "runtime_s": Value("float64"),
            "version": Value("string"),
            "error": Value("string"),
        }
    )
