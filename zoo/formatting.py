"""Every number the zoo prints, formatted in one place: durations, rates, multiply-adds, percentages.

Light on purpose (no TensorFlow, no numpy): the CLI's fast commands, the tables and the training progress lines all
format through these, so a number reads the same in a terminal, a log and a generated Markdown table.
"""

from __future__ import annotations

__all__ = ["duration", "rate", "gmacs", "integer", "percent", "signed", "general"]


def duration(seconds: float) -> str:
    """A wall time: '45s', '6m02s', '2h14m05s'."""
    seconds = int(round(max(0.0, float(seconds))))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def hours(value: float) -> str:
    """Hours to two significant decimals: 0.12, 1.45, 12.3."""
    return f"{value:.2f}" if value < 10 else f"{value:.1f}"


def rate(value: float) -> str:
    """Images per second (or any rate): thousands separated above 100, three significant digits below."""
    value = float(value)
    return f"{value:,.0f}" if value >= 100 else f"{value:.1f}" if value >= 10 else f"{value:.2f}"


def gmacs(macs: float) -> str:
    """Multiply-accumulates in G with three significant digits (LeNet-5's 0.000417 and VGG-19's 19.6 alike)."""
    return f"{macs / 1e9:.3g}"


def integer(value: int) -> str:
    return f"{int(value):,}"


def percent(value: float) -> str:
    """A percentage (already on the 0-100 scale), two decimals."""
    return f"{value:.2f}"


def signed(value: float) -> str:
    """A difference in points, with its sign."""
    return f"{value:+.2f}"


def general(value: float) -> str:
    """A plain number as Python's 'g' writes it (epochs, learning rates)."""
    return f"{value:g}"


# Appended (bench tables): the fixed-decimal and share cells zoo bench prints.
__all__ += ["fixed", "share"]


def fixed(value: float, places: int = 1) -> str:
    """A number with a fixed count of decimals, thousands separated: ms per step and GFLOP/s (1), our/keras'
    images/s ratio (2)."""
    return f"{value:,.{places}f}"


def share(fraction: float) -> str:
    """A fraction of a whole (0-1) as a percentage with one decimal and a % sign: MFU 0.78 -> '78.0%'."""
    return f"{fraction:.1%}"
