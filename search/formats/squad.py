"""SQuAD files: one document per paragraph, one query per question, and the ids both share.

`squad_paragraphs` is the only place SQuAD ids are made, for the corpus reader and for evaluation
alike, so every question is judged against the id its paragraph is indexed under:

- a paragraph's id is its ``id`` (stripped; numbers as written), else ``{article}-{paragraph}`` (from 0);
- a question's id is its ``id``, else ``{paragraph id}-q{n}`` (n counts the file's questions from 0);
- a repeated id is kept as ``id~2`` (``~3``...) with a warning, as the corpus reader does across files;
- lone surrogates (``"\\udead"`` in the JSON) in ids, texts and titles become U+FFFD, counted in a warning.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..decoding import has_visible_text, replaced_surrogates, valid_unicode
from ..ids import UniqueIds, id_text
from ..limits import FileBudget
from ..types import Problem

_CHECK_EVERY_PARAGRAPHS = 1000


@dataclass(frozen=True)
class SquadQuestion:
    query_id: str
    text: str


@dataclass(frozen=True)
class SquadParagraph:
    """A paragraph with text: its document id, text, article title and questions."""

    doc_id: str
    context: str
    title: str
    questions: tuple[SquadQuestion, ...]


@dataclass(frozen=True)
class SquadFile:
    """What `squad_paragraphs` found: `problems` concern paragraphs (the corpus), `question_problems`
    questions (the judgments)."""

    paragraphs: tuple[SquadParagraph, ...]
    problems: tuple[Problem, ...]
    question_problems: tuple[Problem, ...]


def is_squad(value: dict) -> bool:
    """Whether a JSON object is SQuAD-shaped: a ``data`` list with at least one article holding ``paragraphs``."""
    articles = value.get("data")
    return isinstance(articles, list) and any(
        isinstance(article, dict) and "paragraphs" in article for article in articles
    )


def squad_paragraphs(value: dict, source: str, budget: FileBudget | None = None) -> SquadFile:
    """The paragraphs of a SQuAD object with their final, unique ids and questions (see the module doc).

    Paragraphs without text are left out with a problem, and so are their questions.
    """
    paragraphs: list[SquadParagraph] = []
    problems: list[Problem] = []
    question_problems: list[Problem] = []
    doc_ids, query_ids = UniqueIds(), UniqueIds()
    questions_seen = 0
    replaced = [0, 0]  # in paragraphs, in questions

    def valid(value: str, side: int) -> str:
        text, count = valid_unicode(value)
        replaced[side] += count
        return text

    for article_index, article in enumerate(value.get("data") or []):
        items = article.get("paragraphs") if isinstance(article, dict) else None
        if not isinstance(items, list):
            problems.append(Problem(source, f"data[{article_index}] is not a SQuAD article (no 'paragraphs' list); "
                                            "skipped"))
            continue
        title = article.get("title")
        title = valid(title, 0) if isinstance(title, str) else ""
        for paragraph_index, paragraph in enumerate(items):
            if budget is not None and paragraph_index % _CHECK_EVERY_PARAGRAPHS == 0:
                budget.check()
            where = f"data[{article_index}].paragraphs[{paragraph_index}]"
            context = paragraph.get("context") if isinstance(paragraph, dict) else None
            qas = paragraph.get("qas") if isinstance(paragraph, dict) else None
            qas = qas if isinstance(qas, list) else []
            if not isinstance(context, str) or not has_visible_text(context):
                problems.append(Problem(source, f"{where} has no 'context' text; skipped"))
                if qas:
                    question_problems.append(Problem(source, f"the {len(qas)} question(s) of {where} are left "
                                                             "out: the paragraph has no 'context' text"))
                continue
            context = valid(context, 0)
            wanted = valid(id_text(paragraph.get("id")) or f"{article_index}-{paragraph_index}", 0)
            doc_id, duplicate = doc_ids.claim(wanted, f"{source} {where}")
            if duplicate:
                problems.append(Problem(source, f"{where}: {duplicate}", skipped=False))
            questions = []
            for qa_index, qa in enumerate(qas):
                question = qa.get("question") if isinstance(qa, dict) else None
                if not isinstance(question, str) or not has_visible_text(question):
                    question_problems.append(Problem(source, f"{where}.qas[{qa_index}] has no 'question' text; "
                                                             "skipped"))
                    continue
                question = valid(question, 1)
                wanted_query = valid(id_text(qa.get("id")) or f"{doc_id}-q{questions_seen}", 1)
                questions_seen += 1
                query_id, repeated = query_ids.claim(wanted_query, f"{source} {where}.qas[{qa_index}]")
                if repeated:
                    question_problems.append(Problem(source, f"{where}.qas[{qa_index}]: question {repeated}",
                                                     skipped=False))
                questions.append(SquadQuestion(query_id, question))
            paragraphs.append(SquadParagraph(doc_id, context, title, tuple(questions)))
    if replaced[0]:
        problems.append(Problem(source, replaced_surrogates(replaced[0]), skipped=False))
    if replaced[1]:
        question_problems.append(Problem(source, replaced_surrogates(replaced[1]), skipped=False))
    return SquadFile(tuple(paragraphs), tuple(problems), tuple(question_problems))
