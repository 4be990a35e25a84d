"""Convert an original VideoLLaMA2 checkpoint (e.g. a local snapshot of DAMO-NLP-SG/VideoLLaMA2-7B-16F) to a save_pretrained folder.

    python scripts/convert_videollama2.py ORIGINAL_FOLDER OUT_FOLDER [--vision-tower CLIP_FOLDER] [--dtype float16]

The CLIP vision tower folder (config.json + preprocessor_config.json) defaults to the checkpoint's
``mm_vision_tower``. The written folder loads with ``vqa-shap explain --model OUT_FOLDER``.
"""

import sys

from vqa_shap.loaders.rebuilt.checkpoints import generative_conversion_main


def main(argv: list[str] | None = None) -> int:
    return generative_conversion_main("video_llama2", "VideoLLaMA2", __doc__, argv)


if __name__ == "__main__":
    sys.exit(main())
