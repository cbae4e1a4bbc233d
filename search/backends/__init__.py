"""Model backends, one per module, each behind an interface of `search.inference`.

- `torch_reranker`: cross-encoders through transformers' `AutoModelForSequenceClassification` (`Reranker`).
- `torch_encoder`: transformers encoders with each model's pooling and prefixes (`TextEncoder`).
- `late_interaction`: MaxSim reranking over any `TextEncoder`'s token embeddings (`Reranker`).
- `tei`: a reranker and an encoder served by a text-embeddings-inference endpoint over HTTP (`Reranker`,
  `TextEncoder`); remote, so its "device" is the endpoint's URL. A package, one module per concern (URL
  policy, transport, client, discovery, reranker, encoder), whose modules import only each other.

A backend imports `search.inference` and `search.models`, never another backend nor `search.loading`;
`search.loading` picks, builds and caches them. A new backend is a new module here plus its line there.
"""
