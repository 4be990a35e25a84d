"""Convert an original VideoLLaMA2 checkpoint (e.g. a local snapshot of DAMO-NLP-SG/VideoLLaMA2-7B-16F) to a save_pretrained folder.

    python scripts/convert_videollama2.py ORIGINAL_FOLDER OUT_FOLDER [--vision-tower CLIP_FOLDER] [--dtype float16]

The CLIP vision tower folder (config.json + preprocessor_config.json) defaults to the checkpoint's
``mm_vision_tower``. The written folder loads with ``vqa-shap explain --model OUT_FOLDER``.
"""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", help="original VideoLLaMA2 checkpoint folder or Hub id")
    parser.add_argument("out", help="folder to write (save_pretrained layout)")
    parser.add_argument("--vision-tower", default=None, help="CLIP vision tower folder or Hub id")
    parser.add_argument("--dtype", default="float16", help="dtype of the written weights (default: %(default)s)")
    args = parser.parse_args(argv)

    from vqa_shap.errors import VqaShapError
    from vqa_shap.loaders.videollama2 import VideoLlama2Loader

    try:
        out = VideoLlama2Loader.convert(args.checkpoint, args.out, vision_tower=args.vision_tower, dtype=args.dtype)
    except VqaShapError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
