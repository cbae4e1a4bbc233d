"""Stopword lists per language, from the `stopwordsiso` package (the Stopwords ISO collection, MIT).

`stopwords(group)` returns the words of one language group of `search.language` (``en``, ``zh``, ...) as
the collection spells them (`search.analysis` normalises them as it normalises words); an unknown group, or a
language the collection lacks, gives an empty set.

Why Stopwords ISO: it is the one maintained collection on PyPI that covers every language of the sample
corpus and of XQuAD's twelve (Thai, Vietnamese, Greek and Romanian included; 58 languages), under MIT.
`stop-words` (BSD-3) has no Thai and the same broad English list; Snowball's and Lucene's shorter lists
ship in no PyPI package (NLTK downloads them at run time). The lists are broad (English has about 1,300
words, among them "year", "first" and "long"), which is why `search.bm25` also computes document
frequencies per language: that, not the list, is what keeps a frequent word light (docs/ranking.md has
the measurements).
"""

from __future__ import annotations

from functools import lru_cache

# The collection's codes where they differ from the language groups of `search.language`.
_CODES = {"nb": "no", "nn": "no"}
SOURCE = "stopwordsiso"


@lru_cache(maxsize=128)
def stopwords(group: str) -> frozenset[str]:
    """Return the stopwords of language group `group`, as the collection spells them.

    Raises ImportError with the pip line when `stopwordsiso` is missing.

    >>> "the" in stopwords("en"), "und" in stopwords("de"), stopwords("unknown")
    (True, True, frozenset())
    """
    try:
        import stopwordsiso
    except ModuleNotFoundError as error:
        raise ImportError("the stopword lists are missing; install them with: pip install stopwordsiso") from error
    return frozenset(stopwordsiso.stopwords(_CODES.get(group, group))) if group != "unknown" else frozenset()
