"""Models loaded from several threads in the first moments of a process (the app's warm-up beside a build
started right after launch) load as asked: none fails on a half-imported transformers and falls back."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.tiny_models import build_tiny_xlmr_cross_encoder

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = """
import sys, threading
from search.loading import load_dense_encoder, load_reranker
from search.models import FALLBACK_DENSE_ID, MINILM_ID
start, problems = threading.Barrier(3), []
def run(load):
    start.wait()
    try:
        loaded = load()
        if loaded.fallback_reason:
            problems.append(loaded.fallback_reason)
    except Exception as error:
        problems.append(repr(error))
loads = [lambda: load_dense_encoder(FALLBACK_DENSE_ID, "cpu", backend="torch"),
         lambda: load_dense_encoder(MINILM_ID, "cpu", backend="torch"),
         lambda: load_reranker(sys.argv[1], "cpu", backend="torch", fallback=False)]
threads = [threading.Thread(target=run, args=(load,)) for load in loads]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
print("problems:", problems)
"""


def test_three_threads_loading_models_at_start_all_get_their_own(tmp_path):
    tiny = build_tiny_xlmr_cross_encoder(tmp_path / "tiny", ["tea grows on hills", "volcano magma"] * 5)
    # Two fresh processes at once: each a first import of transformers from three threads (without the lock,
    # most such starts failed: "cannot import name ... from 'transformers'").
    runs = [subprocess.Popen([sys.executable, "-c", SCRIPT, str(tiny)], cwd=ROOT, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True) for _ in range(2)]
    for run in runs:
        out, err = run.communicate(timeout=600)
        assert run.returncode == 0, err[-2000:]
        assert "problems: []" in out, out + err[-2000:]
