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

from typing import Mapping

from vqa_shap.protocol.base import Protocol
from vqa_shap.registry import Registry

__all__ = ["PROTOCOLS", "get_protocol", "check_family_protocols"]

#: Protocol name -> class.
PROTOCOLS: Registry = Registry("protocol", {"pollard2025": "vqa_shap.protocol.pollard2025:Pollard2025"},
                               base="vqa_shap.protocol.base:Protocol")


def get_protocol(name: str = "pollard2025") -> Protocol:
    """An instance of the protocol registered as ``name``.

    Raises:
        vqa_shap.errors.RegistryError: unknown name (the message lists the valid ones).
    """
    return PROTOCOLS.get(name)()


def check_family_protocols(family: str, protocols: Mapping[str, Mapping[str, str]]) -> None:
    """Check what a model family declares per protocol (:func:`vqa_shap.families.declare_family`):
    known protocols, baselines and samplers.

    Raises:
        vqa_shap.errors.RegistryError: naming the family, the protocol and the bad value.
    """
    from vqa_shap.errors import RegistryError
    from vqa_shap.protocol.base import BASELINES
    from vqa_shap.protocol.samplers import SAMPLERS

    for protocol, settings in protocols.items():
        where = f"family {family!r}: protocols[{protocol!r}]"
        if protocol not in PROTOCOLS:
            raise RegistryError(f"{where}: unknown protocol; valid protocols: {', '.join(PROTOCOLS.names())}")
        if settings.get("baseline", BASELINES[0]) not in BASELINES:
            raise RegistryError(f"{where}: unknown baseline {settings['baseline']!r}; "
                                f"valid baselines: {', '.join(BASELINES)}")
        if settings.get("sampler", "linspace") not in SAMPLERS:
            raise RegistryError(f"{where}: unknown sampler {settings['sampler']!r}; "
                                f"valid samplers: {', '.join(SAMPLERS)}")
