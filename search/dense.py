"""Dense retrieval: passage embeddings in an exact FAISS inner-product index (cosine on unit vectors)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .inference import ProgressFn, TextEncoder
from .types import Scored


class DenseIndex:
    """Exact inner-product search over L2-normalised float32 passage embeddings.

    Flat (exact) search is chosen on purpose: an explorer must show what the model does, not what an
    approximate index lost, and at the corpus sizes a 2-CPU Space embeds it answers in milliseconds.
    """

    def __init__(self, embeddings: np.ndarray) -> None:
        import faiss

        if embeddings.ndim != 2:
            raise ValueError(f"embeddings must be a 2-d array (passages x dimensions), got shape {embeddings.shape}")
        self.embeddings = np.ascontiguousarray(embeddings, dtype=np.float32)
        self._index = faiss.IndexFlatIP(self.embeddings.shape[1])
        if len(self.embeddings):
            self._index.add(self.embeddings)

    @classmethod
    def build(cls, encoder: TextEncoder, texts: Sequence[str], *, batch_size: int = 32,
              progress: ProgressFn | None = None) -> DenseIndex:
        """Embed `texts` as passages with `encoder` and index them."""
        if not texts:
            return cls(np.zeros((0, encoder.dimension), np.float32))
        return cls(encoder.embed(texts, is_query=False, batch_size=batch_size, progress=progress))

    def __len__(self) -> int:
        return int(self._index.ntotal)

    @property
    def dimension(self) -> int:
        return int(self.embeddings.shape[1])

    def search(self, query_vector: np.ndarray, k: int) -> list[Scored]:
        """Return the `k` passages most similar to `query_vector` (cosine), best first."""
        if k < 1:
            raise ValueError(f"k={k} must be at least 1")
        if len(self) == 0:
            return []
        query = np.ascontiguousarray(query_vector.reshape(1, -1), dtype=np.float32)
        if query.shape[1] != self.dimension:
            raise ValueError(f"query vector has {query.shape[1]} dimensions but the index has {self.dimension}; "
                             "the index was built with another dense model")
        scores, ids = self._index.search(query, min(k, len(self)))
        return [Scored(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True) if i != -1]
