"""Write the explain options table (vqa_shap.explain_options.options_table) into docs/explain.md."""

from __future__ import annotations

import sys

from vqa_shap.explain_options import DOC_END, DOC_START, options_table
from vqa_shap.measure.doc_tables import update_file


def main(path: str = "docs/explain.md") -> int:
    changed = update_file(path, DOC_START, DOC_END, options_table() + "\n")
    print(f"{'wrote' if changed else 'unchanged:'} the options table in {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
