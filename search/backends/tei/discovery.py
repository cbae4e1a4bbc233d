"""Endpoint discovery: which model each TEI endpoint serves, read once from its `GET /info`.

`discover` takes the first endpoint of a list that serves a model of the kind asked for (real TEI serves one
model per endpoint; `python -m search serve` may serve both kinds, in its "models" extension); `parse_info`
reads one answer into `EndpointInfo` records: the model, its kind, its input window and the largest batch a
client may send.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from ...models import LATE_INTERACTION_IDS
from .client import TEIClient
from .errors import TEIError
from .policy import URL_SETTING, host_of

logger = logging.getLogger(__name__)

DEFAULT_CHUNK = 32  # texts per request (and per progress report) unless the endpoint allows fewer
# What a model id from an endpoint a visitor typed may look like to be shown (a Hub id or a path).
_SHOWN_MODEL_ID = re.compile(r"[\w.\-/]{1,200}")

Kind = Literal["reranker", "embedding", "classifier"]


@dataclass(frozen=True)
class EndpointInfo:
    """What `GET /info` says about one model an endpoint serves."""

    url: str
    model_id: str
    kind: Kind
    max_input_length: int
    max_client_batch_size: int
    auto_truncate: bool
    cross_encoder: bool = True  # False for this project's late-interaction fallback served by `serve`
    labels: int = 1  # a classifier's number of labels


def discover(urls: Sequence[str], kind: Kind, *, make_client: Callable[[str], TEIClient] = TEIClient,
             ) -> tuple[TEIClient, EndpointInfo]:
    """Read `GET /info` of each endpoint in `urls` and return the client and model of the first that serves
    a model of `kind` ("reranker" or "embedding").

    Every endpoint is tried in turn. Raises TEIError: with one URL, its failure; otherwise one naming every
    endpoint's failure and what each that answered serves, of kind "wrong-model" when some endpoint
    answered, else the first failure's kind.
    """
    served: list[str] = []
    failures: list[tuple[str, TEIError]] = []
    for url in urls:
        client = make_client(url)
        try:
            infos = parse_info(client.url, client.get("/info"), typed=client.policy.typed)
        except TEIError as error:
            client.close()
            if len(urls) == 1:
                raise
            failures.append((url, error))
            continue
        except BaseException:
            client.close()
            raise
        for info in infos:
            if info.kind == kind:
                return client, info
        client.close()
        served += [f"{host_of(url)} serves {info.model_id} ({_describe(info)})" for info in infos]
    wanted = "a reranker" if kind == "reranker" else "an embedding model"
    return_hint = ("a reranker endpoint (a sequence classifier with one label)" if kind == "reranker"
                   else "an embedding endpoint")
    summary = "; ".join([*served, *(f"{host_of(url)} failed: {error}" for url, error in failures)])
    raise TEIError(f"no TEI endpoint serves {wanted}: {summary}. Add {return_hint} to {URL_SETTING} "
                   "(comma-separated), or use --backend torch to run this model here",
                   "wrong-model" if served else failures[0][1].kind)


def parse_info(url: str, payload: Any, *, typed: bool = False) -> list[EndpointInfo]:
    """The models a `GET /info` answer describes: TEI's own fields, then any in this project's "models"
    extension (see `search.serve`). Raises TEIError (kind "protocol") for an answer that is not TEI's.

    From an endpoint a visitor `typed`, the model id is the only part of the answer ever shown, and only when
    it looks like one (a Hub id or a path, at most 200 characters); an error quotes nothing of the answer.

    >>> info = parse_info("http://h", {"model_id": "BAAI/bge-reranker-v2-m3", "model_type": {"reranker":
    ...     {"id2label": {"0": "LABEL_0"}, "label2id": {"LABEL_0": 0}}}, "max_input_length": 512,
    ...     "max_client_batch_size": 32, "auto_truncate": True})
    >>> info[0].kind, info[0].model_id, info[0].max_client_batch_size
    ('reranker', 'BAAI/bge-reranker-v2-m3', 32)
    """
    host = host_of(url)
    if not isinstance(payload, dict) or not isinstance(payload.get("model_id"), str):
        raise TEIError(f"the endpoint at {host} did not answer like TEI (GET /info has no model_id); check that "
                       f"{URL_SETTING} points at a text-embeddings-inference server", "protocol")
    infos = [_model_info(url, payload, payload, typed)]
    extension = payload.get("models")
    if isinstance(extension, list):
        for entry in extension:
            if isinstance(entry, dict) and isinstance(entry.get("model_id"), str):
                info = _model_info(url, {**payload, **entry}, entry, typed)
                if all(known.kind != info.kind for known in infos):
                    infos.append(info)
    return infos


def _model_info(url: str, fields: dict[str, Any], source: dict[str, Any], typed: bool) -> EndpointInfo:
    if typed and not _SHOWN_MODEL_ID.fullmatch(fields["model_id"]):
        raise TEIError(f"the endpoint at {host_of(url)} did not answer like TEI (GET /info names no model id that "
                       f"looks like one); check that {URL_SETTING} points at a text-embeddings-inference server",
                       "protocol")
    model_type = source.get("model_type")
    kind: Kind
    labels = 1
    if not isinstance(model_type, dict) or len(model_type) != 1:
        raise TEIError(f"the endpoint at {host_of(url)} did not answer like TEI (GET /info has no model_type); "
                       f"check that {URL_SETTING} points at a text-embeddings-inference server", "protocol")
    (name, details), = model_type.items()
    if name == "embedding":
        kind = "embedding"
    elif name in ("reranker", "classifier"):
        kind = name
        id2label = details.get("id2label") if isinstance(details, dict) else None
        labels = len(id2label) if isinstance(id2label, dict) and id2label else 1
    else:
        shown = "" if typed else f" {name!r}"
        raise TEIError(f"the endpoint at {host_of(url)} serves a model of unknown type{shown}", "protocol")
    return EndpointInfo(url, fields["model_id"], kind, _count(fields, "max_input_length", 512),
                        _count(fields, "max_client_batch_size", DEFAULT_CHUNK), bool(fields.get("auto_truncate")),
                        fields["model_id"] not in LATE_INTERACTION_IDS, labels)


def _count(fields: dict[str, Any], name: str, default: int) -> int:
    value = fields.get(name)
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else default


def _describe(info: EndpointInfo) -> str:
    if info.kind == "classifier":
        return f"a classifier with {info.labels} labels, not a reranker"
    return "a reranker" if info.kind == "reranker" else "an embedding model"


def note_other_model(requested: str, served: str, host: str) -> None:
    """Log that the endpoint at `host` serves `served` when the settings asked for another model `requested`."""
    if requested and requested not in (served, "auto") and requested not in LATE_INTERACTION_IDS:
        logger.info("the settings name %s; the TEI endpoint at %s serves %s, which is used", requested, host, served)

