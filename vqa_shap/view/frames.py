"""Frame thumbnails of the viewer: the frames each attribution was computed on, as small JPEG files.

Frames are re-planned and decoded exactly as ``vqa-shap report`` does
(:func:`vqa_shap.analysis.report.frame_images`: the protocol, the explain run's frame count and
sampler, the project's video backend), then shrunk to :data:`THUMB_HEIGHT` pixels. A question whose
video is missing or unreadable gets no thumbnails and a note; the pages show the placeholder image
(:data:`PLACEHOLDER_SVG`) with the frame time instead. Nothing here raises for a broken video.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from vqa_shap.atomic_files import safe_stem
from vqa_shap.schema.records import Attribution, Question

log = logging.getLogger(__name__)

#: Height of a thumbnail in pixels (the width keeps the frame's aspect ratio).
THUMB_HEIGHT = 96
#: JPEG quality of the thumbnails.
JPEG_QUALITY = 80
#: The image drawn where a frame could not be decoded (grey tile, crossed out).
PLACEHOLDER_SVG = """<svg xmlns="http://www.w3.org/2000/svg" width="128" height="96" viewBox="0 0 128 96">
<rect width="128" height="96" fill="#d9d9d9"/><path d="M0 0L128 96M128 0L0 96" stroke="#b0b0b0" stroke-width="2"/>
<text x="64" y="54" font-family="sans-serif" font-size="13" text-anchor="middle" fill="#555">no frame</text></svg>
"""


def thumbnail_jpeg(image: np.ndarray, path: Path, *, height: int = THUMB_HEIGHT) -> Path:
    """Write an RGB image (H×W×3 uint8) as a JPEG ``height`` pixels high."""
    from PIL import Image

    pil = Image.fromarray(np.ascontiguousarray(image).astype(np.uint8, copy=False))
    if pil.mode != "RGB":
        pil = pil.convert("RGB")
    width = max(1, round(pil.width * height / max(pil.height, 1)))
    pil = pil.resize((width, height), Image.BILINEAR)
    path.parent.mkdir(parents=True, exist_ok=True)
    pil.save(path, format="JPEG", quality=JPEG_QUALITY, optimize=True)
    return path


def write_thumbnails(attr: Attribution, question: Question | None, video_root: Path | str | None,
                     site: Path, folder: str, settings: Mapping[str, Any]) -> tuple[list[str] | None, str | None]:
    """Decode one attribution's frames and write a thumbnail per video player.

    Args:
        attr: the attribution (error rows get no frames).
        question: its question (video paths), or ``None``.
        video_root: the videos' root folder, or ``None``.
        site: the site folder being written.
        folder: sub-folder of ``site`` for this config's thumbnails (``frames/<config>``).
        settings: the explain run's card settings (``n_frames``, ``sampler``).

    Returns:
        ``(paths relative to the site, None)``, or ``(None, reason)`` when the frames are unavailable.
    """
    if attr.error is not None:
        return None, "error row"
    if video_root is None:
        return None, "no videos given (--questions and --video-root)"
    if question is None:
        return None, f"question {attr.qid!r} is not in the questions folder"
    from vqa_shap.analysis.question_report import frame_images

    try:
        images, note = frame_images(attr, question, None, video_root, n_frames=settings.get("n_frames"),
                                    sampler=settings.get("sampler"), shot_detector=settings.get("shot_detector"))
    except Exception as exc:  # noqa: BLE001 - a broken video is a placeholder, never a crash
        images, note = None, f"frames unavailable: {exc}"
    if images is None:
        log.debug("%s: %s", attr.qid, note)
        return None, _one_line(note)
    stem = safe_stem(attr.qid)
    paths = []
    for k, image in enumerate(images):
        rel = f"{folder}/{stem}/{k}.jpg"
        thumbnail_jpeg(image, site / rel)
        paths.append(rel)
    return paths, None


def _one_line(text: str | None) -> str:
    text = (text or "frames unavailable").strip()
    return text.splitlines()[0][:300]
