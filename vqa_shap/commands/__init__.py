"""CLI subcommands: one module per command, each with ``add_arguments(parser)`` and ``run(args)``.

Modules are imported only when their command runs (``--help`` of the top level imports none).
"""
