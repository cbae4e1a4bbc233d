"""Long texts of the app, kept out of `app.py`."""

from __future__ import annotations

INTRO = """\
## Multilingual retrieve-and-rerank explorer
See what BM25, dense, hybrid and a reranker each do with your corpus, in any mix of languages: how every \
passage moved between the stages, its language, and how far the stages agree.
"""

CORPUS_HELP = """\
Formats: `.txt` `.md` (one document per file), `.csv` `.tsv` (a `text` column; optional `id`, `title`),
`.jsonl` (BEIR `corpus.jsonl`), `.json` (a list, or SQuAD), `.html`, `.pdf`, and `.zip` archives of these.
Broken files and lines are skipped with a message naming the file and line; everything else is kept.
"""

MODELS_HELP = """\
Models load from the Hugging Face Hub or cache, safetensors only (the operator may allow any Hub id or local
folder with `SEARCH_ALLOW_CUSTOM_MODELS=1`). The reranker `auto` picks
BAAI/bge-reranker-v2-m3 when the corpus has languages other than English and Chinese (or on a GPU), and
BAAI/bge-reranker-base otherwise; `late-interaction` selects the offline fallback. Each model in the lists says
where it would load from here. When a model can't be loaded (no network, not cached), the app says why and
falls back to the bundled multilingual-e5-small (4-bit, offline) for dense retrieval and to late-interaction
scoring over it (not a cross-encoder) for reranking.
*Compare with* adds a second reranker (B, with its own backend: another model, fp32 against int8, or a TEI
endpoint) in a fifth column; it takes effect with *Build index*.
"""

SEARCH_HELP = """\
**The chart** follows each passage of the top k from stage to stage: one line per passage, coloured by its
language, thick for the Reranked top 3 and for passages a reranker lifted into its top 3 from below the
hybrid top k; *out* means not in that stage's top k. Hover a line for the passage and its rank in every
stage; click it to jump to its card. **The matrix** beside it says how far two stages agree: shared@k and
Jaccard above the diagonal, Kendall's τ below (for the rerankers, over the candidates they both scored).

**The cards** show the rank, the score, the detected language and a few lines around the best match;
click the text for the whole passage. Highlights use the same analysis as BM25 (stemming, Chinese,
Japanese and Thai character n-grams) and skip the query language's stopwords. In a Reranked column, arrows
say how far the passage moved against each first stage (↑ up, ↓ down, = same, *new*: not in that stage's
top k); *lifted* marks a passage raised from below the top k into the top 3. With a reranker B, its cards
also say how far B moved the passage against A (`↑3 vs A`).

**The score line** in a Reranked column separates the passages that score at or above it from the rest;
when none does, the column says there may be no good answer in the corpus. *model default* uses the line
measured for the model where there is one (late interaction over e5: 0.84; its scores are similarities,
not calibrated relevance, so the line is a guide); type a number for your own, on the scale the column
shows (logit, or p in the sigmoid view), or choose *none*.

While a reranker works its column counts the pairs scored and the time left on this machine; a new query
stops it and reranks the new one instead. Scored pairs are kept, so k, the score view, the score line and
judging never rerank.
"""

NO_INDEX = "Build an index first: upload files or choose a sample corpus, then press Build index."

EVALUATE_HELP = """\
Measure every stage on relevance judgments for the corpus you built: the bundled judgments of the
polyglot-facts sample, or your own TREC qrels with a queries file (TSV `id<TAB>query` or BEIR
`queries.jsonl`), or a BEIR folder as a `.zip`. The metrics are the same as `python -m search eval`
computes (ir-measures), on the same data and settings. Judgments may name documents or passages
(`doc#0`); the summary says which matched.
"""


def corpus_limits(max_upload_mb: int, max_passages: int | None) -> str:
    """The upload and passage limits, as the line under the formats (1 MB = 1,000,000 bytes)."""
    passages = f" and at most {max_passages:,} passages" if max_passages else ""
    return (f"\nLimits here: {max_upload_mb} MB of uploads in all (1 MB = 1,000,000 bytes){passages} per build. "
            "The build shows the time left for embedding; *Cancel build* (or closing the page) stops it.\n")
