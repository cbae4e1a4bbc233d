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
import zipfile
from dataclasses import dataclass
from pathlib import Path

from search.limits import ReadLimits
from search.reading import read_paths

GOOD_NAME = "good.txt"
GOOD_TEXT = "A good file uploaded beside a bad one is always kept."


def minimal_pdf(pages: list[str], kids: list[int] | None = None) -> bytes:
    """A hand-written PDF with one line of Helvetica text per page; `kids` lists page numbers (from 0) for
    the page tree, repeats allowed (default: each page once)."""
    objects: list[bytes] = [b"<< /Type /Catalog /Pages 2 0 R >>", b"",
                            b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
    page_objects = []
    for text in pages:
        stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode("latin-1")
        objects.append(b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream))
        objects.append(b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
                       b"/Resources << /Font << /F1 3 0 R >> >> /Contents %d 0 R >>" % len(objects))
        page_objects.append(len(objects))
    order = [page_objects[index] for index in (kids if kids is not None else range(len(pages)))]
    objects[1] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (b" ".join(b"%d 0 R" % kid for kid in order), len(order))
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


def read_beside_good(folder: Path, name: str, data: bytes, limits: ReadLimits, slack_seconds: float = 5.0) -> Outcome:
    """Read `data` (written as `name`) and a good text file in one call, as a user's upload."""
    folder.mkdir(parents=True, exist_ok=True)
    bad = folder / f"bad{Path(name).suffix}"
    bad.write_bytes(data)
    good = folder / GOOD_NAME
    good.write_text(GOOD_TEXT, encoding="utf-8")
    started = time.perf_counter()
    try:
        result = read_paths([bad, good], names=[name, GOOD_NAME], limits=limits)
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
    return Outcome(name, len(data), seconds, True)
