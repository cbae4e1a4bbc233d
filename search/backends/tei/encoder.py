"""`TEIEncoder`: a dense encoder behind a TEI endpoint's `POST /embed` (`search.inference.TextEncoder`).

Requests carry ``normalize`` and ``truncate``; the model's query/passage prefixes are added here, as the torch
encoder adds them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ...inference import ProgressFn
from ...models import ModelSpec, model_spec
from .client import RequestLatency, TEIClient
from .discovery import discover, note_other_model
from .errors import TEIError
from .policy import endpoint_urls


class TEIEncoder:
    """A dense encoder behind a TEI endpoint (`search.loading` builds it for ``backend="tei"``).

    `endpoint` is one URL or several, comma-separated (the first serving an embedding model is used).
    `model_id` and `spec` are the served model's (its prefixes are added here; the endpoint gets the text
    as is); `dimension` is measured with one request when loading. `tokenizer` is None: the endpoint
    tokenizes, and it serves no token embeddings (`token_embeddings` raises ValueError).

    Raises TEIError (a ValueError) when the endpoint can't be reached or does not serve an embedding model.
    """

    backend = "tei"
    remote = True
    tokenizer = None
    dtype = "unknown"  # the endpoint's; its /info is not read for it

    def __init__(self, model_id: str, endpoint: str, spec: ModelSpec | None = None, label: str | None = None,
                 path: str | None = None, *, client_options: dict[str, Any] | None = None) -> None:
        del label, path  # the label is the served model's; there is nothing to load from a folder
        self.client, self.info = discover(endpoint_urls(endpoint), "embedding",
                                          make_client=lambda url: TEIClient(url, **(client_options or {})))
        try:
            self.requested_id = model_id
            self.model_id = self.info.model_id
            self.device = self.info.url
            self.label = f"{self.model_id} via TEI ({self.client.host})"
            self.spec = (spec if spec is not None and spec.model_id == self.model_id
                         else model_spec(self.model_id, "dense"))
            self.max_length = self.info.max_input_length
            self._chunk = max(1, self.info.max_client_batch_size)
            note_other_model(model_id, self.model_id, self.client.host)
            self.dimension = 0  # measured next: TEI's /info does not say
            self.dimension = int(self._embed_chunk(["dimension probe"]).shape[1])
        except BaseException:
            self.client.close()  # nothing else holds it
            raise

    def __repr__(self) -> str:
        return f"TEIEncoder({self.model_id!r}, endpoint={self.device!r})"

    def latency(self) -> RequestLatency:
        return self.client.latency()

    def embed(self, texts: Sequence[str], *, is_query: bool, batch_size: int = 32,
              progress: ProgressFn | None = None) -> np.ndarray:
        """Return L2-normalised float32 embeddings (len(texts), dimension) in input order, computed by the
        endpoint in requests of at most `batch_size` texts (and its `max_client_batch_size`).

        Raises TEIError when the endpoint fails (the message says what happened and what to change).
        """
        if batch_size < 1:
            raise ValueError(f"batch_size={batch_size} must be at least 1")
        prefix = self.spec.query_prefix if is_query else self.spec.passage_prefix
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        start = 0
        while start < len(texts):
            chunk = [prefix + text for text in texts[start:start + min(batch_size, self._chunk)]]
            out[start:start + len(chunk)] = self._embed_chunk(chunk)
            start += len(chunk)
            if progress is not None:
                progress(start, len(texts))
        return np.ascontiguousarray(out)

    def token_embeddings(self, texts: Sequence[str], *, batch_size: int = 32) -> list[np.ndarray]:
        raise ValueError(f"the TEI backend serves pooled embeddings only, not token embeddings; run {self.model_id} "
                         "with --backend torch for late-interaction scoring")

    def _embed_chunk(self, chunk: list[str]) -> np.ndarray:
        try:
            answer = self.client.post("/embed", {"inputs": chunk, "normalize": True, "truncate": True})
        except TEIError as error:
            if error.kind != "too-large" or len(chunk) == 1:
                raise
            self._chunk = max(1, len(chunk) // 2)
            half = len(chunk) // 2
            return np.concatenate([self._embed_chunk(chunk[:half]), self._embed_chunk(chunk[half:])])
        try:
            vectors = np.asarray(answer, dtype=np.float32)
        except (TypeError, ValueError):
            vectors = np.zeros((0,))
        if (vectors.ndim != 2 or len(vectors) != len(chunk) or not vectors.shape[1] or not np.isfinite(vectors).all()
                or (self.dimension and vectors.shape[1] != self.dimension)):
            raise self.client.protocol_error(f"POST /embed did not answer one finite vector per text for "
                                             f"{len(chunk)} texts")
        return vectors

