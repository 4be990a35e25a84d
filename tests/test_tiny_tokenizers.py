"""The offline tiny tokenizers are the same in every process: tests that compare numbers rely on it.

A set's iteration order follows ``PYTHONHASHSEED``; a tokenizer built from one gave different ids (and
different scores) per process, which made an exactness test fail now and then.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytest.importorskip("transformers")

_PROBE = """
import json
from vqa_shap.loaders.testing.tiny import build_clip_tokenizer, build_deberta_tokenizer, build_tokenizer
text = "What is the man doing with the cup? Question: Is it Yes or No"
print(json.dumps({name: build()(text)["input_ids"] for name, build in
                  (("clip", build_clip_tokenizer), ("deberta", build_deberta_tokenizer), ("llm", build_tokenizer))}))
"""


def _ids(hash_seed: str) -> dict:
    env = {**os.environ, "PYTHONHASHSEED": hash_seed}
    out = subprocess.run([sys.executable, "-c", _PROBE], env=env, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_tiny_tokenizers_do_not_depend_on_the_hash_seed():
    first, second = _ids("1"), _ids("2")
    assert first == second
    assert len(first["clip"]) > 5 and len(first["llm"]) > 5  # not vacuous: real tokenisation happened
