"""Model families: one file each. Declarations are read from source without imports, agree with the
modules, feed the loader registry, the model types, the tiny models and the protocol settings; a
throwaway family written as ONE file is registered, built, resolved and scored."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import vqa_shap.loaders as loaders_pkg
from vqa_shap.errors import RegistryError, VqaShapError
from vqa_shap.loaders import LOADERS, get_loader
from vqa_shap.families import families, get_family, model_types, protocol_settings

LOADERS_DIR = Path(loaders_pkg.__file__).parent


def test_listing_families_imports_no_family_module_and_no_torch():
    code = ("import sys, vqa_shap.loaders as L; names = L.LOADERS.names(); types = L.MODEL_TYPES;"
            "from vqa_shap.families import protocol_settings; protocol_settings('pollard2025', 'video_llama3');"
            "from vqa_shap.protocol import get_protocol; get_protocol().frame_baseline('video_llama3');"
            "loaded = [m for m in sys.modules if m.startswith('vqa_shap.loaders.')];"
            "heavy = [m for m in ('torch', 'transformers') if m in sys.modules];"
            "print(len(names), loaded, heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split(maxsplit=1)[1].strip() == "[] []", out.stdout
    assert int(out.stdout.split()[0]) == len(families()) >= 7


def test_declarations_read_from_source_equal_the_imported_ones():
    for name, declared in families().items():
        module = importlib.import_module(declared.module)
        assert module.FAMILY.name == name and module.FAMILY.module == ""
        assert module.FAMILY == type(declared)(**{**declared.__dict__, "module": ""}), name
        cls = get_loader(name)
        assert cls.__module__ == declared.module and cls.family == name
        if declared.tiny:
            assert callable(getattr(module, declared.tiny)), name


def test_every_family_module_is_declared():
    """A module under loaders/ that defines a concrete loader (non-empty ``family``) declares it."""
    from vqa_shap.loaders.bases.loader import Loader

    declared_modules = {f.module: f.name for f in families().values()}
    concrete = {}
    for path in sorted(LOADERS_DIR.glob("*.py")):
        module = importlib.import_module(f"vqa_shap.loaders.{path.stem}")
        for value in vars(module).values():
            if isinstance(value, type) and issubclass(value, Loader) and value.__module__ == module.__name__ \
                    and value.family:
                concrete[module.__name__] = value.family
    assert concrete == declared_modules
    assert set(LOADERS.names()) == set(families()) >= {"llava_onevision", "qwen2_5_vl", "video_llama3", "longva",
                                                       "video_llama2", "frozenbilm", "internvideo"}


def test_model_types_and_settings_come_from_the_declarations():
    types = model_types()
    assert types["video_llama_3"] == "video_llama3" and types["llava_qwen"] == "longva"
    assert types["videollama2_mistral"] == "video_llama2" and types["internvideo"] == "internvideo"
    assert loaders_pkg.MODEL_TYPES == types
    assert protocol_settings("pollard2025", "video_llama3") == {"baseline": "black", "sampler": "fps1_capped"}
    assert protocol_settings("pollard2025", "frozenbilm") == {} == protocol_settings("pollard2025", None)
    assert protocol_settings("other", "video_llama3") == {}
    with pytest.raises(RegistryError, match="unknown loader 'nope'; valid loaders: frozenbilm"):
        get_family("nope")


# ------------------------------------------------------------------------------ a throwaway family

THROWAWAY = '''
"""A throwaway family: a LLaVA-OneVision loader under another name, with its own settings."""

from vqa_shap.families import declare_family
from vqa_shap.loaders.llava_onevision import LlavaOnevisionLoader, build_tiny as _llava_tiny

FAMILY = declare_family(
    "throwaway",
    loader="ThrowawayLoader",
    model_types=("throwaway_vlm",),
    tiny="build_tiny",
    protocols={"pollard2025": {"baseline": "black", "sampler": "uniform_edges"}},
)


class ThrowawayLoader(LlavaOnevisionLoader):
    family = FAMILY.name


def build_tiny(tok, realistic=False):
    return _llava_tiny(tok, realistic)
'''


@pytest.fixture
def extra_path(tmp_path, monkeypatch):
    """A folder added to the loaders package's search path; modules imported from it are forgotten after."""
    folder = tmp_path / "plugins"
    folder.mkdir()
    monkeypatch.setattr(loaders_pkg, "__path__", [*loaders_pkg.__path__, str(folder)])
    before = set(sys.modules)
    yield folder
    for name in set(sys.modules) - before:
        if name.startswith("vqa_shap.loaders."):
            del sys.modules[name]


def test_a_throwaway_family_is_one_file(extra_path, tmp_path, monkeypatch):
    pytest.importorskip("torch")
    from vqa_shap.loaders import resolve_model
    from vqa_shap.loaders.testing.tiny import tiny_families
    from vqa_shap.protocol import get_protocol

    import helpers

    (extra_path / "throwaway.py").write_text(THROWAWAY)  # the one file; nothing else changes
    assert "throwaway" in LOADERS and "throwaway" in tiny_families()
    assert model_types()["throwaway_vlm"] == "throwaway"
    proto = get_protocol()
    assert proto.frame_baseline("throwaway") == "black" and proto.default_sampler("throwaway") == "uniform_edges"
    assert proto.default_sampler("throwaway", "mvbench") == "mvbench_bounds"  # the benchmark's still wins

    monkeypatch.setenv("VQA_SHAP_CACHE", str(tmp_path / "cache"))
    cls, folder = resolve_model("tiny-random/throwaway")  # built from the file's tiny builder
    assert cls is get_loader("throwaway") and cls.family == "throwaway"
    assert (Path(folder) / "config.json").is_file()
    loader = cls.load(folder, dtype="float32", device="cpu")
    q, plan, frames = helpers.single_question(np.random.default_rng(0))
    prepared = loader.prepare(q, frames, plan, proto)
    assert prepared.baseline == "black"  # the family's declared setting reached the loader
    masks = helpers.random_masks(prepared.n_features)
    scores = loader.score(prepared, masks)
    assert scores.shape == (len(masks), q.n_options) and np.isfinite(scores).all()
    assert np.abs(scores - loader.score_pixels(prepared, masks)).max() <= 1e-5


@pytest.mark.parametrize("source, message", [
    ('from vqa_shap.families import declare_family\nA = declare_family("bad", loader="X")\n'
     'B = declare_family("bad2", loader="Y")\n', r"bad.py: declare_family\(\) is called 2 times"),
    ('from vqa_shap.families import declare_family\nFAMILY = declare_family("longva", loader="X")\n',
     "family 'longva' is declared by both vqa_shap.loaders.longva and vqa_shap.loaders.bad"),
    ('from vqa_shap.families import declare_family\nFAMILY = declare_family("bad", loader="X", model_types=("qwen2_5_vl",))\n',
     "model_type 'qwen2_5_vl' is claimed by families"),
    ('from vqa_shap.families import declare_family\nNAME = "bad"\nFAMILY = declare_family(NAME, loader="X")\n',
     r"bad.py:3: the arguments of declare_family\(\) must be literals"),
    ('from vqa_shap.families import declare_family\nFAMILY = declare_family("bad", loader="X", '
     'protocols={"pollard2025": {"sampler": "random"}})\n',
     "family 'bad': protocols\\['pollard2025'\\]: unknown sampler 'random'; valid samplers: linspace"),
    ('from vqa_shap.families import declare_family\nFAMILY = declare_family("bad", loader="X", '
     'protocols={"nope": {"baseline": "black"}})\n',
     "unknown protocol; valid protocols: pollard2025"),
    ('from vqa_shap.families import declare_family\nFAMILY = declare_family("bad", loader="X", '
     'protocols={"pollard2025": {"baseline": "grey", "stride": 2}})\n',
     r"unknown settings \['stride'\]; valid: baseline, sampler"),
])
def test_bad_declarations_are_refused_with_the_file_and_field(extra_path, source, message):
    (extra_path / "bad.py").write_text(source)
    with pytest.raises(RegistryError, match=message):
        LOADERS.names()
    with pytest.raises(VqaShapError, match=message):  # the same error wherever the table is first needed
        get_loader("llava_onevision")
