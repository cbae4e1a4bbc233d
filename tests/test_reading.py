"""Reading corpora: every format, every kind of broken file, archives and their limits."""

from __future__ import annotations

import io
import json
import tracemalloc
import zipfile
from pathlib import Path

import pytest

from search.reading import ReadLimits, read_paths
from search.types import Document, Problem
from tests.hostile_inputs import minimal_pdf


def _write(folder: Path, name: str, content: str | bytes) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, str):
        path.write_text(content, encoding="utf-8")
    else:
        path.write_bytes(content)
    return path


def _read_one(folder: Path, name: str, content: str | bytes, **options: object):
    """Read a single file written under `name`, with `name` as its display name."""
    path = _write(folder, name, content)
    return read_paths([path], names=[name], **options)


def _problems(result) -> list[str]:
    return [str(problem) for problem in result.problems]


def _zip_bytes(members: dict[str, bytes | str], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, content in members.items():
            archive.writestr(zipfile.ZipInfo(name), content, compress_type=compression)
    return buffer.getvalue()


# --- plain text, Markdown, folders and display names -------------------------------------------


def test_text_file_is_one_document_named_by_its_stem_with_the_given_path_as_source(tmp_path):
    path = _write(tmp_path, "notes.txt", "First line.\r\nSecond line.\n")
    result = read_paths([path])
    assert result.documents == (Document("notes", "First line.\nSecond line.", "", str(path)),), result
    assert result.problems == () and result.files_read == 1, result


def test_markdown_title_is_the_first_level_one_heading_outside_code_fences(tmp_path):
    text = "## Not this\n\n```\n# nor this\n```\n\n# Real Title #\n\nBody text.\n\n# Later heading\n"
    result = _read_one(tmp_path, "guide.md", text)
    (document,) = result.documents
    assert (document.doc_id, document.title) == ("guide", "Real Title"), document
    assert document.text == text.strip(), document.text
    assert _read_one(tmp_path, "plain.markdown", "No heading here.").documents[0].title == ""


def test_folders_are_walked_sorted_skipping_hidden_files_and_sources_stay_relative(tmp_path):
    corpus = tmp_path / "corpus"
    _write(corpus, "b.txt", "bee")
    _write(corpus, "a.md", "# A\n\nay")
    _write(corpus, "sub/c.txt", "sea")
    _write(corpus, ".hidden.txt", "secret")
    _write(corpus, ".git/config.txt", "secret")
    result = read_paths([corpus], names=["my corpus"])
    assert [(d.doc_id, d.source) for d in result.documents] == [
        ("a", "my corpus/a.md"),
        ("b", "my corpus/b.txt"),
        ("c", "my corpus/sub/c.txt"),
    ], result.documents
    assert result.problems == () and result.files_read == 3, result


def test_names_give_display_names_and_ids_to_uploaded_temporary_files(tmp_path):
    upload = _write(tmp_path, "tmp8f3k2/upload.bin", "Uploaded text.")
    broken = _write(tmp_path, "tmp1x9q/other.bin", b"")
    result = read_paths([upload, broken], names=["My Notes.txt", "empty.txt"])
    assert result.documents == (Document("My Notes", "Uploaded text.", "", "My Notes.txt"),), result
    assert _problems(result) == ["empty.txt: empty file"], result.problems


def test_a_missing_path_is_a_problem_and_the_other_paths_are_still_read(tmp_path):
    good = _write(tmp_path, "good.txt", "fine")
    result = read_paths([tmp_path / "nope.txt", good], names=["nope.txt", "good.txt"])
    assert [d.doc_id for d in result.documents] == ["good"]
    assert _problems(result) == ["nope.txt: no such file or folder"]


def test_an_empty_folder_is_a_problem(tmp_path):
    (tmp_path / "empty").mkdir()
    result = read_paths([tmp_path / "empty"], names=["empty"])
    assert _problems(result) == ["empty: no files in this folder (hidden files are skipped)"]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda path: read_paths([]), "paths is empty"),
        (lambda path: read_paths(str(path)), "is a single path"),
        (lambda path: read_paths([path], names=["a", "b"]), "names has 2 entries but paths has 1"),
        (lambda path: read_paths([path], text_column="  "), "text_column='  ' is blank"),
        (lambda path: ReadLimits(max_files=0), "max_files=0 is not allowed"),
        (lambda path: ReadLimits(max_zip_depth=-1), "max_zip_depth=-1 is not allowed"),
        (lambda path: ReadLimits(max_compression_ratio=0.5), "max_compression_ratio=0.5 is not allowed"),
    ],
)
def test_misuse_raises_value_error_naming_the_value(tmp_path, call, message):
    path = _write(tmp_path, "a.txt", "text")
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        call(path)


def test_the_text_column_is_checked_where_settings_are_made(tmp_path):
    from search.pipeline import Settings
    from search.policy import build_settings

    assert Settings(text_column="  Beschreibung ").text_column == "Beschreibung", "stripped"
    assert Settings(text_column="   ").text_column is None and Settings(text_column="").text_column is None, \
        "blank means: find it by name"
    assert Settings(text_column="c" * 200).text_column == "c" * 200, "200 characters are allowed"
    with pytest.raises(ValueError) as too_long:
        Settings(text_column="c" * 201)
    assert str(too_long.value).startswith(f"text_column={'c' * 60!r}… (201 characters) is longer than 200 "
                                          "characters;"), too_long.value
    assert "leave it empty to find it by name" in str(too_long.value)
    for bad, control in (("Beschrei\nbung", "\n"), ("text\x00", "\x00"), ("\x1b[31mred", "\x1b"),
                         ("txet\u202e", "\u202e"), ("\u2067body", "\u2067")):
        with pytest.raises(ValueError) as refused:
            Settings(text_column=bad)
        assert str(refused.value).startswith(f"text_column={bad.strip()!r} holds the control character "
                                             f"{control!r};"), refused.value
    # The app's build settings (the form and the build_index API) are Settings too.
    with pytest.raises(ValueError, match=r"text_column='a\\tb' holds the control character '\\t'"):
        build_settings({"text_column": "a\tb"})
    assert build_settings({"text_column": " body "}).text_column == "body"
    assert Settings(text_column="متن\u200cاصلی").text_column == "متن\u200cاصلی", "a Persian name keeps its ZWNJ"
    # read_paths checks it the same way (and still refuses a blank one it is given explicitly).
    with pytest.raises(ValueError, match="longer than 200 characters"):
        read_paths([_write(tmp_path, "a.txt", "text")], text_column="c" * 201)


def test_unsupported_extension_is_a_problem_listing_the_supported_ones(tmp_path):
    result = _read_one(tmp_path, "slides.pptx", b"PK whatever")
    assert result.documents == () and result.files_read == 0
    assert _problems(result) == [
        "slides.pptx: unsupported file type .pptx; supported: "
        ".txt, .md, .markdown, .csv, .tsv, .jsonl, .json, .html, .htm, .pdf, .zip"
    ]


def test_empty_and_whitespace_only_files_are_problems(tmp_path):
    assert _problems(_read_one(tmp_path, "empty.txt", b"")) == ["empty.txt: empty file"]
    assert _problems(_read_one(tmp_path, "blank.txt", " \n\t\n")) == [
        "blank.txt: no text (the file holds only whitespace)"
    ]
    assert _problems(_read_one(tmp_path, "blank.jsonl", "\n\n")) == [
        "blank.jsonl: no text (the file holds only whitespace)"
    ]


# --- encodings ------------------------------------------------------------------------------


def test_cp1251_russian_is_decoded_with_a_warning(tmp_path):
    text = "Привет, мир! Это проверка старой кодировки Windows."
    result = _read_one(tmp_path, "ru.txt", text.encode("cp1251"))
    assert result.documents[0].text == text, result.documents
    (problem,) = result.problems
    assert problem.skipped is False and problem.message.endswith("(not valid UTF-8)"), problem
    assert problem.message.startswith("decoded as "), problem


def test_cp1252_french_is_decoded_with_a_warning(tmp_path):
    text = "Le café où l'on mange des crêpes à Noël — « déjà vu »."
    result = _read_one(tmp_path, "fr.txt", text.encode("cp1252"))
    assert result.documents[0].text == text, result.documents
    (problem,) = result.problems
    assert problem.skipped is False and problem.message.endswith("(not valid UTF-8)"), problem


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be", "utf-32", "utf-8-sig"])
def test_byte_order_marks_select_the_encoding_silently(tmp_path, encoding):
    text = "Grüße, 世界\r\nzweite Zeile"
    data = text.encode(encoding)
    if encoding == "utf-16-be":
        data = b"\xfe\xff" + data
    result = _read_one(tmp_path, "bom.txt", data)
    assert result.documents[0].text == "Grüße, 世界\nzweite Zeile", result.documents
    assert result.problems == (), result.problems


def test_utf16_without_bom_is_recognised_and_reported(tmp_path):
    result = _read_one(tmp_path, "nobom.txt", "plain words here".encode("utf-16-le"))
    assert result.documents[0].text == "plain words here", result.documents
    assert _problems(result) == ["nobom.txt: decoded as UTF-16-LE (no byte-order mark)"]


def test_stray_nul_bytes_are_stripped_with_a_warning(tmp_path):
    result = _read_one(tmp_path, "nul.txt", b"a long enough line of text with one\x00 stray nul in it")
    assert result.documents[0].text == "a long enough line of text with one stray nul in it"
    assert _problems(result) == ["nul.txt: removed 1 NUL character(s)"]
    assert result.problems[0].skipped is False


def test_binary_garbage_with_a_text_extension_is_a_problem(tmp_path):
    garbage = b"\x89PNG\r\n\x1a\n" + bytes((index * 7919) % 256 for index in range(4096))
    result = _read_one(tmp_path, "image.txt", garbage)
    assert result.documents == ()
    (problem,) = result.problems
    assert problem.source == "image.txt" and problem.message.startswith("looks like a binary file"), problem


# --- CSV and TSV ----------------------------------------------------------------------------


def test_csv_columns_are_found_by_name_case_insensitively(tmp_path):
    text = 'ID,Heading,Body\n7,Seven,"The seventh, with a comma"\n,No id,Row two\n 9 ,Nine,"two\nlines"\n'
    result = _read_one(tmp_path, "docs.csv", text)
    assert result.documents == (
        Document("7", "The seventh, with a comma", "Seven", "docs.csv"),
        Document("docs-2", "Row two", "No id", "docs.csv"),
        Document("9", "two\nlines", "Nine", "docs.csv"),
    ), result.documents
    assert result.problems == ()


def test_csv_malformed_and_empty_rows_are_named_and_the_others_kept(tmp_path):
    text = 'id,text\n1,one\n2,two,extra\n3,\n4,four\n5,"five\n6,six\n'
    result = _read_one(tmp_path, "rows.csv", text)
    assert [(d.doc_id, d.text) for d in result.documents] == [("1", "one"), ("4", "four"), ("6", "six")]
    assert _problems(result) == [
        "rows.csv, line 3: expected 2 fields like the header, found 3; row skipped",
        "rows.csv, line 4: empty text in column 'text'; row skipped",
        "rows.csv, line 6: malformed row (an unclosed quote runs to the end of the file); skipped",
    ]


def test_csv_stray_quote_in_a_quoted_field_names_the_line_and_reading_resumes(tmp_path):
    text = 'id,text\n1,"ok"\n2,"bad"quote"\n3,"fine"\n'
    result = _read_one(tmp_path, "quotes.csv", text)
    assert [d.doc_id for d in result.documents] == ["1", "3"]
    assert _problems(result) == ["quotes.csv, line 3: malformed row (',' expected after '\"'); skipped"]


def test_csv_without_a_text_column_lists_its_columns_and_the_fix(tmp_path):
    result = _read_one(tmp_path, "items.csv", "sku,description\n1,A red chair\n")
    assert result.documents == ()
    assert _problems(result) == [
        "items.csv, line 1: no text column found (looked for text, body, content, passage, contents, document, "
        "paragraph, context); the columns are: 'sku', 'description'. "
        "Name the text column with text_column='...' (CLI: --text-column ...)"
    ]
    named = _read_one(tmp_path, "items.csv", "sku,description\n1,A red chair\n", text_column="Description")
    assert named.documents == (Document("items-1", "A red chair", "", "items.csv"),), named
    wrong = _read_one(tmp_path, "items.csv", "sku,description\n1,A red chair\n", text_column="summary")
    assert _problems(wrong) == [
        "items.csv, line 1: no column named 'summary' (text_column='summary'); the columns are: 'sku', 'description'"
    ]


def test_tsv_fields_are_never_quoted_and_semicolon_csv_is_recognised(tmp_path):
    tsv = _read_one(tmp_path, "a.tsv", 'docid\ttitle\tpassage\nx1\tT\tTab, separated\nx2\t\t"Hi," he said.\n')
    assert tsv.documents == (
        Document("x1", "Tab, separated", "T", "a.tsv"),
        Document("x2", '"Hi," he said.', "", "a.tsv"),
    ), tsv
    semicolon = _read_one(tmp_path, "b.csv", "id;text\ns1;Semi, colon\n")
    assert semicolon.documents == (Document("s1", "Semi, colon", "", "b.csv"),), semicolon


def test_csv_fields_larger_than_the_csv_module_default_are_read(tmp_path):
    big = "word " * 60_000  # 300,000 characters, past csv's default field limit of 131,072
    result = _read_one(tmp_path, "big.csv", f'id,text\n1,"{big}"\n')
    assert result.problems == () and len(result.documents[0].text) == len(big.strip()), result.problems


def test_csv_with_only_a_header_is_a_problem(tmp_path):
    assert _problems(_read_one(tmp_path, "head.csv", "id,text\n")) == ["head.csv, line 1: a header but no rows"]


# --- JSON Lines and JSON --------------------------------------------------------------------


def test_beir_jsonl_with_a_bad_line_keeps_the_other_lines(tmp_path):
    lines = [
        '{"_id": "doc1", "title": "One", "text": "First text.", "metadata": {}}',
        '{"_id": "doc2", "title": "Two", "text": "Second text."',
        '"a bare string"',
        '{"id": 42, "contents": " Forty two. "}',
        "[1, 2]",
        '{"_id": "doc5", "summary": "no text here"}',
    ]
    result = _read_one(tmp_path, "corpus.jsonl", "\n".join(lines) + "\n")
    assert result.documents == (
        Document("doc1", "First text.", "One", "corpus.jsonl"),
        Document("corpus-3", "a bare string", "", "corpus.jsonl"),
        Document("42", "Forty two.", "", "corpus.jsonl"),
    ), result.documents
    assert _problems(result) == [
        "corpus.jsonl, line 2: invalid JSON: Expecting ',' delimiter at column 55; line skipped",
        "corpus.jsonl, line 5: expected an object or a string, found a list; skipped",
        "corpus.jsonl, line 6: no text key found (looked for text, body, content, passage, contents, document, "
        "paragraph, context); the keys are: '_id', 'summary'. Name the text key with text_column='...' "
        "(CLI: --text-column ...)",
    ]


def test_json_list_of_objects_and_strings(tmp_path):
    items = [{"doc_id": " a ", "text": "Alpha", "title": "A"}, "Beta", {"id": 3.0, "body": ["p1", "p2"]}, 7]
    result = _read_one(tmp_path, "list.json", json.dumps(items))
    assert result.documents == (
        Document("a", "Alpha", "A", "list.json"),
        Document("list-2", "Beta", "", "list.json"),
        Document("3", "p1\n\np2", "", "list.json"),
    ), result.documents
    assert _problems(result) == ["list.json: item 4: expected an object or a string, found a number; skipped"]


def test_squad_json_makes_one_document_per_paragraph(tmp_path):
    squad = {
        "version": "1.1",
        "data": [
            {
                "title": "Normans",
                "paragraphs": [
                    {"context": "The Normans were...", "qas": [{"id": "q1", "question": "Who?", "answers": []}]},
                    {"context": "They came from Normandy.", "qas": []},
                ],
            },
            {"title": "Physics", "paragraphs": [{"id": "p-own", "context": "Force is mass times acceleration."}]},
            {"title": "Broken", "paragraphs": [{"context": ""}]},
        ],
    }
    result = _read_one(tmp_path, "squad.json", json.dumps(squad, indent=1))
    assert result.documents == (
        Document("0-0", "The Normans were...", "Normans", "squad.json"),
        Document("0-1", "They came from Normandy.", "Normans", "squad.json"),
        Document("p-own", "Force is mass times acceleration.", "Physics", "squad.json"),
    ), result.documents
    assert _problems(result) == ["squad.json: data[2].paragraphs[0] has no 'context' text; skipped"]


def test_json_syntax_error_names_the_line(tmp_path):
    text = '[\n  {"text": "fine"},\n  {"text": "missing quote},\n  {"text": "after"}\n]\n'
    result = _read_one(tmp_path, "broken.json", text)
    assert result.documents == ()
    (problem,) = result.problems
    assert (problem.line, problem.skipped) == (3, True), problem
    assert problem.message.startswith("invalid JSON: ") and problem.message.endswith("; file skipped"), problem


def test_json_of_an_unknown_shape_is_a_problem(tmp_path):
    result = _read_one(tmp_path, "config.json", '{"name": 1, "settings": {}}')
    assert _problems(result) == [
        "config.json: expected a list of documents, SQuAD {'data': [...]} or an object with a text field; "
        "found 'name', 'settings'"
    ]


# --- HTML and PDF ---------------------------------------------------------------------------


def test_html_keeps_visible_text_with_block_breaks_and_unescaped_entities(tmp_path):
    page = """<!DOCTYPE html><html><head><title> Caf&eacute; &amp; Bar </title>
    <style>p { color: red }</style><script>var hidden = "<p>no</p>";</script><meta charset="utf-8"></head>
    <body><h1>Menu</h1><p>Coffee &lt;3 &euro;2</p><noscript>Enable JS</noscript>
    <template><p>templated</p></template><ul><li>One<li>Two</ul><div>Line<br>break</div>
    <table><tr><td>a</td><td>b</td></tr></table></body></html>"""
    result = _read_one(tmp_path, "menu.html", page)
    assert result.documents == (
        Document("menu", "Menu\n\nCoffee <3 €2\n\nOne\nTwo\n\nLine\nbreak\n\na b", "Café & Bar", "menu.html"),
    ), result.documents
    assert result.problems == ()


def test_html_without_closing_head_or_body_tags_keeps_the_body_text(tmp_path):
    result = _read_one(tmp_path, "bare.html", "<head><title>T</title><meta name=x><p>Body text</p>")
    assert result.documents == (Document("bare", "Body text", "T", "bare.html"),), result.documents


def test_html_declared_legacy_charset_is_used_without_a_warning(tmp_path):
    page = '<html><head><meta charset="windows-1251"><title>Новости</title></head><body><p>Сегодня</p></body></html>'
    result = _read_one(tmp_path, "news.htm", page.encode("cp1251"))
    assert result.documents == (Document("news", "Сегодня", "Новости", "news.htm"),), result.documents
    assert result.problems == ()


def test_pdf_pages_are_joined_and_a_page_without_text_is_a_warning(tmp_path):
    result = _read_one(tmp_path, "report.pdf", minimal_pdf(["Hello from page one.", "", "Page three here."]))
    assert result.documents == (Document("report", "Hello from page one.\n\nPage three here.", "", "report.pdf"),)
    assert result.problems == (Problem("report.pdf", "page 2 has no text (a scanned image?)", 2, skipped=False),)


def test_pdf_without_any_text_is_a_problem(tmp_path):
    result = _read_one(tmp_path, "scan.pdf", minimal_pdf(["", ""]))
    assert _problems(result) == ["scan.pdf: no text in any of its 2 page(s); a scanned PDF needs OCR first"]


def test_encrypted_and_broken_pdfs_are_problems_naming_the_file(tmp_path):
    from pypdf import PdfWriter

    writer = PdfWriter()
    writer.add_blank_page(200, 200)
    writer.encrypt("secret", algorithm="RC4-128")
    buffer = io.BytesIO()
    writer.write(buffer)
    encrypted = _read_one(tmp_path, "locked.pdf", buffer.getvalue())
    assert _problems(encrypted) == [
        "locked.pdf: encrypted PDF that needs a password; save an unprotected copy and read that"
    ]
    broken = _read_one(tmp_path, "broken.pdf", b"%PDF-1.4\nthis is not really a pdf\n")
    (problem,) = broken.problems
    assert problem.source == "broken.pdf" and problem.message.startswith("cannot read this PDF ("), problem


# --- duplicate ids and per-file problem caps ------------------------------------------------


def test_duplicate_ids_are_kept_under_a_new_id_with_a_warning(tmp_path):
    first = _write(tmp_path, "a.jsonl", '{"id": "x", "text": "one"}\n{"id": "x", "text": "two"}\n')
    second = _write(tmp_path, "b.csv", "id,text\nx,three\nx~2,four\n")
    result = read_paths([first, second], names=["a.jsonl", "b.csv"])
    assert [(d.doc_id, d.text) for d in result.documents] == [
        ("x", "one"),
        ("x~2", "two"),
        ("x~3", "three"),
        ("x~2~2", "four"),
    ]
    assert _problems(result) == [
        "a.jsonl, line 2: duplicate id 'x' (first used at a.jsonl, line 1); kept as 'x~2'",
        "b.csv, line 2: duplicate id 'x' (first used at a.jsonl, line 1); kept as 'x~3'",
        "b.csv, line 3: duplicate id 'x~2' (first used at a.jsonl, line 2); kept as 'x~2~2'",
    ]
    assert not any(problem.skipped for problem in result.problems)


def test_same_named_files_in_different_folders_get_unique_ids(tmp_path):
    _write(tmp_path, "corpus/en/readme.txt", "English")
    _write(tmp_path, "corpus/fr/readme.txt", "Français")
    result = read_paths([tmp_path / "corpus"], names=["corpus"])
    assert [d.doc_id for d in result.documents] == ["readme", "readme~2"]
    assert _problems(result) == [
        "corpus/fr/readme.txt: duplicate id 'readme' (first used at corpus/en/readme.txt); kept as 'readme~2'"
    ]


def test_problems_beyond_one_hundred_per_file_are_summarised(tmp_path):
    result = _read_one(tmp_path, "noisy.jsonl", "{bad\n" * 150 + '{"text": "good"}\n')
    assert len(result.documents) == 1 and len(result.problems) == 101
    assert str(result.problems[-1]) == "noisy.jsonl: 50 more problem(s) in this file not listed"


# --- zip archives ---------------------------------------------------------------------------


def test_zip_members_are_read_in_memory_with_archive_sources(tmp_path):
    archive = _zip_bytes(
        {
            "corpus/": b"",
            "corpus/a.txt": "Alpha text.",
            "corpus/b.jsonl": '{"_id": "b1", "text": "Beta"}\n{oops\n',
            "corpus/c.bin": b"\x00\x01",
            "corpus/empty.md": b"",
            "__MACOSX/corpus/._a.txt": b"\x00\x05\x16\x07",
            "corpus/.DS_Store": b"\x00\x00",
            "../evil.txt": "escape attempt",
            "/etc/passwd.txt": "absolute",
        }
    )
    result = _read_one(tmp_path, "upload.zip", archive)
    assert result.documents == (
        Document("a", "Alpha text.", "", "upload.zip!corpus/a.txt"),
        Document("b1", "Beta", "", "upload.zip!corpus/b.jsonl"),
    ), result.documents
    assert _problems(result) == [
        "upload.zip!../evil.txt: unsafe member name (absolute or '..' path); skipped",
        "upload.zip!/etc/passwd.txt: unsafe member name (absolute or '..' path); skipped",
        "upload.zip!corpus/b.jsonl, line 2: invalid JSON: Expecting property name enclosed in double quotes "
        "at column 2; line skipped",
        "upload.zip!corpus/c.bin: unsupported file type .bin; supported: "
        ".txt, .md, .markdown, .csv, .tsv, .jsonl, .json, .html, .htm, .pdf, .zip",
        "upload.zip!corpus/empty.md: empty file",
    ]
    assert result.files_read == 3, result.files_read


def test_nested_zips_are_read_up_to_the_depth_limit(tmp_path):
    innermost = _zip_bytes({"deep.txt": "Three levels down."})
    inner = _zip_bytes({"inner.txt": "Two levels down.", "innermost.zip": innermost})
    outer = _zip_bytes({"outer.txt": "One level down.", "inner.zip": inner})
    result = _read_one(tmp_path, "outer.zip", outer)
    assert [(d.doc_id, d.source) for d in result.documents] == [
        ("inner", "outer.zip!inner.zip!inner.txt"),
        ("outer", "outer.zip!outer.txt"),
    ], result.documents
    assert _problems(result) == [
        "outer.zip!inner.zip!innermost.zip: archive nested 3 deep is past max_zip_depth=2; skipped; "
        "set SEARCH_MAX_ZIP_DEPTH=3 (environment variable) to read it"
    ]
    deeper = _read_one(tmp_path, "outer.zip", outer, limits=ReadLimits(max_zip_depth=3))
    assert [d.doc_id for d in deeper.documents] == ["inner", "deep", "outer"] and deeper.problems == ()


def test_a_file_that_is_not_a_zip_is_a_problem(tmp_path):
    result = _read_one(tmp_path, "fake.zip", b"this is not a zip archive")
    assert _problems(result) == ["fake.zip: not a readable zip archive (File is not a zip file); skipped"]


def _zeros_zip(path: Path, megabytes: int) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("small.txt", "A genuine small member.")
        with archive.open("zeros.txt", "w") as member:
            for _ in range(megabytes):
                member.write(b"\x00" * 1_000_000)
    return path


def test_a_zip_bomb_is_refused_before_it_is_decompressed(tmp_path):
    path = _zeros_zip(tmp_path / "bomb.zip", 50)
    assert path.stat().st_size < 200_000
    tracemalloc.start()
    result = read_paths([path], names=["bomb.zip"])
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert [d.doc_id for d in result.documents] == ["small"]
    (problem,) = result.problems
    assert problem.source == "bomb.zip!zeros.txt", problem
    assert problem.message.startswith("compression ratio ") and "max_compression_ratio=100" in problem.message
    assert "if the archive is trusted, set SEARCH_MAX_COMPRESSION_RATIO=" in problem.message
    assert peak < 5_000_000, f"peak memory {peak:,} bytes: the bomb was decompressed"


def test_a_member_declaring_more_than_max_file_bytes_is_refused(tmp_path):
    path = _zeros_zip(tmp_path / "big.zip", 50)
    result = read_paths([path], names=["big.zip"], limits=ReadLimits(max_file_bytes=1_000_000))
    assert _problems(result) == [
        "big.zip!zeros.txt: file declares 50.0 MB, over max_file_bytes=1,000,000; skipped; "
        "set SEARCH_MAX_FILE_MB=50 or more (environment variable) to read it"
    ]


def test_a_member_whose_declared_size_lies_is_a_problem_not_a_crash(tmp_path):
    data = bytearray(_zip_bytes({"liar.txt": b"z" * 100_000}))
    central = data.index(b"PK\x01\x02")
    data[central + 24 : central + 28] = (100).to_bytes(4, "little")  # uncompressed size in the central directory
    result = _read_one(tmp_path, "liar.zip", bytes(data))
    assert result.documents == ()
    (problem,) = result.problems
    assert problem.source == "liar.zip!liar.txt" and problem.message.startswith("cannot decompress"), problem


def test_max_files_stops_reading_with_one_problem(tmp_path):
    for name in "abcde":
        _write(tmp_path, f"docs/{name}.txt", name * 3)
    result = read_paths([tmp_path / "docs"], names=["docs"], limits=ReadLimits(max_files=3))
    assert [d.doc_id for d in result.documents] == ["a", "b", "c"] and result.files_read == 3
    assert _problems(result) == [
        "docs/d.txt: stopped at max_files=3; set SEARCH_MAX_FILES to a larger number (environment variable) "
        "to read more; 2 file(s) were not read"
    ]


def test_max_total_bytes_stops_reading_with_one_problem(tmp_path):
    for name in "abc":
        _write(tmp_path, f"docs/{name}.txt", name * 40)
    result = read_paths([tmp_path / "docs"], names=["docs"], limits=ReadLimits(max_total_bytes=100))
    assert [d.doc_id for d in result.documents] == ["a", "b"]
    assert _problems(result) == [
        "docs/c.txt: stopped: this file would take the total past max_total_bytes=100 (80 bytes read so far); "
        "set SEARCH_MAX_TOTAL_MB to a larger number of MB (environment variable) to read more; "
        "1 file(s) were not read"
    ]


def test_a_file_over_max_file_bytes_is_skipped_and_the_rest_read(tmp_path):
    big = _write(tmp_path, "big.txt", "x" * 2000)
    small = _write(tmp_path, "small.txt", "fine")
    result = read_paths([big, small], names=["big.txt", "small.txt"], limits=ReadLimits(max_file_bytes=1000))
    assert [d.doc_id for d in result.documents] == ["small"]
    assert _problems(result) == [
        "big.txt: file is 2,000 bytes, over max_file_bytes=1,000; skipped; "
        "set SEARCH_MAX_FILE_MB=0.1 or more (environment variable) to read it"
    ]


def test_a_zip_of_many_junk_members_gives_a_bounded_problem_list(tmp_path):
    import zipfile

    archive = tmp_path / "junk.zip"
    with zipfile.ZipFile(archive, "w") as out:
        for number in range(1500):
            out.writestr(f"f{number}.xyz", "x")
        out.writestr("good.txt", "One good document.")
    result = read_paths([archive])
    assert [document.doc_id for document in result.documents] == ["good"]
    assert len(result.problems) <= 1001, len(result.problems)
    assert "more problem(s) not listed" in result.problems[-1].message
