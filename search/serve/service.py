"""`TEIService`: the logic of TEI's routes over a reranker and/or an encoder from `search.loading` (the same
cached models, score cache and RERANK_LOCK as the app), within its `ServeLimits`: each route a plain function
of the parsed request body, answering an `Answer` or raising `TEIRequestError` as TEI would."""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from .. import __version__
from ..inference import Loaded, Reranker, StopFn, TextEncoder
from ..models import choose_reranker
from .limits import ServeLimits
from .openai import embeddings_body, read_embeddings_request
from .requests import (
    EMPTY_INPUT,
    MISSING,
    NOT_A_RERANKER,
    deserialize_error,
    is_token_id,
    read_dimensions,
    read_direction,
    read_field,
    read_inputs,
    read_predict_inputs,
    read_strings,
    struct,
)
from .runner import ModelRunner, ServedModels
from .timing import Timing
from .tokens import model_prompts, named_prompt, simple_tokens

logger = logging.getLogger(__name__)

RERANKER_LABELS = {"id2label": {"0": "LABEL_0"}, "label2id": {"LABEL_0": 0}}


@dataclass(frozen=True)
class Answer:
    """A route's JSON `body` and its `timing` (None for routes that run no model)."""

    body: Any
    timing: Timing | None = None


class TEIService(ModelRunner):
    """The logic of TEI's routes over the models `load` returns (called once, on first use, in a worker
    thread; `ensure_loaded` loads them now), which `ModelRunner` runs. Thread-safe.

    `api_key`, when set, must come as ``Authorization: Bearer <api_key>`` on every route but the health,
    metrics and OpenAPI ones (TEI's --api-key); a request without it gets 401.
    """

    def __init__(self, load: Callable[[], ServedModels], limits: ServeLimits | None = None, *,
                 api_key: str | None = None) -> None:
        super().__init__(load, limits)
        self._api_key = api_key or None

    def __repr__(self) -> str:
        return f"TEIService({self.limits!r}, api_key={'set' if self._api_key else 'none'})"

    @classmethod
    def from_models(cls, *, reranker: Reranker | Loaded[Reranker] | None = None,
                    encoder: TextEncoder | Loaded[TextEncoder] | None = None, limits: ServeLimits | None = None,
                    api_key: str | None = None) -> TEIService:
        """A service over models already loaded. Raises ValueError when neither is given."""
        if reranker is None and encoder is None:
            raise ValueError("serve at least one model: a reranker, a dense encoder or both")
        served = ServedModels(_as_loaded(reranker), _as_loaded(encoder))
        return cls(lambda: served, limits, api_key=api_key)

    @classmethod
    def from_settings(cls, settings=None, *, reranker: bool = True, dense: bool = True,
                      limits: ServeLimits | None = None, api_key: str | None = None) -> TEIService:
        """A service over the models `settings` (default `Settings.from_config()`) name, loaded on first use
        through `search.loading` (so shared with the app in the same process), with the usual offline
        fallbacks. ``auto`` serves bge-reranker-v2-m3 (a server does not know its queries' languages);
        a remote `backend` (``tei``) is replaced by ``auto``: the server runs its models here.
        """
        if not (reranker or dense):
            raise ValueError("serve at least one model: leave out --no-reranker or --no-dense")
        from ..loading import AUTO_BACKEND, REMOTE_BACKENDS, load_dense_encoder, load_reranker, resolve_backend
        from ..pipeline import Settings

        settings = settings or Settings.from_config()
        backend = settings.backend if resolve_backend(settings.backend) not in REMOTE_BACKENDS else AUTO_BACKEND
        device = None if settings.device == "auto" else settings.device

        def load() -> ServedModels:
            model = choose_reranker(settings.rerankers[0].model)
            served = ServedModels(
                load_reranker(model, device, backend=backend) if reranker else None,
                load_dense_encoder(settings.dense_model, device, backend=backend) if dense else None)
            for loaded in (served.reranker, served.encoder):
                if loaded is not None and loaded.fallback_reason:
                    logger.warning("serving %s: %s", loaded.model.label, loaded.fallback_reason)
            return served

        return cls(load, limits, api_key=api_key)

    # -- the routes, as plain functions of the parsed request body -----------------------------------

    def info(self) -> dict[str, Any]:
        """The `GET /info` answer: TEI's `Info` of the reranker when one is served (else the encoder), plus
        every served model in "models" and which route `POST /` takes for a body's fields in "post_root"."""
        served = self.ensure_loaded()
        described = []
        if served.reranker is not None:
            reranker = served.reranker.model
            described.append({"model_id": reranker.model_id, "model_type": {"reranker": RERANKER_LABELS},
                              "model_dtype": reranker.dtype, "max_input_length": self._limit(reranker.max_length),
                              "device": reranker.device, "label": reranker.label,
                              "fallback_reason": served.reranker.fallback_reason})
        if served.encoder is not None:
            encoder = served.encoder.model
            described.append({"model_id": encoder.model_id,
                              "model_type": {"embedding": {"pooling": encoder.spec.pooling}},
                              "model_dtype": encoder.dtype, "max_input_length": self._limit(encoder.max_length),
                              "device": encoder.device, "label": encoder.label,
                              "fallback_reason": served.encoder.fallback_reason,
                              "prompts": model_prompts(encoder)})
        primary = described[0]
        return {
            "model_id": primary["model_id"], "model_sha": None, "model_dtype": primary["model_dtype"],
            "served_model_name": primary["model_id"], "model_type": primary["model_type"],
            "max_concurrent_requests": self.limits.max_concurrent_requests,
            "max_input_length": primary["max_input_length"],
            "max_batch_tokens": primary["max_input_length"] * self.limits.max_client_batch_size,
            "max_batch_requests": None, "max_client_batch_size": self.limits.max_client_batch_size,
            "auto_truncate": self.limits.auto_truncate, "tokenization_workers": 1,
            "version": f"search-{__version__}", "sha": None, "docker_label": None,
            "models": described, "post_root": self._root_routes(served),
        }

    def root(self, body: Any, should_stop: StopFn | None = None) -> Answer:
        """`POST /` and `/invocations`: TEI's route for the model kind (rerank for a reranker, embed for an
        encoder); with both served, rerank when the body has ``query`` or ``texts``, else embed."""
        served = self.ensure_loaded()
        request = struct(body, "EmbedRequest")
        routes = self._root_routes(served)
        rerank = "inputs" not in routes or ("query" in routes and ("query" in request or "texts" in request))
        return self.rerank(request, should_stop) if rerank else self.embed(request)

    def rerank(self, body: Any, should_stop: StopFn | None = None) -> Answer:
        """`POST /rerank`: ranks sorted by score (ties: the later text first, as TEI sorts), sigmoids unless
        ``raw_scores``; raises TEIRequestError as TEI would."""
        request = struct(body, "RerankRequest")
        query = read_field(request, "query", str, required=True)
        texts = read_strings(request, "texts")
        truncate = self._truncate(request)
        direction = read_direction(request)
        raw_scores = read_field(request, "raw_scores", bool, default=False)
        return_text = read_field(request, "return_text", bool, default=False)
        if not texts:
            raise self._fail("validation", "Empty", "`texts` cannot be empty")
        served = self.ensure_loaded()
        if served.reranker is None:
            raise self._fail("model_type", "Backend", NOT_A_RERANKER)
        self.metrics.count("te_request_count", {"method": "batch"})
        self._check_batch(len(texts))
        with self._permits_for(len(texts)):
            scores, timing = self._score_pairs(served.reranker.model, [(query, text) for text in texts],
                                               truncate, direction, should_stop)
        ranks = []
        for index, value in enumerate(_shown(scores, raw_scores)):
            rank: dict[str, Any] = {"index": index, "score": value}
            if return_text:
                rank["text"] = texts[index]
            ranks.append(rank)
        ranks.sort(key=lambda rank: rank["score"])
        ranks.reverse()
        self._succeeded("batch", timing, "predict")
        return Answer(ranks, timing)

    def predict(self, body: Any, should_stop: StopFn | None = None) -> Answer:
        """`POST /predict` for the reranker: ``inputs`` a [query, passage] pair, or a list of them;
        one ``{"score", "label"}`` per pair. A single text (no pair) is refused: the rerankers here only
        score pairs."""
        request = struct(body, "PredictRequest")
        inputs, batch = read_predict_inputs(request)
        truncate = self._truncate(request)
        direction = read_direction(request)
        raw_scores = read_field(request, "raw_scores", bool, default=False)
        served = self.ensure_loaded()
        self.metrics.count("te_request_count", {"method": "batch" if batch else "single"})
        if batch:
            self._check_batch(len(inputs))
        with self._permits_for(len(inputs)):
            if served.reranker is None:
                raise self._fail("model_type", "Backend", "Backend error: Model is not a classifier model")
            if any(len(sequence) != 2 for sequence in inputs):
                raise self._fail("model_type", "Backend", "Backend error: this server's reranker scores (query, "
                                 "passage) pairs only; send inputs as [\"query\", \"passage\"] or a list of them")
            pairs = [(sequence[0], sequence[1]) for sequence in inputs]
            scores, timing = self._score_pairs(served.reranker.model, pairs, truncate, direction, should_stop)
        predictions = [[{"score": value, "label": "LABEL_0"}] for value in _shown(scores, raw_scores)]
        self._succeeded("batch" if batch else "single", timing, "predict")
        return Answer(predictions if batch else predictions[0], timing)

    def embed(self, body: Any) -> Answer:
        """`POST /embed`: one vector per input; raises TEIRequestError as TEI would."""
        request = struct(body, "EmbedRequest")
        inputs, batch = read_inputs(request, "inputs")
        truncate = self._truncate(request)
        direction = read_direction(request)
        prompt_name = read_field(request, "prompt_name", str, default=None, nullable=True)
        normalize = read_field(request, "normalize", bool, default=True)
        dimensions = read_dimensions(request)
        vectors, timing = self._embed_inputs(inputs, batch, truncate=truncate, direction=direction,
                                             prompt_name=prompt_name, normalize=normalize, dimensions=dimensions)
        return Answer(vectors.tolist(), timing)

    def openai_embeddings(self, body: Any) -> Answer:
        """`POST /v1/embeddings` (and `/embeddings`) in OpenAI's shape: ``input``, ``encoding_format``
        ("float" or "base64": little-endian float32 bytes), ``dimensions``; normalised vectors, truncation
        as `auto_truncate`, and ``usage`` counting the tokens read."""
        request = read_embeddings_request(body)
        served = self.ensure_loaded()
        model = served.encoder.model.model_id if served.encoder is not None else None
        if model is not None and request.model not in (None, model):
            logger.info("a request asked for model=%r; this server embeds with %s", request.model, model)
        vectors, timing = self._embed_inputs(request.inputs, request.batch, truncate=self.limits.auto_truncate,
                                             direction="right", prompt_name=None, normalize=True,
                                             dimensions=request.dimensions)
        return Answer(embeddings_body(vectors, request.encoding, model, timing.tokens), timing)

    def similarity(self, body: Any) -> Answer:
        """`POST /similarity`: the cosine similarity of ``inputs.source_sentence`` with each of
        ``inputs.sentences``, embedded with ``parameters`` (truncate, truncation_direction, prompt_name)."""
        request = struct(body, "SimilarityRequest")
        inputs = struct(request.get("inputs"), "SimilarityInput", "inputs")
        source = read_field(inputs, "source_sentence", str, required=True)
        sentences = read_strings(inputs, "sentences")
        parameters = request.get("parameters")
        parameters = {} if parameters is None else struct(parameters, "SimilarityParameters", "parameters")
        truncate = self._truncate(parameters)
        direction = read_direction(parameters)
        prompt_name = read_field(parameters, "prompt_name", str, default=None, nullable=True)
        if not sentences:
            raise self._fail("validation", "Empty", "`inputs.sentences` cannot be empty")
        self._check_batch(len(sentences) + 1)  # and the source sentence
        vectors, timing = self._embed_inputs([source, *sentences], True, truncate=truncate, direction=direction,
                                             prompt_name=prompt_name, normalize=True, dimensions=None)
        return Answer([float(value) for value in vectors[1:] @ vectors[0]], timing)

    def tokenize(self, body: Any) -> Answer:
        """`POST /tokenize`: each input's tokens ``{id, text, special, start, stop}`` (UTF-8 byte offsets
        into the input with its prompt, None for special tokens), with the model's tokenizer: the encoder's
        when one is served, else the reranker's."""
        request = struct(body, "TokenizeRequest")
        value = request.get("inputs", MISSING)
        if value is MISSING:
            raise deserialize_error("missing field `inputs`")
        batch = isinstance(value, list)
        texts = value if batch else [value]
        if not all(isinstance(text, str) for text in texts):
            raise deserialize_error("inputs: data did not match any variant of untagged enum TokenizeInput")
        add_special_tokens = read_field(request, "add_special_tokens", bool, default=True)
        prompt_name = read_field(request, "prompt_name", str, default=None, nullable=True)
        if batch:
            if not texts:
                raise self._fail("validation", "Empty", "`inputs` cannot be empty")
            self._check_batch(len(texts))
        tokenizer, prompts = self._tokenizer()
        prompt = named_prompt(prompts, prompt_name)
        out = []
        for text in texts:
            if not text:
                raise self._fail("tokenization", "Empty", EMPTY_INPUT)
            text = prompt + text
            self._check_characters(text, self._tokenizer_limit())
            out.append(simple_tokens(tokenizer, text, add_special_tokens))
        return Answer(out)

    def decode(self, body: Any) -> Answer:
        """`POST /decode`: the text of each list of token ids (``skip_special_tokens`` by default)."""
        request = struct(body, "DecodeRequest")
        value = request.get("ids", MISSING)
        if value is MISSING:
            raise deserialize_error("missing field `ids`")
        batch = isinstance(value, list) and bool(value) and all(isinstance(ids, list) for ids in value)
        lists = value if batch else [value]
        if not all(isinstance(ids, list) and all(is_token_id(i) for i in ids) for ids in lists):
            raise deserialize_error("ids: data did not match any variant of untagged enum InputIds")
        skip_special_tokens = read_field(request, "skip_special_tokens", bool, default=True)
        if batch:
            self._check_batch(len(lists))
        tokenizer, _ = self._tokenizer()
        texts = []
        for ids in lists:
            if not ids:
                raise self._fail("tokenization", "Empty", "Input validation error: `input_ids` cannot be empty")
            texts.append(tokenizer.decode(ids, skip_special_tokens=skip_special_tokens))
        return Answer(texts)

    def not_served(self, route: str) -> Answer:
        """`/embed_sparse` and `/embed_all`: TEI's 424 for a model that can't serve them."""
        self.ensure_loaded()
        if route == "/embed_sparse":
            raise self._fail("model_type", "Backend", "Backend error: Model is not an embedding model with SPLADE "
                                                      "pooling")
        raise self._fail("model_type", "Backend", "Backend error: `embed_all` is not available on this server: its "
                                                  "encoders give pooled embeddings only")

    def health(self) -> None:
        """Nothing when the models are loaded; raises TEIRequestError (Unhealthy, 503) otherwise."""
        self.ensure_loaded()

    # -- checks --------------------------------------------------------------------------------------

    def authorized(self, header: str | None) -> bool:
        """Whether an Authorization header value may use the routes (always, when no api_key is set)."""
        if self._api_key is None:
            return True
        return hmac.compare_digest((header or "").encode(), f"Bearer {self._api_key}".encode())

    def _truncate(self, request: dict[str, Any]) -> bool:
        truncate = read_field(request, "truncate", bool, default=None, nullable=True)
        return self.limits.auto_truncate if truncate is None else truncate

    def _root_routes(self, served: ServedModels) -> dict[str, str]:
        routes = {}
        if served.reranker is not None:
            routes["query"] = "/rerank"
        if served.encoder is not None:
            routes["inputs"] = "/embed"
        return routes

    def _tokenizer(self) -> tuple[Any, dict[str, str]]:
        served = self.ensure_loaded()
        if served.encoder is not None and served.encoder.model.tokenizer is not None:
            return served.encoder.model.tokenizer, model_prompts(served.encoder.model)
        if served.reranker is not None and served.reranker.model.tokenizer is not None:
            return served.reranker.model.tokenizer, {}
        raise self._fail("model_type", "Backend", "Backend error: the served models tokenize remotely")

    def _tokenizer_limit(self) -> int:
        served = self.ensure_loaded()
        model = served.encoder.model if served.encoder is not None else served.reranker.model  # type: ignore[union-attr]
        return self._limit(model.max_length)


def _shown(scores: Sequence[tuple[float, float | None]], raw_scores: bool) -> list[float]:
    return [raw if raw_scores or sig is None else sig for raw, sig in scores]


def _as_loaded(model: Any) -> Loaded | None:
    if model is None or isinstance(model, Loaded):
        return model
    return Loaded(model, model.model_id)
