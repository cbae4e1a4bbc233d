from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from search.analysis import STEMMERS, Token, content_terms, query_terms, terms, tokenize


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


# -- stopwords ---------------------------------------------------------------------------------------


def test_stopwords_are_marked_in_the_text_language_and_kept_as_terms():
    tokens = tokenize("The dogs of the city", "en")
    assert [(token.term, token.stopword) for token in tokens] == [
        ("the", True), ("dog", False), ("of", True), ("the", True), ("citi", False)], tokens
    assert terms("The dogs", "en") == ["the", "dog"], "the index keeps stopwords; only queries drop them"
    assert [token.stopword for token in tokenize("The dogs", "de")] == [False, False], "'the' is no German stopword"
    assert [token.stopword for token in tokenize("Die Hunde", "en", stop_languages=("en", "de"))] == [True, False]


def test_stopwords_are_compared_before_stemming_and_normalised():
    assert tokenize("THE", "en")[0].stopword, "casefolded"
    assert not tokenize("dogs", "en")[0].stopword
    assert tokenize("и", "ru")[0].stopword and tokenize("के", "hi")[0].stopword
    assert [t.stopword for t in tokenize("的", "zh")] == [True], "a Chinese function character alone"


def test_content_terms_drop_the_stopwords_of_the_languages_asked():
    assert content_terms("How far is the Moon from the Earth on average?", "en") == ["moon", "earth", "averag"]
    assert content_terms("Die Mauer", "en") == ["die", "mauer"], "'die' is an English word"
    assert content_terms("Die Mauer", "en", stop_languages=("en", "de")) == ["mauer"]


def test_query_terms_per_language_drop_both_languages_stopwords():
    by_language = query_terms("When did the Luna 2 probe reach the Moon?", "en", {"en", "de", "tr"})
    assert list(by_language) == ["en", "de", "tr"], "the query's language first, then the corpus' in order"
    assert by_language["en"] == ["luna", "2", "probe", "reach", "moon"]
    assert "the" not in by_language["de"] and "the" not in by_language["tr"], (
        "an English stopword must not match German or Turkish passages")
    kept = query_terms("When did the Luna 2 probe reach the Moon?", "en", {"en", "de"}, own_stopwords=False)
    assert kept["en"][:3] == ["when", "did", "the"] and "the" not in kept["de"], (
        "own_stopwords=False keeps them in the query's own language only")
    assert query_terms("the", "en", {"en"}, stopwords=False) == {"en": ["the"]}


def test_a_query_of_only_stopwords_keeps_them():
    assert query_terms("To be or not to be", "en", {"en"}) == {"en": ["to", "be", "or", "not"]}


def test_unknown_language_has_no_stopword_list_but_drops_the_query_language_ones():
    assert not any(token.stopword for token in tokenize("the 1888", "unknown"))
    assert query_terms("the patent of 1888", "en", {"unknown"})["unknown"] == ["patent", "1888"]
