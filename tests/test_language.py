"""Both language detectors on small hand-written texts: the same rules, codes and groups, deterministic
across threads and processes. A slow check runs them on XQuAD when ../shared/xquad is there."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from langdetect.detector_factory import PROFILES_DIRECTORY

from search import language
from search.langid import langdetect_backend
from search.langid.base import DETECTED_CODES
from search.language import LANGUAGE_NAMES, detect_language, detect_languages, group_language
from search.types import UNKNOWN_LANGUAGE, Language

REPO = Path(__file__).resolve().parents[1]
XQUAD = Path(__file__).resolve().parents[2] / "shared" / "xquad"
DETECTORS = ("langdetect", "fasttext")

MIXED_TEXTS = [
    "The quick brown fox jumps over the lazy dog near the river bank.",
    "Der schnelle braune Fuchs springt über den faulen Hund am Flussufer.",
    "El rápido zorro marrón salta sobre el perro perezoso junto al río.",
    "Быстрая коричневая лиса прыгает через ленивую собаку у реки.",
    "الثعلب البني السريع يقفز فوق الكلب الكسول بجانب النهر.",
    "तेज़ भूरी लोमड़ी नदी के किनारे आलसी कुत्ते के ऊपर कूदती है।",
    "敏捷的棕色狐狸跳过了河边那只懒惰的狗。",
    "東京は日本の首都で、たくさんの人が住んでいます。",
    "Paris est la capitale de la France.",
    "Ciao",
    "12345 !!!",
    "I met 王小明 in Beijing last summer.",
    "臺灣是位於東亞的島嶼，首都為臺北市。",
    "WHO WROTE HAMLET?",
]

# Short questions, as users type them (written for this test).
SHORT_QUESTIONS = [
    ("Wann wurde die Brücke gebaut?", "de"),
    ("Wie heißt der längste Fluss Europas?", "de"),
    ("¿Cuántos habitantes tiene la ciudad?", "es"),
    ("¿Quién pintó el cuadro más famoso del museo?", "es"),
    ("Сколько лет длилась война?", "ru"),
    ("Кто построил первый мост через реку?", "ru"),
    ("When did the first train reach the coast?", "en"),
    ("How tall is the tower?", "en"),
    ("Quand la cathédrale a-t-elle été construite ?", "fr"),
    ("متى تأسست الجامعة؟", "ar"),
    ("नदी कितनी लंबी है?", "hi"),
    ("这座桥是什么时候建成的？", "zh"),
]

_PRINT_DETECTIONS = (
    "import json, sys\n"
    "from search.language import detect_languages\n"
    "texts = json.loads(sys.stdin.read())\n"
    "print(json.dumps([[l.code, l.group, repr(l.probability)] for l in detect_languages(texts)]))\n"
)


@pytest.fixture(params=DETECTORS)
def langid(request) -> str:
    return request.param


def _detect_in_subprocess(texts: list[str], hash_seed: str, langid: str | None) -> list[list[str]]:
    env = {**os.environ, "PYTHONHASHSEED": hash_seed}
    env.pop(language.LANGID_ENV, None)
    if langid is not None:
        env[language.LANGID_ENV] = langid
    completed = subprocess.run(
        [sys.executable, "-c", _PRINT_DETECTIONS],
        input=json.dumps(texts),
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        check=True,
    )
    return json.loads(completed.stdout)


@pytest.mark.parametrize("text", ["12345 !!!", "", "   \n\t", "😀🎉", "3.14 + 2 = 5.14", "—…¿?"])
def test_text_without_letters_is_unknown(text, langid):
    assert detect_language(text, langid) == UNKNOWN_LANGUAGE, f"{text!r} has no letters and must be unknown"


def test_chinese_is_group_zh(langid):
    detected = detect_language("敏捷的棕色狐狸跳过了河边那只懒惰的狗。", langid)
    assert (detected.code, detected.group) == ("zh-cn", "zh"), detected
    assert 0.5 < detected.probability <= 1.0, detected


def test_traditional_chinese_is_zh_tw_in_group_zh(langid):
    for text in ("臺灣是位於東亞的島嶼，首都為臺北市。", "這個國家的經濟發展非常迅速，吸引了許多外國投資者。"):
        detected = detect_language(text, langid)
        assert (detected.code, detected.group) == ("zh-tw", "zh"), (text, detected)
        assert 0.5 < detected.probability <= 1.0, detected


def test_chinese_with_english_names_stays_chinese(langid):
    # Latin letters outnumber Han here; plain langdetect calls this Catalan or French.
    text = "DECnet是由Digital Equipment Corporation创造的一套网络协议，最初发布于1975年。"
    assert detect_language(text, langid).group == "zh", detect_language(text, langid)


def test_han_without_hangul_or_kana_is_never_korean_or_japanese(langid):
    # Plain langdetect (seed 0) calls both Korean with probability 0.99999.
    for text in ("法律规定所有公民必须遵守。", "历史文化"):
        assert detect_language(text, langid).code == "zh-cn", (text, detect_language(text, langid))


def test_japanese_and_korean_keep_their_codes(langid):
    assert detect_language("東京は日本の首都で、たくさんの人が住んでいます。", langid).code == "ja"
    assert detect_language("서울은 대한민국의 수도이며 많은 사람들이 살고 있습니다.", langid).code == "ko"


@pytest.mark.parametrize(
    ("text", "group"),
    [
        ("The quick brown fox jumps over the lazy dog near the river bank.", "en"),
        ("Der schnelle braune Fuchs springt über den faulen Hund am Flussufer.", "de"),
        ("Быстрая коричневая лиса прыгает через ленивую собаку у реки.", "ru"),
        ("الثعلب البني السريع يقفز فوق الكلب الكسول بجانب النهر.", "ar"),
    ],
)
def test_sentences_get_their_language(text, group, langid):
    detected = detect_language(text, langid)
    assert detected.group == group and detected.code == group and detected.is_known, detected


def test_fasttext_gets_short_questions_right():
    wrong = [(text, expected, detect_language(text, "fasttext").group) for text, expected in SHORT_QUESTIONS
             if detect_language(text, "fasttext").group != expected]
    assert not wrong, f"fastText mislabelled short questions (text, expected, got): {wrong}"


def test_fasttext_reads_shouting_as_the_language_it_is():
    # The model is case-sensitive: in capitals this English question reads as Dutch (0.80) until lowered.
    assert detect_language("WHO WROTE HAMLET?", "fasttext").group == "en"


def test_fasttext_answers_in_langdetect_codes_only():
    # fastText names 176 languages; Esperanto, Latin, Nynorsk and Cantonese are not among langdetect's 55.
    texts = ["La rapida bruna vulpo saltas super la maldiligenta hundo.", "Gallia est omnis divisa in partes tres.",
             "Eg heiter Kari og eg bur i ein liten by ved fjorden.", "佢哋喺度食緊飯，我哋一陣先去。", *MIXED_TEXTS]
    for text in texts:
        detected = detect_language(text, "fasttext")
        assert detected.code in {*DETECTED_CODES, "unknown"}, (text, detected)
        assert detected.group == group_language(detected.code), detected
        assert (0.0 < detected.probability <= 1.0) == detected.is_known, detected


def test_any_string_is_answered_without_raising(langid):
    for text in ("abc\ud800 def", "\x00\x01 Haus", "a\nb\r\nc\td", "ÉTÉ", "x" * 5000, "\u200d\u200c"):
        assert isinstance(detect_language(text, langid), Language), text


def test_group_language():
    assert group_language("zh-cn") == "zh"
    assert group_language("zh-tw") == "zh"
    assert group_language("de") == "de"
    assert group_language("unknown") == "unknown"


def test_language_names_cover_every_langdetect_profile():
    profiles = {path.name for path in Path(PROFILES_DIRECTORY).iterdir()}
    assert len(profiles) == 55
    assert profiles - LANGUAGE_NAMES.keys() == set()
    assert LANGUAGE_NAMES["zh-cn"] == "Chinese (Simplified)" and LANGUAGE_NAMES["hi"] == "Hindi"
    assert set(DETECTED_CODES) == profiles, "every detector answers in langdetect's codes"


def test_long_text_is_detected_from_its_start(langid):
    text = "Der Hund schläft im Garten. " * 500 + "The dog sleeps in the garden. " * 2000
    assert len(text) > 10 * language.MAX_DETECT_CHARS
    assert detect_language(text, langid).group == "de"


def test_detect_languages_keeps_order(langid):
    assert detect_languages(MIXED_TEXTS, langid) == [detect_language(text, langid) for text in MIXED_TEXTS]
    assert detect_languages([], langid) == []


@pytest.mark.parametrize("langid_env", [None, *DETECTORS])
def test_identical_in_two_processes_with_different_hash_seeds(langid_env):
    first = _detect_in_subprocess(MIXED_TEXTS, hash_seed="1", langid=langid_env)
    second = _detect_in_subprocess(MIXED_TEXTS, hash_seed="2", langid=langid_env)
    here = [[found.code, found.group, repr(found.probability)]
            for found in detect_languages(MIXED_TEXTS, langid_env or language.AUTO_LANGID)]
    assert first == second, "two processes disagree on language or probability"
    assert first == here, "a subprocess disagrees with this process"


def test_identical_across_threads_from_a_fresh_start(monkeypatch):
    expected = detect_languages(MIXED_TEXTS, "langdetect")
    loads = []
    real_load = langdetect_backend._load_factory

    def counting_load():
        loads.append(threading.get_ident())
        return real_load()

    monkeypatch.setattr(langdetect_backend, "_factory", None)  # as if nothing had been loaded in this process
    monkeypatch.setattr(langdetect_backend, "_load_factory", counting_load)
    start = threading.Barrier(8)

    def detect_all(_: int) -> list[Language]:
        start.wait()  # all 8 threads reach the first detection together
        return detect_languages(MIXED_TEXTS, "langdetect")

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(detect_all, range(8)))
    assert len(loads) == 1, f"profiles were loaded {len(loads)} times; the lock must make it once"
    for thread_result in results:
        assert thread_result == expected, "a thread disagrees with the single-threaded answers"


@pytest.mark.slow
def test_xquad_paragraphs_are_detected_as_their_language(langid):
    if not XQUAD.is_dir():
        pytest.skip(f"XQuAD not found at {XQUAD}")
    for code in ("en", "de", "es", "ru", "ar", "hi", "zh"):
        data = json.loads((XQUAD / f"xquad.{code}.json").read_text(encoding="utf-8"))
        contexts = [paragraph["context"] for article in data["data"] for paragraph in article["paragraphs"]]
        groups = [found.group for found in detect_languages(contexts, langid)]
        share = groups.count(code) / len(groups)
        assert share >= 0.995, f"{code}: only {share:.1%} of paragraphs detected as {code}"


@pytest.mark.slow
def test_xquad_fasttext_matches_or_beats_langdetect_on_paragraphs_and_questions():
    if not all((XQUAD / f"xquad.{code}.json").is_file() for code in ("en", "de", "es", "ru", "ar", "hi", "zh")):
        pytest.skip(f"XQuAD not found at {XQUAD}")
    for code in ("en", "de", "es", "ru", "ar", "hi", "zh"):
        data = json.loads((XQUAD / f"xquad.{code}.json").read_text(encoding="utf-8"))
        paragraphs = [paragraph for article in data["data"] for paragraph in article["paragraphs"]]
        for kind, texts in (("paragraphs", [paragraph["context"] for paragraph in paragraphs]),
                            ("questions", [qa["question"] for paragraph in paragraphs for qa in paragraph["qas"]])):
            right = {langid: sum(found.group == code for found in detect_languages(texts, langid))
                     for langid in DETECTORS}
            assert right["fasttext"] >= right["langdetect"], f"{code} {kind}: {right} of {len(texts)} right"
            assert right["fasttext"] / len(texts) >= (0.995 if kind == "paragraphs" else 0.99), (code, kind, right)


class _FixedLabels:
    """A stand-in for the fastText model that always gives the same labels, to test how they are read."""

    def __init__(self, *scored: tuple[str, float]) -> None:
        self.scored = scored

    def predict(self, text: str, k: int = 1):
        assert "\n" not in text, "fastText reads one line"
        top = self.scored[:k]
        return tuple(f"__label__{label}" for label, _ in top), tuple(score for _, score in top)


def _fasttext_with(*scored: tuple[str, float]):
    from search.langid.fasttext_backend import ChineseVariants, FastTextDetector

    return FastTextDetector(_FixedLabels(*scored), ChineseVariants.from_langdetect_profiles())


def test_fasttext_labels_fold_into_langdetect_codes_with_renormalised_probabilities():
    detector = _fasttext_with(("nn", 0.5), ("da", 0.3), ("eo", 0.15), ("no", 0.05))
    found = detector.detect("Eg bur\ni ein liten by.")
    assert (found.code, found.group) == ("no", "no") and found.probability == pytest.approx(0.55 / 0.85), found
    cantonese = _fasttext_with(("yue", 0.4), ("ja", 0.35), ("zh", 0.25)).detect("东京の历史文化")
    assert cantonese.code == "zh-cn" and cantonese.probability == pytest.approx(0.65), cantonese


def test_fasttext_with_no_langdetect_language_among_its_labels():
    # Latin letters: nothing the script could decide, so the text is unknown.
    assert _fasttext_with(("eo", 0.6), ("la", 0.4)).detect("Saluton mondo") == UNKNOWN_LANGUAGE
    # Kana beside Han: the script says Japanese when the model names no CJK language.
    assert _fasttext_with(("ceb", 0.9), ("tr", 0.1)).detect("東京へ行きます") == Language("ja", "ja", 0.5)
    assert _fasttext_with(("ceb", 0.9)).detect("서울의 漢字") == Language("ko", "ko", 0.5)
    # Han alone is Chinese by script: the model is not asked.
    assert _fasttext_with(("ceb", 1.0)).detect("纽卡斯尔的铁路网").code == "zh-cn"
