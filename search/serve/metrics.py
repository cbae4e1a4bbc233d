"""The Prometheus metrics of `search.serve` (its ``GET /metrics``), named, labelled and bucketed as
text-embeddings-inference names them (router/src/prometheus.rs and the ``metrics::`` calls of its router
and core), in Prometheus' text exposition format.

- Counters: ``te_request_count{method}``, ``te_request_success{method}`` (method ``single`` or ``batch``),
  ``te_request_failure{err}`` (err ``validation``, ``batch_size``, ``model_type``, ``overloaded``,
  ``tokenization``, ``inference``, ``dropped``), ``te_embed_count``, ``te_embed_success``,
  ``te_predict_count``, ``te_predict_success``.
- Histograms: ``te_request_duration`` and its ``_tokenization``/``_queue``/``_inference`` parts,
  ``te_embed_*`` and ``te_predict_*`` durations (seconds; 35 buckets from 15 µs growing by 1.5x),
  ``te_request_input_length`` (tokens; powers of two up to the longest input) and ``te_batch_next_size``
  (texts or pairs per model batch; powers of two up to 4096).
- Gauge: ``te_queue_size``, the requests waiting for their turn to run a model.

What is recorded is what this server measures: a batch is one the engine runs (a rerank's progress
report), the queue is the wait for `RERANK_LOCK`. TEI's ``te_batch_next_tokens`` is not kept.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping

DURATION_BUCKETS = tuple(0.00001 * 1.5 ** (i + 1) for i in range(35))
BATCH_SIZE_BUCKETS = tuple(float(2 ** i) for i in range(13))

_HELP = {
    "te_request_count": "Requests received, by method (single: one input, batch: a list)",
    "te_request_success": "Requests answered, by method",
    "te_request_failure": "Requests refused or failed, by reason",
    "te_embed_count": "Inputs sent to the embedding model",
    "te_embed_success": "Inputs embedded",
    "te_predict_count": "Inputs sent to the reranker",
    "te_predict_success": "Inputs scored by the reranker",
    "te_queue_size": "Requests waiting for their turn to run a model",
}


class Metrics:
    """Thread-safe counters, gauges and histograms, rendered by `render` in Prometheus' text format.

    `max_input_length` bounds the ``te_request_input_length`` buckets, as in TEI.

    >>> metrics = Metrics(512)
    >>> metrics.count("te_request_count", {"method": "single"}); metrics.observe("te_request_duration", 0.02)
    >>> 'te_request_count{method="single"} 1' in metrics.render()
    True
    """

    def __init__(self, max_input_length: int = 512) -> None:
        self._lock = threading.Lock()
        self._counters: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
        self._gauges: dict[str, float] = {}
        self._histograms: dict[str, tuple[tuple[float, ...], list[int], list[float]]] = {}
        self._input_length_buckets = tuple(float(2 ** x) for x in range(20) if 2 ** x <= max(1, max_input_length))

    def count(self, name: str, labels: Mapping[str, str] | None = None, by: float = 1) -> None:
        """Add `by` to the counter `name` with `labels`."""
        key = tuple(sorted((labels or {}).items()))
        with self._lock:
            series = self._counters.setdefault(name, {})
            series[key] = series.get(key, 0) + by

    def add(self, name: str, delta: float) -> None:
        """Add `delta` (negative to lower it) to the gauge `name`."""
        with self._lock:
            self._gauges[name] = self._gauges.get(name, 0) + delta

    def observe(self, name: str, value: float) -> None:
        """Record one `value` in the histogram `name` (its buckets chosen by name, as TEI does)."""
        with self._lock:
            if name not in self._histograms:
                buckets = self._buckets(name)
                self._histograms[name] = (buckets, [0] * (len(buckets) + 1), [0.0])
            buckets, counts, total = self._histograms[name]
            position = next((i for i, bound in enumerate(buckets) if value <= bound), len(buckets))
            counts[position] += 1
            total[0] += value

    def value(self, name: str, labels: Mapping[str, str] | None = None) -> float:
        """The counter or gauge `name` (with `labels`) now; 0 when never recorded."""
        with self._lock:
            if name in self._gauges:
                return self._gauges[name]
            return self._counters.get(name, {}).get(tuple(sorted((labels or {}).items())), 0)

    def render(self) -> str:
        """Every metric in Prometheus' text exposition format (version 0.0.4)."""
        lines: list[str] = []
        with self._lock:
            for name in sorted(self._counters):
                lines += _header(name, "counter")
                for labels, value in sorted(self._counters[name].items()):
                    lines.append(f"{name}{_labels(labels)} {_number(value)}")
            for name in sorted(self._gauges):
                lines += _header(name, "gauge")
                lines.append(f"{name} {_number(self._gauges[name])}")
            for name in sorted(self._histograms):
                buckets, counts, total = self._histograms[name]
                lines += _header(name, "histogram")
                running = 0
                for bound, count in zip((*buckets, float("inf")), counts, strict=True):
                    running += count
                    le = "+Inf" if bound == float("inf") else _number(bound)
                    lines.append(f'{name}_bucket{{le="{le}"}} {running}')
                lines.append(f"{name}_sum {_number(total[0])}")
                lines.append(f"{name}_count {running}")
        return "\n".join(lines) + "\n"

    def _buckets(self, name: str) -> tuple[float, ...]:
        if name.endswith("duration"):
            return DURATION_BUCKETS
        if name == "te_request_input_length":
            return self._input_length_buckets
        return BATCH_SIZE_BUCKETS


def _header(name: str, kind: str) -> list[str]:
    help_text = _HELP.get(name)
    return ([f"# HELP {name} {help_text}"] if help_text else []) + [f"# TYPE {name} {kind}"]


def _labels(labels: tuple[tuple[str, str], ...]) -> str:
    if not labels:
        return ""
    escaped = (value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") for _, value in labels)
    return "{" + ",".join(f'{key}="{value}"' for (key, _), value in zip(labels, escaped, strict=True)) + "}"


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))
