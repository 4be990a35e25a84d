"""The hot path of the chat-VLM family: coalitions -> option-letter logits, batched, with the
key/value cache of shared prompt prefixes computed once (see docs/performance-loader.md)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from vqa_shap.loaders.base import Prepared

if TYPE_CHECKING:  # heavy imports only for type checkers
    import torch


@dataclass(frozen=True)
class _Row:
    """One coalition ready for the language model."""

    ids: "torch.Tensor"        # [L] token ids of the masked prompt
    positions: "torch.Tensor"  # [L] or [3, L] position ids
    video: bytes               # the coalition's video part (group key)
    split: int                 # prefix length: up to and including the last video token


class ChatScoring:
    """Scoring of :class:`~vqa_shap.loaders.chat.ChatVLMLoader` (a mixin: it uses the loader's model,
    hooks and ``_row``)."""

    def score(self, prepared: Prepared, coalitions: np.ndarray) -> np.ndarray:
        """Option-letter logits of masked inputs, from cached vision features.

        Args:
            prepared: from :meth:`prepare`.
            coalitions: ``bool[B, F]`` (True = keep the player).

        Returns:
            ``float32[B, K]``: the next-token logits of the option letters.
        """
        import torch

        masks = self._check(prepared, coalitions)
        out = np.empty((len(masks), prepared.n_options), dtype=np.float32)
        with torch.inference_mode():
            rows = [self._row(prepared, m) for m in masks]
            if self.prefix_sharing:
                groups: dict[tuple, list[int]] = {}
                for b, row in enumerate(rows):
                    key = (row.video, row.split, row.ids[:row.split].numpy().tobytes())
                    groups.setdefault(key, []).append(b)
                alone = []  # a prefix used once gains nothing: batch those through the full path
                for members in groups.values():
                    if len(members) == 1:
                        alone += members
                    else:
                        self._score_shared(prepared, masks, rows, members, out)
                for start in range(0, len(alone), self.batch_size):
                    self._score_full(prepared, masks, rows, alone[start:start + self.batch_size], out)
            else:
                for start in range(0, len(rows), self.batch_size):
                    batch = list(range(start, min(start + self.batch_size, len(rows))))
                    self._score_full(prepared, masks, rows, batch, out)
        return out

    def _video_embeds(self, prepared: Prepared, video_keep: np.ndarray) -> "torch.Tensor":
        import torch

        keep = torch.as_tensor(np.append(video_keep, True), device=self.device)
        return torch.where(keep[prepared.token_unit][:, None], prepared.kept_embeds, prepared.masked_embeds)

    def _embed(self, prepared: Prepared, ids: "torch.Tensor", video_keep: np.ndarray | None) -> "torch.Tensor":
        ids = ids.to(self.device)
        embeds = self.model.get_input_embeddings()(ids)
        if video_keep is not None:
            slots = ids == self.video_token_id
            if int(slots.sum()):
                embeds = embeds.clone()
                embeds[slots] = self._video_embeds(prepared, video_keep)
        return embeds

    def _score_full(self, prepared, masks, rows, batch, out) -> None:
        """Plain batched forward of whole prompts (right-padded if the family allows, else left-padded)."""
        import torch

        if self.right_padding:
            self._score_right_padded(prepared, masks, rows, batch, out)
            return
        length = max(rows[b].ids.shape[0] for b in batch)
        hidden = self.model.get_input_embeddings().weight.shape[1]
        embeds = torch.zeros(len(batch), length, hidden, dtype=self.dtype, device=self.device)
        attention = torch.zeros(len(batch), length, dtype=torch.long, device=self.device)
        positions = self._empty_positions(len(batch), length, rows[batch[0]].positions)
        for j, b in enumerate(batch):
            n = rows[b].ids.shape[0]
            embeds[j, length - n:] = self._embed(prepared, rows[b].ids, masks[b, :prepared.n_video])
            attention[j, length - n:] = 1
            positions[..., j, length - n:] = rows[b].positions
        logits, _ = self.forward_last(embeds, attention, positions, None)
        self._read(prepared, logits, batch, out)

    def _score_right_padded(self, prepared, masks, rows, batch, out) -> None:
        """Right padding needs no attention mask: under the causal mask no real token attends to the
        padding after it, so each row computes exactly as alone, and attention keeps its fast
        mask-free kernel (a padding mask forces sdpa's slower masked path on CPU). Each row's scores
        are read at its own last token."""
        import torch

        lengths = [rows[b].ids.shape[0] for b in batch]
        length = max(lengths)
        hidden = self.model.get_input_embeddings().weight.shape[1]
        embeds = torch.zeros(len(batch), length, hidden, dtype=self.dtype, device=self.device)
        positions = self._empty_positions(len(batch), length, rows[batch[0]].positions)
        for j, b in enumerate(batch):
            n = lengths[j]
            embeds[j, :n] = self._embed(prepared, rows[b].ids, masks[b, :prepared.n_video])
            positions[..., j, :n] = rows[b].positions
            # padding continues the positions: a position reset would read as a packed second sequence
            positions[..., j, n:] = rows[b].positions[..., -1:] + torch.arange(1, length - n + 1)
        last = torch.tensor(lengths, device=self.device) - 1
        self._read(prepared, self.forward_at(embeds, positions, last), batch, out)

    def _score_shared(self, prepared, masks, rows, members, out) -> None:
        """Run the shared prefix once, then the text suffixes in batches on its key/value cache."""
        import torch
        from transformers import DynamicCache

        first = rows[members[0]]
        prefix_len = first.split
        if prefix_len == 0 or prefix_len >= first.ids.shape[0]:  # nothing to share
            for start in range(0, len(members), self.batch_size):
                self._score_full(prepared, masks, rows, members[start:start + self.batch_size], out)
            return
        prefix = self._embed(prepared, first.ids[:prefix_len], masks[members[0], :prepared.n_video])[None]
        prefix_pos = first.positions[..., :prefix_len][..., None, :].to(self.device)
        ones = torch.ones(1, prefix_len, dtype=torch.long, device=self.device)
        _, cache = self.forward_last(prefix, ones, prefix_pos, DynamicCache(config=self.text_config()))
        layers = [(layer.keys, layer.values) for layer in cache.layers]
        hidden = self.model.get_input_embeddings().weight.shape[1]
        for start in range(0, len(members), self.batch_size):
            batch = members[start:start + self.batch_size]
            length = max(rows[b].ids.shape[0] - prefix_len for b in batch)
            embeds = torch.zeros(len(batch), length, hidden, dtype=self.dtype, device=self.device)
            attention = torch.zeros(len(batch), prefix_len + length, dtype=torch.long, device=self.device)
            attention[:, :prefix_len] = 1
            positions = self._empty_positions(len(batch), length, first.positions)
            for j, b in enumerate(batch):
                n = rows[b].ids.shape[0] - prefix_len
                embeds[j, length - n:] = self._embed(prepared, rows[b].ids[prefix_len:], None)
                attention[j, prefix_len + length - n:] = 1
                positions[..., j, length - n:] = rows[b].positions[..., prefix_len:]
                positions[..., j, :length - n] = rows[b].positions[..., prefix_len:prefix_len + 1]
            batch_cache = DynamicCache(config=self.text_config())
            for idx, (k, v) in enumerate(layers):
                shape = (len(batch),) + tuple(k.shape[1:])
                batch_cache.update(k.expand(shape).contiguous(), v.expand(shape).contiguous(), idx)
            logits, _ = self.forward_last(embeds, attention, positions, batch_cache)
            self._read(prepared, logits, batch, out)

    def _empty_positions(self, batch: int, length: int, like: "torch.Tensor") -> "torch.Tensor":
        import torch

        shape = (*like.shape[:-1], batch, length)
        return torch.zeros(shape, dtype=torch.long, device=self.device)

    @staticmethod
    def _read(prepared: Prepared, logits: "torch.Tensor", batch: list[int], out: np.ndarray) -> None:
        letters = logits[:, list(prepared.letter_ids)].float().cpu().numpy()
        out[batch] = letters
