"""The operator's policy for a public deployment: which models a visitor may name, which TEI endpoints they
may type, how much they may upload, and the build settings a page's form may ask for.

The app and `serve` both ask here, so a rule is written once; every refusal is a ValueError whose message
names the setting that changes it (SEARCH_ALLOW_CUSTOM_MODELS, SEARCH_ALLOW_INTERNAL_TEI_URL, …).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from . import config
from .backends.tei import typed_endpoints
from .loading import BACKENDS, resolve_backend
from .models import (
    AUTO_RERANKER,
    FALLBACK_DENSE_ID,
    KNOWN_MODELS,
    LATE_INTERACTION_ID,
    LATE_INTERACTION_MINILM_ID,
    MINILM_ID,
    RERANKER_BASE,
    RERANKER_V2_M3,
    hub_reachable,
)
from .pipeline import RerankerChoice, Settings

MB = 1_000_000  # uploads are counted in decimal megabytes
OFFERED_RERANKERS = (AUTO_RERANKER, RERANKER_V2_M3, RERANKER_BASE, LATE_INTERACTION_ID, LATE_INTERACTION_MINILM_ID)
BUNDLED = frozenset({FALLBACK_DENSE_ID, MINILM_ID, LATE_INTERACTION_ID, LATE_INTERACTION_MINILM_ID})


@dataclass(frozen=True)
class OfferedModels:
    """The models a visitor may choose: the model table's and the operator's defaults (`custom`: any name)."""

    dense: tuple[str, ...]
    rerankers: tuple[str, ...]
    custom: bool


def offered_models(settings: config.Config | None = None) -> OfferedModels:
    """The dense models and rerankers offered here: the model table's, plus the configured defaults."""
    settings = settings or config.current()
    dense = [model_id for model_id, spec in KNOWN_MODELS.items() if spec.kind == "dense"]
    defaults = [model for model, _ in settings.rerankers]
    return OfferedModels(tuple(dict.fromkeys([settings.dense_model, *dense])),
                         tuple(dict.fromkeys([*defaults, *OFFERED_RERANKERS])), settings.allow_custom_models)


def offered_backends(settings: config.Config | None = None) -> tuple[str, ...]:
    """The backends offered (`search.loading.BACKENDS`), plus the configured one if it names another."""
    return tuple(dict.fromkeys([*BACKENDS, (settings or config.current()).backend]))


def availability(model_id: str) -> str:
    """Where `model_id` would load from here, in a few words for a model list: "bundled, offline", "in the
    HF cache", "downloads on first use", or that it can't load (the fallback is used then).

    >>> availability("late-interaction")
    'bundled, offline'
    """
    if model_id in BUNDLED:
        return "bundled, offline"
    if model_id == AUTO_RERANKER:
        return "picks bge-reranker-v2-m3 or -base by language"
    if Path(model_id).expanduser().is_dir():
        return "local folder"
    from huggingface_hub import try_to_load_from_cache

    if isinstance(try_to_load_from_cache(model_id, "config.json"), str):
        return "in the HF cache"
    if hub_reachable():
        return "downloads on first use"
    return "not cached and the Hub is unreachable: the offline fallback is used"


def check_models(dense_model: str, rerankers: Iterable[str], settings: config.Config | None = None) -> None:
    """Raise ValueError when a model is not offered here (unless the operator allows any: naming
    SEARCH_ALLOW_CUSTOM_MODELS)."""
    offered = offered_models(settings)
    if offered.custom:
        return
    for chosen, allowed in ((dense_model, offered.dense), *((model, offered.rerankers) for model in rerankers)):
        if chosen and chosen not in allowed:
            raise ValueError(f"{chosen} is not one of the models offered here ({', '.join(allowed)}). "
                             "The operator can allow any model with SEARCH_ALLOW_CUSTOM_MODELS=1.")


def typed_tei_url(value: str | None, settings: config.Config | None = None) -> str | None:
    """The TEI endpoint(s) a build uses for a URL a visitor typed: None for an empty field or a hidden one
    (SEARCH_HIDE_TEI_URL: the operator's SEARCH_TEI_URL is used), else the normalised URLs.

    Raises ValueError for a bad URL, for an address that is not globally routable (unless
    SEARCH_ALLOW_INTERNAL_TEI_URL=1; the operator's own endpoints always pass) and, when the server holds a
    TEI token, for any endpoint but the operator's (the token must never reach an address a visitor typed).
    See `search.backends.tei.typed_endpoints`, which also makes the client check the address again at
    connect time and never show what such an endpoint answered."""
    settings = settings or config.current()
    return typed_endpoints(value, operator_urls=settings.tei_url, allow_internal=settings.allow_internal_tei_url,
                           has_token=bool(config.tei_token(settings)), hidden=settings.hide_tei_url)


def build_settings(overrides: Mapping[str, object], *, rerankers: Sequence[tuple[str, str]] | None = None,
                   tei_url: str | None = None, settings: config.Config | None = None) -> Settings:
    """The build settings a visitor's form asks for: `overrides` (Settings field -> value; None and "" keep the
    configured value), `rerankers` as (model, backend) pairs, `tei_url` as typed. Checks the models against
    the offered ones, each backend against the known ones and the TEI URL against `typed_tei_url`.

    Raises ValueError naming the bad value and the setting or choice that fixes it."""
    settings = settings or config.current()
    values = {name: (value.strip() if isinstance(value, str) else value) for name, value in overrides.items()}
    values = {name: value for name, value in values.items() if value not in (None, "")}
    chosen = [RerankerChoice(model.strip() or AUTO_RERANKER, backend.strip()) for model, backend in rerankers or ()]
    check_models(str(values.get("dense_model", "")), [choice.model for choice in chosen], settings)
    for backend in [values.get("backend"), *(choice.backend for choice in chosen)]:
        if backend:
            resolve_backend(str(backend))  # an unknown one is refused here, with the choices
    try:
        return Settings.from_config(settings, **values, rerankers=tuple(chosen) or None,
                                    tei_url=typed_tei_url(tei_url, settings))
    except TypeError as error:
        raise ValueError(f"Invalid settings: {error}") from None


def upload_limit_bytes(settings: config.Config | None = None) -> int:
    """The uploads of one build may hold this many bytes in all (SEARCH_MAX_UPLOAD_MB)."""
    return (settings or config.current()).max_upload_mb * MB


def check_upload(paths: Sequence[Path], settings: config.Config | None = None) -> None:
    """Raise ValueError when the uploaded files together are over the upload limit, naming the setting."""
    total = sum(path.stat().st_size for path in paths if path.exists())
    limit = upload_limit_bytes(settings)
    if total > limit:
        raise ValueError(f"The upload is {total / MB:.1f} MB; the limit is {limit // MB} MB (set by "
                         "SEARCH_MAX_UPLOAD_MB). Upload fewer or smaller files.")


def check_query(query: str, settings: config.Config | None = None) -> str:
    """The query, stripped; ValueError when it is empty or longer than SEARCH_MAX_QUERY_CHARS."""
    limit = (settings or config.current()).max_query_chars
    query = (query or "").strip()
    if not query:
        raise ValueError("the query is empty; type a question or some keywords")
    if len(query) > limit:
        raise ValueError(f"the query is {len(query):,} characters long; queries have at most {limit:,} characters "
                         "here (SEARCH_MAX_QUERY_CHARS). Shorten it.")
    return query


def max_passages(settings: config.Config | None = None) -> int | None:
    """Passages one build in the app may have (SEARCH_MAX_PASSAGES; None: no limit)."""
    limit = (settings or config.current()).max_passages
    return limit if limit > 0 else None
