"""Helpers the backend benchmarks share: interleaved timing on a busy machine, and memory measured in a
fresh process.

On a shared CPU the load changes from second to second, so backends are timed in turns (every round
runs each once, in a rotating order) and compared by their per-round speed ratio to a baseline, not by
absolute times.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Timing:
    """A backend's seconds per round and its speed ratio to the baseline (above 1: faster), per round."""

    seconds: tuple[float, ...]
    ratios: tuple[float, ...]

    @property
    def median_seconds(self) -> float:
        return statistics.median(self.seconds)

    def ratio_text(self) -> str:
        return _ratio_text(self.ratios)

    def ratio_to(self, other: Timing) -> str:
        """This run's speed ratio to `other`'s (above 1: faster), per round: median [min-max]."""
        return _ratio_text(tuple(o / s for o, s in zip(other.seconds, self.seconds, strict=True)))


def _ratio_text(ratios: Sequence[float]) -> str:
    return f"{statistics.median(ratios):.2f} [{min(ratios):.2f}-{max(ratios):.2f}]"


def interleaved(runs: Mapping[str, Callable[[], object]], *, rounds: int, baseline: str,
                log: Callable[[str], None] = print, warmup: bool = True) -> dict[str, Timing]:
    """Time every run once per round, rotating which goes first, after one warm-up round (unless not
    `warmup`: for runs so long that the first call's setup is negligible)."""
    names = list(runs)
    for name in names if warmup else ():
        runs[name]()
    seconds: dict[str, list[float]] = {name: [] for name in names}
    for round_number in range(rounds):
        shift = round_number % len(names)
        for name in names[shift:] + names[:shift]:
            started = time.perf_counter()
            runs[name]()
            seconds[name].append(time.perf_counter() - started)
        log(f"round {round_number + 1}/{rounds}: " + ", ".join(f"{n} {seconds[n][-1]:.2f} s" for n in names))
    return {name: Timing(tuple(seconds[name]),
                         tuple(b / s for b, s in zip(seconds[baseline], seconds[name], strict=True)))
            for name in names}


def rss_mb() -> float:
    """This process's resident memory now, in MB (Linux)."""
    return _status_mb("VmRSS:")


def peak_rss_mb() -> float:
    """This process's peak resident memory so far, in MB: VmHWM, since getrusage's ru_maxrss survives exec
    and would report the parent's peak for a process it started."""
    return _status_mb("VmHWM:")


def _status_mb(field: str) -> float:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(field):
                return int(line.split()[1]) / 1024
    return float("nan")


def run_probe(script: str, argv: Sequence[str], env: Mapping[str, str] | None = None) -> dict:
    """Run `script` with `argv` in a fresh Python process; return the JSON object its last line prints."""
    completed = subprocess.run([sys.executable, script, *argv], capture_output=True, text=True,
                               env={**os.environ, **(env or {})}, check=False)
    if completed.returncode != 0:
        raise RuntimeError(f"probe {' '.join(argv)} failed:\n{completed.stderr[-3000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])
