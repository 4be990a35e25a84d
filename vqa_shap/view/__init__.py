"""A self-contained static HTML viewer of attributions datasets (``vqa-shap view``).

:func:`build_site` writes a folder of static pages (no network, no CDN: local JavaScript and CSS,
data as ``<script>`` files, frame thumbnails as JPEG files) that opens from disk or from any web
server: an index of configs with the modality metrics and their intervals, a sortable, filterable,
paginated question list, a page per question (frames and words coloured by φ of the explained
option, answer and prediction, standard errors) and a side-by-side comparison of two configs.
"""

from __future__ import annotations

__all__ = ["build_site", "SiteResult"]


def __getattr__(name: str):  # keep ``import vqa_shap.view`` cheap: numpy/metrics load on use
    if name in __all__:
        from vqa_shap.view import site

        return getattr(site, name)
    raise AttributeError(name)
