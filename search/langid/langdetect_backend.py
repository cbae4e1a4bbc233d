"""langdetect, made deterministic and safe to call from several threads.

langdetect draws random n-grams from the text, so two runs can disagree on short or mixed texts.
Here every call gets a fresh `Detector` seeded with `SEED`, and the profiles are loaded once (under a
lock) in sorted file order into a private `DetectorFactory`, so the same text gives the same
`Language`, probability included, in every thread and every process.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from langdetect.detector_factory import PROFILES_DIRECTORY, DetectorFactory
from langdetect.lang_detect_exception import LangDetectException

from search.types import UNKNOWN_LANGUAGE, Language

from .base import group_language, script_candidates

logger = logging.getLogger(__name__)

SEED = 0

_factory: DetectorFactory | None = None
_factory_lock = threading.Lock()


class LangdetectDetector:
    """langdetect's 55 n-gram profiles, seeded, with the script rules of `search.langid.base`."""

    name = "langdetect"

    def detect(self, sample: str) -> Language:
        factory = _get_factory()
        detector = factory.create()
        detector.seed = SEED  # a fresh Random per call, seeded, so no state leaks between calls or threads
        candidates = script_candidates(sample, factory.langlist)
        if candidates is not None:
            detector.set_prior_map(dict.fromkeys(candidates, 1.0))
        detector.append(sample)
        try:
            probabilities = detector.get_probabilities()
        except LangDetectException:  # letters, but none langdetect has n-grams for (e.g. only capitals)
            return UNKNOWN_LANGUAGE
        if not probabilities:
            return UNKNOWN_LANGUAGE
        best = probabilities[0]
        return Language(code=best.lang, group=group_language(best.lang), probability=float(best.prob))


def load() -> LangdetectDetector:
    """The langdetect detector (its profiles load on first use, once per process)."""
    return LangdetectDetector()


def _get_factory() -> DetectorFactory:
    global _factory
    factory = _factory
    if factory is None:
        with _factory_lock:
            if _factory is None:
                _factory = _load_factory()
            factory = _factory
    return factory


def _load_factory() -> DetectorFactory:
    # langdetect's own loader follows os.listdir order, which varies between file systems; the order
    # of the profiles is the order of the sums in its normalisation, so sort it for identical floats.
    paths = sorted(
        path for path in Path(PROFILES_DIRECTORY).iterdir() if path.is_file() and not path.name.startswith(".")
    )
    factory = DetectorFactory()
    factory.load_json_profile([path.read_text(encoding="utf-8") for path in paths])
    factory.set_seed(SEED)
    logger.debug("loaded %d langdetect profiles", len(paths))
    return factory
