"""One module per ``bp-hw`` subcommand: ``add_parser(subparsers, name)`` and ``run(args)``."""
