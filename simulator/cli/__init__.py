"""The servesim command line (see main.py)."""
from simulator.cli.main import main

__all__ = ["main"]
