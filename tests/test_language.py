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
from search.language import LANGUAGE_NAMES, detect_language, detect_languages, group_language
from search.types import UNKNOWN_LANGUAGE, Language

REPO = Path(__file__).resolve().parents[1]
XQUAD = Path(__file__).resolve().parents[2] / "shared" / "xquad"

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
]

_PRINT_DETECTIONS = (
    "import json, sys\n"
    "from search.language import detect_languages\n"
    "texts = json.loads(sys.stdin.read())\n"
    "print(json.dumps([[l.code, l.group, repr(l.probability)] for l in detect_languages(texts)]))\n"
)


def _detect_in_subprocess(texts: list[str], hash_seed: str) -> list[list[str]]:
    completed = subprocess.run(
        [sys.executable, "-c", _PRINT_DETECTIONS],
        input=json.dumps(texts),
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "PYTHONHASHSEED": hash_seed},
        check=True,
    )
    return json.loads(completed.stdout)


@pytest.mark.parametrize("text", ["12345 !!!", "", "   \n\t", "😀🎉", "3.14 + 2 = 5.14", "—…¿?"])
def test_text_without_letters_is_unknown(text):
    assert detect_language(text) == UNKNOWN_LANGUAGE, f"{text!r} has no letters and must be unknown"


def test_chinese_is_group_zh():
    detected = detect_language("敏捷的棕色狐狸跳过了河边那只懒惰的狗。")
    assert (detected.code, detected.group) == ("zh-cn", "zh"), detected
    assert 0.5 < detected.probability <= 1.0, detected


def test_chinese_with_english_names_stays_chinese():
    # Latin letters outnumber Han here; plain langdetect calls this Catalan or French.
    text = "DECnet是由Digital Equipment Corporation创造的一套网络协议，最初发布于1975年。"
    assert detect_language(text).group == "zh", detect_language(text)


def test_han_without_hangul_or_kana_is_never_korean_or_japanese():
    # Plain langdetect (seed 0) calls both Korean with probability 0.99999.
    for text in ("法律规定所有公民必须遵守。", "历史文化"):
        assert detect_language(text).code == "zh-cn", (text, detect_language(text))


def test_japanese_and_korean_keep_their_codes():
    assert detect_language("東京は日本の首都で、たくさんの人が住んでいます。").code == "ja"
    assert detect_language("서울은 대한민국의 수도이며 많은 사람들이 살고 있습니다.").code == "ko"


@pytest.mark.parametrize(
    ("text", "group"),
    [
        ("The quick brown fox jumps over the lazy dog near the river bank.", "en"),
        ("Der schnelle braune Fuchs springt über den faulen Hund am Flussufer.", "de"),
        ("Быстрая коричневая лиса прыгает через ленивую собаку у реки.", "ru"),
        ("الثعلب البني السريع يقفز فوق الكلب الكسول بجانب النهر.", "ar"),
    ],
)
def test_sentences_get_their_language(text, group):
    detected = detect_language(text)
    assert detected.group == group and detected.code == group and detected.is_known, detected


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


def test_long_text_is_detected_from_its_start():
    text = "Der Hund schläft im Garten. " * 500 + "The dog sleeps in the garden. " * 2000
    assert len(text) > 10 * language.MAX_DETECT_CHARS
    assert detect_language(text).group == "de"


def test_detect_languages_keeps_order():
    assert detect_languages(MIXED_TEXTS) == [detect_language(text) for text in MIXED_TEXTS]
    assert detect_languages([]) == []


def test_identical_in_two_processes_with_different_hash_seeds():
    first = _detect_in_subprocess(MIXED_TEXTS, hash_seed="1")
    second = _detect_in_subprocess(MIXED_TEXTS, hash_seed="2")
    here = [[found.code, found.group, repr(found.probability)] for found in detect_languages(MIXED_TEXTS)]
    assert first == second, "two processes disagree on language or probability"
    assert first == here, "a subprocess disagrees with this process"


def test_identical_across_threads_from_a_fresh_start(monkeypatch):
    expected = detect_languages(MIXED_TEXTS)
    loads = []
    real_load = language._load_factory

    def counting_load():
        loads.append(threading.get_ident())
        return real_load()

    monkeypatch.setattr(language, "_factory", None)  # as if nothing had been loaded in this process
    monkeypatch.setattr(language, "_load_factory", counting_load)
    start = threading.Barrier(8)

    def detect_all(_: int) -> list[Language]:
        start.wait()  # all 8 threads reach the first detection together
        return detect_languages(MIXED_TEXTS)

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(detect_all, range(8)))
    assert len(loads) == 1, f"profiles were loaded {len(loads)} times; the lock must make it once"
    for thread_result in results:
        assert thread_result == expected, "a thread disagrees with the single-threaded answers"


@pytest.mark.slow
def test_xquad_paragraphs_are_detected_as_their_language():
    if not XQUAD.is_dir():
        pytest.skip(f"XQuAD not found at {XQUAD}")
    for code in ("en", "de", "es", "ru", "ar", "hi", "zh"):
        data = json.loads((XQUAD / f"xquad.{code}.json").read_text(encoding="utf-8"))
        contexts = [paragraph["context"] for article in data["data"] for paragraph in article["paragraphs"]]
        groups = [found.group for found in detect_languages(contexts)]
        share = groups.count(code) / len(groups)
        assert share >= 0.995, f"{code}: only {share:.1%} of paragraphs detected as {code}"
