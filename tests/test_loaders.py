"""Model loaders on tiny random models of the real transformers classes (built offline).

Exactness claims are checked by comparing numbers: cached-feature masking against pixel masking
through the full processor and full forward, batched against one-by-one scoring, and prefix sharing
against the plain forward, for every family, on a single-video question and on an HD-EPIC-style
question with two inputs (a 5-frame video, so Qwen2.5-VL gets an odd frame count, and an image).
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import helpers  # noqa: E402
from vqa_shap.errors import RegistryError, VqaShapError  # noqa: E402
from vqa_shap.loaders import LOADERS, MODEL_TYPES, get_loader, resolve_model  # noqa: E402
from vqa_shap.loaders.bases.loader import Loader, LoaderError, UnsupportedQuestionError  # noqa: E402
from vqa_shap.loaders.testing.tiny import TINY_FAMILIES, TINY_LETTERS, build_tiny_model, tiny_model_dir  # noqa: E402
from vqa_shap.protocol.base import FramePlan
from vqa_shap.protocol.pollard2025 import Pollard2025
from vqa_shap.protocol import get_protocol  # noqa: E402
from vqa_shap.schema.records import Question  # noqa: E402

TOL = 1e-5
#: The transformers-native families this file covers (other loaders have their own test files).
NATIVE = ("llava_onevision", "qwen2_5_vl", "video_llama3")
LOADERS_DIR = Path(__file__).resolve().parents[1] / "loaders"


_threads = helpers.torch_threads(1)


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("tiny_models")


@pytest.fixture(scope="module")
def loaders(tiny_root):
    """One loaded tiny model per family (loaded through ``Loader.load(folder)``)."""
    return {f: get_loader(f).load(str(tiny_model_dir(f, cache_dir=tiny_root))) for f in NATIVE}


single_video_question = partial(helpers.single_question, text="What did c do with the cup before the person left?")
hd_epic_question = partial(helpers.hd_epic_question, image_size=(40, 48))


QUESTIONS = {"single": single_video_question, "hd_epic": hd_epic_question}


def coalitions(prepared, rng) -> np.ndarray:
    """All kept, all masked, random rows, and groups of rows sharing one video part."""
    f, v = prepared.n_features, prepared.n_video
    rows = [np.ones(f, bool), np.zeros(f, bool)]
    rows += list(rng.random((5, f)) < 0.5)
    for video in (rng.random(v) < 0.5, np.ones(v, bool)):
        for _ in range(3):
            row = rng.random(f) < 0.6
            row[:v] = video
            rows.append(row)
    return np.array(rows)


@pytest.mark.parametrize("kind", sorted(QUESTIONS))
@pytest.mark.parametrize("family", NATIVE)
def test_cached_masking_equals_pixel_masking(loaders, family, kind):
    loader = loaders[family]
    rng = np.random.default_rng(1)
    q, plan, frames = QUESTIONS[kind](rng)
    proto = get_protocol("pollard2025")
    prepared = loader.prepare(q, frames, plan, proto)
    assert prepared.n_video == proto.n_video_players(plan, loader.temporal_unit)
    assert prepared.n_features == len(proto.features(q, plan, loader.temporal_unit))
    masks = coalitions(prepared, rng)
    reference = loader.score_pixels(prepared, masks)
    cached = loader.score(prepared, masks)
    assert cached.shape == (len(masks), q.n_options) and cached.dtype == np.float32
    assert np.abs(cached - reference).max() <= TOL
    helpers.assert_video_and_text_move_scores(loader, prepared, masks[0])


def permutation_path(n_features: int, rng) -> np.ndarray:
    """An antithetic permutation path (as shap's sampler): all masked, add players one by one, remove them."""
    order = rng.permutation(n_features)
    rows, mask = [np.zeros(n_features, bool)], np.zeros(n_features, bool)
    for keep in (True, False):
        for i in order:
            mask[i] = keep
            rows.append(mask.copy())
    return np.array(rows)


def trie_tokens(loader, prepared, masks) -> int:
    """Distinct prompt prefixes of ``masks`` (nodes of their prefix tree), derived independently of the
    loader's walk: a token is its id, or for a video token whether its frame is kept."""
    units = prepared.token_unit.cpu().numpy()
    prefixes = set()
    for mask in masks:
        ids = loader.token_ids(prepared, mask)
        keep = np.append(mask[:prepared.n_video], True)
        video = iter(keep[units])
        sequence = tuple((i, bool(next(video))) if i == loader.video_token_id else (i, None) for i in ids)
        prefixes.update(sequence[:k] for k in range(1, len(sequence) + 1))
    return len(prefixes)


@pytest.mark.parametrize("family", NATIVE)
def test_prefix_tree_sharing_equals_one_by_one(loaders, family):
    loader = loaders[family]
    rng = np.random.default_rng(2)
    q, plan, frames = hd_epic_question(rng)
    prepared = loader.prepare(q, frames, plan, get_protocol("pollard2025"))
    masks = np.unique(np.concatenate([coalitions(prepared, rng), permutation_path(prepared.n_features, rng)]), axis=0)
    masks = masks[rng.permutation(len(masks))]  # the loader orders them itself
    settings = {"batch_size": loader.batch_size, "prefix_sharing": loader.prefix_sharing}
    try:
        loader.prefix_sharing, loader.batch_size = False, 1
        one_by_one = loader.score(prepared, masks)
        loader.batch_size = 4
        batched = loader.score(prepared, masks)
        loader.prefix_sharing = True
        before = loader.tokens_run, loader.forwards
        shared = loader.score(prepared, masks)
        tokens, forwards = loader.tokens_run - before[0], loader.forwards - before[1]
    finally:
        loader.batch_size, loader.prefix_sharing = settings["batch_size"], settings["prefix_sharing"]
    assert np.abs(batched - one_by_one).max() <= TOL
    assert np.abs(shared - one_by_one).max() <= TOL
    # every distinct prefix ran exactly once: far fewer tokens than whole prompts
    whole = sum(len(loader.token_ids(prepared, m)) for m in masks)
    assert forwards == len(masks) and tokens == trie_tokens(loader, prepared, masks) < whole / 2


@pytest.mark.parametrize("family", NATIVE)
def test_masking_the_last_word_reruns_only_the_tokens_from_it(loaders, family):
    loader = loaders[family]
    q, plan, frames = single_video_question(np.random.default_rng(4))
    prepared = loader.prepare(q, frames, plan, get_protocol("pollard2025"))
    full = np.ones(prepared.n_features, bool)
    last_word = full.copy()
    last_word[-1] = False
    ids = [loader.token_ids(prepared, m) for m in (full, last_word)]
    first_change = next(k for k, (a, b) in enumerate(zip(*ids)) if a != b)
    before = loader.tokens_run
    scores = loader.score(prepared, np.stack([full, last_word]))
    # whichever runs first runs whole; the other only from the first changed token
    assert loader.tokens_run - before == len(ids[0]) + len(ids[1]) - first_change
    assert np.abs(scores - loader.score_pixels(prepared, np.stack([full, last_word]))).max() <= TOL


class _FlippedBaseline(Pollard2025):
    """The other masked-frame baseline than the paper's, to test both for every family."""

    def frame_baseline(self, loader_family: str) -> str:
        return "black" if super().frame_baseline(loader_family) == "normalized_zero" else "normalized_zero"


@pytest.mark.parametrize("family", NATIVE)
def test_both_frame_baselines_are_exact(loaders, family):
    loader = loaders[family]
    rng = np.random.default_rng(3)
    q, plan, frames = hd_epic_question(rng)
    proto = _FlippedBaseline()
    prepared = loader.prepare(q, frames, plan, proto)
    assert prepared.baseline == proto.frame_baseline(family) != Pollard2025().frame_baseline(family)
    masks = coalitions(prepared, rng)
    assert np.abs(loader.score(prepared, masks) - loader.score_pixels(prepared, masks)).max() <= TOL


def test_every_loader_module_is_registered():
    import importlib
    import inspect

    registered = {LOADERS.target(n).split(":")[0]: n for n in LOADERS.names()}
    for path in LOADERS_DIR.glob("*.py"):
        module = importlib.import_module(f"vqa_shap.loaders.{path.stem}")
        families = {cls.family for _, cls in inspect.getmembers(module, inspect.isclass)
                    if issubclass(cls, Loader) and cls.__module__ == module.__name__ and cls.family}
        for family in families:  # a module defining a concrete loader must be registered under its family
            assert registered.get(module.__name__) == family, (path.name, family)
    for name in LOADERS.names():
        cls = get_loader(name)
        assert issubclass(cls, Loader) and cls.family == name
    assert set(NATIVE) <= set(LOADERS.names()) and set(NATIVE) <= set(TINY_FAMILIES)
    assert {MODEL_TYPES[t] for t in ("llava_onevision", "qwen2_5_vl", "video_llama_3")} == set(NATIVE)
    assert all(get_loader(n).exact_cached_masking for n in NATIVE)
    assert get_loader("qwen2_5_vl").temporal_unit == 2
    with pytest.raises(RegistryError, match="llava_onevision"):
        get_loader("nope")


def test_resolve_model(tiny_root, monkeypatch):
    monkeypatch.setenv("VQA_SHAP_CACHE", str(tiny_root / "resolve"))
    cls, path = resolve_model("tiny-random/qwen2_5_vl")
    assert cls is get_loader("qwen2_5_vl") and (Path(path) / "config.json").is_file()
    assert Path(path).is_relative_to(tiny_root / "resolve")
    cls, same = resolve_model(path)  # a local folder: family from config.json model_type
    assert cls is get_loader("qwen2_5_vl") and same == path
    vl3 = tiny_model_dir("video_llama3", cache_dir=tiny_root)
    assert resolve_model(str(vl3))[0] is get_loader("video_llama3")
    assert resolve_model("any/checkpoint", loader="llava_onevision") == (get_loader("llava_onevision"), "any/checkpoint")
    with pytest.raises(VqaShapError, match="does not match"):
        resolve_model("tiny-random/qwen2_5_vl", loader="video_llama3")
    with pytest.raises(RegistryError):
        resolve_model("tiny-random/unknown")
    with pytest.raises(VqaShapError, match="pass --loader"):
        resolve_model("someone/not-cached-offline")
    empty = tiny_root / "no_config"
    empty.mkdir()
    with pytest.raises(VqaShapError, match="no config.json"):
        resolve_model(str(empty))


def test_tiny_models_are_deterministic_and_real(tmp_path):
    from safetensors.torch import load_file

    a = build_tiny_model("llava_onevision", tmp_path / "a", seed=5)
    b = build_tiny_model("llava_onevision", tmp_path / "b", seed=5)
    c = build_tiny_model("llava_onevision", tmp_path / "c", seed=6)
    wa, wb, wc = (load_file(p / "model.safetensors") for p in (a, b, c))
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
    assert any(not torch.equal(wa[k], wc[k]) for k in wa)
    assert build_tiny_model("llava_onevision", a, seed=5) == a  # reused, not rebuilt
    loader = get_loader("llava_onevision").load(str(a))
    assert type(loader.model).__name__ == "LlavaOnevisionForConditionalGeneration"
    assert type(loader.processor).__name__ == "LlavaOnevisionProcessor"
    assert loader.max_options == len(TINY_LETTERS) == 25
    with pytest.raises(VqaShapError, match="valid"):
        build_tiny_model("nope", tmp_path / "x")


def test_too_many_options_and_bad_frames_raise_clear_errors(loaders):
    loader = loaders["llava_onevision"]
    rng = np.random.default_rng(4)
    q, plan, frames = single_video_question(rng)
    many = Question(q.qid, q.benchmark, q.task, q.question, tuple(f"option {i}" for i in range(26)), 0, q.inputs)
    with pytest.raises(UnsupportedQuestionError, match="26 options.*25"):
        loader.prepare(many, frames, plan, get_protocol())
    assert len(loader.letter_ids(Question(q.qid, q.benchmark, q.task, q.question,
                                          tuple(f"o{i}" for i in range(25)), 0, q.inputs))) == 25
    with pytest.raises(LoaderError, match="frames have shape"):
        loader.prepare(q, [frames[0][:3]], plan, get_protocol())
    with pytest.raises(LoaderError, match="frame arrays"):
        loader.prepare(q, frames + frames, plan, get_protocol())
    with pytest.raises(UnsupportedQuestionError, match="no frames"):
        loader.prepare(q, [], FramePlan(()), get_protocol())
    prepared = loader.prepare(q, frames, plan, get_protocol())
    with pytest.raises(ValueError, match="coalitions must be bool"):
        loader.score(prepared, np.ones((2, prepared.n_features + 1), bool))
    assert issubclass(UnsupportedQuestionError, VqaShapError)


def test_load_errors_are_clear(tmp_path):
    with pytest.raises(LoaderError, match="cannot load"):
        get_loader("llava_onevision").load(str(tmp_path))


def test_device_defaults_and_overrides(monkeypatch):
    from vqa_shap import device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert device.resolve_runtime() == device.Runtime("cpu", "float32", "sdpa")
    assert device.resolve_runtime(dtype="bf16", attn_implementation="eager") == device.Runtime("cpu", "bfloat16", "eager")
    with pytest.raises(VqaShapError, match="CUDA is not available"):
        device.resolve_runtime(device="cuda")
    with pytest.raises(VqaShapError, match="unknown dtype"):
        device.resolve_runtime(dtype="int8")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(device, "flash_attention_available", lambda: False)
    assert device.resolve_runtime() == device.Runtime("cuda", "bfloat16", "sdpa")
    with pytest.raises(VqaShapError, match="flash-attn is not installed"):
        device.resolve_runtime(attn_implementation="flash_attention_2")
    monkeypatch.setattr(device, "flash_attention_available", lambda: True)
    assert device.resolve_runtime() == device.Runtime("cuda", "bfloat16", "flash_attention_2")
    assert device.resolve_runtime(dtype="float32").attn_implementation == "sdpa"


def test_loader_load_uses_runtime(tiny_root):
    loader = get_loader("video_llama3").load(str(tiny_model_dir("video_llama3", cache_dir=tiny_root)),
                                             dtype="float32", attn_implementation="eager", batch_size=3,
                                             prefix_sharing=False)
    assert loader.model.config._attn_implementation == "eager"
    assert loader.batch_size == 3 and loader.prefix_sharing is False
    assert str(loader.device) == "cpu" and loader.dtype == torch.float32
    with pytest.raises(ValueError, match="batch_size"):
        type(loader)(loader.model, loader.processor, batch_size=0)


def test_kv_cache_follows_the_forward_signature():
    """transformers 5.24 renamed past_key_values to cache: the name comes from the module's forward."""
    from vqa_shap.loaders.bases.compat import kv_cache, returned_cache

    class Old:
        def forward(self, inputs_embeds=None, past_key_values=None, use_cache=None):
            pass

    class New:
        def forward(self, inputs_embeds=None, cache=None, use_cache=None):
            pass

    marker = object()
    assert kv_cache(Old(), marker) == {"past_key_values": marker, "use_cache": True}
    assert kv_cache(New(), None) == {"cache": None, "use_cache": False}
    assert returned_cache({"logits": 1, "cache": marker}) is marker
    assert returned_cache({"logits": 1, "past_key_values": marker}) is marker
    assert returned_cache({"logits": 1}) is None


def test_returned_cache_of_an_uncached_output_logs_no_deprecation():
    """A forward with ``use_cache=False`` returns an output without a cache; reading it must not fall back
    to the deprecated ``past_key_values`` name, which transformers >= 5.24 answers with a warning."""
    import logging

    import torch
    from transformers.cache_utils import DynamicCache
    from transformers.modeling_outputs import CausalLMOutputWithPast

    from vqa_shap.loaders.bases.compat import returned_cache

    messages = []

    class Collect(logging.Handler):
        def emit(self, record):
            messages.append(record.getMessage())

    handler = Collect()
    logging.getLogger("transformers").addHandler(handler)
    logging.Logger.warning_once.cache_clear()  # transformers logs this warning once per process
    try:
        assert returned_cache(CausalLMOutputWithPast(logits=torch.zeros(1, 2))) is None
        cache = DynamicCache()
        declared = CausalLMOutputWithPast.__dataclass_fields__
        field = "cache" if "cache" in declared else "past_key_values"
        assert returned_cache(CausalLMOutputWithPast(logits=torch.zeros(1, 2), **{field: cache})) is cache
    finally:
        logging.getLogger("transformers").removeHandler(handler)
    assert not [m for m in messages if "deprecated" in m], messages


def test_game_cost_follows_the_tokens_the_loader_runs(loaders):
    """The Game's cost model and the loader's prefix-tree walk agree on what is cheap: a permutation path
    re-runs fewer tokens per coalition than random coalitions, and the model charges it less."""
    from vqa_shap.game import Game

    loader = loaders["llava_onevision"]
    rng = np.random.default_rng(5)
    q, plan, frames = single_video_question(rng)
    prepared = loader.prepare(q, frames, plan, get_protocol("pollard2025"))
    f = prepared.n_features
    per_eval = {}
    for name, masks in (("path", permutation_path(f, rng)), ("random", rng.random((2 * f + 1, f)) < 0.5)):
        game = Game(lambda c: loader.score(prepared, c), f, video_features=prepared.n_video)
        before = loader.tokens_run
        game(masks)
        per_eval[name] = ((loader.tokens_run - before) / game.evaluations, game.cost / game.evaluations)
    assert per_eval["path"][0] < per_eval["random"][0] and per_eval["path"][1] < per_eval["random"][1]
