"""OpenAI's embeddings shape, as TEI's ``POST /v1/embeddings`` (and ``/embeddings``) reads and answers it: the
request's ``input``, ``model``, ``user``, ``encoding_format`` and ``dimensions`` (`read_embeddings_request`),
and the answer's embeddings, as floats or base64 (little-endian float32 bytes), with ``usage``
(`embeddings_body`). Its errors take OpenAI's shape through `TEIRequestError.response(openai=True)`."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

import numpy as np

from .requests import deserialize_error, read_dimensions, read_field, read_inputs, struct


@dataclass(frozen=True)
class EmbeddingsRequest:
    """An OpenAI embeddings request: its `inputs` (one, or a `batch`), the `model` it names, the `encoding`
    ("float" or "base64") of the vectors it wants and the `dimensions` to cut them to."""

    inputs: list[str | list[int]]
    batch: bool
    model: str | None
    encoding: str
    dimensions: int | None


def read_embeddings_request(body: Any) -> EmbeddingsRequest:
    """`body` read as TEI reads its `OpenAICompatRequest`; raises TEIRequestError (422) as TEI would."""
    request = struct(body, "OpenAICompatRequest")
    inputs, batch = read_inputs(request, "input")
    model = read_field(request, "model", str, default=None, nullable=True)
    read_field(request, "user", str, default=None, nullable=True)
    encoding = read_field(request, "encoding_format", str, default="float")
    if encoding not in ("float", "base64"):
        raise deserialize_error(f"encoding_format: unknown variant `{encoding}`, expected `float` or `base64`")
    return EmbeddingsRequest(inputs, batch, model, encoding, read_dimensions(request))


def embeddings_body(vectors: np.ndarray, encoding: str, model: str | None, tokens: int) -> dict[str, Any]:
    """OpenAI's answer: one ``{"object": "embedding", "index", "embedding"}`` per row of `vectors` (floats,
    or with `encoding` "base64" their little-endian float32 bytes in base64), the `model` that embedded them
    and the `tokens` read as ``usage``."""
    data = [{"object": "embedding", "index": i,
             "embedding": (base64.b64encode(vector.astype("<f4").tobytes()).decode("ascii")
                           if encoding == "base64" else vector.tolist())}
            for i, vector in enumerate(vectors)]
    return {"object": "list", "data": data, "model": model,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}
