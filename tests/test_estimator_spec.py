"""Estimator specs (``name:key=value,...``): formatted and parsed in one module, taken wherever a name is."""

from __future__ import annotations

import argparse

import pytest

from vqa_shap.commands import argtypes
from vqa_shap.estimators import get_estimator
from vqa_shap.estimators.spec import format_spec, parse_spec


def test_parse_is_the_inverse_of_format():
    options = {"border": True, "tail": 2, "ratio": 0.5, "mode": "fast"}
    spec = format_spec("kernel", options)
    assert spec == "kernel:border=True,mode=fast,ratio=0.5,tail=2"
    assert parse_spec(spec) == ("kernel", options)
    assert format_spec("exact", {}) == "exact" and parse_spec("exact") == ("exact", {})


def test_get_estimator_takes_a_spec_and_keyword_options_override_it():
    assert get_estimator("shared_video:per_video=8").config["per_video"] == 8
    assert get_estimator("shared_video:per_video=8", per_video=2).config["per_video"] == 2
    assert get_estimator("shared_video").config["per_video"] == 4


def test_the_cli_estimator_argument_takes_a_spec_and_names_a_bad_option():
    assert argtypes.estimator("shared_video:per_video=8") == "shared_video:per_video=8"
    with pytest.raises(argparse.ArgumentTypeError, match=r"unknown option\(s\) \['per_vid'\]"):
        argtypes.estimator("shared_video:per_vid=8")
    with pytest.raises(argparse.ArgumentTypeError, match="unknown estimator 'nope'; valid estimators: auto"):
        argtypes.estimator("nope:x=1")
