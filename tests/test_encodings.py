"""Legacy encodings decode right (issue 21 §4): each case here came out as the wrong text before.

`benchmarks/bench_encodings.py` measures the same on 24 languages in 47 encodings; these are the cases
the issue names, kept small enough to run on every commit.
"""

from __future__ import annotations

import json

import pytest

from search.decoding import check_encoding, decode_text
from search.reading import read_paths

CHINESE = "我奶奶每个星期天都会包饺子给全家人吃。"  # 38 bytes in GBK: an even length
JAPANESE = "市立図書館には古い本や地図がたくさんあります。"  # 46 bytes in Shift_JIS
FRENCH = ("Après le dîner, nous avons marché jusqu'à la rivière où les pêcheurs préparaient leurs filets. "
          "L'élève a répondu à la question avec beaucoup de précision. Chaque été, des milliers de touristes "
          "viennent goûter les vins de la région.")


def _decoded(text: str, codec: str) -> tuple[str | None, str]:
    decoded = decode_text(text.encode(codec), "sample.txt")
    return decoded.text, decoded.encoding


def _read(tmp_path, name: str, data: bytes, **options) -> tuple[list[str], list[str]]:
    path = tmp_path / name
    path.write_bytes(data)
    result = read_paths([path], names=[name], **options)
    return [document.text for document in result.documents], [str(problem) for problem in result.problems]


@pytest.mark.parametrize(("text", "codec", "expected"), [
    (CHINESE, "gbk", "gb18030"), (CHINESE, "gb18030", "gb18030"), (JAPANESE, "shift_jis", "cp932")])
def test_even_length_cjk_is_not_read_as_utf16(text, codec, expected):
    assert len(text.encode(codec)) % 2 == 0
    assert _decoded(text, codec) == (text, expected)


@pytest.mark.parametrize(("name", "content"), [
    ("zh.csv", "text\n昨天晚上我们沿着河边散步，看到了美丽的日落。\n"),  # 50 bytes in GBK
    ("zh.json", '["开往上海的火车早上八点从北京南站出发。"]'),  # 42 bytes
])
def test_even_length_gbk_in_csv_and_json_is_read(tmp_path, name, content):
    data = content.encode("gbk")
    assert len(data) % 2 == 0  # the length that was read as UTF-16, and the file then unreadable
    texts, problems = _read(tmp_path, name, data)
    assert texts == [content.split("\n")[1] if name.endswith(".csv") else json.loads(content)[0]], problems
    assert problems == [f"{name}: decoded as gb18030 (not valid UTF-8)"]


@pytest.mark.parametrize("text", ["Привет, как дела? Сегодня хорошая погода.", "Καλημέρα, τι κάνεις σήμερα;",
                                  "مرحبا بكم في المكتبة العامة."])
def test_utf16_be_without_a_bom_is_big_endian(text):
    decoded = decode_text(text.encode("utf-16-be"), "be.txt")
    assert decoded.text == text
    assert [problem.message for problem in decoded.problems] == ["decoded as UTF-16-BE (no byte-order mark)"]


@pytest.mark.parametrize("codec", ["utf-32-le", "utf-32-be"])
def test_utf32_without_a_bom_is_text_not_binary(codec):
    text = "Plain text in UTF-32, and some Ελληνικά."
    decoded = decode_text(text.encode(codec), "wide.txt")
    assert decoded.text == text, decoded.problems
    assert [problem.message for problem in decoded.problems] == [f"decoded as {codec.upper()} (no byte-order mark)"]


@pytest.mark.parametrize(("text", "codec", "expected"), [
    ("סבתא שלי אופה עוגת תפוחים.", "cp1255", "cp1255"),  # was cp1251
    ("שלום עולם", "cp1255", "cp1255"),
    (FRENCH, "cp1252", "cp1252"),  # was cp1250
    ("祖母は毎週日曜日に家族のために料理を作ってくれます。", "euc_jp", "euc_jp"),  # was gb18030
    ("안녕하세요", "cp949", "cp949"),  # was UTF-16
    ("할머니께서는 음식을 만드십니다.", "cp949", "cp949"),  # was cp874
    ("祖母は毎週日曜日に家族のために料理を作ってくれます。", "iso2022_jp", "iso2022_jp"),  # was left as escapes
])
def test_short_texts_get_their_own_code_page(text, codec, expected):
    assert _decoded(text, codec) == (text, expected)


def test_a_file_mixing_utf8_and_cp1252_lines_is_decoded_line_by_line():
    data = "Le château est très beau.\n".encode() + "Ma sœur préfère le thé.\n".encode("cp1252") + "Forêt".encode()
    decoded = decode_text(data, "mixed.txt")
    assert decoded.text == "Le château est très beau.\nMa sœur préfère le thé.\nForêt"
    assert [problem.message for problem in decoded.problems] == [
        "decoded line by line (2 as utf-8, 1 as cp1252): its lines are in different encodings"]


def test_a_file_mixing_two_code_pages_line_by_line():
    lines = [("Вчера вечером мы долго гуляли по набережной и смотрели на корабли.", "cp1251"),
             ("Le château se dresse au sommet d'une colline couverte de vignes.", "cp1252"),
             ("Бабушка испекла пирог с яблоками и пригласила соседей на чай.", "cp1251"),
             ("Ma sœur préfère le thé à la crème, mais mon frère boit du café noir.", "cp1252")]
    decoded = decode_text(b"\n".join(line.encode(codec) for line, codec in lines), "glossary.txt")
    assert decoded.text == "\n".join(line for line, _ in lines)
    assert decoded.encoding in ("cp1251+cp1252", "cp1252+cp1251"), decoded.problems


def test_a_low_confidence_guess_names_the_encoding_and_the_override(tmp_path):
    data = "Миналата седмица ходихме на планина и видяхме много диви цветя.".encode("koi8-r")
    texts, problems = _read(tmp_path, "bg.txt", data)
    assert "a guess of low confidence" in problems[0] and "--encoding koi8-r" in problems[0], problems


def test_the_upload_encoding_replaces_the_guess_but_not_utf8(tmp_path):
    text = "Миналата седмица ходихме на планина и видяхме много диви цветя."
    (tmp_path / "bg.txt").write_bytes(text.encode("koi8-r"))
    (tmp_path / "utf8.txt").write_text("Ελληνικά σε UTF-8", encoding="utf-8")
    result = read_paths([tmp_path / "bg.txt", tmp_path / "utf8.txt"], names=["bg.txt", "utf8.txt"], encoding="KOI8-R")
    assert [document.text for document in result.documents] == [text, "Ελληνικά σε UTF-8"]
    assert [str(problem) for problem in result.problems] == ["bg.txt: decoded as koi8-r, the encoding given for the "
                                                             "upload"]
    with pytest.raises(ValueError, match="encoding='klingon' is not a text encoding"):
        read_paths([tmp_path / "bg.txt"], encoding="klingon")
    assert check_encoding("windows-1255") == "cp1255"


def test_bytes_the_given_encoding_cannot_decode_are_replaced_and_counted():
    decoded = decode_text(b"caf\xe9 \x81", "x.txt", encoding="cp1252")
    assert decoded.text == "café \ufffd"
    assert [problem.message for problem in decoded.problems] == [
        "not valid cp1252 from byte 5 on; 1 bad byte sequence(s) replaced with U+FFFD",
        "decoded as cp1252, the encoding given for the upload"]


# -- HTML: the WHATWG rules ------------------------------------------------------------------------------

def _page(head: str, body: str) -> str:
    return f"<html><head>{head}<title>t</title></head><body><p>{body}</p></body></html>"


def test_meta_charset_utf16_is_read_as_utf8_then_detected(tmp_path):
    body = "Ma sœur préfère le thé à la crème, mais mon frère boit toujours du café noir."
    texts, problems = _read(tmp_path, "page.html", _page('<meta charset="utf-16">', body).encode("cp1252"))
    assert texts == [body]
    assert problems == ["page.html: declares charset 'utf-16', which browsers read as UTF-8 in a page (WHATWG)",
                        "page.html: decoded as cp1252 (not valid UTF-8; not in its declared charset utf-8)"]


def test_latin1_labels_mean_windows_1252(tmp_path):
    body = "“Quoted” – in cp1252, not Latin-1"
    texts, problems = _read(tmp_path, "page.html", _page('<meta charset="ISO-8859-1">', body).encode("cp1252"))
    assert texts == [body] and problems == []


def test_the_prescan_skips_comments_and_reads_http_equiv(tmp_path):
    body = "Привет, мир: это страница в KOI8-R."
    head = ('<!-- <meta charset="windows-1251"> -->'
            '<meta http-equiv="Content-Type" content="text/html; charset=koi8-r">')
    texts, problems = _read(tmp_path, "page.html", _page(head, body).encode("koi8-r"))
    assert texts == [body] and problems == []


def test_a_byte_order_mark_beats_the_meta_charset(tmp_path):
    body = "Grüße aus Köln"
    data = b"\xef\xbb\xbf" + _page('<meta charset="windows-1251">', body).encode("utf-8")
    texts, problems = _read(tmp_path, "page.html", data)
    assert texts == [body] and problems == []
