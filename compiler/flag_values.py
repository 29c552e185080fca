"""argparse value types for cimc's flags: a value out of range is refused as it is parsed, in one line that
argparse prefixes with the flag (``argument --seeds: '0' is not a whole number >= 1``)."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable


def integer(low: int, high: int | None = None) -> Callable[[str], int]:
    """A whole number from ``low`` (to ``high``)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < low or (high is not None and value > high):
            span = f">= {low}" if high is None else f"from {low} to {high}"
            raise argparse.ArgumentTypeError(f"'{text}' is not a whole number {span}")
        return value

    return parse


def number(low: float, high: float = math.inf, *, above: bool = False) -> Callable[[str], float]:
    """A finite number from ``low`` to ``high`` (``above``: greater than ``low``)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not ((value > low if above else value >= low) and value <= high and math.isfinite(value)):
            start = f"> {low:g}" if above else f">= {low:g}"
            span = start if high == math.inf else f"{start} and <= {high:g}"
            raise argparse.ArgumentTypeError(f"'{text}' is not a finite number {span}")
        return value

    return parse
