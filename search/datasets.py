"""Datasets for evaluation: a corpus with its queries and judgments, from a SQuAD-format JSON file or a
BEIR-style folder, and the same questions asked in another language (`cross_lingual_judgments`).

Reading judgment files (qrels, queries) lives in `search.judgments`; the metrics in `search.metrics`; the
runs over an index in `search.evaluation`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .decoding import decode_text
from .formats.json_records import JsonError, load_json
from .formats.squad import is_squad, squad_paragraphs
from .judgments import Judgments, Query, load_judgments
from .limits import FileBudget, LimitExceeded, ReadLimits
from .reading import read_paths
from .types import Problem, ReadResult


@dataclass(frozen=True)
class Dataset:
    """A corpus with its judgments, as read from a SQuAD JSON file or a BEIR-style folder."""

    name: str
    corpus: ReadResult
    judgments: Judgments


def load_dataset(path: str | Path, *, queries_from: str | Path | None = None, text_column: str | None = None,
                 encoding: str | None = None) -> Dataset:
    """Read a SQuAD-format JSON file or a BEIR-style folder.

    SQuAD: each paragraph is a document and each question a query whose one relevant document is its
    paragraph; both ids come from `formats.squad.squad_paragraphs` (the paragraph's ``id``, else
    ``article-paragraph``; repeats kept as ``id~2``), as the corpus reader names them. BEIR folder:
    `corpus.jsonl`, `queries.jsonl` (or `queries.tsv`) and `qrels/test.tsv` (or another `qrels/*.tsv`, a TREC
    `qrels.trec` / `*.qrels`). Raises ValueError naming what is missing.

    `queries_from`: another dataset (SQuAD file or BEIR folder) whose query ids match this one's, e.g. the
    same XQuAD questions in another language. Its questions are asked against this dataset's passages and
    judged by this dataset's judgments (see `cross_lingual_judgments`). `text_column` and `encoding` read
    the corpus as `search.reading.read_paths` does.
    """
    dataset = _read_dataset(Path(path), text_column=text_column, encoding=encoding)
    if queries_from is None:
        return dataset
    other = Path(queries_from)
    judgments = cross_lingual_judgments(dataset.judgments, _read_judgments_only(other), str(other))
    return Dataset(f"{dataset.name} (queries of {_dataset_name(other)})", dataset.corpus, judgments)


def cross_lingual_judgments(judgments: Judgments, other: Judgments, source: str) -> Judgments:
    """`judgments` with the query texts of `other` (matched by query id): the queries of `other` that
    `judgments` judges, in `other`'s order. Queries of `other` without judgments here are left out, with a
    warning in `problems`. Raises ValueError when no query id matches.

    >>> german = Judgments((Query("q1", "Wann kam Tee nach Japan?"),), {"q1": {"tea": 1}})
    >>> english = Judgments((Query("q1", "When did tea reach Japan?"), Query("q9", "?")), {})
    >>> both = cross_lingual_judgments(german, english, "en.json")
    >>> both.queries
    (Query(query_id='q1', text='When did tea reach Japan?'),)
    >>> dict(both.qrels), [str(problem) for problem in both.problems]
    ({'q1': {'tea': 1}}, ['en.json: 1 of its 2 queries has no judgments in the dataset and is left out'])
    """
    judged = {query_id for query_id, grades in judgments.qrels.items() if grades}
    queries = tuple(query for query in other.queries if query.query_id in judged)
    if not queries:
        raise ValueError(f"none of the {len(other.queries)} queries of {source} has an id that the dataset judges; "
                         "--queries-from needs a dataset with the same query ids (e.g. another language of XQuAD)")
    problems = [*judgments.problems, *other.problems]
    left_out = len(other.queries) - len(queries)
    if left_out:
        has, are = ("has", "is") if left_out == 1 else ("have", "are")
        problems.append(Problem(source, f"{left_out} of its {len(other.queries)} queries {has} no judgments in the "
                                        f"dataset and {are} left out", skipped=False))
    kept = {query.query_id for query in queries}
    return Judgments(queries, {query_id: judgments.qrels[query_id] for query_id in kept}, tuple(problems),
                     {key: value for key, value in judgments.sources.items() if key[0] in kept})


def _read_dataset(path: Path, **reading: str | None) -> Dataset:
    if path.is_file() and path.suffix == ".json":
        return Dataset(path.stem, read_paths([path], **reading), _squad_judgments(path))
    _check_beir_folder(path)
    try:
        judgments = load_judgments([path], names=[str(path)])
    except ValueError as error:
        raise ValueError(f"{path} is not a complete BEIR folder: {error}") from None
    return Dataset(path.name, read_paths([path / "corpus.jsonl"], **reading), judgments)


def _read_judgments_only(path: Path) -> Judgments:
    """The queries and judgments of a dataset, without reading its corpus."""
    if path.is_file() and path.suffix == ".json":
        return _squad_judgments(path)
    if not path.is_dir():
        raise ValueError(f"{path} is neither a SQuAD-format .json file nor a BEIR folder")
    try:
        return load_judgments([path], names=[str(path)])
    except ValueError as error:
        raise ValueError(f"{path} holds no queries with judgments: {error}") from None


def _check_beir_folder(path: Path) -> None:
    if not path.is_dir():
        raise ValueError(f"{path} is neither a SQuAD-format .json file nor a BEIR folder")
    if not (path / "corpus.jsonl").is_file():
        raise ValueError(f"{path} is not a complete BEIR folder: missing corpus.jsonl")


def _dataset_name(path: Path) -> str:
    return path.stem if path.is_file() else path.name


def _squad_judgments(path: Path) -> Judgments:
    """Each question judged against its own paragraph, by the ids `squad_paragraphs` gives the corpus too."""
    source = str(path)
    decoded = decode_text(path.read_bytes(), source)
    if decoded.text is None:
        raise ValueError(str(decoded.problems[-1]))
    try:
        value = load_json(decoded.text, FileBudget(ReadLimits()))
    except JsonError as error:
        where = f"{source}, line {error.line}" if error.line is not None else source
        raise ValueError(f"{where}: {error.message}") from None
    except LimitExceeded as error:
        raise ValueError(f"{source}: {error}") from None
    if not isinstance(value, dict) or not is_squad(value):
        raise ValueError(f"{source} is not a SQuAD file: expected {{'data': [{{'paragraphs': [{{'context': ..., "
                         "'qas': [{'id': ..., 'question': ...}]}]}]}")
    squad = squad_paragraphs(value, source)
    queries = [Query(question.query_id, question.text) for paragraph in squad.paragraphs
               for question in paragraph.questions]
    qrels = {question.query_id: {paragraph.doc_id: 1} for paragraph in squad.paragraphs
             for question in paragraph.questions}
    return Judgments(tuple(queries), qrels, squad.question_problems)
