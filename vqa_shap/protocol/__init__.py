"""Protocols: how a question becomes model input, and what the Shapley players are.

The package is split along its seams:

* :mod:`~vqa_shap.protocol.words`: the word split and re-join that define the text players, option
  letters, HD-EPIC ``<TIME …>``/``<BBOX …>`` tags;
* :mod:`~vqa_shap.protocol.samplers`: frame samplers, pure functions of numbers, in a name -> function
  table (:data:`SAMPLERS`);
* :mod:`~vqa_shap.protocol.base`: the records (:class:`FrameRef`, :class:`FramePlan`, :class:`Prompt`)
  and the :class:`Protocol` base class with the player layout shared by every protocol;
* :mod:`~vqa_shap.protocol.pollard2025`: :class:`Pollard2025`, the protocol of "A Video Is Not Worth a
  Thousand Words" (Pollard & Wray, 2025) as its public code implements it.

Every public name is importable from ``vqa_shap.protocol``. The package is light: it imports only
``numpy`` and ``re``; video decoding is imported when frames are planned or loaded. docs/protocol.md
describes the feature layout and the paper's choices.
"""

from __future__ import annotations

from vqa_shap.protocol.base import (BASELINES, FramePlan, FrameRef, Prompt, PromptInput, Protocol,
                                    input_path)
from vqa_shap.protocol.pollard2025 import FRAME_FOLDER_FPS, Pollard2025
from vqa_shap.protocol.samplers import (SAMPLERS, Sampler, fps1_capped, get_sampler, hd_epic_windows,
                                        linspace, mvbench_bounds, segment_midpoints, uniform_edges)
from vqa_shap.protocol.words import (HD_EPIC_IMAGE_SIZE, WORD_PATTERN, clock_seconds, join_words,
                                     option_letter, parse_tags, split_words)
from vqa_shap.registry import Registry

__all__ = [
    "split_words", "join_words", "option_letter", "parse_tags", "clock_seconds", "WORD_PATTERN",
    "HD_EPIC_IMAGE_SIZE", "FrameRef", "FramePlan", "PromptInput", "Prompt", "Protocol", "BASELINES",
    "input_path", "Pollard2025", "FRAME_FOLDER_FPS", "SAMPLERS", "Sampler", "get_sampler", "linspace",
    "segment_midpoints", "uniform_edges", "fps1_capped", "mvbench_bounds", "hd_epic_windows", "PROTOCOLS",
    "get_protocol",
]

_letter = option_letter  # kept for modules that imported the private name

#: Protocol name -> class.
PROTOCOLS: Registry = Registry("protocol", {"pollard2025": "vqa_shap.protocol.pollard2025:Pollard2025"},
                               base="vqa_shap.protocol.base:Protocol")


def get_protocol(name: str = "pollard2025") -> Protocol:
    """An instance of the protocol registered as ``name``.

    Raises:
        vqa_shap.errors.RegistryError: unknown name (the message lists the valid ones).
    """
    return PROTOCOLS.get(name)()
