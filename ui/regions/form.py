"""The page's form: which widget holds each field of the page's description (`ui.share.ViewState`), so the
share link, the bundle's settings, a link's restore and the build all read one record.

Regions register their widgets as they lay them out (`PageForm.add`), with how a widget's value becomes the
field's value and back when it is not the value itself (a sample's label, "none" for no reranker B).
Callbacks that need the form take it as named values: `inputs_kwargs=form.widgets()` (every field) or
`form.widgets("corpus")` (what a build reads), and turn them into a `ViewState` with `form.view(values)`.
The order of registration is the order of an API endpoint's parameters (e.g. `build_index`'s): register a
new field after the others, wherever its widget stands on the page, so positional API calls keep working.
A field added to `ViewState` and registered here appears in the link, the bundle, the restore and the build
with no other edit.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, fields
from typing import Any, Literal

from gradio.components import Component

from ui.share import ViewState

Region = Literal["corpus", "search"]
UPLOADS = "files"  # the upload widget's name among the corpus widgets: never in a link
TEI_URL = "tei_url"  # the TEI URL field: never in a link either (the operator's, or a visitor's own)


def _same(value: Any) -> Any:
    return value


@dataclass(frozen=True)
class _Widget:
    component: Component
    region: Region
    to_view: Callable[[Any], Any]
    to_widget: Callable[[Any], Any]


class PageForm:
    """The widgets of the page's form, by field name, in the order they were added."""

    def __init__(self) -> None:
        self._widgets: dict[str, _Widget] = {}

    def add(self, name: str, component: Component, region: Region, *,
            to_view: Callable[[Any], Any] = _same, to_widget: Callable[[Any], Any] = _same) -> Component:
        """Register `component` as the widget of `name` (a `ViewState` field, or UPLOADS / TEI_URL); returns it.
        Raises ValueError for a name that is neither, or one registered twice."""
        known = {item.name for item in fields(ViewState)} | {UPLOADS, TEI_URL}
        if name not in known or name in self._widgets:
            raise ValueError(f"form field {name!r} is unknown or registered twice; add it to ui.share.ViewState")
        self._widgets[name] = _Widget(component, region, to_view, to_widget)
        return component

    def __getitem__(self, name: str) -> Component:
        return self._widgets[name].component

    def widgets(self, region: Region | None = None) -> dict[str, Component]:
        """Field name -> widget (of `region`, or all), in the order they were added: an event's
        `inputs_kwargs`, so its callback gets the values by name."""
        return {name: widget.component for name, widget in self._widgets.items()
                if region is None or widget.region == region}

    def components(self) -> list[Component]:
        return [widget.component for widget in self._widgets.values()]

    def view(self, values: Mapping[str, Any]) -> ViewState:
        """The `ViewState` of named widget values (the fields not given keep ViewState's defaults)."""
        known = {item.name for item in fields(ViewState)}
        return ViewState(**{name: self._widgets[name].to_view(value) for name, value in values.items()
                            if name in known and name in self._widgets})

    def restore(self, state: ViewState, names: Iterable[str]) -> dict[Component, Any]:
        """Widget -> value for the fields `names` of `state` (what a link set)."""
        return {self._widgets[name].component: self._widgets[name].to_widget(getattr(state, name))
                for name in names if name in self._widgets}

