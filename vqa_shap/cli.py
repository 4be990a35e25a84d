"""The ``vqa-shap`` command line.

Subcommands are registered in :data:`COMMANDS` (name -> module, one-line help). A command module
provides ``add_arguments(parser)`` and ``run(args) -> int``; it is imported only when that command
is used, so ``vqa-shap --help`` is instant. This is the one place that configures logging.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

#: command name -> (module path, one-line help). Keep sorted by workflow order.
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("vqa_shap.commands.demo", "run the main job on the bundled sample benchmark and print a summary"),
    "build": ("vqa_shap.commands.build", "normalise a benchmark's annotation files into a Hub-style questions folder"),
    "augment": ("vqa_shap.commands.augment", "add an extra-answer variant (easy, hard_N) of a questions config"),
    "push": ("vqa_shap.commands.push", "upload a Hub-style dataset folder to the Hugging Face Hub"),
    "features": ("vqa_shap.commands.features", "list each question's players (frames, question and option words) without a model"),
    "explain": ("vqa_shap.commands.explain", "explain a questions dataset with a model -> attributions dataset"),
    "interactions": ("vqa_shap.commands.interactions", "pairwise Shapley interactions (modality groups or top-k players) -> interactions dataset"),
    "merge": ("vqa_shap.commands.merge", "assemble the shard outputs of explain into attributions configs"),
    "import-paper": ("vqa_shap.commands.import_paper", "import the paper's per-question Shapley CSVs as an attributions config"),
    "metrics": ("vqa_shap.commands.metrics", "modality metrics (MC, PF, ratio, dominance) with bootstrap intervals"),
    "mask-bench": ("vqa_shap.commands.mask_bench", "the paper's masking benchmark: re-answer with Shapley-guided masks"),
    "rank": ("vqa_shap.commands.rank", "frame-ranking agreement (Gemini, Shapley, uniform, random): Spearman, Kendall"),
    "report": ("vqa_shap.commands.report", "PNG plots and per-question report images of attributions"),
    "view": ("vqa_shap.commands.view", "a self-contained static HTML site to browse attributions (opens from disk)"),
    "run": ("vqa_shap.commands.run_study", "a study file's models x benchmarks x variants: build, augment, explain, metrics, "
            "report, view (resumable)"),
}


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (no usage block), exit status 2."""

    def error(self, message: str):  # noqa: D102 - argparse API
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _add_command(subparsers, name: str) -> None:
    module_name, help_text = COMMANDS[name]
    parser = subparsers.add_parser(name, help=help_text, description=help_text)
    module = importlib.import_module(module_name)
    module.add_arguments(parser)
    parser.set_defaults(_run=module.run)


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The argument parser; only ``command``'s module is imported (all of them if ``None``)."""
    parser = _Parser(
        prog="vqa-shap",
        description="Shapley attributions of video, question and answer features for video QA models.",
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv: debug)")
    parser.add_argument("--version", action="version", version=_version())
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    if command in COMMANDS:
        _add_command(subparsers, command)
    else:
        for name, (_, help_text) in COMMANDS.items():
            subparsers.add_parser(name, help=help_text, add_help=False)
    return parser


def _version() -> str:
    from vqa_shap import __version__

    return f"vqa-shap {__version__}"


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``vqa-shap`` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(command if command in COMMANDS else None)
    try:
        args = parser.parse_args(argv)
    except SystemExit as stop:  # --help, --version or a bad argument (already printed, one line)
        return stop.code if isinstance(stop.code, int) else 2
    if not getattr(args, "_run", None):
        parser.print_help()
        return 0 if args.command is None else 2
    logging.basicConfig(
        level=logging.WARNING - 10 * min(args.verbose + 1, 2),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    try:
        return int(args._run(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - turn expected errors into one clear line
        message, status = _user_error(exc)
        if message is not None and args.verbose < 2:
            print(f"vqa-shap {args.command}: error: {message}", file=sys.stderr)
            return status
        raise


def _user_error(exc: BaseException) -> tuple[str | None, int]:
    """The one-line message and exit status of an error a user can cause, or ``(None, 1)``.

    This is the one place that maps errors to exit statuses. Every :class:`~vqa_shap.errors.VqaShapError`
    is raised on purpose and carries its status: 2 for bad input (an argument, file, record or
    setting), 1 for :class:`~vqa_shap.errors.InternalError`. An operating-system error on a path the
    user gave (missing file, read-only folder, full disk, permission) names that path and exits with 2.
    Anything else is a bug: ``(None, 1)``, and the traceback is shown.
    """
    import errno

    from vqa_shap.errors import VqaShapError

    if isinstance(exc, VqaShapError):
        return str(exc) or type(exc).__name__, exc.exit_status
    if isinstance(exc, OSError):
        reason = {errno.ENOSPC: "no space left on the device", errno.EROFS: "read-only file system",
                  errno.EACCES: "permission denied", errno.EPERM: "operation not permitted",
                  errno.EDQUOT: "disk quota exceeded", errno.ENOENT: "no such file or folder",
                  errno.ENOTDIR: "a path component is a file, not a folder",
                  errno.EISDIR: "is a folder, not a file"}.get(exc.errno, exc.strerror or type(exc).__name__)
        if exc.filename is not None:
            return f"cannot write or read {exc.filename}: {reason}", 2
        if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS):
            return f"cannot write: {reason}", 2
    return None, 1


if __name__ == "__main__":
    sys.exit(main())
