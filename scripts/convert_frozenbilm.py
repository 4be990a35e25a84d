#!/usr/bin/env python
"""Convert the original FrozenBiLM files into one ``save_pretrained`` folder for ``--model``.

Needs: the ``microsoft/deberta-v2-xlarge`` folder (config.json, pytorch_model.bin, spm.model), a
FrozenBiLM fine-tuned checkpoint (e.g. the How2QA one from the FrozenBiLM README) and the
``openai/clip-vit-large-patch14`` folder. See docs/loaders.md.
"""

import sys

from vqa_shap.loaders.rebuilt import frozenbilm_convert as frozenbilm
from vqa_shap.loaders.rebuilt.checkpoints import conversion_main


def main(argv: list[str] | None = None) -> int:
    return conversion_main(__doc__, frozenbilm.add_convert_arguments, frozenbilm.convert_from_args, argv)


if __name__ == "__main__":
    sys.exit(main())
