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

Each name is imported from the submodule that defines it; the package itself holds the
registry (:data:`PROTOCOLS`, :func:`get_protocol`). The package is light: it imports only
``numpy`` and ``re``; video decoding is imported when frames are planned or loaded. docs/protocol.md
describes the feature layout and the paper's choices.
"""

from __future__ import annotations

from vqa_shap.protocol.base import Protocol
from vqa_shap.registry import Registry

__all__ = ["PROTOCOLS", "get_protocol"]

#: Protocol name -> class.
PROTOCOLS: Registry = Registry("protocol", {"pollard2025": "vqa_shap.protocol.pollard2025:Pollard2025"},
                               base="vqa_shap.protocol.base:Protocol")


def get_protocol(name: str = "pollard2025") -> Protocol:
    """An instance of the protocol registered as ``name``.

    Raises:
        vqa_shap.errors.RegistryError: unknown name (the message lists the valid ones).
    """
    return PROTOCOLS.get(name)()
