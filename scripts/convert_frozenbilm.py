#!/usr/bin/env python
"""Convert the original FrozenBiLM files into one ``save_pretrained`` folder for ``--model``.

Needs: the ``microsoft/deberta-v2-xlarge`` folder (config.json, pytorch_model.bin, spm.model), a
FrozenBiLM fine-tuned checkpoint (e.g. the How2QA one from the FrozenBiLM README) and the
``openai/clip-vit-large-patch14`` folder. See README "Non-native models: FrozenBiLM and InternVideo".
"""

import argparse

from vqa_shap.loaders.frozenbilm import convert


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--deberta", required=True, help="microsoft/deberta-v2-xlarge folder")
    parser.add_argument("--checkpoint", required=True, help="FrozenBiLM fine-tuned checkpoint (.pth)")
    parser.add_argument("--clip", required=True, help="openai/clip-vit-large-patch14 folder")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--ds-factor", type=int, default=8, help="adapter down-sampling factor (paper: 8)")
    parser.add_argument("--image-size", type=int, default=224, help="frame size for CLIP (paper: 224)")
    args = parser.parse_args()
    out = convert(args.deberta, args.checkpoint, args.clip, args.out, ds_factor_attn=args.ds_factor,
                  ds_factor_ff=args.ds_factor, image_size=args.image_size)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
