"""Write the explain options table (vqa_shap.explain_options.options_table) into docs/explain.md."""

from __future__ import annotations

import sys
from pathlib import Path

from vqa_shap.explain_options import DOC_END, DOC_START, options_table


def main(path: str = "docs/explain.md") -> int:
    doc = Path(path)
    text = doc.read_text(encoding="utf-8")
    start, end = text.index(DOC_START) + len(DOC_START), text.index(DOC_END)
    doc.write_text(text[:start] + "\n" + options_table() + "\n" + text[end:], encoding="utf-8")
    print(f"wrote the options table to {doc}")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
