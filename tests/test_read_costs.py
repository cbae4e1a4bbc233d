"""Every cost of a read is bounded (issue 21 §3): documents and text while reading, passages while splitting,
memory per file, and the build summary can name the files that make the most passages."""

from __future__ import annotations

import io
import tracemalloc
import zipfile

import pytest

from search.limits import ReadLimits
from search.passages import SourceCount, TooManyPassages, passages_per_source, split_documents
from search.reading import read_paths
from search.types import Document


def _row_bomb(rows: int, row: str = "x") -> bytes:
    return ("text\n" + f"{row}\n" * rows).encode()


def test_a_row_bomb_stops_at_max_documents_with_the_limit_named(tmp_path):
    archive = tmp_path / "bomb.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as bundle:
        for number in range(4):
            bundle.writestr(f"rows{number}.csv", _row_bomb(5000))
    result = read_paths([archive], names=["bomb.zip"], limits=ReadLimits(max_documents=1000))
    assert len(result.documents) == 1000 and result.files_read == 1
    assert [str(problem) for problem in result.problems] == [
        "bomb.zip!rows0.csv, line 1002: stopped at max_documents=1,000; set SEARCH_MAX_DOCUMENTS to a larger number "
        "(environment variable) to read more; 3 file(s) were not read"]


def test_the_document_limit_has_a_default_and_an_environment_variable(monkeypatch):
    assert ReadLimits().max_documents == 200_000
    monkeypatch.setenv("SEARCH_MAX_DOCUMENTS", "12")
    monkeypatch.setenv("SEARCH_MAX_ZIP_ENTRIES", "34")
    monkeypatch.setenv("SEARCH_MAX_TEXT_CHARS", "56")
    assert (ReadLimits().max_documents, ReadLimits().max_zip_entries, ReadLimits().max_text_chars) == (12, 34, 56)


def test_text_kept_is_bounded_by_max_text_chars(tmp_path):
    for name in ("a.txt", "b.txt", "c.txt"):
        (tmp_path / name).write_text(name[0] * 400, encoding="utf-8")
    result = read_paths([tmp_path], names=["up"], limits=ReadLimits(max_text_chars=1000))
    assert [document.doc_id for document in result.documents] == ["a", "b"]
    assert [str(problem) for problem in result.problems] == [
        "up/c.txt: stopped: this text would take the documents past max_text_chars=1,000 characters (800 kept so "
        "far); set SEARCH_MAX_TEXT_CHARS to a larger number (environment variable) to read more; 0 file(s) were not "
        "read"]


def test_reading_a_million_rows_up_to_the_limit_never_holds_a_million_lines(tmp_path):
    path = tmp_path / "rows.csv"
    path.write_bytes(_row_bomb(1_000_000, "ab"))  # 3 MB: a list of its lines alone would take about 60 MB
    tracemalloc.start()
    try:
        result = read_paths([path], limits=ReadLimits(max_documents=100))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(result.documents) == 100
    assert peak < 25_000_000, f"peak {peak:,} bytes"


def test_a_memory_error_in_a_parser_costs_only_its_file(tmp_path, monkeypatch):
    from search import formats

    def exhausted(data, context):
        yield formats.Record("first", "kept before memory ran out")
        raise MemoryError

    monkeypatch.setitem(formats.PARSERS, ".md", exhausted)
    (tmp_path / "big.md").write_text("x", encoding="utf-8")
    (tmp_path / "good.txt").write_text("A good file.", encoding="utf-8")
    result = read_paths([tmp_path / "big.md", tmp_path / "good.txt"], names=["big.md", "good.txt"])
    assert [document.doc_id for document in result.documents] == ["first", "good"]
    assert [str(problem) for problem in result.problems] == [
        "big.md: ran out of memory reading this file; the rest of it was skipped; the 1 document(s) read before it "
        "are kept"]


def test_splitting_counts_past_the_passage_limit_without_keeping_the_passages():
    documents = [Document(f"d{n}", f"word{n} " * 30) for n in range(4000)]
    tracemalloc.start()
    try:
        with pytest.raises(TooManyPassages) as refused:
            split_documents(documents, max_passages=50)
        _, limited = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        split_documents(documents)
        _, unlimited = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (refused.value.passages, refused.value.limit, refused.value.documents) == (4000, 50, 4000)
    assert str(refused.value) == "the 4,000 documents make 4,000 passages, more than max_passages=50"
    assert limited * 5 < unlimited, (limited, unlimited)
    assert len(split_documents(documents[:50], max_passages=50)) == 50


def test_passages_per_source_puts_the_largest_contributors_first(tmp_path):
    (tmp_path / "junk.md").write_text(" ".join(["**storm**"] * 2000), encoding="utf-8")
    (tmp_path / "note.txt").write_text("A short note.", encoding="utf-8")
    (tmp_path / "rows.csv").write_text("text\nfirst row\nsecond row\n", encoding="utf-8")
    passages = split_documents(read_paths([tmp_path], names=["up"]).documents, window=100, overlap=10)
    assert passages_per_source(passages) == (SourceCount("up/junk.md", 23, 1), SourceCount("up/rows.csv", 2, 2),
                                             SourceCount("up/note.txt", 1, 1))


def test_an_entry_count_bomb_of_nested_archives_is_refused_archive_by_archive(tmp_path):
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w", zipfile.ZIP_DEFLATED) as archive:
        for number in range(300):
            archive.writestr(f"e{number}", b"")
    outer = tmp_path / "nested.zip"
    with zipfile.ZipFile(outer, "w", zipfile.ZIP_DEFLATED) as archive:
        for number in range(5):
            archive.writestr(f"inner{number}.zip", inner.getvalue())
        archive.writestr("good.txt", b"kept")
    result = read_paths([outer], names=["nested.zip"], limits=ReadLimits(max_zip_entries=200))
    assert [document.text for document in result.documents] == ["kept"]
    assert [problem.source for problem in result.problems] == [f"nested.zip!inner{n}.zip" for n in range(5)]
    assert all("archive lists 300 entries, over max_zip_entries=200" in problem.message
               for problem in result.problems)
