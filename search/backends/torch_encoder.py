"""The torch encoder backend: a transformers `AutoModel` giving pooled sentence embeddings for dense
retrieval and per-token embeddings for late-interaction scoring.

Loads safetensors weights only and never runs remote code (`models.load_kwargs`); `search.loading`
chooses the model, caches it per (model id, device) and falls back to the bundled MiniLM.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..inference import ProgressFn
from ..models import ModelSpec, load_kwargs, pretrained_source


class TorchEncoder:
    """A transformers encoder model with its tokenizer and conventions (pooling, prefixes, max length).

    `path` is where to load from when it is not `model_id` (the bundled MiniLM has a Hub id but loads from
    a package folder). Raises OSError, ValueError or ImportError saying why the model can't be loaded.
    Thread-safe for inference: torch modules in eval mode are only read.
    """

    backend = "torch"

    def __init__(self, model_id: str, device: str, spec: ModelSpec, label: str, path: str | None = None) -> None:
        from transformers import AutoModel, AutoTokenizer

        location = path or model_id  # the bundled model has a Hub id but loads from a package folder
        source = pretrained_source(location)
        self.model_id = model_id
        self.device = device
        self.spec = spec
        self.label = label
        self.tokenizer = AutoTokenizer.from_pretrained(location, **source, trust_remote_code=False)
        self.model = AutoModel.from_pretrained(location, **source, **load_kwargs(device)).to(device)
        self.model.eval()
        self.max_length = min(spec.max_length, int(getattr(self.tokenizer, "model_max_length", 512) or 512))
        self.dimension = int(self.model.config.hidden_size)
        self.dtype = str(self.model.dtype).removeprefix("torch.")

    def __repr__(self) -> str:
        return f"TorchEncoder({self.model_id!r}, device={self.device!r}, max_length={self.max_length})"

    def embed(self, texts: Sequence[str], *, is_query: bool, batch_size: int = 32,
              progress: ProgressFn | None = None) -> np.ndarray:
        """Return L2-normalised float32 embeddings, one row per text, in input order.

        `is_query` picks the model's query or passage prefix (``query: `` / ``passage: `` for E5).
        """
        prefix = self.spec.query_prefix if is_query else self.spec.passage_prefix
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for done, (positions, hidden, mask) in self._batches(texts, prefix, batch_size):
            if self.spec.pooling == "cls":
                pooled = hidden[:, 0]
            else:
                weights = mask.unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
            if self.spec.normalize:
                pooled = _normalise(pooled)
            out[positions] = pooled.float().cpu().numpy()
            if progress is not None:
                progress(done, len(texts))
        return np.ascontiguousarray(out)

    def token_embeddings(self, texts: Sequence[str], *, batch_size: int = 32) -> list[np.ndarray]:
        """Return, per text, its L2-normalised token vectors (n_tokens, dim), without padding and the
        [CLS]/[SEP]-like markers. Used for late-interaction (MaxSim) scoring."""
        out: list[np.ndarray | None] = [None] * len(texts)
        # [CLS]/[SEP]/padding carry no content; [UNK] is kept, since for scripts an English-centric
        # vocabulary lacks (Thai for MiniLM) it is all the model sees of the text.
        special = set(self.tokenizer.all_special_ids) - {self.tokenizer.unk_token_id}
        for _, (positions, hidden, mask, ids) in self._batches(texts, "", batch_size, with_ids=True):
            vectors = _normalise(hidden).float().cpu().numpy()
            keep = mask.bool().cpu().numpy() & ~np.isin(ids.cpu().numpy(), list(special))
            for row, position in enumerate(positions):
                out[position] = np.ascontiguousarray(vectors[row][keep[row]])
        return [v if v is not None else np.zeros((0, self.dimension), np.float32) for v in out]

    def _batches(self, texts: Sequence[str], prefix: str, batch_size: int, with_ids: bool = False):
        import torch

        # Sorting by length keeps padding (wasted compute) small within each batch.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]), reverse=True)
        done = 0
        for start in range(0, len(order), batch_size):
            positions = order[start:start + batch_size]
            batch = self.tokenizer([prefix + texts[i] for i in positions], padding=True, truncation=True,
                                   max_length=self.max_length, return_tensors="pt")
            batch = {key: value.to(self.device) for key, value in batch.items()}
            with torch.inference_mode():
                hidden = self.model(**batch).last_hidden_state
            done += len(positions)
            if with_ids:
                yield done, (positions, hidden, batch["attention_mask"], batch["input_ids"])
            else:
                yield done, (positions, hidden, batch["attention_mask"])


def _normalise(tensor):
    import torch

    return torch.nn.functional.normalize(tensor.float(), p=2, dim=-1)
