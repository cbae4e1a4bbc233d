"""Words and numbers every part of the UI shows the same way: stage titles, durations, counts."""

from __future__ import annotations

import re

from search.estimates import about
from search.stages import known, stage

__all__ = ["about", "count", "duration", "megabytes", "stage_short", "stage_title"]  # about: search.estimates


def stage_title(name: str) -> str:
    """How a stage is titled on its own (column heads, tables): "Dense", "Reranked (B)"; unknown: the name.

    >>> stage_title("rerank-b"), stage_title("custom")
    ('Reranked (B)', 'custom')
    """
    return stage(name).title if known(name) else name


def stage_short(name: str) -> str:
    """How a stage is named inside a sentence: "↑6 from BM25 #8", "not in dense top-10"."""
    return stage(name).short if known(name) else name


def duration(seconds: float) -> str:
    """Return a duration the way the UI shows it: ms below 10 s, seconds below 2 min, then minutes.

    >>> duration(0.0042), duration(1.24), duration(12.5), duration(300)
    ('4.2 ms', '1,240 ms', '12.5 s', '5.0 min')
    """
    milliseconds = seconds * 1000
    if milliseconds < 10:
        return f"{milliseconds:.1f} ms"
    if milliseconds < 10_000:
        return f"{milliseconds:,.0f} ms"
    if seconds < 120:
        return f"{seconds:,.1f} s"
    return f"{seconds / 60:,.1f} min"


def count(number: int, noun: str, plural: str | None = None) -> str:
    """Return "1 file", "2 files", "1,204 passages"; `plural` for nouns that do not take an s.

    >>> count(1, "file"), count(1204, "passage"), count(3, "skipped", plural="skipped")
    ('1 file', '1,204 passages', '3 skipped')
    """
    return f"{number:,} {noun if number == 1 else plural or noun + 's'}"


def megabytes(size: int) -> str:
    """Return a size in MB of 1,000,000 bytes, as the upload limit counts them.

    >>> megabytes(470_000_000), megabytes(1_234_567), megabytes(12_345)
    ('470 MB', '1.2 MB', '0.01 MB')
    """
    value = size / 1_000_000
    if value >= 100:
        return f"{value:,.0f} MB"
    if value >= 1:
        return f"{value:.1f} MB"
    return f"{value:.2f} MB"


_DETAIL = re.compile(r"\(([^;()]*);[^()]*\)")


def short_model(label: str) -> str:
    """A model label as a column header shows it: the measurements after a ";" inside parentheses are left
    to the hover text (the full label), so the header stays a line or two.

    >>> short_model("e5 · int8 (quantized, OpenVINO static; ≥ 99.6% of torch's XQuAD nDCG@10)")
    'e5 · int8 (quantized, OpenVINO static)'
    """
    return _DETAIL.sub(r"(\1)", label)
