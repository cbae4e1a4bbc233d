"""Per-session state: what one browser session keeps between events (its index, its latest search, its
judgments, its evaluation and stop flags), the lines API calls wait in, and the session's files on disk.

Each browser session has its own corpus and index (`gr.State`, expiring SESSION_TTL_S after it was last
set); models are shared read-only through the engine's caches. Gradio deep-copies a State's default for
each session, so the holders here copy as fresh, empty ones.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import NamedTuple

import anyio
import gradio as gr

from search.pipeline import default_cache_dir
from search.types import SearchResult
from ui import judging
from ui.highlight import Marks

SESSION_TTL_S = 6 * 3600  # an idle session's index is dropped after this
# First stages (BM25, the query embedding, fusion) run at most 4 at a time: from the page (one Gradio
# concurrency group) and, on their own, from API clients. Reranks run one at a time (the engine's
# RERANK_LOCK). An API search waits for its first stages and its rerank in two separate lines
# (`ApiSlots`), never holding a first-stage slot while it waits to rerank, so first-stage-only API
# calls do not queue behind reranks; API_SEARCHES bounds how many API searches are in flight at once.
FIRST_STAGE_SLOTS = 4
API_SEARCHES = 32
# Gradio only hands out files from the working or the temp directory, so downloads are written under
# the temp dir: one folder per session, replaced on each download and removed with the session.
DOWNLOADS_DIR = Path(tempfile.gettempdir()) / "rerank-explorer-downloads"


class StopFlag(threading.Event):
    """A session's "cancel the running evaluation" flag. Gradio deep-copies a State's default for each
    session; a fresh flag is that copy (an Event holds a lock, which can't be copied)."""

    def __deepcopy__(self, memo: dict) -> StopFlag:
        return StopFlag()


class BuildIdle(threading.Event):
    """Set while none of a session's builds is running, so *Cancel build* can wait for the cancelled
    build to have stopped before it clears the progress panel (else a last progress update could land
    after the clearing). Fresh, and set, in each session's copy."""

    def __init__(self) -> None:
        super().__init__()
        self.set()

    def __deepcopy__(self, memo: dict) -> BuildIdle:
        return BuildIdle()


class LatestSearch:
    """A session's latest search: its result (the first stages, then with the rerank added) and its turn.

    Each search begins a new turn (`begin`). A rerank works on the latest search and stops as soon as a
    newer one begins (`is_current`), and its result is kept only while its turn is still the latest
    (`finish`), so a rerank that was overtaken leaves nothing stale behind. `marks` is the latest search's
    highlighting (`ui.highlight.Marks`): each passage its columns show is analysed once for the query, and
    the analysis goes with the search (a new one begins afresh) and with the session. Thread-safe. Gradio
    deep-copies a State's default for each session; an empty holder is that copy (a lock can't be copied).

    >>> latest = LatestSearch()
    >>> first = latest.begin("first result"); second = latest.begin("second result")
    >>> latest.is_current(first), latest.finish(first, "first, reranked"), latest.result
    (False, False, 'second result')
    """

    def __init__(self, result: SearchResult | None = None) -> None:
        self._lock = threading.Lock()
        self._turn = 0
        self._result = result
        self._index: object | None = None  # the index that search ran on
        self._marks = Marks()

    def __deepcopy__(self, memo: dict) -> LatestSearch:
        return LatestSearch()

    @property
    def result(self) -> SearchResult | None:
        with self._lock:
            return self._result

    @property
    def marks(self) -> Marks:
        """The latest search's highlighting, shared by every drawing of its columns."""
        with self._lock:
            return self._marks

    def latest(self) -> tuple[int, SearchResult | None]:
        """The current turn and its result."""
        with self._lock:
            return self._turn, self._result

    def begin(self, result: SearchResult, index: object | None = None) -> int:
        """Make `result` (a search on `index`) the latest search; returns its turn (a running rerank of an
        older one stops)."""
        with self._lock:
            self._turn += 1
            self._result = result
            self._index = index
            self._marks = Marks()
            return self._turn

    def result_on(self, index: object | None) -> SearchResult | None:
        """The latest result if it was searched on `index` (not on the index a rebuild replaced), else None.

        >>> latest = LatestSearch(); old, new = object(), object(); _ = latest.begin("result", old)
        >>> latest.result_on(old), latest.result_on(new)
        ('result', None)
        """
        with self._lock:
            return self._result if self._index is index else None

    def is_current(self, turn: int) -> bool:
        with self._lock:
            return turn == self._turn

    def finish(self, turn: int, result: SearchResult) -> bool:
        """Keep `result` (the reranked search of `turn`) if `turn` is still the latest; False otherwise."""
        with self._lock:
            if turn != self._turn:
                return False
            self._result = result
            return True


class ApiSlots(NamedTuple):
    """The two lines an API search waits in: its first stages, then (if it reranks) its rerank."""

    first_stages: anyio.CapacityLimiter
    rerank: anyio.CapacityLimiter


class SessionState(NamedTuple):
    """What one browser session keeps between events."""

    index: gr.State
    latest: gr.State  # a LatestSearch: the latest result and its turn
    judged: gr.State
    eval_judgments: gr.State
    report: gr.State
    stop: gr.State
    build_idle: gr.State
    pending_build: gr.State  # a corpus read and split, waiting for the go-ahead to embed (search.pipeline.Prepared)


def session_state() -> SessionState:
    """The session's holders, each fresh per browser session."""
    return SessionState(
        index=gr.State(None, time_to_live=SESSION_TTL_S),
        latest=gr.State(LatestSearch(), time_to_live=SESSION_TTL_S),
        judged=gr.State(judging.SessionJudgments(), time_to_live=SESSION_TTL_S),
        eval_judgments=gr.State(None, time_to_live=SESSION_TTL_S),
        report=gr.State(None, time_to_live=SESSION_TTL_S),
        stop=gr.State(StopFlag()),
        build_idle=gr.State(BuildIdle()),
        pending_build=gr.State(None, time_to_live=SESSION_TTL_S),
    )


_api_slots: ApiSlots | None = None


def api_slots() -> ApiSlots:
    """The process's two API lines, made on first use inside the server's event loop."""
    global _api_slots
    if _api_slots is None:
        _api_slots = ApiSlots(anyio.CapacityLimiter(FIRST_STAGE_SLOTS), anyio.CapacityLimiter(1))
    return _api_slots


def forget_session(request: gr.Request) -> None:
    """Delete what a closed session left on disk: the indexes it built from its uploads, its downloads."""
    shutil.rmtree(session_cache(request), ignore_errors=True)
    shutil.rmtree(downloads_folder(request), ignore_errors=True)


def downloads_folder(request: gr.Request) -> Path:
    """The session's own download folder (under the temp dir, where Gradio may serve files from)."""
    return DOWNLOADS_DIR / _session_key(request)


def write_downloads(files: Mapping[str, str], folder: Path) -> list[str]:
    """Write file name -> text into `folder`, replacing whatever an earlier download left there; returns the paths."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True, exist_ok=True)  # two quick clicks: the second must not fail on the first's folder
    for name, content in files.items():
        (folder / name).write_text(content, encoding="utf-8")
    return [str(folder / name) for name in files]


def session_cache(request: gr.Request) -> Path:
    """Where this session's uploads are indexed: per session, so one user's "reused the saved index" never
    reveals what another user uploaded."""
    return default_cache_dir() / "sessions" / _session_key(request)


def _session_key(request: gr.Request) -> str:
    # Hashed: a folder name must not reveal (or be steered by) the session id.
    return hashlib.sha256(str(request.session_hash or "anonymous").encode()).hexdigest()[:32]
