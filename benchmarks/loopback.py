"""What the load checks share: a free loopback port, a server process's memory, and percentiles.

Used by `load_sessions.py` (the app under many sessions) and `load_tei.py` (the TEI server under many
clients); servers they start listen on 127.0.0.1 only.
"""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def process_rss_mb(pid: int) -> float:
    """Process `pid`'s resident memory now, in MB (Linux; NaN when /proc has no such line)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def percentile(values: list[float], share: float) -> float:
    """The nearest-rank `share` percentile of `values` (NaN for none).

    >>> percentile([4.0, 1.0, 3.0, 2.0], 0.5), percentile([1.0, 2.0, 3.0], 0.95), percentile([], 0.5)
    (3.0, 3.0, nan)
    """
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * (len(ordered) - 1))))] if ordered else float("nan")


def stop(process: subprocess.Popen, seconds: float = 20) -> None:
    """Terminate a server started for a run, and kill it if it has not exited within `seconds`."""
    process.terminate()
    try:
        process.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)
