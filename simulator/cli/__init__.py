"""The `servesim` command line: main.py builds the parser and runs a subcommand; each subcommand
is one module (add_arguments(parser), run(args) -> exit code) that parses flags into a Scenario or
study inputs, calls the rooms below and prints. The only room that imports reports/ and the
measuring parts of profiles/. Owns no simulation logic.
"""
from simulator.cli.main import main

__all__ = ["main"]
