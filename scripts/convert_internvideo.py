#!/usr/bin/env python
"""Convert the original InternVideo files into one ``save_pretrained`` folder for ``--model``.

Needs: OpenAI's ``ViT-L-14.pt`` (the CLIP package's download), InternVideo's ``MSRVTT.ckpt``
(InternVideo1 multi-modality fine-tune, obtained through InternVideo's request form) and a CLIP
tokenizer folder (e.g. ``openai/clip-vit-large-patch14``). The two weight files are merged with
InternVideo's WiSE-FT rule. See README "Non-native models: FrozenBiLM and InternVideo".
"""

import argparse

from vqa_shap.loaders.internvideo import WISEFT_ALPHA, convert


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--openai", required=True, help="OpenAI CLIP ViT-L-14.pt")
    parser.add_argument("--checkpoint", required=True, help="InternVideo MSRVTT.ckpt")
    parser.add_argument("--tokenizer", required=True, help="CLIP tokenizer folder")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--alpha", type=float, default=WISEFT_ALPHA, help="WiSE-FT coefficient (paper: 0.5)")
    parser.add_argument("--resize-short", type=int, default=256, help="resize before the centre crop (paper: 256)")
    args = parser.parse_args()
    out = convert(args.openai, args.checkpoint, args.tokenizer, args.out, alpha=args.alpha,
                  resize_short=args.resize_short)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
