#!/usr/bin/env python
"""Convert the original InternVideo files into one ``save_pretrained`` folder for ``--model``.

Needs: OpenAI's ``ViT-L-14.pt`` (the CLIP package's download), InternVideo's ``MSRVTT.ckpt``
(InternVideo1 multi-modality fine-tune, obtained through InternVideo's request form) and a CLIP
tokenizer folder (e.g. ``openai/clip-vit-large-patch14``). The two weight files are merged with
InternVideo's WiSE-FT rule. See docs/loaders.md.
"""

import sys

from vqa_shap.loaders.rebuilt import internvideo_convert as internvideo
from vqa_shap.loaders.rebuilt.checkpoints import conversion_main


def main(argv: list[str] | None = None) -> int:
    return conversion_main(__doc__, internvideo.add_convert_arguments, internvideo.convert_from_args, argv)


if __name__ == "__main__":
    sys.exit(main())
