"""Inputs that once hung or crashed a reader, valid samples of every format, and a seeded mutator.

Shared by the fuzz tests (tests/test_fuzz_readers.py) and `benchmarks/fuzz_readers.py`. Everything is
generated here, nothing big is committed: each hostile case is a few lines of Python.
"""

from __future__ import annotations

import io
import json
import random
import struct
import time
import traceback
import unicodedata
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from search.limits import ReadLimits
from search.reading import read_paths

GOOD_NAME = "good.txt"
GOOD_TEXT = "A good file uploaded beside a bad one is always kept."


def pdf_file(objects: list[bytes]) -> bytes:
    """A PDF file of numbered `objects` (the first the catalog), with its cross-reference table."""
    pdf = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(pdf))
        pdf += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(pdf)
    pdf += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    pdf += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    pdf += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(pdf)


def minimal_pdf(pages: list[str], kids: list[int] | None = None) -> bytes:
    """A hand-written PDF with one line of Helvetica text per page ("" gives a page without text); `kids`
    lists page numbers (from 0) for the page tree, repeats allowed (default: each page once)."""
    objects: list[bytes] = [b"<< /Type /Catalog /Pages 2 0 R >>", b"",
                            b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
    page_objects = []
    for text in pages:
        stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode("latin-1") if text else b""
        objects.append(b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream))
        objects.append(b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
                       b"/Resources << /Font << /F1 3 0 R >> >> /Contents %d 0 R >>" % len(objects))
        page_objects.append(len(objects))
    order = [page_objects[index] for index in (kids if kids is not None else range(len(pages)))]
    objects[1] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (b" ".join(b"%d 0 R" % kid for kid in order), len(order))
    return pdf_file(objects)


def pdf_with_to_unicode(codes: bytes, mapping: dict[int, str]) -> bytes:
    """A one-page PDF showing the byte `codes` in a font whose ToUnicode map sends each code to the UTF-16BE
    hex of `mapping` (``{0x42: "D800"}`` makes pypdf extract a lone surrogate)."""
    cmap = ("/CIDInit /ProcSet findresource begin\n12 dict begin\nbegincmap\n/CMapName /Hostile def\n"
            "/CMapType 2 def\n1 begincodespacerange\n<00> <FF>\nendcodespacerange\n"
            f"{len(mapping)} beginbfchar\n" + "".join(f"<{code:02X}> <{target}>\n" for code, target in mapping.items())
            + "endbfchar\nendcmap\nCMapName currentdict /CMap defineresource pop\nend\nend\n").encode()
    stream = b"BT /F1 12 Tf 72 720 Td <" + codes.hex().encode() + b"> Tj ET"
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [4 0 R] /Count 1 >>",
               b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /ToUnicode 6 0 R >>",
               b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 3 0 R >> >> "
               b"/Contents 5 0 R >>",
               b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream),
               b"<< /Length %d >>\nstream\n%s\nendstream" % (len(cmap), cmap)]
    return pdf_file(objects)


def surrogate_inputs() -> dict[str, bytes]:
    """The three ways a lone surrogate got into an upload (issue 21 §2), each a small valid file."""
    squad = ('{"data": [{"title": "T", "paragraphs": [{"id": "\\udead", "context": "Owls hunt at night.", '
             '"qas": [{"id": "q1", "question": "When do owls hunt?"}]}]}]}')
    return {
        "escape.jsonl": b'{"_id": "s1", "text": "Half a pair \\ud800 in the middle."}\n',
        "squad.json": squad.encode(),
        "tounicode.pdf": pdf_with_to_unicode(b"ABC DEF", {0x41: "0048", 0x42: "D800", 0x43: "0069",
                                                          0x20: "0020", 0x44: "006F", 0x45: "0077", 0x46: "006C"}),
    }


def encrypted_pdf(text: str, algorithm: str, user_password: str = "") -> bytes:
    """A one-page PDF of `text` encrypted by pypdf's writer; an empty user password opens it without one
    (only the owner password, which restricts printing or copying, is set)."""
    import pypdf

    writer = pypdf.PdfWriter(clone_from=pypdf.PdfReader(io.BytesIO(minimal_pdf([text]))))
    writer.encrypt(user_password=user_password, owner_password="owner secret", algorithm=algorithm)
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def zip_bytes(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in members.items():
            archive.writestr(zipfile.ZipInfo(name), content, compress_type=zipfile.ZIP_DEFLATED)
    return buffer.getvalue()


def _zip_needing_version(major_minor: int) -> bytes:
    data = bytearray(zip_bytes({"a.txt": b"hello", "b.txt": b"world"}))
    for signature, offset in ((b"PK\x03\x04", 4), (b"PK\x01\x02", 6)):
        at = data.find(signature)
        data[at + offset : at + offset + 2] = struct.pack("<H", major_minor)
    return bytes(data)


def _pdf_with_stray_objects(count: int) -> bytes:
    pdf = minimal_pdf(["Page one text", "Page two text"])
    cut = pdf.index(b"/Type /Page ") + 16
    return pdf[:cut] + b" 0 obj" * count + pdf[cut:]


def valid_samples() -> dict[str, bytes]:
    """One small, valid file per supported format, named by its suffix."""
    squad = {"data": [{"title": "T", "paragraphs": [{"id": "p1", "context": "Context one.",
                                                      "qas": [{"id": "q1", "question": "Which?"}]}]}]}
    return {
        "sample.txt": b"Plain text about rivers.\nSecond line.\n",
        "sample.md": b"# Title\n\nSome *markdown* text.\n\n```\n# code\n```\n",
        "sample.markdown": b"#   Heading  ##\ntext",
        "sample.csv": b'id,title,text\n1,One,"First, with comma"\n2,Two,Second\n',
        "sample.tsv": b"id\ttext\n1\tFirst\n2\t\"quoted\" second\n",
        "sample.jsonl": b'{"_id": "a", "title": "A", "text": "Alpha"}\n{"_id": 2, "text": "Beta"}\n',
        "sample.json": json.dumps([{"id": "x", "text": "Ex"}, "plain string", {"doc_id": 3.0, "body": ["p", "q"]}]
                                  ).encode(),
        "squad.json": json.dumps(squad).encode(),
        "sample.html": (b"<!DOCTYPE html><html><head><title>T &amp; U</title><meta charset='utf-8'>"
                        b"<style>p{}</style></head><body><p>Para &eacute; one<br/>two</p><script>x<y</script>"
                        b"<!-- note --><table><tr><td>a</td><td>b</td></tr></table></body></html>"),
        "sample.htm": b"<p>short page</p>",
        "sample.pdf": minimal_pdf(["Page one text", "Page two text"]),
        "sample.zip": zip_bytes({"in/a.txt": b"zipped text", "in/b.csv": b"text\nrow\n"}),
    }


def hostile_cases() -> dict[str, bytes]:
    """Inputs that escaped a reader or took minutes (the fuzzing run of issue 8, and those found since)."""
    return {
        # escapes: an exception left read_paths
        "zip-version-8.4.zip": _zip_needing_version(84),
        "meta-charset-undefined.html": b'<html><head><meta charset="undefined"></head><body><p>caf\xe9</p>',
        "meta-charset-punycode.html": b'<meta charset="punycode"><p>' + b"\xe9a" * 20_000 + b"</p>",
        "int-5000-digits-value.json": b'[{"id": 1, "text": ' + b"5" * 5000 + b"}]",
        "int-5m-digits-id.json": b'[{"id": ' + b"5" * 5_000_000 + b', "text": "x"}]',
        "int-5000-digits-id.jsonl": b'{"_id": ' + b"7" * 5000 + b', "text": "long id"}\n',
        "charref-5000-digits.html": b"<p>&#" + b"1" * 5000 + b"; and &#x" + b"f" * 5000 + b"</p>",
        # quadratic: a backtracking regex or a parser that rescans
        "heading-100k-spaces.md": b"# a" + b" " * 100_000 + b"b",
        "heading-50k-tabs.md": b"# a" + b"\t" * 50_000 + b"b",
        "heading-hashes.md": b"# " + b"#" * 100_000 + b" x",
        "unterminated-tags.html": b"x" + b"<a " * 40_000,
        "unterminated-comments.html": b"x" + b"<!--" * 40_000,
        "unterminated-quotes.html": b"x" + b'<a b="' * 40_000,
        "unterminated-script.html": b"<p>x</p>" + b"<script>" * 40_000,
        "unterminated-title.html": b"<title>" * 40_000 + b"<p>body</p>",
        "unterminated-declarations.html": b"x" + b"<!DOCTYPE " * 30_000,
        "meta-without-end.html": b"<meta " * 5_000 + b"<p>text</p>",
        # found by benchmarks/fuzz_readers.py: a tag name and its attributes split by backtracking
        "unclosed-long-end-tag.html": b"<p>x</p></b" + "\ufeff".encode() * 40_000,
        "unclosed-long-start-tag.html": b"<p>x</p><b" + b"y" * 100_000,
        "pdf-one-page-100k-times.pdf": minimal_pdf(["Hello"], kids=[0] * 100_000),
        # found by benchmarks/fuzz_readers.py: pypdf's recovery loop, token by token, inside PdfReader()
        "pdf-40k-stray-objects.pdf": _pdf_with_stray_objects(40_000),
        # deep or odd structure
        "nested-100k.json": b"[" * 100_000 + b"]" * 100_000,
        "nested-200.jsonl": b"[" * 200 + b"]" * 200 + b'\n{"text": "kept"}\n',
        "csv-open-quotes.csv": b"text\n" + b'"a\n' * 20_000,
        "csv-quote-pairs.csv": b"text\n" + b'x,"""""\n' * 20_000,
        "tsv-huge-field.tsv": b"text\n" + b"w " * 2_000_000,
        "zero-width-only.txt": "\u200b\u200c\u200d\u2060\ufeff".encode() * 100,
        "utf16le-chinese-no-bom.txt": ("中文文本测试，没有字节顺序标记。" * 50).encode("utf-16-le"),
        "unsafe-names.zip": zip_bytes({"../up.txt": b"x", "/abs.txt": b"x", "C:/drive.txt": b"x", "ok.txt": b"ok"}),
        "zip-in-zip-bomb.zip": zip_bytes({"inner.zip": zip_bytes({"zeros.txt": b"\x00" * 20_000_000})}),
    }


_TOKENS = [b"<a ", b"<!--", b"-->", b'"', b"'", b"=", b"[", b"]", b"{", b"}", b"#", b" ", b"\t", b"&#", b"&#x",
           b"9", b"\x00", b"\xff\xfe", b"\xfe\xff", b"\xef\xbb\xbf", b"\r", b",", b";", b"\n", b"</script",
           b"<script>", b"<title>", b"<!DOCTYPE", b"%PDF-1.4", b" 0 obj", b"<<", b">>", b"/Kids [", b" 5 0 R",
           b"stream\n", b"endstream", b"\\", b"\xe4\xb8\xad", b"\xc3", "\u200b".encode(),
           b"PK\x03\x04", b"PK\x01\x02", b'{"text": ', b'"paragraphs": [', b"```", b"~~~", b"```\n"]


def mutate(data: bytes, rng: random.Random) -> bytes:
    """`data` after 1-8 random edits: byte flips, cuts, inserted noise, hostile tokens repeated up to
    40,000 times, a slice repeated, truncation."""
    buffer = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        position = rng.randint(0, len(buffer))
        operation = rng.randrange(7)
        if operation == 0 and buffer:
            buffer[min(position, len(buffer) - 1)] = rng.randrange(256)
        elif operation == 1:
            del buffer[position : position + rng.randint(1, 64)]
        elif operation == 2:
            buffer[position:position] = rng.randbytes(rng.randint(1, 64))
        elif operation == 3:
            buffer[position:position] = rng.choice(_TOKENS) * rng.choice((1, 2, 10, 100, 1000, 5000, 40_000))
        elif operation == 4 and buffer:
            start = rng.randrange(len(buffer))
            piece = buffer[start : start + rng.randint(1, 32)]
            buffer[position:position] = piece * rng.randint(2, 500)
        elif operation == 5:
            del buffer[position:]
        else:
            buffer[position:position] = rng.choice(_TOKENS)
    return bytes(buffer)


def generated_input(rng: random.Random) -> tuple[str, bytes]:
    """(file name, bytes): random bytes under a random supported suffix, a mutated valid sample, or a
    mutated sample inside a zip."""
    samples = valid_samples()
    name = rng.choice(list(samples))
    roll = rng.random()
    if roll < 0.2:
        return name, rng.randbytes(rng.randint(0, 4096))
    mutated = mutate(samples[name], rng)
    if roll < 0.3:
        return "wrapped.zip", zip_bytes({f"inner/{name}": mutated, "inner/ok.txt": b"kept too"})
    return name, mutated


# -- targeted generators (issue 21): what the first fuzz campaign missed ----------------------------------

# Short sentences in a dozen languages, for the legacy-encoding and zip-name generators.
SENTENCES = (
    "The river rose after three days of rain.", "Le château domine la vallée ; l'été y est très doux.",
    "Die Straßenbahn fährt über die Brücke.", "Żółty tramwaj jedzie przez most.", "Příští týden pojedeme vlakem.",
    "Вчера мы долго гуляли по набережной.", "Το πλοίο αναχωρεί στις οκτώ το πρωί.", "Çocuklar bahçede oynuyor.",
    "הרכבת יוצאת בשעה שמונה.", "يغادر القطار في الساعة الثامنة.", "รถไฟออกเดินทางตอนแปดโมงเช้า",
    "开往上海的火车早上八点出发。", "開往高雄的火車早上八點出發。", "新幹線は朝八時に出発します。",
    "부산행 기차는 아침에 출발합니다.",
)
LEGACY_ENCODINGS = ("cp1252", "latin-1", "iso-8859-15", "mac_roman", "cp850", "cp1250", "iso-8859-2", "cp1251",
                    "koi8-r", "koi8-u", "iso-8859-5", "cp866", "cp1253", "iso-8859-7", "cp1254", "cp1255", "cp1256",
                    "cp1257", "cp874", "gb2312", "gbk", "gb18030", "hz", "big5", "big5hkscs", "shift_jis", "cp932",
                    "euc-jp", "iso-2022-jp", "euc-kr", "cp949", "iso-2022-kr", "utf-16-le", "utf-16-be",
                    "utf-32-le", "utf-32-be", "utf-16", "utf-32", "utf-8-sig")
_CHARSET_LABELS = ("utf-16", "utf-16be", "iso-8859-1", "windows-1251", "shift_jis", "gb2312", "x-user-defined",
                   "replacement", "iso-2022-kr", "undefined", "utf-7", "koi8-u", "euc-kr", "big5", "latin1")


@dataclass(frozen=True)
class Case:
    """A generated input: its file name and bytes, the limits it is read with, and whether the good file is
    uploaded before it (a read-wide limit the bad file hits stops the files after it, by design)."""

    family: str
    name: str
    data: bytes
    limits: dict = field(default_factory=dict)
    good_first: bool = False


def _escape_surrogate(rng: random.Random) -> str:
    return f"\\u{rng.randrange(0xD800, 0xE000):04x}"


def surrogate_case(rng: random.Random) -> Case:
    """Lone surrogates where JSON escapes and PDF ToUnicode maps put them: texts, ids, titles, SQuAD ids."""
    roll = rng.randrange(4)
    bad = _escape_surrogate(rng)
    if roll == 0:
        lines = [f'{{"_id": "d{n}{bad if rng.random() < 0.3 else ""}", "title": "t{bad}", '
                 f'"text": "text {n} {bad * rng.randint(1, 3)}"}}' for n in range(rng.randint(1, 20))]
        return Case("surrogates", "escapes.jsonl", "\n".join(lines).encode())
    if roll == 1:
        items = [{"id": f"x{n}", "text": f"item {n}"} for n in range(rng.randint(1, 10))]
        raw = json.dumps(items).replace("item", f"item {bad}", rng.randint(1, len(items)))
        return Case("surrogates", "escapes.json", raw.encode())
    if roll == 2:
        squad = (f'{{"data": [{{"title": "T{bad}", "paragraphs": [{{"id": "{bad}{bad}", "context": "C {bad}", '
                 f'"qas": [{{"id": "q{bad}", "question": "Q {bad}?"}}]}}]}}]}}')
        return Case("surrogates", "squad.json", squad.encode())
    mapping = {code: rng.choice(("D800", "DBFF", "DC00", "DFFF", "D83D", f"{rng.randrange(0xD800, 0xE000):04X}",
                                 "0061", "0020")) for code in range(0x41, 0x41 + rng.randint(1, 8))}
    codes = bytes(rng.choice(list(mapping)) for _ in range(rng.randint(1, 40)))
    data = pdf_with_to_unicode(codes, mapping)
    return Case("surrogates", "tounicode.pdf", mutate(data, rng) if rng.random() < 0.3 else data)


def row_bomb_case(rng: random.Random) -> Case:
    """Millions-of-rows files in small packages: one character per row, CSV, TSV, JSONL, zipped or not."""
    rows = rng.choice((1_000, 20_000, 100_000, 300_000))
    kind = rng.choice((".csv", ".tsv", ".jsonl"))
    if kind == ".jsonl":
        body = "\n".join(f'"{rng.choice("abc")}"' for _ in range(rows))
    else:
        body = "text\n" + "\n".join(rng.choice("abcdefgh") for _ in range(rows))
    limits = {"max_documents": rng.choice((500, 5_000, 50_000)), "max_seconds_per_file": 3.0}
    data = body.encode()
    if rng.random() < 0.5:
        return Case("row bombs", "rows.zip", zip_bytes({f"rows{n}{kind}": data for n in range(rng.randint(1, 4))}),
                    limits, good_first=True)
    return Case("row bombs", f"rows{kind}", data, limits, good_first=True)


def _many_entries(count: int, rng: random.Random) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for number in range(count):
            archive.writestr(zipfile.ZipInfo(f"d{rng.randrange(10**6)}/e{number}{rng.choice(('', '.txt'))}"), b"")
    return buffer.getvalue()


def entry_bomb_case(rng: random.Random) -> Case:
    """Archives listing many entries, nested, sometimes with an end record that understates them."""
    limit = rng.choice((100, 1_000, 5_000))
    inner = _many_entries(rng.choice((50, 500, 3_000, 8_000)), rng)
    if rng.random() < 0.3:  # the end record declares fewer entries than the directory holds
        data = bytearray(inner)
        end = data.rfind(b"PK\x05\x06")
        if end >= 0:
            data[end + 8 : end + 12] = struct.pack("<HH", 3, 3)
        inner = bytes(data)
    if rng.random() < 0.5:
        return Case("entry bombs", "many.zip", inner, {"max_zip_entries": limit})
    nested = zip_bytes({f"inner{n}.zip": inner for n in range(rng.randint(2, 6))} | {"ok.txt": b"kept too"})
    return Case("entry bombs", "nested.zip", nested, {"max_zip_entries": limit})


def legacy_encoding_case(rng: random.Random) -> Case:
    """Known text in a legacy encoding (or several, line by line), as text, CSV, JSONL or HTML with a
    declared charset that may be wrong; sometimes mutated."""
    lines = []
    for _ in range(rng.randint(1, 12)):
        sentence = rng.choice(SENTENCES)
        for _attempt in range(10):
            encoding = rng.choice(LEGACY_ENCODINGS)
            try:
                lines.append(sentence.encode(encoding))
                break
            except UnicodeEncodeError:
                continue
        if rng.random() < 0.5 and lines:  # most files keep one encoding
            lines = [lines[0]] * len(lines)
    kind = rng.choice((".txt", ".csv", ".jsonl", ".html"))
    body = b"\n".join(lines)
    if kind == ".csv":
        body = b"text\n" + body
    elif kind == ".jsonl":
        body = b"\n".join(b'{"text": "' + line.replace(b'"', b"") + b'"}' for line in lines)
    elif kind == ".html":
        label = rng.choice(_CHARSET_LABELS).encode()
        body = b'<html><head><meta charset="' + label + b'"></head><body><p>' + body + b"</p></body></html>"
    return Case("legacy encodings", f"legacy{kind}", mutate(body, rng) if rng.random() < 0.3 else body)


def zip_name_case(rng: random.Random) -> Case:
    """Member names in UTF-8 with and without the flag, cp437, cp1251, Shift_JIS bytes, ./ parts, NFD."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for number in range(rng.randint(1, 6)):
            stem = unicodedata.normalize(rng.choice(("NFC", "NFD")), rng.choice(SENTENCES)[: rng.randint(1, 12)])
            prefix = rng.choice(("", "./", "a/./", "./b/", "dir/", ".//"))
            archive.writestr(f"{prefix}{number}-{stem}.txt", rng.choice(SENTENCES).encode())
    data = bytearray(buffer.getvalue())
    # Rewrite some names' bytes in place, without the UTF-8 flag: a legacy code page, or UTF-8 unflagged.
    for codec in rng.sample(("cp437", "cp1251", "shift_jis", "utf-8-unflagged"), rng.randint(0, 2)):
        for signature, name_offset, flag_offset in ((b"PK\x03\x04", 30, 6), (b"PK\x01\x02", 46, 8)):
            at = data.find(signature)
            while at != -1:
                (flags,) = struct.unpack_from("<H", data, at + flag_offset)
                (length,) = struct.unpack_from("<H", data, at + name_offset - (4 if signature == b"PK\x03\x04" else 18))
                struct.pack_into("<H", data, at + flag_offset, flags & ~0x800)
                name = bytes(data[at + name_offset : at + name_offset + length]).decode("utf-8", "replace")
                if codec != "utf-8-unflagged":
                    encoded = name.encode(codec, "replace")
                    if len(encoded) == length:
                        data[at + name_offset : at + name_offset + length] = encoded
                at = data.find(signature, at + 4)
    return Case("zip names", "names.zip", bytes(data))


def encrypted_pdf_case(rng: random.Random) -> Case:
    """PDFs encrypted with every algorithm pypdf writes, with or without a user password, sometimes mutated."""
    algorithm = rng.choice(("RC4-40", "RC4-128", "AES-128", "AES-256"))
    text = rng.choice(("Quarterly figures", "Le chateau", "Minutes of the meeting", "Invoice 42"))
    data = encrypted_pdf(text, algorithm, "" if rng.random() < 0.6 else "pass word")
    return Case("encrypted PDFs", "encrypted.pdf", mutate(data, rng) if rng.random() < 0.3 else data)


TARGETED = (surrogate_case, row_bomb_case, entry_bomb_case, legacy_encoding_case, zip_name_case, encrypted_pdf_case)


def targeted_input(rng: random.Random) -> Case:
    """One input from a random targeted family."""
    return rng.choice(TARGETED)(rng)


def judgment_samples() -> dict[str, bytes]:
    """Valid queries and qrels files in each accepted layout, named as a user would."""
    return {
        "queries.jsonl": b'{"_id": "q7", "text": "seven"}\n{"_id": 8, "text": "eight"}\n',
        "queries.tsv": b"id\ttext\nq7\tseven\n",
        "qrels.trec": b"q7 0 d7 1\nq8 0 d8 2\n",
        "qrels.tsv": b"query-id\tcorpus-id\tscore\nq7\td7\t1\n",
        "beir.zip": zip_bytes({"beir/queries.jsonl": b'{"_id": "q7", "text": "seven"}\n',
                               "beir/qrels/test.tsv": b"query-id\tcorpus-id\tscore\nq7\td7\t1\n"}),
    }


@dataclass(frozen=True)
class Outcome:
    """How one input went: seconds taken, whether it was handled (no exception, the good file kept, within
    the budget) and what went wrong when not."""

    name: str
    size: int
    seconds: float
    handled: bool
    failure: str = ""


def read_beside_good(folder: Path, name: str, data: bytes, limits: ReadLimits, slack_seconds: float = 5.0,
                     good_first: bool = False) -> Outcome:
    """Read `data` (written as `name`) and a good text file in one call, as a user's upload (the good file
    first with `good_first`). Handled: nothing raised, the good file kept, within the time budget, problems
    blaming only the bad file, and every id, text, title, source and problem valid Unicode."""
    folder.mkdir(parents=True, exist_ok=True)
    bad = folder / f"bad{Path(name).suffix}"
    bad.write_bytes(data)
    good = folder / GOOD_NAME
    good.write_text(GOOD_TEXT, encoding="utf-8")
    order = [(good, GOOD_NAME), (bad, name)] if good_first else [(bad, name), (good, GOOD_NAME)]
    started = time.perf_counter()
    try:
        result = read_paths([path for path, _ in order], names=[shown for _, shown in order], limits=limits)
    except BaseException as error:  # noqa: BLE001 - the point is that nothing escapes
        return Outcome(name, len(data), time.perf_counter() - started, False,
                       f"raised {type(error).__name__}: {error!s:.300}\n{traceback.format_exc(limit=-3)}")
    seconds = time.perf_counter() - started
    kept = [document for document in result.documents if document.source == GOOD_NAME]
    if [document.text for document in kept] != [GOOD_TEXT]:
        return Outcome(name, len(data), seconds, False, f"the good file was lost: {kept}")
    if seconds > limits.max_seconds_per_file + slack_seconds:
        return Outcome(name, len(data), seconds, False, f"took {seconds:.1f} s")
    strangers = [problem for problem in result.problems if not problem.source.startswith((name, "(all files)"))]
    if strangers:
        return Outcome(name, len(data), seconds, False, f"problems blamed on other files: {strangers}")
    fields = [value for document in result.documents for value in (document.doc_id, document.text, document.title,
                                                                    document.source)]
    fields += [value for problem in result.problems for value in (problem.source, problem.message)]
    invalid = [value[:80] for value in fields if not _valid_unicode(value)]
    if invalid:
        return Outcome(name, len(data), seconds, False, f"not valid Unicode: {invalid[:3]}")
    return Outcome(name, len(data), seconds, True)


def _valid_unicode(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
