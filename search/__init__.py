"""Multilingual retrieve-and-rerank engine.

Data flow: files -> `reading` (documents) -> `passages` -> `language` (per passage) -> `analysis` +
`bm25`, `dense` -> `fusion` (hybrid) -> rerank -> `pipeline` (one `Index` with `retrieve`, `rerank`,
`search`) -> `evaluation` (metrics per stage) with `judgments` (qrels/queries/runs in TREC and BEIR
formats) and `export` (JSON/CSV); `cli` is `python -m search`.

Models: `models` (the table of known models, device, safe loading rules), `inference` (the `Reranker`
and `TextEncoder` interfaces), `backends/` (one module per backend), `score_cache` (pair scores kept
across calls, measured speed) and `loading` (models by id, cached, with the offline fallbacks).
"""

from __future__ import annotations

__version__ = "0.1.0"
