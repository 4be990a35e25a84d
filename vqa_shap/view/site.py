"""Write the viewer's static site: pages, assets, data scripts and frame thumbnails.

Layout of ``SITE/``::

    index.html  questions.html  question.html  compare.html   # static pages (the same for every site)
    assets/viewer.js  assets/viewer.css  assets/placeholder.svg
    data/site.js                     # configs with their metrics, report figures
    data/<config>/list.js            # the question list of a config (one array per row)
    data/<config>/chunk-<k>.js       # details of questions k*CHUNK … (k+1)*CHUNK-1
    frames/<config>/<qid stem>/<j>.jpg
    report/*.png  report/*.csv       # copies of `vqa-shap report` figures and tables, when given
    .vqa-shap-view                   # marks a folder this module wrote (a rebuild may replace it)

Data files are JavaScript that assign into ``window.VQA_DATA`` (not JSON fetched at run time):
browsers block ``fetch()`` of local files, and ``<script src>`` works from disk and from any web
server alike. The site is built in a hidden sibling folder and renamed into place, so a crash never
leaves a half-written site, and a rebuild replaces the old one only when the new one is complete.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from vqa_shap.atomic_files import naming_path
from vqa_shap.schema.records import Attribution, Question
from vqa_shap.output_folder import replace_folder, staging_for
from vqa_shap.view import data as D
from vqa_shap.view.frames import PLACEHOLDER_SVG, write_thumbnails

#: Questions per detail data file (a question page loads one file).
CHUNK = 100
#: The file that marked a folder as a viewer site before manifests (:mod:`vqa_shap.output_folder`).
MARKER = ".vqa-shap-view"
#: Static files copied from the package (``vqa_shap/view/assets``): name in the package -> path in the site.
ASSETS = {"viewer.js": "assets/viewer.js", "viewer.css": "assets/viewer.css"}
#: The static pages, all rendered from ``assets/page.html`` (they differ only in title and page kind,
#: which the script reads): page kind -> title.
PAGES = {"index": "Configs", "questions": "Questions", "question": "Question", "compare": "Compare"}
_PREFIX = "var D=window.VQA_DATA=window.VQA_DATA||{site:null,lists:{},chunks:{}};"


@dataclass(frozen=True)
class SiteResult:
    """What :func:`build_site` wrote.

    Attributes:
        out: the site folder (open ``out/index.html``).
        configs: the configs shown.
        n_questions: attribution rows over all configs.
        n_errors: error rows among them (listed, with their error).
        n_thumbnails: frame thumbnails written.
        placeholders: ``{"config/qid": reason}`` of questions shown with placeholder frames.
        reports: report figures and tables copied (paths in the site).
        seconds: wall time of the build.
    """

    out: Path
    configs: tuple[str, ...]
    n_questions: int
    n_errors: int
    n_thumbnails: int
    placeholders: Mapping[str, str]
    reports: tuple[str, ...]
    seconds: float


def check_site_folder(out: Path | str) -> None:
    """Refuse an output folder that exists, is not empty and was not written by the viewer.

    Raises:
        VqaShapError: ``out`` is a file, or a non-empty folder without a manifest or the viewer's marker.
    """
    from vqa_shap.output_folder import check_output_folder

    check_output_folder(out, "view", legacy_owned=(Path(out) / MARKER).exists())


def _script(path: Path, statement: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(_PREFIX + statement + "\n", encoding="utf-8")


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), allow_nan=False)


def _copy_assets(staging: Path) -> None:
    package = resources.files("vqa_shap.view") / "assets"
    for name, rel in ASSETS.items():
        target = staging / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes((package / name).read_bytes())
    page = (package / "page.html").read_text(encoding="utf-8")
    for kind, title in PAGES.items():
        (staging / f"{kind}.html").write_text(page.replace("__TITLE__", title).replace("__PAGE__", kind),
                                              encoding="utf-8")
    (staging / "assets" / "placeholder.svg").write_text(PLACEHOLDER_SVG, encoding="utf-8")


def _copy_reports(staging: Path, reports: Sequence[Path]) -> list[str]:
    copied = []
    for path in reports:
        rel = f"report/{path.name}"
        if rel in copied:
            continue
        (staging / "report").mkdir(exist_ok=True)
        shutil.copyfile(path, staging / rel)
        copied.append(rel)
    return copied


def _write_config(staging: Path, name: str, attrs: Sequence[Attribution], *,
                  questions: Mapping[str, Question] | None, video_root: Path | str | None,
                  settings: Mapping[str, Any], bootstrap: int, tick: Callable[[], None],
                  placeholders: dict[str, str], interactions: Mapping[str, Any] | None = None
                  ) -> tuple[dict[str, Any], int]:
    """Write one config's list, detail chunks and thumbnails; return its summary and thumbnail count."""
    per_q = D.question_metrics(attrs)
    _script(staging / "data" / name / "list.js",
            f"D.lists[{_json(name)}]={_json({'columns': D.LIST_COLUMNS, 'rows': D.list_rows(attrs, per_q)})};")
    n_thumbs = 0
    for start in range(0, len(attrs), CHUNK):
        details = []
        for attr in attrs[start:start + CHUNK]:
            question = questions.get(attr.qid) if questions else None
            frames, note = write_thumbnails(attr, question, video_root, staging, f"frames/{name}", settings)
            if frames is None and attr.error is None:
                placeholders[f"{name}/{attr.qid}"] = note or ""
            n_thumbs += len(frames or ())
            details.append(D.question_detail(attr, question, frames, note))
            if interactions and attr.qid in interactions:
                details[-1]["interactions"] = interactions[attr.qid]
            tick()
        key = f"{name}/{start // CHUNK}"
        _script(staging / "data" / name / f"chunk-{start // CHUNK}.js", f"D.chunks[{_json(key)}]={_json(details)};")
    summary = D.config_summary(name, attrs, settings, bootstrap=bootstrap)
    summary["chunk"] = CHUNK
    return summary, n_thumbs


def build_site(attributions: Mapping[str, Sequence[Attribution]], out: Path | str, *,
               questions: Mapping[str, Mapping[str, Question]] | None = None, video_root: Path | str | None = None,
               settings: Mapping[str, Mapping[str, Any]] | None = None, reports: Sequence[Path] = (),
               report_tables: Sequence[Path] = (), interactions: Mapping[str, Mapping[str, Any]] | None = None,
               bootstrap: int = 200, title: str = "vqa-shap attributions", progress: bool = False) -> SiteResult:
    """Write the static site of attributions grouped by config.

    Args:
        attributions: config name -> its rows (config names are folder names in the site).
        out: the site folder; replaced as a whole when it is a site written earlier.
        questions: config -> qid -> question (verbatim text; video paths for the thumbnails). Per
            config, because the variants of a benchmark share their qids.
        video_root: where the videos are (without it every frame is a placeholder).
        settings: config -> the explain run's card settings (``n_frames``, ``sampler``, ``model``).
        reports: PNG figures (``vqa-shap report`` output) to copy and show on the index, grouped
            by kind (modality metrics, answer replacement, words, heat maps, convergence).
        report_tables: CSV tables of the report to copy and link from the index.
        interactions: config -> qid -> interaction details
            (:func:`vqa_shap.view.interactions.match`), drawn on the question pages.
        bootstrap: resamples of the metrics' confidence intervals.
        title: the index page's heading.
        progress: show a progress bar.

    Returns:
        A :class:`SiteResult`.
    """
    from tqdm.auto import tqdm

    started = time.perf_counter()
    out = Path(out)
    check_site_folder(out)
    staging = staging_for(out)
    with naming_path(out):  # a full disk while writing names the site folder (left as it was)
        try:
            _copy_assets(staging)
            total = sum(len(a) for a in attributions.values())
            bar = tqdm(total=total, desc="view", unit="q", disable=not progress)
            summaries, placeholders, n_thumbs = [], {}, 0
            for name, attrs in attributions.items():
                summary, n = _write_config(staging, name, list(attrs), questions=(questions or {}).get(name),
                                           video_root=video_root,
                                           settings=(settings or {}).get(name) or {}, bootstrap=bootstrap,
                                           tick=lambda: bar.update(1), placeholders=placeholders,
                                           interactions=(interactions or {}).get(name))
                summaries.append(summary)
                n_thumbs += n
            bar.close()
            copied = _copy_reports(staging, reports)
            tables = _copy_reports(staging, report_tables)
            site = {"title": title, "configs": summaries, "reports": copied, "report_tables": tables,
                    "list_columns": D.LIST_COLUMNS,
                    "built": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "version": _version()}
            _script(staging / "data" / "site.js", f"D.site={_json(site)};")
            replace_folder(staging, out, "view", legacy_owned=(out / MARKER).exists())  # the user's own files are kept
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    return SiteResult(out, tuple(attributions), total, sum(s["n_errors"] for s in summaries), n_thumbs,
                      placeholders, tuple(copied + tables), time.perf_counter() - started)


def _version() -> str:
    from vqa_shap import __version__

    return __version__
