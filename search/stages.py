"""The stage registry: every stage a search can have, with how it is named, scored and drawn.

One table answers "what is this stage?" for the engine, the CLI, the exports, the evaluation and the
renderers: its `name` (the key in `SearchResult.stages`, in exports and in links), its `title` (column
heads, tables), its `short` name (inside a sentence: "↑6 from BM25 #8"), the label and digits of its score
and its `kind`: a first stage (a retriever), a fusion of first stages, or a rerank.

Rerank stages are a list, not two names: the first reranker's stage is ``rerank`` ("Reranked"), the
second's ``rerank-b`` ("Reranked (B)"), the third's ``rerank-c``, and so on, each reranking the same
candidates. `rerank_stage(position)` names the stage of the reranker at a position of
`Settings.rerankers`; `reranker_position(name)` reads it back.

>>> [stage(name).title for name in ("bm25", "hybrid", "rerank", "rerank-b", "rerank-c")]
['BM25', 'Hybrid', 'Reranked', 'Reranked (B)', 'Reranked (C)']
>>> reranker_position("rerank-c"), rerank_stage(1), is_rerank("dense")
(2, 'rerank-b', False)
"""

from __future__ import annotations

import string
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

StageKind = Literal["first", "fusion", "rerank"]

MAX_RERANKERS = len(string.ascii_uppercase)  # A..Z: one letter per reranker


@dataclass(frozen=True)
class Stage:
    """What one stage is: see the module docstring. `letter` is a reranker's ("A", "B", …; "" otherwise)."""

    name: str
    title: str
    short: str
    score_label: str
    digits: int
    kind: StageKind
    letter: str = ""

    @property
    def is_rerank(self) -> bool:
        return self.kind == "rerank"


BM25 = Stage("bm25", "BM25", "BM25", "BM25", 2, "first")
DENSE = Stage("dense", "Dense", "dense", "cos", 3, "first")
HYBRID = Stage("hybrid", "Hybrid", "hybrid", "fused", 4, "fusion")  # the fusion ran: its model label
FIRST_STAGES: tuple[str, ...] = (BM25.name, DENSE.name, HYBRID.name)
"""The stages before any rerank, in order; each can feed the rerankers (`candidates_from`)."""
RETRIEVERS: tuple[str, ...] = (BM25.name, DENSE.name)
"""The first stages that search the corpus themselves (a passage is "found by" them); hybrid fuses their lists."""
_FIRST = {item.name: item for item in (BM25, DENSE, HYBRID)}
RERANK = "rerank"  # the first reranker's stage


def rerank_stage(position: int) -> str:
    """The stage name of the reranker at `position` (0: ``rerank``, 1: ``rerank-b``, 2: ``rerank-c``, …).

    Raises ValueError for a position below 0 or past the last letter."""
    if not 0 <= position < MAX_RERANKERS:
        raise ValueError(f"reranker position {position} is out of range; at most {MAX_RERANKERS} rerankers")
    return RERANK if position == 0 else f"{RERANK}-{string.ascii_lowercase[position]}"


def rerank_stages(count: int) -> tuple[str, ...]:
    """The stage names of `count` rerankers, in order."""
    return tuple(rerank_stage(position) for position in range(count))


def reranker_position(name: str) -> int | None:
    """The position (0 for ``rerank``) of a rerank stage's reranker; None when `name` is no rerank stage."""
    if name == RERANK:
        return 0
    prefix, _, letter = name.partition("-")
    if prefix == RERANK and len(letter) == 1 and letter in string.ascii_lowercase[1:]:
        return string.ascii_lowercase.index(letter)
    return None


def is_rerank(name: str) -> bool:
    return reranker_position(name) is not None


def stage(name: str) -> Stage:
    """The registry entry of `name`. Raises ValueError, naming the known stages, for an unknown one."""
    if name in _FIRST:
        return _FIRST[name]
    position = reranker_position(name)
    if position is None:
        raise ValueError(f"unknown stage {name!r}; the stages are {', '.join(FIRST_STAGES)}, {RERANK} and "
                         f"{RERANK}-b, {RERANK}-c, … (one per reranker)")
    letter = string.ascii_uppercase[position]
    if position == 0:
        return Stage(name, "Reranked", "reranked", "logit", 2, "rerank", letter)
    return Stage(name, f"Reranked ({letter})", f"reranked ({letter})", "logit", 2, "rerank", letter)


def known(name: str) -> bool:
    return name in _FIRST or is_rerank(name)


def ordered(names: Iterable[str]) -> tuple[str, ...]:
    """`names` in stage order (first stages, then rerankers by position), repeats dropped; unknown names last.

    >>> ordered(["rerank-b", "dense", "rerank", "bm25"])
    ('bm25', 'dense', 'rerank', 'rerank-b')
    """
    def key(name: str) -> tuple[int, int]:
        if name in _FIRST:
            return 0, FIRST_STAGES.index(name)
        position = reranker_position(name)
        return (1, position) if position is not None else (2, 0)

    return tuple(sorted(dict.fromkeys(names), key=key))


def search_stages(rerankers: int) -> tuple[str, ...]:
    """Every stage a search with `rerankers` rerankers can have, in order."""
    return (*FIRST_STAGES, *rerank_stages(rerankers))


def check_stages(names: Iterable[str], rerankers: int | None = None) -> None:
    """Raise ValueError naming what is allowed for an unknown stage, or (when `rerankers` is given) a rerank
    stage past the rerankers set."""
    for name in names:
        if not known(name):
            stage(name)  # raises with the list
        position = reranker_position(name)
        if rerankers is not None and position is not None and position >= rerankers:
            raise ValueError(f"the {name} stage needs reranker {stage(name).letter} (reranker number {position + 1}), "
                             f"but {rerankers} reranker(s) are set; add one (--reranker-model, or 'Compare with' "
                             f"in the app's model panel) or leave {name} out")
