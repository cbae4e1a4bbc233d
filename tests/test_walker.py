"""One walker for corpora and judgments (issue 16 §5): the same files found, the same limits, the same
refusals; and the zip archives it opens (issue 21 §3 entry counts, §5 member names)."""

from __future__ import annotations

import io
import struct
import zipfile
from pathlib import Path

import pytest

from search.judgments import load_judgments
from search.limits import ReadLimits
from search.reading import read_paths
from search.walker import Walker

QUERIES = '{"_id": "q1", "text": "green tea"}\n'
QRELS = "query-id\tcorpus-id\tscore\nq1\ttea-en\t1\n"


def _zip(members: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _beir(root: Path) -> Path:
    (root / "qrels").mkdir(parents=True)
    (root / "queries.jsonl").write_text(QUERIES, encoding="utf-8")
    (root / "qrels" / "test.tsv").write_text(QRELS, encoding="utf-8")
    return root


def _walk(paths: list[Path], limits: ReadLimits | None = None) -> tuple[list[str], list[str], Walker]:
    problems: list[str] = []
    walker = Walker(limits or ReadLimits(), lambda problem: problems.append(str(problem)))
    found = [item.entry.source for path in paths for item in walker.walk(path, path.name, lambda listing:
                                                                          listing.entries)]
    return found, problems, walker


def test_a_folder_lists_its_own_files_first_and_leaves_hidden_ones_out(tmp_path):
    root = tmp_path / "corpus"
    for name in ("b.txt", "a.txt", "sub/c.txt", "sub/.hidden.txt", ".git/config.txt", "a2/d.txt"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text("x", encoding="utf-8")
    found, problems, walker = _walk([root])
    assert found == ["corpus/a.txt", "corpus/b.txt", "corpus/a2/d.txt", "corpus/sub/c.txt"]
    assert problems == [] and walker.files_read == 4


def test_a_beir_folder_beside_macos_metadata_is_read_as_judgments(tmp_path):
    upload = tmp_path / "upload"
    _beir(upload / "scifact")
    (upload / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    judgments = load_judgments([upload])
    assert judgments.qrels == {"q1": {"tea-en": 1}}, judgments.problems
    assert judgments.sources[("q1", "tea-en")] == ("upload/scifact/qrels/test.tsv", 2)


def test_a_beir_zip_inside_a_zip_is_read_as_judgments(tmp_path):
    inner = _zip({"scifact/queries.jsonl": QUERIES.encode(), "scifact/qrels/test.tsv": QRELS.encode()})
    upload = tmp_path / "download.zip"
    upload.write_bytes(_zip({"scifact.zip": inner, "README.txt": b"from the hub"}))
    judgments = load_judgments([upload])
    assert judgments.qrels == {"q1": {"tea-en": 1}}, judgments.problems
    assert judgments.sources[("q1", "tea-en")] == ("download.zip!scifact.zip!scifact/qrels/test.tsv", 2)


def test_judgments_stop_at_max_files_like_corpora(tmp_path):
    queries = tmp_path / "queries.jsonl"
    queries.write_text(QUERIES, encoding="utf-8")
    qrels = tmp_path / "qrels.tsv"
    qrels.write_text(QRELS, encoding="utf-8")
    with pytest.raises(ValueError, match=r"no qrels file .*qrels.tsv: stopped at max_files=1; set SEARCH_MAX_FILES "
                                         r"to a larger number \(environment variable\) to read more; 1 file\(s\) were "
                                         r"not read"):
        load_judgments([queries, qrels], limits=ReadLimits(max_files=1))
    result = read_paths([queries, qrels], limits=ReadLimits(max_files=1))
    assert result.files_read == 1 and str(result.problems[-1]).startswith(f"{qrels}: stopped at max_files=1")


def test_judgments_refuse_nested_archives_past_max_zip_depth(tmp_path):
    inner = _zip({"queries.jsonl": QUERIES.encode(), "qrels/test.tsv": QRELS.encode()})
    upload = tmp_path / "outer.zip"
    upload.write_bytes(_zip({"mid.zip": _zip({"inner.zip": inner})}))
    with pytest.raises(ValueError, match=r"outer.zip!mid.zip!inner.zip: archive nested 3 deep is past "
                                         r"max_zip_depth=2"):
        load_judgments([upload])


# -- zip member names (issue 21 §5) ----------------------------------------------------------------------

def test_members_named_with_dot_parts_are_read(tmp_path):
    archive = tmp_path / "dots.zip"
    archive.write_bytes(_zip({"./a.txt": b"Alpha text", "docs/./b.txt": b"Beta text", "./.hidden.txt": b"no"}))
    result = read_paths([archive])
    assert [(document.doc_id, document.source) for document in result.documents] == [
        ("a", f"{archive}!a.txt"), ("b", f"{archive}!docs/b.txt")], result.problems
    assert result.problems == ()


def _utf8_name_without_flag(name: str, data: bytes) -> bytes:
    """A zip whose member name is UTF-8 bytes but whose UTF-8 flag is not set (as many tools write)."""
    raw = name.encode("utf-8")
    placeholder = b"x" * len(raw)
    archive = _zip({placeholder.decode(): data}, zipfile.ZIP_STORED)
    assert archive.count(placeholder) == 2  # the local header and the central directory
    return archive.replace(placeholder, raw)


def test_utf8_member_names_without_the_flag_are_read_as_utf8(tmp_path):
    archive = tmp_path / "names.zip"
    archive.write_bytes(_utf8_name_without_flag("café/über.txt", "Grüße".encode()))
    result = read_paths([archive], names=["names.zip"])
    assert [(document.doc_id, document.source, document.text) for document in result.documents] == [
        ("über", "names.zip!café/über.txt", "Grüße")], result.problems


def test_cp437_member_names_stay_cp437(tmp_path):
    raw = "R\u00e9sum\u00e9.txt".encode("cp437")  # a DOS-era name: not valid UTF-8
    archive = _zip({"x" * len(raw): b"old text"}, zipfile.ZIP_STORED).replace(b"x" * len(raw), raw)
    (tmp_path / "dos.zip").write_bytes(archive)
    result = read_paths([tmp_path / "dos.zip"], names=["dos.zip"])
    assert [document.source for document in result.documents] == ["dos.zip!Résumé.txt"]


# -- entry counts (issue 21 §3) --------------------------------------------------------------------------

def test_an_archive_listing_too_many_entries_is_refused_before_parsing(tmp_path):
    many = tmp_path / "many.zip"
    many.write_bytes(_zip({f"f{n}.txt": b"" for n in range(150)}))
    good = tmp_path / "good.txt"
    good.write_text("kept", encoding="utf-8")
    result = read_paths([many, good], names=["many.zip", "good.txt"], limits=ReadLimits(max_zip_entries=100))
    assert [document.text for document in result.documents] == ["kept"]
    assert [str(problem) for problem in result.problems] == [
        "many.zip: archive lists 150 entries, over max_zip_entries=100; skipped; set SEARCH_MAX_ZIP_ENTRIES=150 "
        "(environment variable) to read it"]


def test_entries_are_limited_across_the_archives_of_an_upload(tmp_path):
    paths = []
    for letter in "ab":
        path = tmp_path / f"{letter}.zip"
        path.write_bytes(_zip({f"{letter}{n}.txt": b"text" for n in range(60)}))
        paths.append(path)
    result = read_paths(paths, names=["a.zip", "b.zip"], limits=ReadLimits(max_zip_entries=100))
    assert len(result.documents) == 60
    assert [str(problem) for problem in result.problems] == [
        "b.zip: its 60 entries would take the archives of this upload past max_zip_entries=100 (60 listed so far); "
        "skipped; set SEARCH_MAX_ZIP_ENTRIES=120 (environment variable) to read it"]


def test_an_archive_that_understates_its_entries_is_refused(tmp_path):
    data = bytearray(_zip({f"f{n}.txt": b"" for n in range(150)}))
    end = data.rfind(b"PK\x05\x06")
    data[end + 8 : end + 12] = struct.pack("<HH", 10, 10)  # declares 10 entries; its directory holds 150
    (tmp_path / "liar.zip").write_bytes(bytes(data))
    result = read_paths([tmp_path / "liar.zip"], names=["liar.zip"], limits=ReadLimits(max_zip_entries=100))
    assert result.documents == ()
    assert [str(problem) for problem in result.problems] == [
        "liar.zip: its directory of 7,990 bytes is far larger than its 10 declared entries need (a damaged or "
        "hostile archive); skipped"]
