"""Training batches of the demo model and its forward pass with the auxiliary losses.

Imports torch and transformers only inside functions.
"""

from __future__ import annotations

import numpy as np

from vqa_shap.errors import VqaShapError

# ---------------------------------------------------------------------------------------------
# batches


class BatchEncoder:
    """Turns synthetic items into training tensors exactly as the loader will prompt the model.

    Prompts come from the loader's ``prompt_text`` and the protocol's ``render`` (so training and
    inference see the same text); the video placeholder is expanded to the processor's token count and
    frames are normalised as the video processor does (both checked against the processor once).
    """

    def __init__(self, model, processor, n_frames: int):
        from vqa_shap.loaders.llava_onevision import LlavaOnevisionLoader
        from vqa_shap.protocol.base import FramePlan, FrameRef
        from vqa_shap.protocol import get_protocol

        self.loader = LlavaOnevisionLoader(model, processor)
        self.processor = processor
        self.tokenizer = processor.tokenizer
        self.protocol = get_protocol("pollard2025")
        self.plan = FramePlan(tuple(FrameRef(0, t, float(t)) for t in range(n_frames)))
        self.n_video_tokens = n_frames * self.loader._tokens_per_frame() + 1
        vp = processor.video_processor
        self.mean = np.asarray(vp.image_mean, dtype=np.float32).reshape(1, 1, 3, 1, 1)
        self.std = np.asarray(vp.image_std, dtype=np.float32).reshape(1, 1, 3, 1, 1)
        self.eos = int(self.tokenizer.eos_token_id)
        self.open_id = int(self.tokenizer.convert_tokens_to_ids("("))
        self.close_id = int(self.tokenizer.convert_tokens_to_ids(")"))
        self.checked = False

    def prompt(self, question) -> str:
        n_text = len(self.protocol.text_features(question))
        return self.loader.prompt_text(self.protocol.render(question, self.plan, np.ones(n_text, dtype=bool)))

    def __call__(self, items, rng: np.random.Generator | None = None, frame_dropout: float = 0.0) -> dict:
        """A batch: the shared prompt prefix (system turn, up to the video), and per question the
        suffix (video tokens, instruction, answer letter) right-padded, the frames, and the targets."""
        import torch

        video_id = self.loader.video_token_id
        letters = [self.loader.letters[item.question.answer] for item in items]
        letter_ids = [int(self.tokenizer.convert_tokens_to_ids(letter)) for letter in letters]
        rows = []
        for item, letter in zip(items, letter_ids):
            ids = []
            for i in self.tokenizer(self.prompt(item.question))["input_ids"]:
                ids += [i] * self.n_video_tokens if i == video_id else [i]
            rows.append(ids + [letter])
        split = rows[0].index(video_id)
        if any(r[:split] != rows[0][:split] or r[split:split + self.n_video_tokens] != [video_id] * self.n_video_tokens
               for r in rows):
            raise VqaShapError("demo training: prompts do not share the prefix before the video")
        if not self.checked:
            self._check(items[0], rows[0][:-1])
        length = max(len(r) - split for r in rows)
        suffix = torch.full((len(rows), length), int(self.tokenizer.pad_token_id), dtype=torch.long)
        attention = torch.zeros((len(rows), split + length), dtype=torch.long)
        attention[:, :split] = 1
        for b, ids in enumerate(rows):
            suffix[b, :len(ids) - split] = torch.tensor(ids[split:])
            attention[b, split:len(ids)] = 1
        frames = np.stack([item.frames for item in items]).transpose(0, 1, 4, 2, 3).astype(np.float32) / 255.0
        pixels = (frames - self.mean) / self.std
        if rng is not None and frame_dropout > 0:
            for b, item in enumerate(items):
                for t in range(pixels.shape[1]):
                    if t not in item.evidence_frames and rng.random() < frame_dropout:
                        pixels[b, t] = 0.0  # the normalized_zero masking baseline
        option_ids = [[self.tokenizer.convert_tokens_to_ids(self.loader.letters[k])
                       for k in range(item.question.n_options)] for item in items]
        # where each option line's first word is ("( A ) Red"): the intermediate targets of training
        word_pos = torch.zeros((len(rows), len(option_ids[0])), dtype=torch.long)
        for b, ids in enumerate(rows):
            suffix_ids = ids[split:]
            for k, letter in enumerate(option_ids[b]):
                at = [i for i in range(len(suffix_ids) - 3) if suffix_ids[i] == self.open_id
                      and suffix_ids[i + 1] == letter and suffix_ids[i + 2] == self.close_id]
                word_pos[b, k] = at[-1] + 3
        answers = torch.tensor([item.question.answer for item in items])
        # the video tokens of the evidence frames (the frame tokens, then the video's newline token)
        per_frame = (self.n_video_tokens - 1) // pixels.shape[1]
        evidence = torch.zeros((len(items), self.n_video_tokens), dtype=torch.bool)
        for b, item in enumerate(items):
            for t in item.evidence_frames:
                evidence[b, t * per_frame:(t + 1) * per_frame] = True
        # what each frame shows, as the option words name it ("Red", "Square"); -100: an empty frame
        shown = torch.full((len(items), pixels.shape[1], 2), -100, dtype=torch.long)
        for b, item in enumerate(items):
            for t, content in enumerate(item.question.extra["frames"]):
                if content is not None:
                    shown[b, t, 0] = self.tokenizer.convert_tokens_to_ids(content["colour"].capitalize())
                    shown[b, t, 1] = self.tokenizer.convert_tokens_to_ids(content["shape"].capitalize())
        # the question's word that names what to look the frames up by ("diamond" in "what colour was the
        # diamond"): a look-up question's answer position should read it first (-1: no look-up)
        asked = torch.full((len(items),), -1, dtype=torch.long)
        for b, item in enumerate(items):
            q = item.question
            if q.task in ("colour_of_shape", "shape_of_colour"):
                content = q.extra["frames"][item.evidence_frames[0]]
                word = self.tokenizer.convert_tokens_to_ids(content["shape" if q.task == "colour_of_shape" else "colour"])
                at = [i for i, t in enumerate(rows[b][split:]) if t == word]
                asked[b] = at[0] if at else -1
        return {"prefix": torch.tensor([rows[0][:split]]), "suffix": suffix, "attention_mask": attention, "asked": asked,
                "word_pos": word_pos, "shown": shown, "evidence": evidence,
                "answer_word": suffix[torch.arange(len(rows)), word_pos[torch.arange(len(rows)), answers]],
                "read": torch.tensor([len(r) - split - 2 for r in rows]),  # suffix position of the last prompt token
                "n_video": self.n_video_tokens,
                "pixel_values_videos": torch.from_numpy(np.ascontiguousarray(pixels)),
                "letter": torch.tensor(letter_ids), "options": torch.tensor(option_ids),
                "answer": torch.tensor([item.question.answer for item in items])}

    def _check(self, item, ids: list[int]) -> None:
        ref = self.processor(text=[self.prompt(item.question)], videos=[item.frames], return_tensors="pt")
        if ids != ref["input_ids"][0].tolist():
            raise VqaShapError("demo training: prompt token ids differ from the processor's")
        frames = item.frames.transpose(0, 3, 1, 2)[None].astype(np.float32) / 255.0
        diff = float(np.abs((frames - self.mean) / self.std - ref["pixel_values_videos"].numpy()).max())
        if diff > 1e-4:
            raise VqaShapError(f"demo training: pixel values differ from the processor's by {diff}")
        self.checked = True


def forward(model, batch, with_text_loss: bool = False):
    """Logits at the last prompt position (the answer letter) and after the letter (``<|im_end|>``).

    The prompt prefix before the video (system turn) is the same for every question: it runs once and
    its key/value cache is expanded over the batch (prefix sharing, as the loader does at inference).
    """
    import torch
    from transformers import DynamicCache

    from vqa_shap.loaders.bases.compat import kv_cache, returned_cache

    lm = model.model.language_model
    embed = model.get_input_embeddings()
    prefix = batch["prefix"]
    config = model.config.get_text_config()
    cache = returned_cache(lm(inputs_embeds=embed(prefix), **kv_cache(lm, DynamicCache(config=config))))
    size, split, n_video = batch["suffix"].shape[0], prefix.shape[1], batch["n_video"]
    shared = DynamicCache(config=config)
    for index, layer in enumerate(cache.layers):
        shape = (size,) + tuple(layer.keys.shape[1:])
        shared.update(layer.keys.expand(shape), layer.values.expand(shape), index)
    video = model.model.get_video_features(batch["pixel_values_videos"]).pooler_output
    embeds = torch.cat([video.to(embed.weight.dtype), embed(batch["suffix"][:, n_video:])], dim=1)
    positions = (split + torch.arange(embeds.shape[1]))[None].expand(size, -1)
    out = lm(inputs_embeds=embeds, attention_mask=batch["attention_mask"], position_ids=positions,
             **kv_cache(lm, shared), output_hidden_states=with_text_loss)
    hidden = out.last_hidden_state
    rows = torch.arange(size)
    read = batch["read"]
    if not with_text_loss:
        return model.lm_head(hidden[rows, read]), model.lm_head(hidden[rows, read + 1])
    # Auxiliary losses that split the answer into single steps, read through the unembedding of
    # intermediate layers: after layer 1 every option word knows its letter ("( A ) Red" -> A); one
    # layer before the last, the answer position knows the answer word (what the video shows).
    unembed = lambda h: model.lm_head(lm.norm(h))  # noqa: E731
    first, before_last = out.hidden_states[1], out.hidden_states[-2]
    words = batch["word_pos"]
    letter_logits = unembed(first[rows[:, None], words])
    step_loss = torch.nn.functional.cross_entropy(letter_logits.reshape(-1, letter_logits.shape[-1]),
                                                  batch["options"].reshape(-1))
    step_loss = step_loss + torch.nn.functional.cross_entropy(unembed(before_last[rows, read]), batch["answer_word"])
    # supervised attention of one head at the answer position: in layer 2 on the evidence frames'
    # tokens, in the last layer on the right option's word (whose residual holds its letter)
    eps = 1e-6
    look = head_attention(lm, 1, out.hidden_states[1], shared, split + read)[:, split:split + n_video]
    step_loss = step_loss - torch.log((look * batch["evidence"]).sum(-1) + eps).mean()
    # supervised attention of one head in the first layer from the answer position to the look-up word
    # (the step the realistic model's look-ups by colour did not learn from the answer alone)
    asking = batch["asked"] >= 0
    if bool(asking.any()):
        copy = head_attention(lm, 0, out.hidden_states[0], shared, split + read)
        step_loss = step_loss - torch.log(copy[rows[asking], split + batch["asked"][asking]] + eps).mean()
    answer_key = split + words[rows, batch["answer"]]
    last = len(lm.layers) - 1
    step_loss = step_loss - torch.log(head_attention(lm, last, out.hidden_states[last], shared, split + read)[
        rows, answer_key] + eps).mean()
    # and every frame's video tokens, after layer 1, name what the frame shows (LLaVA's alignment
    # stage in miniature: visual tokens that read like the words of the options)
    shown = batch["shown"]
    frames = first[:, :n_video - 1].reshape(size, shown.shape[1], -1, first.shape[-1]).mean(2)
    frame_logits = unembed(frames).reshape(-1, model.lm_head.out_features)
    for k in range(shown.shape[2]):
        step_loss = step_loss + torch.nn.functional.cross_entropy(frame_logits, shown[:, :, k].reshape(-1),
                                                                  ignore_index=-100)
    # next-token loss on the instruction text after the video
    suffix = batch["suffix"]
    targets = suffix[:, n_video + 1:].clone()
    positions = torch.arange(n_video, suffix.shape[1] - 1)[None]
    targets[positions >= read[:, None]] = -100  # the answer is the main loss; padding
    logits = model.lm_head(hidden[:, n_video:-1])
    text_loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1),
                                                  ignore_index=-100)
    return model.lm_head(hidden[rows, read]), model.lm_head(hidden[rows, read + 1]), text_loss + step_loss


def head_attention(lm, layer: int, hidden_in, cache, query_position):
    """Attention weights of head 0 of ``lm``'s layer ``layer`` at one query position per row, over every
    key (the cached prefix, then the suffix), as eager attention computes them.

    Computed from the layer's input ``hidden_in`` [B, T, H] (the suffix's hidden states) and the keys
    the forward left in ``cache``, so training can run the fast ``sdpa`` attention, which returns no
    weights. ``query_position``: [B] absolute positions (prefix length + suffix index).
    """
    import torch
    from transformers.models.qwen2.modeling_qwen2 import apply_rotary_pos_emb

    block = lm.layers[layer]
    attn = block.self_attn
    split = cache.layers[layer].keys.shape[2] - hidden_in.shape[1]
    rows = torch.arange(hidden_in.shape[0])
    x = block.input_layernorm(hidden_in[rows, query_position - split])  # [B, H]
    query = attn.q_proj(x)[:, None, None, :attn.head_dim]  # head 0: [B, 1, 1, d]
    cos, sin = lm.rotary_emb(x[:, None], query_position[:, None])
    query, _ = apply_rotary_pos_emb(query, query, cos, sin)
    keys = cache.layers[layer].keys[:, 0]  # head 0's key/value group: [B, S, d]
    scores = (query[:, 0] @ keys.transpose(1, 2))[:, 0] * attn.scaling  # [B, S]
    causal = torch.arange(keys.shape[1])[None] > query_position[:, None]
    return torch.softmax(scores.masked_fill(causal, float("-inf")), dim=-1)


def option_hits(letter_logits, batch) -> np.ndarray:
    """Per question: whether the answer's letter has the highest logit among the options' letters."""
    import torch

    scores = torch.gather(letter_logits, 1, batch["options"])
    return (scores.argmax(1) == batch["answer"]).numpy()
