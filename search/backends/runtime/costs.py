"""What preparing a model's onnx or int8 form costs, before it is made: for a status line's "about 4 min left".

- `ModelSize`: the shape that decides the cost (layers, hidden size, feed-forward size, vocabulary), from a
  transformers config or given by a backend that knows its model.
- `reference_seconds(kind, size)`: the cost this project measured for a form of that kind and size on its own
  machine (`REFERENCE`, fitted to `benchmarks/bench_prepare.py`'s runs, see docs/performance.md).
- `recorded_costs(cache)`: what every preparation in the export cache took here (its meta.json records its
  seconds, kind and size), and `expected_seconds(kind, size, records)`: the reference cost scaled by how
  this machine compared with the reference on what it prepared before (the median ratio), or the reference
  alone on a machine that has prepared nothing yet. The figure says which (`basis`).

Costs depend on the load of the machine too; an estimate is a guide, and the status line says when a
preparation takes longer than expected.
"""

from __future__ import annotations

import json
import logging
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, NamedTuple

logger = logging.getLogger(__name__)

CostKind = Literal["onnx-fp32", "onnx-int8", "openvino-int8"]
COST_KINDS: tuple[CostKind, ...] = ("onnx-fp32", "onnx-int8", "openvino-int8")
BASIS_REFERENCE = "this project's measurements"
BASIS_MEASURED = "measured here"
_MAX_RECORDS = 200  # meta files read for the machine's factor (the most recent ones)


@dataclass(frozen=True)
class ModelSize:
    """A transformer's shape: what its preparation's cost grows with.

    >>> ModelSize(12, 768, 3072, 250002).layer_parameters
    84934656
    """

    layers: int
    hidden: int
    intermediate: int
    vocab: int

    @property
    def layer_parameters(self) -> int:
        """The weights of the transformer layers (attention and feed-forward), without biases and norms."""
        return self.layers * (4 * self.hidden * self.hidden + 2 * self.hidden * self.intermediate)

    @property
    def embedding_parameters(self) -> int:
        return self.vocab * self.hidden

    @classmethod
    def from_config(cls, config: Any) -> ModelSize | None:
        """The size a transformers config gives (None when it lacks one of the fields)."""
        try:
            return cls(int(config.num_hidden_layers), int(config.hidden_size), int(config.intermediate_size),
                       int(config.vocab_size))
        except (AttributeError, TypeError, ValueError):
            return None

    @classmethod
    def from_dict(cls, fields: Any) -> ModelSize | None:
        try:
            return cls(**{name: int(fields[name]) for name in ("layers", "hidden", "intermediate", "vocab")})
        except (KeyError, TypeError, ValueError):
            return None


class Reference(NamedTuple):
    """seconds = fixed + per_million_layer × layer parameters (M) + per_million_embedding × embedding parameters (M)."""

    fixed: float
    per_million_layer: float
    per_million_embedding: float


# Fitted to the export cache's recorded seconds of quiet runs of benchmarks/bench_prepare.py, bench_rerank.py
# --shape m3 and bench_dense.py --shape e5-small on this project's machine (docs/performance.md, "Preparing"):
# onnx-fp32 about 11 s for bge-reranker-base's shape, 31 s for v2-m3's, 5 s for multilingual-e5-small's;
# openvino-int8 about 33 s, 104 s and 13 s. onnx-int8 (ORT's dynamic int8 from the fp32 export) from an
# older run.
REFERENCE: dict[CostKind, Reference] = {
    "onnx-fp32": Reference(2.5, 0.088, 0.005),
    "onnx-int8": Reference(3.0, 0.10, 0.010),
    "openvino-int8": Reference(4.0, 0.32, 0.010),
}


class Record(NamedTuple):
    """One preparation this machine made: its kind, the model's size and the seconds it took."""

    kind: CostKind
    size: ModelSize
    seconds: float


def reference_seconds(kind: CostKind, size: ModelSize) -> float:
    """What preparing a form of `kind` for a model of `size` took on this project's machine.

    >>> round(reference_seconds("onnx-fp32", ModelSize(12, 768, 3072, 250002)))
    11
    """
    reference = REFERENCE[kind]
    return (reference.fixed + reference.per_million_layer * size.layer_parameters / 1e6
            + reference.per_million_embedding * size.embedding_parameters / 1e6)


def expected_seconds(kind: CostKind, size: ModelSize | None, records: list[Record]) -> tuple[float | None, str]:
    """(seconds, basis): what preparing `kind` for `size` should take here, and what the figure comes from:
    the reference cost times this machine's median ratio over `records` (`BASIS_MEASURED`), or the reference
    alone without records (`BASIS_REFERENCE`). (None, "") without a size.

    >>> size = ModelSize(12, 768, 3072, 250002)
    >>> slow = [Record("onnx-fp32", size, 2 * reference_seconds("onnx-fp32", size))]
    >>> expected_seconds("openvino-int8", size, slow)[0] == 2 * reference_seconds("openvino-int8", size)
    True
    """
    if size is None:
        return None, ""
    seconds = reference_seconds(kind, size)
    ratios = [record.seconds / reference_seconds(record.kind, record.size) for record in records]
    if not ratios:
        return seconds, BASIS_REFERENCE
    return seconds * statistics.median(ratios), BASIS_MEASURED


def recorded_costs(cache: Path) -> list[Record]:
    """The preparations recorded in the export cache `cache` (``<model>/<weights key>/<entry>/meta.json``
    with a ``cost`` field), the most recent first; unreadable files are skipped."""
    try:
        metas = sorted(cache.glob("*/*/*/meta.json"), key=_modified, reverse=True)[:_MAX_RECORDS]
    except OSError:
        return []
    records = []
    for path in metas:
        try:
            meta = json.loads(path.read_text(encoding="utf-8"))
            cost = meta.get("cost") or {}
            size = ModelSize.from_dict(cost.get("size"))
            seconds = float(meta["seconds"])
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            continue
        if cost.get("kind") in COST_KINDS and size is not None and seconds > 0:
            records.append(Record(cost["kind"], size, seconds))
    return records


def _modified(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0
