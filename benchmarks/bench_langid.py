"""Language detection, fastText against langdetect: texts per second and accuracy per language.

On XQuAD's paragraphs and questions in 7 languages (when ``shared/xquad`` sits beside the repository)
and on the sample corpus polyglot-facts (its passages as the pipeline splits them, and its queries) in
10 languages, both detectors label the same texts in one run, interleaved in chunks of `--chunk` texts
so that a busy machine slows both alike. A text counts as right when its detected group is the
language it is written in (for polyglot-facts: the suffix of the document id; for a query, that of
the document judged 2, its own language). The last column says whether fastText matches or beats
langdetect there. Speeds are shown for sets of at least `MIN_TIMED` texts.

    python benchmarks/bench_langid.py [--xquad ../shared/xquad] [--chunk 50] [--json]

XQuAD is read by path and never copied into the repository.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from search.judgments import read_judgments  # noqa: E402
from search.language import detect_languages, load_detector  # noqa: E402
from search.passages import split_documents  # noqa: E402
from search.reading import read_paths  # noqa: E402

XQUAD_DIR = ROOT.parent / "shared" / "xquad"
POLYGLOT_DIR = ROOT / "corpora" / "polyglot-facts"
XQUAD_LANGUAGES = ("ar", "de", "en", "es", "hi", "ru", "zh")
DETECTORS = ("langdetect", "fasttext")
MIN_TIMED = 50  # texts in a set before its speed is shown


@dataclass
class Tally:
    """One detector on one set of texts: how many, how long, how many right, and what the wrong ones were."""

    texts: int = 0
    seconds: float = 0.0
    right: int = 0
    wrong: Counter[str] = field(default_factory=Counter)

    @property
    def accuracy(self) -> float:
        return self.right / self.texts if self.texts else 0.0

    @property
    def per_second(self) -> float:
        return self.texts / self.seconds if self.seconds else 0.0


def xquad_sets(folder: Path) -> list[tuple[str, str, str, list[str]]]:
    """(source, kind, language, texts) for each XQuAD language: paragraphs and questions."""
    sets = []
    for language in XQUAD_LANGUAGES:
        data = json.loads((folder / f"xquad.{language}.json").read_text(encoding="utf-8"))
        paragraphs = [paragraph for article in data["data"] for paragraph in article["paragraphs"]]
        sets.append(("xquad", "paragraphs", language, [paragraph["context"] for paragraph in paragraphs]))
        sets.append(("xquad", "questions", language,
                     [qa["question"] for paragraph in paragraphs for qa in paragraph["qas"]]))
    return sets


def polyglot_sets(folder: Path) -> list[tuple[str, str, str, list[str]]]:
    """(source, kind, language, texts) for each polyglot-facts language: passages and queries."""
    read = read_paths([folder / "corpus.jsonl"])
    passages: dict[str, list[str]] = {}
    for passage in split_documents(read.documents):
        passages.setdefault(passage.doc_id.rsplit("-", 1)[1], []).append(passage.text)
    judgments = read_judgments(folder / "queries.jsonl", folder / "qrels.trec")
    queries: dict[str, list[str]] = {}
    for query in judgments.queries:
        own_document = next(doc_id for doc_id, grade in judgments.qrels[query.query_id].items() if grade == 2)
        queries.setdefault(own_document.rsplit("-", 1)[1], []).append(query.text)
    return ([("polyglot", "passages", language, texts) for language, texts in sorted(passages.items())]
            + [("polyglot", "queries", language, texts) for language, texts in sorted(queries.items())])


def measure(language: str, texts: Sequence[str], chunk: int) -> dict[str, Tally]:
    """Both detectors over `texts`, chunk by chunk, alternating which goes first."""
    tallies = {name: Tally() for name in DETECTORS}
    for number, begin in enumerate(range(0, len(texts), chunk)):
        part = texts[begin:begin + chunk]
        order = DETECTORS if number % 2 == 0 else DETECTORS[::-1]
        for name in order:
            started = time.perf_counter()
            found = detect_languages(part, name)
            tally = tallies[name]
            tally.seconds += time.perf_counter() - started
            tally.texts += len(part)
            for detected in found:
                if detected.group == language:
                    tally.right += 1
                else:
                    tally.wrong[detected.group] += 1
    return tallies


def rate(tally: Tally) -> str:
    # A handful of texts takes microseconds: too few to time against the clock's and the machine's noise.
    return f"{tally.per_second:,.0f}" if tally.texts >= MIN_TIMED else "-"


def verdict(tallies: dict[str, Tally]) -> str:
    return "yes" if tallies["fasttext"].right >= tallies["langdetect"].right else "NO"


def table(rows: list[tuple[str, str, str, dict[str, Tally]]]) -> str:
    lines = ["| set | texts | language | n | langdetect /s | fastText /s | langdetect acc. | fastText acc. | "
             "fastText >= langdetect |", "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | --- |"]
    for source, kind, language, tallies in rows:
        old, new = tallies["langdetect"], tallies["fasttext"]
        lines.append(f"| {source} | {kind} | {language} | {old.texts} | {rate(old)} | {rate(new)} | "
                     f"{old.accuracy:.3f} | {new.accuracy:.3f} | {verdict(tallies)} |")
    for source, kind in dict.fromkeys((source, kind) for source, kind, _, _ in rows):
        chosen = [tallies for s, k, _, tallies in rows if (s, k) == (source, kind)]
        totals = {name: Tally(sum(t[name].texts for t in chosen), sum(t[name].seconds for t in chosen),
                              sum(t[name].right for t in chosen)) for name in DETECTORS}
        old, new = totals["langdetect"], totals["fasttext"]
        lines.append(f"| **{source}** | **{kind}** | all | {old.texts} | {rate(old)} | {rate(new)} | "
                     f"{old.accuracy:.3f} | {new.accuracy:.3f} | "
                     f"{'yes' if all(verdict(t) == 'yes' for t in chosen) else 'NO'} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--xquad", type=Path, default=XQUAD_DIR, help="folder with xquad.{ar,de,...}.json")
    parser.add_argument("--chunk", type=int, default=50, help="texts per turn of each detector (default 50)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON instead of a table")
    args = parser.parse_args(argv)

    loaded = load_detector("fasttext")  # raises, naming the fix, when fastText can't be loaded
    load_detector("langdetect").detector.detect("warm up")
    loaded.detector.detect("warm up")
    sets = polyglot_sets(POLYGLOT_DIR)
    if all((args.xquad / f"xquad.{language}.json").is_file() for language in XQUAD_LANGUAGES):
        sets = xquad_sets(args.xquad) + sets
    else:
        print(f"XQuAD not found at {args.xquad}: skipping it (pass --xquad FOLDER); polyglot-facts only",
              file=sys.stderr)
    rows = [(source, kind, language, measure(language, texts, args.chunk)) for source, kind, language, texts in sets]
    if args.json:
        print(json.dumps([{"set": source, "texts": kind, "language": language,
                           **{name: {"n": t.texts, "per_second": t.per_second, "accuracy": t.accuracy,
                                     "wrong": dict(t.wrong)} for name, t in tallies.items()}}
                          for source, kind, language, tallies in rows], indent=1))
        return 0
    print(table(rows))
    paragraphs = [tallies for source, kind, _, tallies in rows if (source, kind) == ("xquad", "paragraphs")]
    if paragraphs:
        seconds = {name: sum(t[name].seconds for t in paragraphs) / sum(t[name].texts for t in paragraphs)
                   for name in DETECTORS}
        print(f"\n100,000 paragraph-length passages: langdetect {seconds['langdetect'] * 1e5 / 60:.1f} min, "
              f"fastText {seconds['fasttext'] * 1e5:.0f} s")
    mistakes = [f"{source} {kind} {language}: {name} " + ", ".join(f"{group} {n}" for group, n in t.wrong.most_common())
                for source, kind, language, tallies in rows for name, t in tallies.items() if t.wrong]
    if mistakes:
        print("\nmislabelled as:\n" + "\n".join(mistakes))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
