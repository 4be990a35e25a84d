"""The one writer of generated doc blocks (vqa_shap.measure.doc_tables): its markers, and a page written
only when its block changed, with the page named when the markers are missing."""

from __future__ import annotations

import pytest

from vqa_shap.measure.doc_tables import markers, update_file


def test_markers_name_the_block():
    assert markers("loader-table") == ("<!-- loader-table:start -->", "<!-- loader-table:end -->")


def test_update_file_replaces_the_block_and_writes_only_a_change(tmp_path):
    start, end = markers("t")
    page = tmp_path / "page.md"
    page.write_text(f"intro\n{start}\nold\n{end}\nrest\n", encoding="utf-8")
    assert update_file(page, start, end, "| new |\n") is True
    assert page.read_text(encoding="utf-8") == f"intro\n{start}\n| new |\n{end}\nrest\n"
    page.chmod(0o444)  # an unchanged block is not written again (a read-only page stays untouched)
    try:
        assert update_file(page, start, end, "| new |\n") is False
    finally:
        page.chmod(0o644)


def test_update_file_names_the_page_without_markers(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("no markers here\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"page\.md: the document lacks the markers <!-- t:start -->"):
        update_file(page, *markers("t"), "x\n")


@pytest.mark.parametrize("module, names", [
    ("vqa_shap.measure.modalities", ("TABLE_START", "TABLE_END")),
    ("vqa_shap.measure.study_demo", ("TABLE_START", "TABLE_END")),
    ("vqa_shap.measure.loaders", ("TABLE_START", "TABLE_END")),
    ("vqa_shap.measure.view_site", ("DOC_START", "DOC_END")),
    ("vqa_shap.measure.estimators", ("DOC_START", "DOC_END")),
    ("vqa_shap.measure.interactions", ("DOC_START", "DOC_END")),
    ("vqa_shap.measure.sample_efficiency", ("DOC_START", "DOC_END")),
    ("vqa_shap.measure.trained_runs", ("DOC_START", "DOC_END")),
    ("vqa_shap.measure.pipeline_report", ("START", "END")),
])
def test_the_name_start_end_blocks_are_built_by_markers(module, names):
    import importlib

    start, end = (getattr(importlib.import_module(module), n) for n in names)
    name = start.removeprefix("<!-- ").removesuffix(":start -->")
    assert (start, end) == markers(name)
