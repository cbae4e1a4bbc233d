"""The app's presentation layer: pure functions from engine results to HTML (see `ui.render`)."""
