"""A self-contained static HTML viewer of attributions datasets (``vqa-shap view``).

:func:`vqa_shap.view.site.build_site` writes a folder of static pages (no network, no CDN: local JavaScript and CSS,
data as ``<script>`` files, frame thumbnails as JPEG files) that opens from disk or from any web
server: an index of configs with the modality metrics and their intervals, a sortable, filterable,
paginated question list, a page per question (frames and words coloured by φ of the explained
option, answer and prediction, standard errors) and a side-by-side comparison of two configs.
"""
