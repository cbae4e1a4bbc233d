"""Splitting documents into passages: boundaries, overlap, scripts without spaces, offsets, validation."""

from __future__ import annotations

import time
import unicodedata

import pytest

from search.passages import split_document, split_documents
from search.types import UNKNOWN_LANGUAGE, Document, Passage


def _spans(passages: tuple[Passage, ...]) -> list[tuple[int, int]]:
    return [(passage.start, passage.end) for passage in passages]


def _word_spans(text: str, passages: tuple[Passage, ...]) -> list[tuple[int, int]]:
    """Each passage as (first word, last word + 1) in the text's space-separated words."""
    starts = [index for index, char in enumerate(text) if char != " " and (index == 0 or text[index - 1] == " ")]
    ends = [
        index + 1
        for index, char in enumerate(text)
        if char != " " and (index + 1 == len(text) or text[index + 1] == " ")
    ]
    return [(starts.index(passage.start), ends.index(passage.end) + 1) for passage in passages]


def test_a_short_document_is_one_stripped_passage_with_id_hash_zero():
    document = Document("x", "  Hello world.  \n", title="Greeting", source="hello.txt")
    assert split_document(document) == (
        Passage("x#0", "x", 0, "Hello world.", "Greeting", "hello.txt", start=2, end=14),
    )
    assert split_document(document)[0].language == UNKNOWN_LANGUAGE


def test_an_empty_document_has_no_passages():
    assert split_document(Document("e", " \n\t ")) == ()


def test_a_window_ends_at_the_sentence_end_in_its_last_quarter():
    text = (
        "One two three four five six seven eight nine ten eleven twelve thirteen. "
        "Fourteen fifteen sixteen seventeen eighteen nineteen twenty."
    )
    passages = split_document(Document("d", text), window=16, overlap=4)
    # 16 words would end at "sixteen"; the last quarter (words 12-16) holds "thirteen.", so the window
    # stops there, and the next starts 4 words earlier, at "ten".
    assert [passage.text for passage in passages] == [
        "One two three four five six seven eight nine ten eleven twelve thirteen.",
        "ten eleven twelve thirteen. Fourteen fifteen sixteen seventeen eighteen nineteen twenty.",
    ]
    assert _spans(passages) == [(0, 72), (text.index("ten eleven"), len(text))]
    assert [passage.passage_id for passage in passages] == ["d#0", "d#1"]


def test_without_sentence_ends_windows_are_exactly_window_words_and_overlap():
    text = " ".join(f"w{index}" for index in range(40))
    passages = split_document(Document("d", text), window=16, overlap=4)
    assert _word_spans(text, passages) == [(0, 16), (12, 28), (24, 40)]
    assert passages[1].text == " ".join(f"w{index}" for index in range(12, 28))


@pytest.mark.parametrize(
    ("word_12", "after_12", "expected_end"),
    [
        ("w12", "\n", 13),  # a line break ends a sentence
        ('"stop."', " ", 13),  # a closing quote after the full stop
        ("w12!", " ", 13),
        ("w12", " ", 16),  # nothing to stop at: the full window
    ],
)
def test_sentence_ends_that_count(word_12, after_12, expected_end):
    words = [f"w{index}" for index in range(20)]
    words[12] = word_12
    text = " ".join(words[:12]) + " " + words[12] + after_12 + " ".join(words[13:])
    passages = split_document(Document("d", text), window=16, overlap=4)
    assert passages[0].text.split() == words[:expected_end], passages[0].text
    assert passages[1].text.split() == words[expected_end - 4 :], passages[1].text


def test_the_latest_sentence_end_wins_and_an_early_one_is_ignored():
    words = [f"w{index}" for index in range(30)]
    words[4] = "early."  # before the last quarter: ignored
    words[12] = "first."
    words[14] = "latest."
    passages = split_document(Document("d", " ".join(words)), window=16, overlap=4)
    assert passages[0].text.split() == words[:15]
    assert passages[1].text.split()[0] == "w11"


def test_default_window_is_200_words_with_40_words_of_overlap():
    text = " ".join(f"w{index}" for index in range(450))
    passages = split_documents([Document("d", text)])
    assert _word_spans(text, passages) == [(0, 200), (160, 360), (320, 450)]


def test_chinese_and_japanese_count_one_character_per_unit():
    text = "".join(chr(0x4E00 + index) for index in range(40))  # 40 Han characters, no spaces
    passages = split_document(Document("zh", text), window=16, overlap=4)
    assert _spans(passages) == [(0, 16), (12, 28), (24, 40)]
    sentence = "東京は日本の首都で、大きい。"  # 14 units: "、" and "。" are units of their own
    text = sentence * 3
    passages = split_document(Document("ja", text), window=16, overlap=4)
    # The first window stops after "。" (unit 14, in its last quarter); the others find none in theirs.
    assert _spans(passages) == [(0, 14), (10, 26), (22, 38), (34, 42)]
    assert passages[0].text == sentence


def test_latin_words_inside_cjk_text_stay_whole():
    text = "漢字abc" * 10  # units: 漢, 字, abc
    passages = split_document(Document("mix", text), window=16, overlap=4)
    assert passages[0].text == "漢字abc" * 5 + "漢", passages[0].text
    assert _spans(passages) == [(0, 26), (20, 46), (40, 50)]


def test_thai_is_cut_between_graphemes_never_inside_one():
    text = "กำลัง" * 10  # 3 graphemes of 5 code points per repeat: กำ, ลั, ง
    passages = split_document(Document("th", text), window=16, overlap=4)
    assert _spans(passages) == [(0, 27), (20, 47), (40, 50)]
    for passage in passages:
        assert not unicodedata.category(passage.text[0]).startswith("M"), passage.text
        assert passage.end == len(text) or not unicodedata.category(text[passage.end]).startswith("M"), passage


def test_hindi_words_with_vowel_signs_are_never_split_and_danda_ends_sentences():
    sentence = "यह एक परीक्षण वाक्य है।"  # 5 words; the danda ends the sentence
    text = " ".join([sentence] * 8)
    words = text.split(" ")
    passages = split_document(Document("hi", text), window=16, overlap=4)
    assert _word_spans(text, passages) == [(0, 15), (11, 25), (21, 35), (31, 40)]
    for passage, (first, last) in zip(passages, _word_spans(text, passages), strict=True):
        assert passage.text.split(" ") == words[first:last], passage.text


@pytest.mark.parametrize(("window", "overlap"), [(16, 0), (16, 7), (20, 5), (64, 31), (200, 40)])
def test_offsets_always_point_at_the_passage_text_and_cover_every_word(window, overlap):
    text = (
        "  Intro line.\n\nEnglish words, then 日本語の文章です。 Then हिन्दी शब्द। Then ไทยภาษา and 😀 emoji!\r\n"
        + "Tail words follow here. " * 12
        + "\t"
    )
    document = Document("mixed", text, title="T", source="m.txt")
    passages = split_document(document, window=window, overlap=overlap)
    assert [passage.index for passage in passages] == list(range(len(passages)))
    covered = set()
    for passage in passages:
        assert text[passage.start : passage.end] == passage.text, passage
        assert passage.text == passage.text.strip() and passage.text, passage
        assert (passage.doc_id, passage.title, passage.source) == ("mixed", "T", "m.txt")
        covered.update(range(passage.start, passage.end))
    assert all(index in covered for index, char in enumerate(text) if not char.isspace())


def test_split_documents_keeps_document_order_and_fields():
    documents = [Document("b", "Second document.", "B", "b.txt"), Document("a", "First.", "A", "a.txt")]
    passages = split_documents(documents)
    assert [(p.passage_id, p.title, p.source, p.text) for p in passages] == [
        ("b#0", "B", "b.txt", "Second document."),
        ("a#0", "A", "a.txt", "First."),
    ]


@pytest.mark.parametrize(
    ("window", "overlap", "message"),
    [
        (15, 0, "window=15 is out of range; use a whole number of units from 16 to 4096"),
        (4097, 0, "window=4097 is out of range"),
        (200.0, 40, "window=200.0 is out of range"),
        (True, 0, "window=True is out of range"),
        (16, -1, "overlap=-1 is out of range for window=16; use a whole number from 0 to 7"),
        (16, 8, "overlap=8 is out of range for window=16; use a whole number from 0 to 7"),
        (200, 100, "overlap=100 is out of range for window=200; use a whole number from 0 to 99"),
    ],
)
def test_bad_window_or_overlap_raises_value_error_naming_the_value_and_range(window, overlap, message):
    with pytest.raises(ValueError, match=message):
        split_document(Document("d", "text"), window=window, overlap=overlap)
    with pytest.raises(ValueError, match=message):
        split_documents([Document("d", "text")], window=window, overlap=overlap)


def test_duplicate_doc_ids_raise_value_error():
    with pytest.raises(ValueError, match="doc_id 'same' appears twice"):
        split_documents([Document("same", "one"), Document("same", "two")])


def test_ten_thousand_documents_of_300_words_split_in_well_under_a_few_seconds():
    words = "retrieval ranks passages. the reranker reads each one, slowly and carefully!".split()
    documents = [
        Document(f"d{number}", " ".join(words[(number + index) % len(words)] for index in range(300)))
        for number in range(10_000)
    ]
    started = time.perf_counter()
    passages = split_documents(documents)
    seconds = time.perf_counter() - started
    assert len(passages) >= 20_000
    assert seconds < 5.0, f"splitting took {seconds:.2f} s"
