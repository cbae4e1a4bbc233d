"""Relevance judgments in and out: queries and qrels as users upload them, checked against a corpus,
and written back as TREC / TSV text.

Reading never raises on bad content: each bad line becomes a `Problem` naming the file and line, and
every good line is kept. What is read:

- qrels: TREC (``qid 0 docid grade``) or BEIR TSV (``query-id<TAB>corpus-id<TAB>score``, header optional);
- queries: BEIR JSONL (``{"_id": ..., "text": ...}``) or TSV (``id<TAB>query text``);
- a BEIR folder, or a ``.zip`` of one (``queries.jsonl`` + ``qrels/test.tsv``; ``corpus.jsonl`` is the
  corpus and is not read here), or a ``.zip`` holding such a ``.zip``. Uploads are walked by
  `search.walker`, as corpora are: the same limits (`ReadLimits`), hidden files left out.

Loose uploaded files are told apart by content, not by name: qrels lines have 3-4 fields ending in a whole
number, query TSV lines exactly one tab. A judgment's file and line are kept in `Judgments.sources`, so a
judged id that the corpus lacks can be named where it was written.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path, PurePosixPath
from typing import Literal, NamedTuple

from .decoding import decode_text, replaced_surrogates, valid_unicode
from .files import short_error, suffix
from .formats.json_records import JsonError, load_json
from .ids import id_text
from .limits import ReadLimits
from .types import Passage, Problem
from .walker import ARCHIVE, Entry, Listing, Walker

logger = logging.getLogger(__name__)

Level = Literal["document", "passage"]
Source = tuple[str, int]  # (file display name, 1-based line)

MAX_LISTED_UNMATCHED = 50  # judged ids missing from the corpus named one by one; the rest are counted
QRELS_SUFFIXES = (".trec", ".qrels", ".txt", ".tsv")

_QRELS_HEADER_IDS = frozenset({"query-id", "query_id", "qid", "query"})
_QUERY_HEADER_IDS = frozenset({"query-id", "query_id", "qid", "id", "_id"})
_QUERY_HEADER_TEXTS = frozenset({"text", "query", "query-text", "query_text", "question", "title"})
_BREAKS = re.compile(r"[\t\r\n\v\f\x1c-\x1e\x85\u2028\u2029]+")  # whatever could end a TSV line
_GRADE = re.compile(r"[+-]?\d{1,9}(?:\.0*)?")  # bounded: pytrec_eval takes C ints
_SNIFF_LINES = 20
_SHOWN_UNKNOWN_QUERIES = 5
_SHOWN_LINES = 3
_QRELS_FOLDER_PREFERENCE = ("test.tsv", "dev.tsv")
_QRELS_TOP_LEVEL = ("qrels.trec", "qrels/test.trec", "qrels.tsv")

QUERIES_HELP = ("BEIR queries.jsonl (one {\"_id\": ..., \"text\": ...} object per line) or a TSV file of "
                "query id<TAB>query text")
QRELS_HELP = ("TREC qrels (query-id 0 doc-id grade per line) or BEIR qrels/test.tsv "
              "(query-id<TAB>corpus-id<TAB>score)")


@dataclass(frozen=True)
class Query:
    query_id: str
    text: str


@dataclass(frozen=True)
class Judgments:
    """Queries and graded relevance judgments (qrels: query id -> judged id -> grade).

    `sources` maps (query id, judged id) to the (file, line) the judgment was read from; it is empty for
    judgments that come from no file (e.g. made from a SQuAD dataset).
    """

    queries: tuple[Query, ...]
    qrels: Mapping[str, Mapping[str, int]]
    problems: tuple[Problem, ...] = ()
    sources: Mapping[tuple[str, str], Source] = field(default_factory=dict)


class QrelsFile(NamedTuple):
    """What `read_qrels` found in one file: the grades, the bad lines, and each judgment's (file, line)."""

    qrels: dict[str, dict[str, int]]
    problems: tuple[Problem, ...]
    sources: dict[tuple[str, str], Source]


@dataclass(frozen=True)
class JudgmentMatch:
    """How judgments meet a corpus: at which level, how many distinct judged ids and how many the corpus
    has; `problems` name the qrels file and line of judged ids it lacks."""

    level: Level
    judged: int
    matched: int
    problems: tuple[Problem, ...]


class _QueriesFile(NamedTuple):
    name: str
    queries: tuple[tuple[Query, int], ...]  # each query with its line
    problems: tuple[Problem, ...]


# -- reading one file ---------------------------------------------------------------------------------

def read_queries(path: str | Path, name: str | None = None) -> tuple[tuple[Query, ...], tuple[Problem, ...]]:
    """Read queries from BEIR JSONL (``{"_id", "text"}`` per line) or TSV (``id<TAB>query``; a header
    line is skipped). Bad lines and repeated ids become Problems naming `name` (default: the file name)
    and the line; the good ones are kept. Raises ValueError when the file is not UTF-8 text.

    >>> read_queries("queries.tsv")  # doctest: +SKIP
    ((Query(query_id='q1', text='what is tea'),), (Problem(source='queries.tsv', message=..., line=2),))
    """
    path = Path(path)
    display = name or path.name
    parsed = _parse_queries(_decode(path.read_bytes(), display), display)
    return tuple(query for query, _ in parsed.queries), parsed.problems


def read_qrels(path: str | Path, name: str | None = None) -> QrelsFile:
    """Read TREC qrels (``qid 0 docid grade``) or BEIR qrels TSV (``query-id<TAB>corpus-id<TAB>score``,
    header optional) into a `QrelsFile` (qrels, problems, sources).

    Malformed lines (wrong field count, a grade that is not a whole number) become Problems naming
    `name` (default: the file name) and the line; a judgment repeated with another grade keeps the first.
    Raises ValueError when the file is not UTF-8 text.
    """
    path = Path(path)
    display = name or path.name
    return _parse_qrels(_decode(path.read_bytes(), display), display)


def read_judgments(queries_path: str | Path, qrels_path: str | Path) -> Judgments:
    """Queries and qrels from two known files; qrels of unknown queries are reported and left out."""
    queries_path, qrels_path = Path(queries_path), Path(qrels_path)
    queries = _parse_queries(_decode(queries_path.read_bytes(), queries_path.name), queries_path.name)
    qrels = read_qrels(qrels_path)
    return _combine([queries], [(qrels_path.name, qrels)], [])


def _parse_queries(text: str, name: str) -> _QueriesFile:
    jsonl = suffix(name) == ".jsonl" or next(_nonblank_lines(text), "").lstrip().startswith("{")
    queries: list[tuple[Query, int]] = []
    problems: list[Problem] = []
    first_line: dict[str, int] = {}
    first = True
    replaced = 0
    for number, line in _numbered_lines(text):
        if not line.strip():
            continue
        if jsonl:
            try:
                record = load_json(line)
            except JsonError as error:
                problems.append(Problem(name, f"not valid JSON ({error.reason}); line skipped", number))
                continue
            if not isinstance(record, dict):
                problems.append(Problem(name, 'expected a JSON object with "_id" and "text"; line skipped', number))
                continue
            query_id, query_text = id_text(record.get("_id", record.get("id"))), id_text(record.get("text"))
            if query_id and query_text:
                (query_id, in_id), (query_text, in_text) = valid_unicode(query_id), valid_unicode(query_text)
                replaced += in_id + in_text
        else:
            query_id, _, query_text = (part.strip() for part in line.partition("\t"))
            if first and query_id.lower() in _QUERY_HEADER_IDS and query_text.lower() in _QUERY_HEADER_TEXTS:
                first = False
                continue
        first = False
        if not query_id or not query_text:
            what = '"_id" and "text"' if jsonl else "a query id, a tab and the query text"
            problems.append(Problem(name, f"expected {what}; line skipped", number))
        elif query_id in first_line:
            problems.append(Problem(name, f"query id {query_id!r} appears again (first on line "
                                          f"{first_line[query_id]}); the first one is kept", number))
        else:
            first_line[query_id] = number
            queries.append((Query(query_id, query_text), number))
    if replaced:
        problems.append(Problem(name, replaced_surrogates(replaced), skipped=False))
    return _QueriesFile(name, tuple(queries), tuple(problems))


def _parse_qrels(text: str, name: str) -> QrelsFile:
    qrels: dict[str, dict[str, int]] = {}
    sources: dict[tuple[str, str], Source] = {}
    problems: list[Problem] = []
    first = True
    for number, line in _numbered_lines(text):
        fields = _qrels_fields(line)
        if not fields:
            continue
        if first and fields[0].lower() in _QRELS_HEADER_IDS and not _GRADE.fullmatch(fields[-1]):
            first = False
            continue
        first = False
        if len(fields) == 4:
            query_id, _, judged_id, grade_text = fields
        elif len(fields) == 3:
            query_id, judged_id, grade_text = fields
        else:
            problems.append(Problem(name, f"expected 'query 0 doc grade' (TREC) or 'query<TAB>doc<TAB>grade' "
                                          f"(BEIR), found {len(fields)} fields; line skipped", number))
            continue
        if not _GRADE.fullmatch(grade_text):
            problems.append(Problem(name, f"grade {grade_text!r} is not a whole number; line skipped", number))
            continue
        grade = int(float(grade_text))
        key = (query_id, judged_id)
        if key in sources:
            kept = qrels[query_id][judged_id]
            if kept != grade:
                problems.append(Problem(name, f"{judged_id!r} is judged again for query {query_id!r} with grade "
                                              f"{grade}; the first grade {kept} (line {sources[key][1]}) is kept",
                                        number))
            continue
        qrels.setdefault(query_id, {})[judged_id] = grade
        sources[key] = (name, number)
    return QrelsFile(qrels, tuple(problems), sources)


def _qrels_fields(line: str) -> list[str]:
    # BEIR TSV may hold ids with spaces; fall back to whitespace (TREC) when tabs don't give 3-4 fields.
    stripped = line.strip()
    if "\t" in stripped:
        fields = [part.strip() for part in stripped.split("\t")]
        if len(fields) in (3, 4) and all(fields):
            return fields
    return stripped.split()


def _combine(query_files: Sequence[_QueriesFile], qrels_files: Sequence[tuple[str, QrelsFile]],
             problems: list[Problem]) -> Judgments:
    """Merge several queries and qrels files: the first of a repeated query or judgment is kept, and
    judgments of queries that no queries file has are left out with a Problem per qrels file."""
    queries: dict[str, Query] = {}
    origin: dict[str, Source] = {}
    for parsed in query_files:
        problems.extend(parsed.problems)
        for query, line in parsed.queries:
            if query.query_id in origin:
                first_name, first_line = origin[query.query_id]
                problems.append(Problem(parsed.name, f"query id {query.query_id!r} appears again (first in "
                                                     f"{first_name}, line {first_line}); the first one is kept", line))
                continue
            queries[query.query_id] = query
            origin[query.query_id] = (parsed.name, line)
    query_names = ", ".join(dict.fromkeys(parsed.name for parsed in query_files)) or "the queries"
    qrels: dict[str, dict[str, int]] = {}
    sources: dict[tuple[str, str], Source] = {}
    for name, parsed in qrels_files:
        problems.extend(parsed.problems)
        unknown: dict[str, list[int]] = {}
        for (query_id, judged_id), (source, line) in parsed.sources.items():
            grade = parsed.qrels[query_id][judged_id]
            if query_id not in queries:
                unknown.setdefault(query_id, []).append(line)
            elif (query_id, judged_id) in sources:
                kept, (first_name, first_line) = qrels[query_id][judged_id], sources[(query_id, judged_id)]
                if kept != grade:
                    problems.append(Problem(source, f"{judged_id!r} is judged again for query {query_id!r} with "
                                                    f"grade {grade}; the first grade {kept} ({first_name}, line "
                                                    f"{first_line}) is kept", line))
            else:
                qrels.setdefault(query_id, {})[judged_id] = grade
                sources[(query_id, judged_id)] = (source, line)
        if unknown:
            problems.append(_unknown_queries(name, unknown, query_names))
    return Judgments(tuple(queries.values()), qrels, tuple(problems), sources)


def _unknown_queries(name: str, unknown: Mapping[str, Sequence[int]], query_names: str) -> Problem:
    shown = ", ".join(f"{query_id} ({_lines(lines)})"
                      for query_id, lines in islice(unknown.items(), _SHOWN_UNKNOWN_QUERIES))
    more = f" and {len(unknown) - _SHOWN_UNKNOWN_QUERIES} more" if len(unknown) > _SHOWN_UNKNOWN_QUERIES else ""
    judgments = sum(len(lines) for lines in unknown.values())
    first_line = min(lines[0] for lines in unknown.values())
    return Problem(name, f"{judgments} judgment(s) name {len(unknown)} query id(s) that are not in {query_names} "
                         f"and are left out: {shown}{more}", first_line)


def _lines(lines: Sequence[int]) -> str:
    if len(lines) == 1:
        return f"line {lines[0]}"
    listed = ", ".join(str(line) for line in lines[:_SHOWN_LINES])
    return f"lines {listed}{' …' if len(lines) > _SHOWN_LINES else ''}"


# -- loading what a user uploads ----------------------------------------------------------------------

def load_judgments(paths: Sequence[str | Path], names: Sequence[str] | None = None, *,
                   limits: ReadLimits | None = None) -> Judgments:
    """Read judgments from what a user uploads, and merge them.

    Accepts, in any mix and order: a qrels file and a queries file (told apart by their content); a
    BEIR folder (``queries.jsonl`` + ``qrels/test.tsv``, else another ``qrels/*.tsv``; ``corpus.jsonl``
    is ignored); a ``.zip`` of such a folder, with or without a top folder inside. Several qrels (or
    queries) files are merged. `names` gives each path's display name (e.g. an upload's original name),
    used in Problems. `limits` defaults to `ReadLimits()` (the environment variables of `LIMIT_ENV` where set).

    Bad lines, unknown query ids in the qrels and files that are neither become Problems naming the file
    and line. Raises ValueError when there are no queries or no qrels (the message says what to upload),
    or for misuse (no paths, a bare string, `names` of another length).

    >>> judgments = load_judgments(["qrels.trec", "queries.tsv"])  # doctest: +SKIP
    >>> judgments = load_judgments(["scifact.zip"])  # doctest: +SKIP
    """
    if isinstance(paths, (str, bytes, os.PathLike)):
        raise ValueError(f"paths={paths!r} is a single path; pass a list of paths, e.g. [{str(paths)!r}]")
    if len(paths) == 0:
        raise ValueError(f"no file given; upload a qrels file and a queries file ({QRELS_HELP}; {QUERIES_HELP}), "
                         "or a BEIR folder or .zip")
    if names is not None and len(names) != len(paths):
        raise ValueError(f"names has {len(names)} entries but paths has {len(paths)}; give one name per path")
    loader = _Loader(limits if limits is not None else ReadLimits())  # read now: the environment may change
    displays = []
    for position, path in enumerate(paths):
        display = names[position] if names is not None else Path(path).name
        displays.append(display)
        loader.guarded(display, loader.add, Path(path), display)
    return loader.judgments(displays)


class _Loader:
    """Collects queries and qrels files from uploads, walked by `search.walker` within one read's limits."""

    def __init__(self, limits: ReadLimits) -> None:
        self.limits = limits
        self.queries: list[_QueriesFile] = []
        self.qrels: list[tuple[str, QrelsFile]] = []
        self.problems: list[Problem] = []
        self.walker = Walker(limits, self.problems.append)
        self._roles: dict[str, str] = {}  # entry source -> "queries", "qrels" or "loose" (told by content)

    def guarded(self, source: str, action: Callable[..., None], *args: object) -> None:
        """Run one step; any error it raises becomes a Problem naming `source`, so one bad file never
        costs the others."""
        try:
            action(*args)
        except Exception as error:  # the boundary: a bug or an unforeseen library error costs this file only
            logger.warning("reading judgments from %s failed", source, exc_info=True)
            self.problems.append(Problem(source, f"could not be read ({type(error).__name__}: "
                                                 f"{short_error(error)}); skipped"))

    def add(self, path: Path, display: str) -> None:
        for found in self.walker.walk(path, display, self._choose):
            source = found.entry.source
            text = self._decode(found.data, source)
            if text is None:
                continue
            role = self._roles.get(source, "loose")
            if role == "loose":
                self._add_loose(text, source)
            else:
                self.guarded(source, self._parse, role, text, source)

    def judgments(self, displays: Sequence[str]) -> Judgments:
        stopped = self.walker.stop_problem()
        if stopped is not None:
            self.problems.append(stopped)
        given = ", ".join(displays)
        unused = [str(problem) for problem in self.problems if problem.line is None]
        skipped = f". Not used: {'; '.join(unused)}" if unused else ""
        if not self.queries:
            raise ValueError(f"no queries file among {given}: upload the queries too, as {QUERIES_HELP}{skipped}")
        if not self.qrels:
            raise ValueError(f"no qrels file among {given}: upload the relevance judgments too, as {QRELS_HELP}"
                             f"{skipped}")
        judgments = _combine(self.queries, self.qrels, self.problems)
        if not judgments.queries:
            reasons = "; ".join(str(problem) for problem in judgments.problems[:3])
            raise ValueError(f"no query could be read from {', '.join(f.name for f in self.queries)} ({reasons}); "
                             f"queries must be {QUERIES_HELP}")
        qrels_names = ", ".join(name for name, _ in self.qrels)
        if not any(parsed.qrels for _, parsed in self.qrels):
            reasons = "; ".join(str(problem) for _, parsed in self.qrels for problem in parsed.problems[:3])
            raise ValueError(f"{qrels_names} hold(s) no judgment ({reasons or 'no lines'}); qrels must be "
                             f"{QRELS_HELP}")
        if not judgments.qrels:
            reasons = "; ".join(str(problem) for problem in judgments.problems[-3:])
            raise ValueError(f"no judgment of {qrels_names} names a query of the queries file ({reasons}); "
                             "check that both files come from the same dataset")
        return judgments

    def _choose(self, listing: Listing) -> list[Entry]:
        """A file given directly is read and told apart by content; of a folder or archive, the queries and
        qrels of its BEIR layout are read, and the archives in it are walked in turn."""
        if listing.kind == "file":
            return list(listing.entries)
        files = [entry for entry in listing.entries if entry.kind != ARCHIVE]
        archives = [entry for entry in listing.entries if entry.kind == ARCHIVE]
        stripped = _strip_top_folders([entry.path for entry in files])
        by_path = {entry.path: entry for entry in files}
        queries = _first_present(stripped, ("queries.jsonl", "queries.tsv"))
        qrels, others = _beir_qrels(stripped)
        what = "folder" if listing.kind == "folder" else "archive"
        if queries is None and qrels is None:
            if files and not archives:
                self.problems.append(Problem(listing.source, f"this {what} holds neither queries.jsonl nor "
                                                             "qrels/test.tsv (a BEIR layout); ignored"))
            return archives
        if others:
            self.problems.append(Problem(listing.source, f"used {qrels} of the qrels files "
                                                         f"{', '.join([qrels, *others])}; upload another one "
                                                         "separately to use it", skipped=False))
        chosen = []
        for role, relative in (("queries", queries), ("qrels", qrels)):
            if relative is not None:
                entry = by_path[stripped[relative]]
                self._roles[entry.source] = role
                chosen.append(entry)
        return chosen + archives

    def _add_loose(self, text: str, display: str) -> None:
        kind = _sniff(display, text)
        if kind in ("qrels", "queries"):
            self.guarded(display, self._parse, kind, text, display)
        elif kind == "corpus":
            self.problems.append(Problem(display, "a corpus file, not judgments; ignored here"))
        else:
            self.problems.append(Problem(display, f"neither qrels ({QRELS_HELP}) nor queries ({QUERIES_HELP}); "
                                                  "ignored"))

    def _parse(self, kind: str, text: str, name: str) -> None:
        if kind == "queries":
            self.queries.append(_parse_queries(text, name))
        else:
            self.qrels.append((name, _parse_qrels(text, name)))

    def _decode(self, data: bytes, name: str) -> str | None:
        try:
            return _decode(data, name)
        except ValueError as error:
            self.problems.append(Problem(name, f"{error}; skipped"))
            return None


def _strip_top_folders(members: Sequence[str]) -> dict[str, str]:
    """Relative path without the top folders every member shares -> the member's own path."""
    stripped = {member: member for member in members}
    while stripped:
        tops = {relative.split("/", 1)[0] for relative in stripped}
        if len(tops) != 1 or any("/" not in relative for relative in stripped) or tops == {"qrels"}:
            break
        stripped = {relative.split("/", 1)[1]: member for relative, member in stripped.items()}
    return stripped


def _first_present(members: Mapping[str, str], names: Sequence[str]) -> str | None:
    return next((name for name in names if name in members), None)


def _beir_qrels(members: Mapping[str, str]) -> tuple[str | None, list[str]]:
    """The qrels file of a BEIR layout (test.tsv, else the only/dev/first qrels/*.tsv, else a TREC file),
    with the other qrels/*.tsv files when the choice was not obvious."""
    split_files = sorted(name for name in members if re.fullmatch(r"qrels/[^/]+\.tsv", name))
    if "qrels/test.tsv" in split_files:
        return "qrels/test.tsv", []
    if split_files:
        chosen = next((f"qrels/{name}" for name in _QRELS_FOLDER_PREFERENCE if f"qrels/{name}" in split_files),
                      split_files[0])
        return chosen, [name for name in split_files if name != chosen]
    trec = sorted(name for name in members if "/" not in name and name.endswith(".qrels"))
    return _first_present(members, _QRELS_TOP_LEVEL) or next(iter(trec), None), []


def _sniff(name: str, text: str) -> Literal["qrels", "queries", "corpus"] | None:
    """What a loose file holds, by its first lines; the name decides only when the content can't."""
    kind, stem = suffix(name), PurePosixPath(name).stem.lower()
    lines = list(islice(_nonblank_lines(text), _SNIFF_LINES))
    if stem == "corpus":
        return "corpus"
    if kind == ".jsonl" or (lines and lines[0].lstrip().startswith("{")):
        records = [record for record in map(_json_object, lines) if record is not None]
        if records and sum("title" in record for record in records) * 2 > len(records):
            return "corpus"  # BEIR corpus records have titles, queries don't
        return "queries" if any(id_text(r.get("_id", r.get("id"))) and "text" in r for r in records) else None
    if kind not in (*QRELS_SUFFIXES, ""):
        return None
    body = lines[1:] if lines and _is_header(lines[0]) else lines
    qrels_votes = sum(_looks_like_qrels(line) for line in body)
    query_votes = sum(_looks_like_query_tsv(line) for line in body)
    if body and qrels_votes > query_votes and qrels_votes * 2 >= len(body):
        return "qrels"
    if body and query_votes > qrels_votes and query_votes * 2 >= len(body):
        return "queries"
    lowered = name.lower()
    if "qrel" in lowered or kind in (".trec", ".qrels"):
        return "qrels"
    if "quer" in lowered or "topic" in lowered:
        return "queries"
    return None


def _looks_like_qrels(line: str) -> bool:
    fields = _qrels_fields(line)
    tabs = line.strip().count("\t")
    return 3 <= len(fields) <= 4 and bool(_GRADE.fullmatch(fields[-1])) and tabs in (0, 2, 3)


def _looks_like_query_tsv(line: str) -> bool:
    query_id, tab, text = line.strip().partition("\t")
    return bool(tab and query_id.strip() and text.strip() and "\t" not in text)


def _is_header(line: str) -> bool:
    fields = _qrels_fields(line)
    return bool(fields) and fields[0].lower() in _QRELS_HEADER_IDS | _QUERY_HEADER_IDS and not _GRADE.fullmatch(
        fields[-1])


def _json_object(line: str) -> dict | None:
    try:
        value = load_json(line)
    except JsonError:
        return None
    return value if isinstance(value, dict) else None


def _decode(data: bytes, name: str) -> str:
    """UTF-8 text (a BOM of any UTF is honoured); raises ValueError naming `name` otherwise: ids must
    match the corpus byte for byte, so no legacy encoding is guessed."""
    decoded = decode_text(data, name, legacy=False)
    if decoded.text is None:
        raise ValueError(decoded.problems[-1].message)
    return decoded.text


def _numbered_lines(text: str) -> Iterator[tuple[int, str]]:
    # Split on newlines only: str.splitlines() also breaks at U+2028 and form feeds, which would
    # shift line numbers away from what an editor shows and cut JSON strings in two.
    for number, line in enumerate(text.split("\n"), start=1):
        yield number, line.rstrip("\r")


def _nonblank_lines(text: str) -> Iterator[str]:
    return (line for _, line in _numbered_lines(text) if line.strip())


# -- against a corpus ---------------------------------------------------------------------------------

def match_judgments(judgments: Judgments, passages: Sequence[Passage]) -> JudgmentMatch:
    """Decide whether the qrels name documents or passages (``doc#0``) — whichever matches more judged
    ids — and name, with its qrels file and line, each judged id the corpus lacks at that level
    (the first MAX_LISTED_UNMATCHED, then one "… and N more" Problem). These are warnings: such a
    judgment still counts as relevant, it just can never be retrieved."""
    first_query: dict[str, str] = {}
    for query_id, judged in judgments.qrels.items():
        for judged_id in judged:
            first_query.setdefault(judged_id, query_id)
    doc_ids = {passage.doc_id for passage in passages}
    passage_ids = {passage.passage_id for passage in passages}
    documents = sum(judged_id in doc_ids for judged_id in first_query)
    passage_matches = sum(judged_id in passage_ids for judged_id in first_query)
    level: Level = "passage" if passage_matches > documents else "document"
    known = passage_ids if level == "passage" else doc_ids
    missing = [(query_id, judged_id) for judged_id, query_id in first_query.items() if judged_id not in known]
    file_order = {name: position for position, name in
                  enumerate(dict.fromkeys(name for name, _ in judgments.sources.values()))}

    def where(judgment: tuple[str, str]) -> tuple[int, int]:
        source = judgments.sources.get(judgment)
        return (file_order[source[0]], source[1]) if source else (len(file_order), 0)

    missing.sort(key=where)
    problems = []
    for query_id, judged_id in missing[:MAX_LISTED_UNMATCHED]:
        name, line = judgments.sources.get((query_id, judged_id), ("qrels", None))
        problems.append(Problem(name, f"judged id {judged_id!r} (query {query_id!r}) is not a {level} id of the "
                                      "corpus; it counts as relevant but can never be retrieved", line, skipped=False))
    if len(missing) > MAX_LISTED_UNMATCHED:
        rest = missing[MAX_LISTED_UNMATCHED:]
        names = ", ".join(dict.fromkeys(judgments.sources.get(j, ("qrels", 0))[0] for j in rest))
        problems.append(Problem(names, f"… and {len(rest)} more judged ids that are not in the corpus",
                                skipped=False))
    return JudgmentMatch(level, len(first_query), len(first_query) - len(missing), tuple(problems))


# -- writing ------------------------------------------------------------------------------------------

def qrels_to_trec(qrels: Mapping[str, Mapping[str, int]]) -> str:
    """TREC qrels text, ``qid 0 id grade`` per line, sorted by query id then judged id.

    Raises ValueError for an id holding whitespace, which TREC files cannot hold.

    >>> qrels_to_trec({"q2": {"b": 1}, "q1": {"a": 2}})
    'q1 0 a 2\\nq2 0 b 1\\n'
    """
    lines = []
    for query_id in sorted(qrels):
        for judged_id in sorted(qrels[query_id]):
            lines.append(f"{_token(query_id, 'query id')} 0 {_token(judged_id, 'judged id')} "
                         f"{int(qrels[query_id][judged_id])}\n")
    return "".join(lines)


def queries_to_tsv(queries: Iterable[Query]) -> str:
    """``id<TAB>text`` per query, in the given order; tabs and line breaks in a text become spaces (a
    line must hold one query). Raises ValueError for an id holding whitespace.

    >>> queries_to_tsv([Query("q1", "what is tea")])
    'q1\\twhat is tea\\n'
    """
    return "".join(f"{_token(query.query_id, 'query id')}\t{_BREAKS.sub(' ', query.text).strip()}\n"
                   for query in queries)


def run_to_trec(rankings: Mapping[str, Sequence[tuple[str, float]]], run_name: str) -> str:
    """A TREC run, ``qid Q0 id rank score run_name`` per line: ranks from 1 in the given order, queries
    in the given order. trec_eval orders by score, not rank, so pass scores that decrease down a ranking.
    Raises ValueError for an id or run name holding whitespace or an id repeated within a query.

    >>> run_to_trec({"q1": [("a", 2.5), ("b", 1.0)]}, "bm25")
    'q1 Q0 a 1 2.5 bm25\\nq1 Q0 b 2 1.0 bm25\\n'
    """
    _token(run_name, "run name")
    lines = []
    for query_id, ranking in rankings.items():
        _token(query_id, "query id")
        seen: set[str] = set()
        for rank, (ranked_id, score) in enumerate(ranking, start=1):
            if ranked_id in seen:
                raise ValueError(f"{ranked_id!r} is ranked twice for query {query_id!r}; a run lists each id once "
                                 "(deduplicate the ranking first)")
            seen.add(ranked_id)
            lines.append(f"{query_id} Q0 {_token(ranked_id, 'ranked id')} {rank} {float(score)!r} {run_name}\n")
    return "".join(lines)


def _token(value: str, what: str) -> str:
    if not value or any(char.isspace() for char in value):
        raise ValueError(f"{what} {value!r} is empty or holds whitespace, which TREC/TSV files cannot hold; "
                         "use ids without spaces (e.g. rename the file the id comes from)")
    return value

