"""HTML built so that nothing given as text can become markup: escaping, elements, tables and
embedded PNG images. The run report's pages (:mod:`deepgrad.report.page`) and the notebook
displays (the ``_repr_html_`` of a model, a run, a study, a claim) are built from these.

    table(["layer", "parameters"], [["0.Linear <in>", 650]])    # '<table><tr><th>layer</th>...'
    element("p", "a<b", class_="note")                            # '<p class="note">a&lt;b</p>'
"""

from __future__ import annotations

import base64
import html
import os
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass


class Markup(str):
    """HTML that is safe to put in a page as it is (built here, with everything in it escaped)."""


def escape(value: object) -> Markup:
    """``value`` as text in HTML (``<``, ``>``, ``&`` and quotes escaped), or unchanged when it is
    already :class:`Markup`."""
    if isinstance(value, Markup):
        return value
    return Markup(html.escape(str(value), quote=True))


def join(parts: Iterable[object], separator: object = "") -> Markup:
    """The parts (Markup or text, escaped) one after the other."""
    return Markup(escape(separator).join(escape(part) for part in parts))


def element(name: str, content: object = "", **attributes: object) -> Markup:
    """``<name attributes>content</name>``; attribute values are escaped, an attribute ``class_``
    is written ``class`` and ``data_sort`` ``data-sort``, and ones that are None are left out."""
    written = "".join(
        f' {key.rstrip("_").replace("_", "-")}="{escape(value)}"'
        for key, value in attributes.items()
        if value is not None
    )
    return Markup(f"<{name}{written}>{escape(content)}</{name}>")


@dataclass
class Cell:
    """A table cell with more than a value: ``differs`` highlights it, ``span`` columns wide,
    ``kind`` a class of the style (e.g. a verdict's colour), ``sort`` the value a sortable table
    orders it by ('' for none: sorted last), ``title`` a tooltip, ``style`` inline CSS (for HTML
    shown without the report's stylesheet, as in a notebook)."""

    content: object
    differs: bool = False
    span: int = 1
    kind: str | None = None
    sort: object = None
    title: str | None = None
    style: str | None = None


def table(
    columns: Sequence[object], rows: Iterable[Sequence[object]], caption: object = None, sortable: bool = False
) -> Markup:
    """A table with a header row of ``columns`` (names, or Cells) and ``rows`` of cells: a value
    (escaped) or a :class:`Cell`. ``sortable``: a click on a header sorts the rows by that column
    (the report page's script), the caption is a paragraph above, and the table scrolls within a box
    of the page's width rather than overflowing it."""
    header = element("tr", join(_header(column) for column in columns))
    body = [element("tr", join(_cell(value) for value in row)) for row in rows]
    if not sortable:
        parts = [element("caption", caption)] if caption is not None else []
        return element("table", join([*parts, header, *body]))
    sorted_table = element("table", join([element("thead", header), element("tbody", join(body))]), class_="sortable")
    above = [element("p", caption, class_="caption")] if caption is not None else []
    return join([*above, element("div", sorted_table, class_="table-box")])


def _header(column: object) -> Markup:
    """``<th>`` of a column's name, or of a :class:`Cell` (its ``kind`` a class, e.g. "text")."""
    if isinstance(column, Cell):
        return element("th", column.content, class_=column.kind, title=column.title, style=column.style)
    return element("th", column)


def _cell(value: object) -> Markup:
    """``<td>`` of a value or a :class:`Cell`."""
    if not isinstance(value, Cell):
        return element("td", value)
    kind = "differs" if value.differs else value.kind
    sort = None if value.sort is None else ("" if value.sort == "" else str(value.sort))
    return element(
        "td",
        value.content,
        class_=kind,
        colspan=value.span if value.span > 1 else None,
        title=value.title,
        data_sort=sort,
        style=value.style,
    )


def png_image(data: bytes, alt: str) -> Markup:
    """``<img>`` of PNG ``data`` carried in the HTML itself (a data URI): it shows wherever the HTML
    goes, a notebook's saved output included."""
    source = "data:image/png;base64," + base64.b64encode(data).decode("ascii")
    return Markup(f'<img src="{source}" alt="{escape(alt)}" style="max-width:100%" />')


def drawn_image(draw: Callable[[str], object], alt: str) -> Markup:
    """:func:`png_image` of the figure ``draw(path)`` writes to a PNG file (the figure functions of
    :mod:`deepgrad.viz` take the path they write), drawn into a temporary folder."""
    with tempfile.TemporaryDirectory(prefix="deepgrad-figure-") as folder:
        path = os.path.join(folder, "figure.png")
        draw(path)
        with open(path, "rb") as handle:
            return png_image(handle.read(), alt)
