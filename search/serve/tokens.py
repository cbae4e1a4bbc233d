"""Texts as TEI's tokenization prepares them: the prompts a request may name, the characters an input may
have before it is tokenized, a text cut at a token boundary from either side, and the `SimpleToken`s that
``POST /tokenize`` answers."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..inference import TextEncoder
from .requests import TEIRequestError

MAX_CHAR_MULTIPLIER = 250  # TEI: an input may have at most max_input_length * 250 characters


@dataclass(frozen=True)
class ReadyText:
    """One input made ready for a model: its `text` (prompt included, cut to fit) and tokens after the cut."""

    text: str
    tokens: int


def model_prompts(encoder: TextEncoder) -> dict[str, str]:
    """The prompts a request's ``prompt_name`` may name: the model table's query and passage prefixes."""
    return {name: prefix for name, prefix in (("query", encoder.spec.query_prefix),
                                              ("passage", encoder.spec.passage_prefix)) if prefix}


def named_prompt(prompts: dict[str, str], name: str | None) -> str:
    """The prompt `name` of `prompts` ("" for None); raises TEIRequestError (422) for one not there."""
    if name is None:
        return ""
    if not prompts:
        raise TEIRequestError("Validation", f"Input validation error: `default-prompt-name` is set to `{name}` but "
                                            "no prompts were found in the Sentence Transformers configuration")
    if name not in prompts:
        raise TEIRequestError("Validation", f"Input validation error: `default-prompt-name` is set to `{name}` but "
                                            f"it was not found in the Sentence Transformers prompts. Available "
                                            f"prompts: {json.dumps(list(prompts))}")
    return prompts[name]


def cut_to_tokens(tokenizer: Any, text: str, keep: int, direction: str) -> tuple[str, int]:
    """`text` cut at a token boundary to at most `keep` tokens (special tokens not counted), from the right
    or, with `direction` "left", from the left; returns the cut text and its tokens."""
    encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
    offsets = encoded["offset_mapping"]
    if len(offsets) <= keep:
        return text, len(offsets)
    for budget in range(keep, -1, -1):  # re-tokenising a cut text can rarely add a token: check
        if budget == 0:
            return "", 0
        cut = text[:offsets[budget - 1][1]] if direction == "right" else text[offsets[len(offsets) - budget][0]:]
        tokens = len(tokenizer(cut, add_special_tokens=False, verbose=False)["input_ids"])
        if tokens <= keep:
            return cut, tokens
    return "", 0


def simple_tokens(tokenizer: Any, text: str, add_special_tokens: bool) -> list[dict[str, Any]]:
    """TEI's `SimpleToken`s of `text`: id, the text it covers (the token itself for a special one), whether
    it is special, and its start/stop as UTF-8 byte offsets (None for a special token)."""
    encoded = tokenizer(text, add_special_tokens=add_special_tokens, return_offsets_mapping=True,
                        return_special_tokens_mask=True, verbose=False)
    ids = encoded["input_ids"]
    pieces = tokenizer.convert_ids_to_tokens(ids)
    byte_at = np.concatenate([[0], np.cumsum([len(ch.encode("utf-8", "surrogatepass")) for ch in text])])
    data = text.encode("utf-8", "surrogatepass")
    tokens = []
    for token_id, piece, special, (start, stop) in zip(ids, pieces, encoded["special_tokens_mask"],
                                                        encoded["offset_mapping"], strict=True):
        if special:
            tokens.append({"id": token_id, "text": piece, "special": True, "start": None, "stop": None})
        else:
            begin, end = int(byte_at[start]), int(byte_at[stop])
            tokens.append({"id": token_id, "text": data[begin:end].decode("utf-8", "replace"), "special": False,
                           "start": begin, "stop": end})
    return tokens
