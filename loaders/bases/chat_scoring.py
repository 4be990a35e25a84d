"""The hot path of the chat-VLM family: coalitions -> option-letter logits.

With prefix sharing (the default) one call's coalitions are walked as a prefix tree: each is
turned into its prompt's token sequence (a video token's symbol says whether it shows its frame or
the baseline), the sequences are sorted (:func:`vqa_shap.game.prefix_tree_order`), and each one runs
only its tokens after the longest prefix it shares with the previous one, on the previous one's
key/value cache cropped to that prefix. Masking frame ``k`` re-runs the tokens from frame ``k`` on,
masking a word the tokens from that word on, so every distinct prefix of the call is computed once.
The walk keeps one sequence's cache (memory does not grow with the call) and runs one coalition per
forward pass: on CPU a batch of suffixes on an expanded cache is not cheaper per row than a short
suffix alone (docs/performance-loader.md). Without prefix sharing whole prompts run in batches of
``batch_size``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from vqa_shap.game import prefix_tree_order
from vqa_shap.loaders.bases.loader import Prepared

if TYPE_CHECKING:  # heavy imports only for type checkers
    import torch

#: Symbols of video tokens start here (token ids are below it), so a video token never equals a text token.
_VIDEO_SYMBOL = np.uint32(1 << 31)


@dataclass(frozen=True)
class _Row:
    """One coalition ready for the language model."""

    ids: "torch.Tensor"        # [L] token ids of the masked prompt
    positions: "torch.Tensor"  # [L] or [3, L] position ids


@dataclass
class _Path:
    """The last sequence the prefix-tree walk ran: its position ids and key/value cache."""

    positions: "torch.Tensor"
    layers: list  # [(keys, values)] per layer, [1, heads, L, dim]


class ChatScoring:
    """Scoring of :class:`~vqa_shap.loaders.bases.chat.ChatVLMLoader` (a mixin: it uses the loader's model,
    hooks and ``_row``). Counters: ``tokens_run`` (prompt tokens run by the language model) and
    ``forwards`` (forward passes), over the loader's life."""

    tokens_run: int = 0
    forwards: int = 0

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
                self._score_tree(prepared, masks, rows, out)
            else:
                for start in range(0, len(rows), self.batch_size):
                    batch = list(range(start, min(start + self.batch_size, len(rows))))
                    self._score_full(prepared, masks, rows, batch, out)
                    self.tokens_run += sum(rows[b].ids.shape[0] for b in batch)
                    self.forwards += 1
        return out

    # ------------------------------------------------------------------ prefix tree
    def video_token_states(self, prepared: Prepared, video_keep: np.ndarray) -> np.ndarray:
        """``int[N]``: a state per video token such that two coalitions give a token equal embeddings
        iff its states are equal (default: its frame kept or not; -1 units are always kept)."""
        return np.append(video_keep, True)[prepared.token_unit.cpu().numpy()].astype(np.uint32)

    def _symbols(self, prepared: Prepared, row: _Row, video_keep: np.ndarray, parts: dict) -> np.ndarray:
        """``uint32[L]``: the row's token sequence as the prefix tree compares it."""
        ids = row.ids.numpy()
        symbols = ids.astype(np.uint32)
        slots = ids == self.video_token_id
        if slots.any():
            if type(self)._video_embeds is ChatScoring._video_embeds or \
                    type(self).video_token_states is not ChatScoring.video_token_states:
                states = self.video_token_states(prepared, video_keep)
            else:  # a family with its own token embedding and no states: share only equal video parts
                states = np.full(int(slots.sum()), parts.setdefault(video_keep.tobytes(), len(parts)))
            symbols[slots] = _VIDEO_SYMBOL + states[-int(slots.sum()):].astype(np.uint32)
        return symbols

    def _score_tree(self, prepared: Prepared, masks: np.ndarray, rows: list[_Row], out: np.ndarray) -> None:
        """Walk the coalitions as a prefix tree; each runs its tokens after the prefix it shares with
        the previous one, on that one's cache cropped to the shared length."""
        parts: dict = {}
        symbols = [self._symbols(prepared, row, m[:prepared.n_video], parts) for row, m in zip(rows, masks)]
        order, shared = prefix_tree_order(symbols)
        path = None
        for b, common in zip(order, shared):
            row = rows[b]
            start = 0 if path is None else self._reusable(path, row, min(common, row.ids.shape[0] - 1))
            embeds = self._embed(prepared, row.ids[start:], masks[b, :prepared.n_video])[None]
            positions = row.positions[..., start:][..., None, :].to(self.device)
            # one unpadded row: no attention mask (the causal mask follows the cache; a padding mask costs ~7%)
            logits, cache = self.forward_last(embeds, None, positions, self._cache(path, start))
            self._read(prepared, logits, [b], out)
            path = _Path(row.positions, [(layer.keys, layer.values) for layer in cache.layers])
            self.tokens_run += row.ids.shape[0] - start
            self.forwards += 1

    @staticmethod
    def _reusable(path: _Path, row: _Row, length: int) -> int:
        """How much of ``path``'s cache ``row`` may reuse: ``length`` shared tokens, cut at the first
        position id that differs (the cached keys were rotated with the path's positions)."""
        if length <= 0:
            return 0
        differ = (path.positions[..., :length] != row.positions[..., :length]).reshape(-1, length).any(0)
        return int(differ.nonzero()[0]) if bool(differ.any()) else length

    def _cache(self, path: _Path | None, length: int):
        """A fresh key/value cache holding the first ``length`` tokens of ``path`` (sliced, not recomputed)."""
        from transformers import DynamicCache

        cache = DynamicCache(config=self.text_config())
        if path is not None and length > 0:
            for idx, (keys, values) in enumerate(path.layers):
                cache.update(keys[..., :length, :], values[..., :length, :], idx)
        return cache

    # ------------------------------------------------------------------ embeddings
    def _video_embeds(self, prepared: Prepared, video_keep: np.ndarray) -> "torch.Tensor":
        import torch

        keep = torch.as_tensor(np.append(video_keep, True), device=self.device)
        return torch.where(keep[prepared.token_unit][:, None], prepared.kept_embeds, prepared.masked_embeds)

    def _embed(self, prepared: Prepared, ids: "torch.Tensor", video_keep: np.ndarray | None) -> "torch.Tensor":
        """Input embeddings of ``ids``, the tail of a prompt: its video slots are the last video tokens."""
        ids = ids.to(self.device)
        embeds = self.model.get_input_embeddings()(ids)
        if video_keep is not None:
            slots = ids == self.video_token_id
            n = int(slots.sum())
            if n:
                embeds = embeds.clone()
                embeds[slots] = self._video_embeds(prepared, video_keep)[-n:]
        return embeds

    # ------------------------------------------------------------------ whole prompts
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

    def _empty_positions(self, batch: int, length: int, like: "torch.Tensor") -> "torch.Tensor":
        import torch

        shape = (*like.shape[:-1], batch, length)
        return torch.zeros(shape, dtype=torch.long, device=self.device)

    @staticmethod
    def _read(prepared: Prepared, logits: "torch.Tensor", batch: list[int], out: np.ndarray) -> None:
        letters = logits[:, list(prepared.letter_ids)].float().cpu().numpy()
        out[batch] = letters
