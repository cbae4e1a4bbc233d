from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from search.analysis import STEMMERS, Token, terms, tokenize


def spans(text: str, language: str = "unknown") -> list[tuple[str, str]]:
    """(term, original substring) for each token: what the index holds and what the app highlights."""
    return [(token.term, text[token.start : token.end]) for token in tokenize(text, language)]


@pytest.mark.parametrize("text", ["", "   \n\t ", "😀🎉👍", "!!! ... ---", "\u200b\u200c"])
def test_nothing_to_index(text):
    assert tokenize(text) == [], f"{text!r} holds no words"
    assert terms(text, "en") == []


def test_terms_are_the_token_terms():
    text = "Running dogs in 北京"
    assert (
        terms(text, "en")
        == [token.term for token in tokenize(text, "en")]
        == [
            "run",
            "dog",
            "in",
            "北",
            "北京",
            "京",
        ]
    )


def test_offsets_point_into_the_original_text():
    text = "  Ｆｕｌｌ-width, Straße & ﬁsh!"
    assert tokenize(text) == [
        Token("full", 2, 6),
        Token("width", 7, 12),
        Token("strasse", 14, 20),
        Token("fish", 23, 26),
    ]
    assert spans(text) == [("full", "Ｆｕｌｌ"), ("width", "width"), ("strasse", "Straße"), ("fish", "ﬁsh")]


def test_devanagari_vowel_signs_and_virama_stay_in_one_word():
    # विद्यालय: द + virama + य inside, ि and ा vowel signs; हिन्दी भाषा: virama and vowel signs.
    text = "विद्यालय में हिन्दी भाषा"
    assert spans(text) == [
        ("विद्यालय", "विद्यालय"),
        ("में", "में"),
        ("हिंदि", "हिन्दी"),
        ("भाषा", "भाषा"),
    ]


def test_devanagari_spelling_variants_meet():
    # Dead n before a consonant = anusvara, long = short vowel sign, nukta dropped: as Lucene's HindiNormalizer.
    assert terms("हिन्दी हिंदी", "hi") == ["हिंद", "हिंद"]
    assert terms("क़िला किला") == ["किला", "किला"]
    assert terms("लड़कियों लड़की", "hi") == ["लडक", "लडक"]


def test_thai_gives_grapheme_unigrams_and_bigrams():
    # สวัสดี is four grapheme clusters: ส, วั (consonant + vowel sign), ส, ดี.
    assert spans("สวัสดี", "th") == [
        ("ส", "ส"),
        ("สวั", "สวั"),
        ("วั", "วั"),
        ("วัส", "วัส"),
        ("ส", "ส"),
        ("สดี", "สดี"),
        ("ดี", "ดี"),
    ]


def test_chinese_gives_unigrams_and_bigrams_whatever_the_language():
    expected = ["北", "北京", "京", "京大", "大", "大学", "学"]
    assert terms("北京大学", "zh") == expected
    assert terms("北京大学", "unknown") == expected
    assert terms("猫", "zh") == ["猫"], "a one-character run is its own unigram"
    assert set(terms("猫", "zh")) <= set(terms("小猫咪", "zh")), "a one-character query must match inside a run"


def test_chinese_name_inside_english_is_cut_into_characters():
    assert spans("I met 王小明 in 2016年", "en") == [
        ("i", "I"),
        ("met", "met"),
        ("王", "王"),
        ("王小", "王小"),
        ("小", "小"),
        ("小明", "小明"),
        ("明", "明"),
        ("in", "in"),
        ("2016", "2016"),
        ("年", "年"),
    ]


def test_japanese_kana_and_kanji_run_together():
    assert terms("東京は都", "ja") == ["東", "東京", "京", "京は", "は", "は都", "都"]
    assert terms("ｶﾀｶﾅ", "ja") == ["カ", "カタ", "タ", "タカ", "カ", "カナ", "ナ"], "half-width kana fold to full width"


def test_english_stemming_only_for_english():
    assert terms("running runs", "en") == ["run", "run"]
    assert terms("running runs", "unknown") == ["running", "runs"]
    assert terms("running runs", "zh") == ["running", "runs"], "no Chinese stemmer: words stay as they are"


def test_german_and_russian_stemming():
    assert terms("Häuser Haus", "de") == ["haus", "haus"]
    assert terms("Häuser", "en") == ["häuser"]
    assert terms("книги книгой книга", "ru") == ["книг", "книг", "книг"]
    assert terms("книги книгой", "unknown") == ["книги", "книгой"]


def test_stemmers_exist_for_the_xquad_languages():
    assert {"en", "de", "es", "ru", "ar", "hi"} <= STEMMERS.keys()
    assert "zh" not in STEMMERS and "unknown" not in STEMMERS


def test_nfkc_folds_full_width_and_ligatures():
    assert spans("ＡＢＣ１２３") == [("abc123", "ＡＢＣ１２３")]
    assert terms("ﬁnd", "en") == ["find"]


def test_casefold():
    assert terms("STRASSE Straße strasse") == ["strasse", "strasse", "strasse"]
    assert terms("ΣΊΣΥΦΟΣ σίσυφος") == ["σίσυφοσ", "σίσυφοσ"], "final sigma folds with capital sigma"


def test_arabic_diacritics_and_tatweel_do_not_matter():
    with_harakat, without, tatweel = "الْكِتَابُ", "الكتاب", "الكتـــاب"
    assert terms(with_harakat) == terms(without) == terms(tatweel) == ["الكتاب"]
    assert terms(with_harakat, "ar") == terms(without, "ar") == ["كتاب"]
    assert spans(with_harakat) == [("الكتاب", with_harakat)], "the highlight keeps the diacritics"


def test_apostrophes_and_hyphens_split_words():
    assert terms("l'homme state-of-the-art", "unknown") == ["l", "homme", "state", "of", "the", "art"]


def test_tokenize_is_thread_safe():
    texts = ["running runs " * 20, "Häuser und Straßen " * 20, "книги и газеты " * 20, "हिन्दी किताबें " * 20]
    languages = ["en", "de", "ru", "hi"]
    expected = [tokenize(text, language) for text, language in zip(texts, languages, strict=True)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        for _ in range(5):
            results = list(pool.map(tokenize, texts * 8, languages * 8))
            assert results == expected * 8
