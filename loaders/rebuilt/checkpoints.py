"""Reading checkpoints: one implementation shared by every loader family and conversion script.

* where a checkpoint is (:func:`local_folder`, :func:`read_config`);
* original weights in any of their file formats, keys renamed by a family's rules
  (:func:`read_state_dict`, :func:`map_key`);
* loads that refuse missing or unexpected weights instead of leaving random ones
  (:func:`from_pretrained_exact`, :func:`load_exact`, :func:`key_problems`);
* the thin ``scripts/convert_*.py`` entry point (:func:`conversion_main`).

Heavy imports (torch, transformers, safetensors, huggingface_hub) happen inside the functions.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any, Callable, Collection, Mapping, Sequence

from vqa_shap.loaders.bases.loader import LoaderError

#: A key map: ``(regex, replacement)`` rules, the first matching one renames a key.
KeyRules = Sequence[tuple[str, str]]


# ------------------------------------------------------------------------------------------ locating
def local_folder(checkpoint: str | Path, allow_patterns: Sequence[str] | None = None) -> Path:
    """A local folder for ``checkpoint``: the folder itself, or a Hub snapshot (cache first).

    Raises:
        LoaderError: neither a folder nor a reachable Hub repository.
    """
    path = Path(checkpoint)
    if path.is_dir():
        return path
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(str(checkpoint), allow_patterns=allow_patterns))
    except Exception as exc:  # noqa: BLE001 - any failure: say which checkpoint and why
        raise LoaderError(f"cannot find checkpoint {str(checkpoint)!r} as a folder or on the Hub "
                          f"({exc.__class__.__name__}: {exc})") from exc


def read_config(folder: str | Path) -> dict[str, Any]:
    """``config.json`` of a checkpoint folder as a dict (LoaderError when absent, not JSON or not an object)."""
    path = Path(folder) / "config.json"
    if not path.is_file():
        raise LoaderError(f"{folder}: no config.json in this folder")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise LoaderError(f"{path}: the model's config is not valid JSON ({exc})") from None
    if not isinstance(config, dict):
        raise LoaderError(f"{path}: the model's config is not a JSON object (got {type(config).__name__})")
    return config


# ------------------------------------------------------------------------------------------ reading
def map_key(key: str, rules: KeyRules) -> str:
    """Rename one original state-dict key with the first matching ``(regex, replacement)`` rule.

    Keys matching no rule are returned unchanged (they then show up as unexpected keys).
    """
    for pattern, replacement in rules:
        new, n = re.subn(pattern, replacement, key, count=1)
        if n:
            return new
    return key


def read_state_dict(path: str | Path, rules: KeyRules = (), prefix_filter: str | None = None, *,
                    allow_pickle: bool = False) -> dict[str, Any]:
    """A state dict from an original checkpoint file or folder, keys renamed by ``rules``.

    Reads a folder's ``*.safetensors`` (else ``pytorch_model*.bin``), a ``.safetensors`` file, a
    TorchScript archive (OpenAI's CLIP ``.pt``) or a torch file; unwraps ``{"model": ...}``
    (FrozenBiLM's training checkpoints) and ``{"state_dict": ...}`` (Lightning checkpoints).

    Args:
        path: a checkpoint file or folder.
        rules: the key map (see :func:`map_key`); empty = original names.
        prefix_filter: keep only original keys starting with this prefix.
        allow_pickle: a torch file that is not plain tensors (training checkpoints pickle their
            hyper-parameter objects) may be unpickled. Only for files you trust: never for downloads.

    Raises:
        LoaderError: nothing readable, or not a state dict (names the path).
    """
    path = Path(path)
    if path.is_dir():
        files = sorted(path.glob("*.safetensors")) or sorted(path.glob("pytorch_model*.bin"))
        if not files:
            raise LoaderError(f"{path}: no *.safetensors or pytorch_model*.bin in this folder")
        state: dict[str, Any] = {}
        for f in files:
            state.update(read_state_dict(f, rules, prefix_filter, allow_pickle=allow_pickle))
        return state
    return {map_key(key, rules): value for key, value in _read_file(path, allow_pickle).items()
            if prefix_filter is None or key.startswith(prefix_filter)}


def _read_file(path: Path, allow_pickle: bool) -> dict[str, Any]:
    import torch

    if not path.is_file():
        raise LoaderError(f"{path}: no such checkpoint file")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    if _is_torchscript(path):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # torch.jit.load is deprecated, still the only reader
            obj = torch.jit.load(str(path), map_location="cpu").state_dict()
    else:
        try:
            obj = torch.load(str(path), map_location="cpu", weights_only=True)
        except Exception:  # noqa: BLE001 - training checkpoints may pickle argparse/hyper-parameter objects
            if not allow_pickle:
                raise
            obj = torch.load(str(path), map_location="cpu", weights_only=False)
    for wrapper in ("model", "state_dict"):
        if isinstance(obj, dict) and isinstance(obj.get(wrapper), dict):
            obj = obj[wrapper]
    if not isinstance(obj, dict):
        raise LoaderError(f"{path}: not a state dict")
    return dict(obj)


def _is_torchscript(path: Path) -> bool:
    import zipfile

    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any("/code/" in name for name in archive.namelist())


# ------------------------------------------------------------------------------------------ exact loads
def key_problems(missing: Collection[str], unexpected: Collection[str], mismatched: Collection[Any] = ()) -> str:
    """The key problems of a load, counted and listed (the first 8 of each); ``""`` when there are none."""
    parts = [f"{len(keys)} {what} key(s) {sorted(map(str, keys))[:8]}"
             for what, keys in (("missing", missing), ("unexpected", unexpected), ("mismatched", mismatched)) if keys]
    return ", ".join(parts)


def from_pretrained_exact(model_cls, checkpoint: str, dtype):
    """``model_cls.from_pretrained`` that refuses another model type and any missing/unexpected weight
    (transformers would only warn and leave random weights).

    Raises:
        ValueError: another ``model_type`` or key problems (callers add which checkpoint and what to do).
    """
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(checkpoint)
    if config.model_type != model_cls.config_class.model_type:
        raise ValueError(f"config.json has model_type {config.model_type!r}, "
                         f"not {model_cls.config_class.model_type!r}")
    model, info = model_cls.from_pretrained(checkpoint, dtype=dtype, output_loading_info=True)
    problems = key_problems(info["missing_keys"], info["unexpected_keys"])
    if problems:
        raise ValueError(problems)
    return model


def load_exact(model, state: Mapping[str, Any], what: str) -> None:
    """``load_state_dict`` that fails with the missing/unexpected keys listed (non-persistent buffers aside)."""
    result = model.load_state_dict(dict(state), strict=False)
    problems = key_problems(result.missing_keys, result.unexpected_keys)
    if problems:
        raise LoaderError(f"{what}: {problems}")


# ------------------------------------------------------------------------------------------ scripts
def conversion_main(description: str, add_arguments: Callable[[argparse.ArgumentParser], None],
                    convert: Callable[[argparse.Namespace], Any], argv: Sequence[str] | None = None) -> int:
    """The whole of a ``scripts/convert_<family>.py``: parse, convert, report.

    Args:
        description: the script's help text (its docstring).
        add_arguments: declares the family's arguments on the parser.
        convert: ``args -> written folder``.
        argv: the arguments (default: ``sys.argv[1:]``).

    Returns:
        The exit code: 0 written; 2 a clean one-line ``error: …`` on stderr for a ``VqaShapError``.
    """
    from vqa_shap.errors import VqaShapError

    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        out = convert(args)
    except VqaShapError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {out}")
    return 0


def generative_conversion_main(family: str, model_name: str, description: str,
                               argv: Sequence[str] | None = None) -> int:
    """``scripts/convert_<family>.py`` of a rebuilt generative video LLM (LongVA, VideoLLaMA2):
    ``ORIGINAL OUT [--vision-tower CLIP] [--dtype float16]`` -> the loader's ``convert``.

    Args:
        family: the loader's registry name (imported only after the arguments parse).
        model_name: the model's name in the help text.
        description, argv: see :func:`conversion_main`.
    """
    def add_arguments(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("checkpoint", help=f"original {model_name} checkpoint folder or Hub id")
        parser.add_argument("out", help="folder to write (save_pretrained layout)")
        parser.add_argument("--vision-tower", default=None, help="CLIP vision tower folder or Hub id")
        parser.add_argument("--dtype", default="float16", help="dtype of the written weights (default: %(default)s)")

    def convert(args: argparse.Namespace):
        from vqa_shap.loaders import get_loader

        return get_loader(family).convert(args.checkpoint, args.out, vision_tower=args.vision_tower, dtype=args.dtype)

    return conversion_main(description, add_arguments, convert, argv)
