"""Subcommands of ``unetmm``; see ``studies.cli``."""
