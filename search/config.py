"""Every setting in one table, read from the environment once.

`OPTIONS` lists each setting: its name, its environment variable, what kind of value it takes (and the
range or choices), its default, a one-line doc, and the command-line flag that sets it (for the CLI's
flags, generated from this table). `load()` reads the environment once, checks every value and raises
`ConfigError` naming each bad variable and what it accepts; `current()` is the configuration the
process started with (loaded on first use). Nothing else in the project reads `os.environ` (a test checks
this), so a setting is parsed one way everywhere and a bad value fails at start-up, not on a request.

The view's defaults and ranges (k, rerank depth, passage window, overlap…) are settings too: the CLI's
flags, the app's sliders and the share link all read them from here.

>>> config = load({"SEARCH_K": "5", "SEARCH_SERVE_TEI": "on"})
>>> config.k, config.serve_tei, config.rerank_depth
(5, True, 20)
>>> load({"SEARCH_MAX_PASSAGES": "lots"})
Traceback (most recent call last):
  ...
search.config.ConfigError: SEARCH_MAX_PASSAGES='lots' is not allowed: it takes a whole number from 0 (0: no limit)
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, make_dataclass, replace
from pathlib import Path
from typing import Any, Literal

Kind = Literal["int", "float", "bool", "text", "choice", "path", "rerankers", "line"]
Group = Literal["models", "corpus", "view", "limits", "operator", "server"]

TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
FALSE_WORDS = frozenset({"0", "false", "no", "off"})
DEFAULT_CACHE = Path.home() / ".cache" / "multilingual-rerank-explorer"
# Where a Hugging Face Space mounts its persistent storage (when the Space has it): files there survive restarts.
SPACE_STORAGE = Path("/data")
APP_FOLDER = "multilingual-rerank-explorer"


def persistent_or_home(subfolder: str, storage: Path = SPACE_STORAGE) -> Path:
    """``<storage>/multilingual-rerank-explorer/<subfolder>`` when `storage` (a Space's persistent storage,
    /data) is a folder this process may write to, else ``~/.cache/multilingual-rerank-explorer/<subfolder>``.

    >>> persistent_or_home("onnx", Path("/no/such/folder")) == DEFAULT_CACHE / "onnx"
    True
    """
    if storage.is_dir() and os.access(storage, os.W_OK | os.X_OK):
        return storage / APP_FOLDER / subfolder
    return DEFAULT_CACHE / subfolder


class ConfigError(ValueError):
    """One or more settings have values they don't accept; the message names each and what it takes."""


@dataclass(frozen=True)
class Option:
    """One setting. `low`/`high` bound numbers (None: unbounded), `step` is a slider's step, `choices` the
    values a choice takes; `flag` is its command-line flag (None: environment only) in the CLI's `group`.
    `secret` keeps the value out of reprs and logs."""

    name: str
    env: str | None
    kind: Kind
    default: Any
    doc: str
    group: Group
    low: float | None = None
    high: float | None = None
    step: float | None = None
    choices: tuple[str, ...] = ()
    flag: str | None = None
    secret: bool = False
    zero_means: str = ""  # what 0 stands for, e.g. "no limit"
    # A default that depends on the machine: called by `load()` when the variable is unset (`default` is then
    # what it gives on a machine without the condition, and `default_doc` says the rule in the docs).
    default_rule: Callable[[], Any] | None = None
    default_doc: str = ""

    def accepts(self) -> str:
        """What the setting takes, in words (error messages and the README's settings table)."""
        if self.kind == "bool":
            return "1/true/yes/on or 0/false/no/off"
        if self.kind == "choice":
            return "one of " + ", ".join(self.choices)
        if self.kind in ("int", "float"):
            what = "a whole number" if self.kind == "int" else "a number"
            if self.low is not None and self.high is not None:
                what += f" from {self.low:g} to {self.high:g}"
            elif self.low is not None:
                what += f" from {self.low:g}"
            return what + (f" (0: {self.zero_means})" if self.zero_means else "")
        if self.kind == "rerankers":
            return "model ids, comma-separated, each optionally MODEL@BACKEND"
        if self.kind == "path":
            return "a folder path"
        if self.kind == "line":
            return "default (the model's measured line, where known), none, or a score such as 0.8"
        return "text"

    def parse(self, raw: str) -> Any:
        """The value of `raw` (an environment variable's or a flag's text). Raises ValueError (the message
        says what the setting accepts)."""
        value = raw.strip()
        problem = f"it takes {self.accepts()}"
        if self.kind == "bool":
            lowered = value.lower()
            if lowered in TRUE_WORDS:
                return True
            if lowered in FALSE_WORDS or not lowered:
                return False
            raise ValueError(problem)
        if self.kind in ("int", "float"):
            try:
                number = int(value) if self.kind == "int" else float(value)
            except ValueError:
                raise ValueError(problem) from None
            if number != number or number in (float("inf"), float("-inf")):
                raise ValueError(problem)
            if (self.low is not None and number < self.low) or (self.high is not None and number > self.high):
                raise ValueError(problem)
            return number
        if self.kind == "choice":
            lowered = value.lower()
            if lowered not in self.choices:
                raise ValueError(problem)
            return lowered
        if self.kind == "path":
            return Path(value).expanduser() if value else self.default
        if self.kind == "rerankers":
            return parse_rerankers(value) if value else self.default
        if self.kind == "line":
            try:
                return parse_line(value)
            except ValueError:
                raise ValueError(problem) from None
        return value


LineSetting = float | Literal["default", "none"]
"""Where the Reranked columns draw their "no good answer" line (`search.answerability`): "default" (each
model's own, where one is known), "none", or a score (on the scale the columns show)."""


def parse_line(value: object) -> LineSetting:
    """Read a score-line setting: "default" (or blank), "none" (or "off"), or a finite number.

    >>> parse_line(""), parse_line("Off"), parse_line(" 0.5 "), parse_line(2)
    ('default', 'none', 0.5, 2.0)
    """
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number = float(value)
    else:
        text = "" if value is None else str(value).strip().lower()
        if text in ("", "default", "auto"):
            return "default"
        if text in ("none", "off", "no"):
            return "none"
        try:
            number = float(text)
        except ValueError:
            raise ValueError(f"score line {str(value)[:40]!r} is not a number; give a score such as 0.8, "
                             "'default' (the model's own line, where one is known) or 'none'") from None
    if not math.isfinite(number):
        raise ValueError(f"score line {value!r} is not a finite number; give a score such as 0.8, 'default' or 'none'")
    return number


def parse_rerankers(value: str) -> tuple[tuple[str, str], ...]:
    """``"auto, late-interaction-minilm@int8"`` -> ``(("auto", ""), ("late-interaction-minilm", "int8"))``:
    (model, backend) pairs, "" for the backend of the `backend` setting.

    >>> parse_rerankers("BAAI/bge-reranker-v2-m3@onnx")
    (('BAAI/bge-reranker-v2-m3', 'onnx'),)
    """
    chosen = []
    for item in value.split(","):
        model, _, backend = item.strip().partition("@")
        if model.strip():
            chosen.append((model.strip(), backend.strip().lower()))
    if not chosen:
        raise ValueError("it names no reranker")
    return tuple(chosen)


_BACKENDS = ("auto", "torch", "onnx", "int8", "tei")

OPTIONS: tuple[Option, ...] = (
    # -- models: what the index is built and searched with -------------------------------------------------
    Option("dense_model", "SEARCH_DENSE_MODEL", "text", "intfloat/multilingual-e5-small",
           "the dense encoder: a Hub id or a local folder (offline: the bundled multilingual-e5-small)", "models",
           flag="--dense-model"),
    Option("rerankers", "SEARCH_RERANKER_MODEL", "rerankers", (("auto", ""),),
           "the reranker(s): auto, a Hub id, a local folder, late-interaction or late-interaction-minilm; "
           "several, comma-separated, each a stage of its own (MODEL@BACKEND runs one on another backend)",
           "models", flag="--reranker-model"),
    Option("backend", "SEARCH_BACKEND", "choice", "auto",
           "what runs the models: auto (the best available here), torch, onnx, int8 or tei", "models",
           choices=_BACKENDS, flag="--backend"),
    Option("device", "SEARCH_DEVICE", "text", "auto", "cpu, cuda, cuda:1, mps or auto", "models",
           flag="--device"),
    Option("tei_url", "SEARCH_TEI_URL", "text", "",
           "the text-embeddings-inference endpoint(s) of the tei backend, comma-separated", "models",
           flag="--tei-url"),
    Option("langid", "SEARCH_LANGID", "choice", "auto",
           "the language detector: auto (fastText, else langdetect), fasttext or langdetect", "corpus",
           choices=("auto", "fasttext", "langdetect"), flag="--langid"),
    # -- the view: defaults and ranges of the page's controls and the CLI's flags ---------------------------
    Option("window", "SEARCH_WINDOW", "int", 200, "passage length in words (Chinese, Japanese, Thai: characters)",
           "corpus", low=32, high=1024, step=8, flag="--window"),
    Option("fusion", "SEARCH_FUSION", "choice", "relative-score",
           "how hybrid fuses BM25 and dense: relative-score (BM25 weighted by the share of the corpus in the "
           "query's language) or rrf (the old equal-weight reciprocal rank fusion)", "corpus",
           choices=("relative-score", "rrf"), flag="--fusion"),
    Option("bm25_statistics", "SEARCH_BM25_STATISTICS", "choice", "language",
           "BM25's document frequencies per passage language, or over the whole corpus (the old way)", "corpus",
           choices=("language", "corpus"), flag="--bm25-statistics"),
    Option("stopwords", "SEARCH_STOPWORDS", "bool", True,
           "drop the query's stopwords (Stopwords ISO lists) before BM25 and highlighting", "corpus",
           flag="--stopwords"),
    Option("index_titles", "SEARCH_INDEX_TITLES", "bool", True,
           "index a document's title with each of its passages, and rerank it in front of them", "corpus",
           flag="--index-titles"),
    Option("overlap", "SEARCH_OVERLAP", "int", 40, "words shared by consecutive passages (below half the window)",
           "corpus", low=0, high=256, step=4, flag="--overlap"),
    Option("k", "SEARCH_K", "int", 10, "results shown per stage", "view", low=1, high=50, step=1, flag="--k"),
    Option("rerank_depth", "SEARCH_RERANK_DEPTH", "int", 20,
           "first-stage candidates each reranker rescores (0 turns reranking off)", "view", low=0, high=100,
           step=1, flag="--rerank-depth"),
    Option("candidates_from", "SEARCH_CANDIDATES_FROM", "choice", "hybrid",
           "the first stage that feeds the rerankers", "view", choices=("bm25", "dense", "hybrid"),
           flag="--candidates-from"),
    Option("score_line", "SEARCH_SCORE_LINE", "line", "default",
           "where the Reranked columns draw a \"no good answer\" line: default (the model's measured line, "
           "where one is known: late-interaction 0.84), none, or a score on the scale the columns show",
           "view", flag="--score-line"),
    Option("max_query_chars", "SEARCH_MAX_QUERY_CHARS", "int", 1000,
           "the longest query searched, in characters (the app, its API, the CLI and share links)", "view",
           low=10, high=100_000),
    # -- limits of one upload -------------------------------------------------------------------------------
    Option("max_upload_mb", "SEARCH_MAX_UPLOAD_MB", "int", 50,
           "the uploads of one build in the app, in MB of 1,000,000 bytes", "limits", low=1),
    Option("max_passages", "SEARCH_MAX_PASSAGES", "int", 20_000,
           "passages one build in the app may have; a larger corpus is refused while splitting (the CLI: "
           "--max-passages)", "limits",
           low=0, zero_means="no limit"),
    Option("confirm_build_seconds", "SEARCH_CONFIRM_BUILD_SECONDS", "int", 120,
           "a build in the app whose embedding would take longer than this here asks before embedding (and lets "
           "files be left out)", "limits", low=0, zero_means="never ask"),
    Option("max_file_mb", "SEARCH_MAX_FILE_MB", "float", 50.0,
           "the largest single file (archive members measured uncompressed), in MB", "limits", low=0.001),
    Option("max_total_mb", "SEARCH_MAX_TOTAL_MB", "float", 200.0,
           "uncompressed MB of all files of one read together", "limits", low=0.001),
    Option("max_files", "SEARCH_MAX_FILES", "int", 5000, "files read at once, archive members included", "limits",
           low=1),
    Option("max_zip_depth", "SEARCH_MAX_ZIP_DEPTH", "int", 2, "how many archives deep a member may sit "
           "(0 refuses archives)", "limits", low=0),
    Option("max_compression_ratio", "SEARCH_MAX_COMPRESSION_RATIO", "float", 100.0,
           "uncompressed / compressed size above which an archive member of 1 MB or more is refused", "limits",
           low=1),
    Option("max_seconds_per_file", "SEARCH_MAX_SECONDS_PER_FILE", "float", 60.0,
           "seconds to parse one file; the rest of it is skipped past that", "limits", low=0.001),
    Option("max_pdf_pages", "SEARCH_MAX_PDF_PAGES", "int", 2000, "pages read from one PDF", "limits", low=1),
    Option("max_nesting", "SEARCH_MAX_NESTING", "int", 100, "how deeply JSON may nest", "limits", low=1),
    Option("max_documents", "SEARCH_MAX_DOCUMENTS", "int", 200_000,
           "documents kept from one read; reading stops there, mid-file", "limits", low=1),
    Option("max_text_chars", "SEARCH_MAX_TEXT_CHARS", "int", 200_000_000,
           "characters of document text kept from one read (its memory); reading stops there", "limits", low=1),
    Option("max_zip_entries", "SEARCH_MAX_ZIP_ENTRIES", "int", 20_000,
           "entries an archive may list, and all archives of one read together; refused before its directory "
           "is parsed", "limits", low=1),
    # -- the operator's policy for a public Space -----------------------------------------------------------
    Option("allow_custom_models", "SEARCH_ALLOW_CUSTOM_MODELS", "bool", False,
           "let visitors name any Hub id or local folder, not only the offered models", "operator"),
    Option("hide_tei_url", "SEARCH_HIDE_TEI_URL", "bool", False,
           "hide the model panel's TEI URL field (only SEARCH_TEI_URL is used)", "operator"),
    Option("allow_internal_tei_url", "SEARCH_ALLOW_INTERNAL_TEI_URL", "bool", False,
           "let typed TEI URLs name loopback, private and other non-public addresses", "operator"),
    Option("tei_token", "SEARCH_TEI_TOKEN", "text", "", "the bearer token sent to SEARCH_TEI_URL (else HF_TOKEN)",
           "operator", secret=True),
    Option("hf_token", "HF_TOKEN", "text", "", "the Hugging Face token (the TEI token when SEARCH_TEI_TOKEN is "
           "unset)", "operator", secret=True),
    Option("tei_timeout", "SEARCH_TEI_TIMEOUT", "float", 60.0, "seconds one TEI request may take", "operator",
           low=0.1, high=3600),
    Option("cache_dir", "SEARCH_CACHE_DIR", "path", DEFAULT_CACHE / "indexes",
           "where built indexes are kept and reused", "operator"),
    Option("onnx_cache", "SEARCH_ONNX_CACHE", "path", DEFAULT_CACHE / "onnx",
           "where the onnx and int8 forms of the models are prepared and kept (`python -m search prepare` fills "
           "it ahead of time); on a Space with persistent storage they survive restarts", "operator",
           default_rule=lambda: persistent_or_home("onnx"),
           default_doc=f"`{SPACE_STORAGE}/{APP_FOLDER}/onnx` when {SPACE_STORAGE} is writable (a Space's persistent "
                       "storage), else `~/.cache/multilingual-rerank-explorer/onnx`", flag="--onnx-cache"),
    # -- the TEI-compatible server --------------------------------------------------------------------------
    Option("serve_tei", "SEARCH_SERVE_TEI", "bool", False, "the app also serves TEI's routes under /tei",
           "server"),
    Option("serve_api_key", "SEARCH_SERVE_API_KEY", "text", "",
           "the key `serve` (and /tei) require as 'Authorization: Bearer KEY'", "server", secret=True),
)
OPTION = {option.name: option for option in OPTIONS}

Config = make_dataclass(
    "Config", [(option.name, Any, field(default=option.default, repr=not option.secret)) for option in OPTIONS],
    frozen=True)
Config.__module__ = __name__
Config.__doc__ = "The value of every setting (`OPTIONS`); frozen. `replace(config, k=5)` gives a changed copy."


def load(environ: Mapping[str, str] | None = None) -> Config:
    """Read every setting from `environ` (default: the process environment); unset or empty variables keep
    their defaults. Raises ConfigError naming every bad variable and what it accepts."""
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    problems = []
    for option in OPTIONS:
        raw = environ.get(option.env, "") if option.env else ""
        if not raw.strip():
            if option.default_rule is not None:
                values[option.name] = option.default_rule()
            continue
        try:
            values[option.name] = option.parse(raw)
        except ValueError as error:
            shown = "(hidden)" if option.secret else repr(raw)
            problems.append(f"{option.env}={shown} is not allowed: {error}")
    if problems:
        raise ConfigError("; ".join(problems))
    return Config(**values)


_current: Config | None = None
_lock = threading.Lock()


def current() -> Config:
    """The process's configuration: the environment as `load()` read it the first time this was called."""
    global _current
    with _lock:
        if _current is None:
            _current = load()
        return _current


def reload(environ: Mapping[str, str] | None = None) -> Config:
    """Read the environment again (for tests and for a process that changed it before starting); returns it."""
    global _current
    loaded = load(environ)
    with _lock:
        _current = loaded
    return loaded


def reset() -> None:
    """Forget the configuration read so far: the next `current()` reads the environment again (a test that
    changed it; a bad value then fails there, as at start-up)."""
    global _current
    with _lock:
        _current = None


@contextmanager
def overridden(**values: Any) -> Iterator[Config]:
    """Within the block, `current()` has `values` in place of its own (tests). Raises TypeError for an
    unknown setting name."""
    global _current
    before = current()
    changed = replace(before, **values)
    with _lock:
        _current = changed
    try:
        yield changed
    finally:
        with _lock:
            _current = before


def default(name: str) -> Any:
    """The built-in default of the setting `name` (not the environment's)."""
    return OPTION[name].default


def limits(name: str) -> tuple[float | None, float | None, float | None]:
    """(low, high, step) of a numeric setting, for sliders and checks."""
    option = OPTION[name]
    return option.low, option.high, option.step


def env_names() -> dict[str, str]:
    """Setting name -> its environment variable."""
    return {option.name: option.env for option in OPTIONS if option.env}


GROUP_TITLES = {"models": "Models", "corpus": "Corpus and passages", "view": "The view (defaults of the page and the "
                "CLI)", "limits": "Limits of one upload", "operator": "The operator's policy and paths",
                "server": "The TEI-compatible server"}


def markdown_table() -> str:
    """Every setting as the Markdown table of docs/settings.md (a test checks the file holds exactly this):
    variable, command-line flag, default, what it accepts, and what it does."""
    lines = ["| variable | flag | default | accepts | what it does |", "| --- | --- | --- | --- | --- |"]
    for group, title in GROUP_TITLES.items():
        lines.append(f"| **{title}** | | | | |")
        for option in OPTIONS:
            if option.group != group:
                continue
            shown = _shown_default(option)
            flag = f"`{option.flag}`" if option.flag else ""
            lines.append(f"| `{option.env}` | {flag} | {shown} | {option.accepts()} | {option.doc} |")
    return "\n".join(lines) + "\n"


def _shown_default(option: Option) -> str:
    if option.default_doc:
        return option.default_doc
    value = option.default
    if option.secret or value in ("", None):
        return "(unset)"
    if option.kind == "bool":
        return "0" if not value else "1"
    if option.kind == "rerankers":
        return "`" + ", ".join(f"{model}@{backend}" if backend else model for model, backend in value) + "`"
    if option.kind == "path":
        return "`~/" + str(Path(value).relative_to(Path.home())) + "`" if Path(value).is_relative_to(Path.home()) \
            else f"`{value}`"
    if isinstance(value, float) and value.is_integer():
        return f"{value:g}"
    return f"`{value}`" if option.kind in ("text", "choice") else f"{value:,}" if isinstance(value, int) else str(value)


def tei_token(config: Config | None = None) -> str | None:
    """The token the TEI client sends: SEARCH_TEI_TOKEN, else HF_TOKEN, else None. Never logged."""
    config = config or current()
    return (config.tei_token or config.hf_token or "").strip() or None

