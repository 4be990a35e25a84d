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
}


def _add_command(subparsers, name: str) -> None:
    module_name, help_text = COMMANDS[name]
    parser = subparsers.add_parser(name, help=help_text, description=help_text)
    module = importlib.import_module(module_name)
    module.add_arguments(parser)
    parser.set_defaults(_run=module.run)


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The argument parser; only ``command``'s module is imported (all of them if ``None``)."""
    parser = argparse.ArgumentParser(
        prog="vqa-shap",
        description="Shapley attributions of video, question and answer features for video QA models.",
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv: debug)")
    parser.add_argument("--version", action="version", version=_version())
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
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
    args = parser.parse_args(argv)
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
        from vqa_shap.errors import VqaShapError

        if isinstance(exc, (VqaShapError, FileNotFoundError)) and args.verbose < 2:
            print(f"vqa-shap {args.command}: error: {exc}", file=sys.stderr)
            return 1
        raise


if __name__ == "__main__":
    sys.exit(main())
