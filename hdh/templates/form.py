"""The parameter form of a template notebook opened in JupyterLab (ipywidgets).

``show(globals(), ["dataset", "engine", ...])`` displays one widget per parameter, typed
after its current value, and writes each change back into the notebook's variables; then
run the cells below. Papermill runs (``hdh template run``) set ``interactive = False`` and
never show it.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any


def _widget(name: str, value: Any) -> Any:
    import ipywidgets as w

    style = {"description_width": "10em"}
    if isinstance(value, bool):
        return w.Checkbox(value=value, description=name, style=style)
    if isinstance(value, int):
        return w.IntText(value=value, description=name, style=style)
    if isinstance(value, float):
        return w.FloatText(value=value, description=name, style=style)
    return w.Text(value="" if value is None else str(value), description=name, style=style)


def show(namespace: MutableMapping[str, Any], names: list[str]) -> Any:
    """Display the form for ``names`` of ``namespace``; returns the widget box."""
    import ipywidgets as w
    from IPython.display import display

    rows = []
    for name in names:
        widget = _widget(name, namespace.get(name))
        was_none = namespace.get(name) is None

        def changed(change: dict[str, Any], name: str = name, was_none: bool = was_none) -> None:
            value = change["new"]
            namespace[name] = None if (was_none and value == "") else value

        widget.observe(changed, names="value")
        rows.append(widget)
    note = w.HTML("Change the parameters, then run the cells below (Run ▸ Run All Below).")
    box = w.VBox([*rows, note])
    display(box)
    return box
