"""Words and numbers every part of the UI shows the same way: stage titles, durations, counts."""

from __future__ import annotations

from search.compare import STAGE_NAMES

__all__ = ["STAGE_NAMES", "STAGE_TITLES", "count", "duration"]

# How a stage is titled on its own (column heads, tables); STAGE_NAMES is how it is named in a sentence.
STAGE_TITLES = {"bm25": "BM25", "dense": "Dense", "hybrid": "Hybrid (RRF)", "rerank": "Reranked"}


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
