"""The file layer shared by corpus reading and judgments: names, zip members, decoding, ids."""

from __future__ import annotations

import io
import zipfile

import pytest

from search.decoding import decode_text, has_visible_text
from search.files import is_unsafe_name, open_zip, suffix, zip_members
from search.ids import JsonInteger, UniqueIds, id_text
from search.limits import LIMIT_ENV, ReadLimits, raise_hint
from search.types import Problem


@pytest.mark.parametrize("name", ["../x.txt", "a/../../x.txt", "/etc/x.txt", "\\x.txt", "C:x.txt", "c:\\x.txt",
                                  "a\\..\\x.txt"])
def test_names_that_could_leave_the_archive_are_unsafe(name):
    assert is_unsafe_name(name), name


@pytest.mark.parametrize("name", ["a.txt", "dir/a..b.txt", "dir/..hidden/x.txt", "notes:v2.txt", "a/b/c.md"])
def test_ordinary_names_are_safe(name):
    assert not is_unsafe_name(name), name


def test_suffix_takes_the_last_part_of_either_separator():
    assert (suffix("a\\B.JSONL"), suffix("dir.d/file"), suffix("dir.d\\file"), suffix("x")) == (".jsonl", "", "", "")


def test_zip_members_skip_metadata_quietly_and_report_unsafe_names():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in ("b.txt", "a/x.txt", "__MACOSX/._b.txt", ".hidden", "a/.DS_Store", "../up.txt", "D:/x.txt"):
            archive.writestr(name, "x")
        archive.writestr("folder/", "")
    opened = open_zip(buffer, "up.zip")
    members, problems = zip_members(opened, "up.zip")
    assert [(member.path, member.source) for member in members] == [("a/x.txt", "up.zip!a/x.txt"),
                                                                     ("b.txt", "up.zip!b.txt")]
    assert [problem.source for problem in problems] == ["up.zip!../up.txt", "up.zip!D:/x.txt"], problems


def test_an_archive_python_cannot_open_is_a_problem_not_an_exception():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("a.txt", "x")
    data = bytearray(buffer.getvalue())
    central = data.find(b"PK\x01\x02")
    data[central + 6 : central + 8] = (84).to_bytes(2, "little")  # "version needed to extract": 8.4
    problem = open_zip(io.BytesIO(bytes(data)), "new.zip")
    assert isinstance(problem, Problem) and "zip file version 8.4" in problem.message, problem


def test_utf16_chinese_without_a_bom_is_text_not_binary():
    text = "中文文本测试。这是一个没有字节顺序标记的文件，里面只有汉字和标点。" * 3
    for codec in ("utf-16-le", "utf-16-be"):
        decoded = decode_text(text.encode(codec), "zh.txt")
        assert decoded.text == text, codec
        assert [problem.message for problem in decoded.problems] == [f"decoded as {codec.upper()} (no byte-order mark)"]


def test_latin_text_in_a_legacy_code_page_is_never_read_as_utf16():
    decoded = decode_text("Bush hid the facts, café crème brûlée à la française.".encode("cp1252"), "fr.txt")
    assert decoded.text == "Bush hid the facts, café crème brûlée à la française.", decoded
    assert decoded.problems[0].message.startswith("decoded as cp125"), decoded.problems


def test_binary_bytes_stay_binary():
    decoded = decode_text(bytes(range(256)) * 8, "blob.txt")
    assert decoded.text is None and "binary" in decoded.problems[0].message


@pytest.mark.parametrize("declared", ["undefined", "rot13", "base64", "punycode", "no-such-charset", "utf-7"])
def test_an_unusable_declared_charset_falls_back_to_detection(declared):
    data = "Ceci est un texte français ordinaire, écrit en cp1252.".encode("cp1252")
    decoded = decode_text(data, "page.html", declared)
    assert decoded.text == "Ceci est un texte français ordinaire, écrit en cp1252.", (declared, decoded)
    assert "not valid UTF-8" in decoded.problems[0].message


def test_utf8_only_decoding_names_the_fix():
    decoded = decode_text("caf\u00e9 1".encode("latin-1"), "qrels.trec", legacy=False)
    assert decoded.text is None
    assert [problem.message for problem in decoded.problems] == [
        "qrels.trec is not UTF-8 text (byte 3: invalid continuation byte); save it as UTF-8"]


def test_invisible_text_is_not_visible():
    assert not has_visible_text("\u200b\u200c\u200d\u2060\ufeff \t\n\u3164\u00ad")
    assert has_visible_text("\u200bx") and has_visible_text("中")


def test_ids_are_written_once_for_every_reader():
    assert [id_text(value) for value in (" a ", 3, 3.0, 2.5, None, True, "", [], JsonInteger("1" * 5000))] == [
        "a", "3", "3", "2.5", None, None, None, None, "1" * 5000]
    ids = UniqueIds()
    assert [ids.claim(wanted, "f")[0] for wanted in ("a", "a", "a~2", "a")] == ["a", "a~2", "a~2~2", "a~3"]


def test_limits_come_from_the_environment_and_messages_name_the_variable(monkeypatch):
    monkeypatch.setenv("SEARCH_MAX_FILE_MB", "2.5")
    monkeypatch.setenv("SEARCH_MAX_PDF_PAGES", "7")
    limits = ReadLimits(max_files=3)
    assert (limits.max_file_bytes, limits.max_pdf_pages, limits.max_files) == (2_500_000, 7, 3)
    assert set(LIMIT_ENV) == {field for field in ReadLimits.__dataclass_fields__}
    assert raise_hint("max_pdf_pages", 12) == "set SEARCH_MAX_PDF_PAGES=12 (environment variable) to read it"
    monkeypatch.setenv("SEARCH_MAX_SECONDS_PER_FILE", "soon")
    with pytest.raises(ValueError, match="SEARCH_MAX_SECONDS_PER_FILE='soon' is not allowed"):
        ReadLimits()
