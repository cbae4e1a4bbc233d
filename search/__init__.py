"""Multilingual retrieve-and-rerank engine.

Data flow: files -> `reading` (documents) -> `passages` -> `language` (per passage) -> `analysis` +
`bm25`, `encoder` + `dense` -> `fusion` (hybrid) -> `rerank` / `late_interaction` -> `pipeline`
(one `Index` with `retrieve`, `rerank`, `search`) -> `evaluation` (metrics per stage) with `judgments`
(qrels/queries/runs in TREC and BEIR formats) and `export` (JSON/CSV); `cli` is `python -m search`.
"""

from __future__ import annotations

__version__ = "0.1.0"
