"""argparse value types that say what is allowed: counts >= 1, finite and positive numbers, and
non-empty comma-separated lists. Errors become argparse's one-line `argument --x: ...` message."""
from __future__ import annotations

import argparse
import math


def positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer (allowed: an integer >= 1)") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"{v} is invalid (allowed: an integer >= 1)")
    return v


def finite_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(v):
        raise argparse.ArgumentTypeError(f"{text} is invalid (allowed: a finite number)")
    return v


def positive_float(text: str) -> float:
    v = finite_float(text)
    if v <= 0:
        raise argparse.ArgumentTypeError(f"{text} is invalid (allowed: a finite number > 0)")
    return v


def name_list(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise argparse.ArgumentTypeError(f"{text!r} names nothing (allowed: comma-separated names)")
    return names
