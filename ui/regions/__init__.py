"""The app's page, region by region: each module lays out its part of the page, wires its events and holds
its callbacks, which call the engine (`search`) and draw its results with `ui`'s renderers.

- `corpus`: files or a sample, passage and model settings, Build; `search`: the query, one column per stage,
  the `search` API; `explain`: why a passage scored so; `judgments`: marks, their metrics and downloads;
  `sharing`: the link, its restore and the bundle; `evaluate`: the Evaluate tab; `status`: the model line.
- `form`: which widget holds each field of the page's description (`ui.share.ViewState`); `session`:
  what one browser session keeps; `page`: every region's components and what they share; `common`:
  updates keyed by component, streaming progress, escaped messages.
"""
