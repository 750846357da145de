"""The HTML page machinery of deepgrad's pages (the run report, the experiments' index): one
stylesheet, the page skeleton, escaping, tables and figures. A page is self-contained: nothing is
fetched; its scripts, if it has any (the run report's charts and sortable tables), are inline.

Every function here escapes what it is given unless it is :class:`Markup` (HTML already built by
these functions), so text from a file or a directory name can never become markup.

    body = [heading(1, "runs"), table(["run", "loss"], [["a<b", 0.25]], caption="losses")]
    document("my runs", body)      # '<!DOCTYPE html>...'
"""

import html
import os
from dataclasses import dataclass

from .. import io
from ..errors import ConfigError

STYLE = """\
body{font-family:sans-serif;max-width:84em;margin:2em auto;padding:0 1em;color:#222;line-height:1.4}
h1{font-size:1.6em}h2{margin-top:2em;border-bottom:1px solid #ddd}h3{margin-bottom:.3em}
img{max-width:100%;border:1px solid #ddd}
table{border-collapse:collapse;margin:1em 0}caption{text-align:left;font-weight:bold;padding:.2em 0}
td,th{border:1px solid #ccc;padding:.2em .6em;text-align:right;vertical-align:top}th{background:#f3f3f3}
td:first-child,th:first-child{text-align:left}td.differs{background:#fff1b8;font-weight:bold}
figure{margin:1em 0}figcaption{color:#555;font-size:.9em}section{margin-bottom:3em}
.charts{display:grid;grid-template-columns:repeat(auto-fill,minmax(30em,1fr));gap:1em 2em}
.charts svg{width:100%;height:auto}
.note{background:#fff4e5;border-left:4px solid #e8a33d;padding:.5em 1em;margin:1em 0}
.muted{color:#666}
td.reproduced{background:#dff3e0}td.partly{background:#fff1b8}td.not-reproduced{background:#fbdcdc}
td.claim{text-align:left;max-width:40em}
dl.options{display:grid;grid-template-columns:repeat(auto-fill,minmax(15em,1fr));gap:.1em 1.5em;font-size:.9em}
dl.options div{display:flex;justify-content:space-between;border-bottom:1px dotted #ccc}
dl.options dt{color:#555}dl.options dd{margin:0 0 0 1em;font-family:monospace;text-align:right}
"""


class Markup(str):
    """HTML that is safe to put in a page as it is (built here, with everything in it escaped)."""


GENERATOR = '<meta name="generator" content="deepgrad">'  # what marks a page as one of deepgrad's


def escape(value):
    """``value`` as text in HTML (``<``, ``>``, ``&`` and quotes escaped), or unchanged when it is
    already :class:`Markup`."""
    if isinstance(value, Markup):
        return value
    return Markup(html.escape(str(value), quote=True))


def join(parts, separator=""):
    """The parts (Markup or text, escaped) one after the other."""
    return Markup(escape(separator).join(escape(part) for part in parts))


def element(name, content="", **attributes):
    """``<name attributes>content</name>``; attribute values are escaped, an attribute ``class_``
    is written ``class`` and ``data_sort`` ``data-sort``, and ones that are None are left out."""
    written = "".join(
        f' {key.rstrip("_").replace("_", "-")}="{escape(value)}"'
        for key, value in attributes.items()
        if value is not None
    )
    return Markup(f"<{name}{written}>{escape(content)}</{name}>")


def heading(level, text, anchor=None):
    """``<hN>``; ``anchor`` is its id, for links to ``#anchor``."""
    return element(f"h{level}", text, id=anchor)


def paragraph(*parts, class_=None):
    """``<p>`` of the parts one after the other (``class_="note"``: a highlighted note)."""
    return element("p", join(parts), class_=class_)


def image(source, alt):
    """``<img>`` of the file at ``source`` (a path relative to the page)."""
    return Markup(f'<img src="{escape(source)}" alt="{escape(alt)}">')


def link(text, href):
    """``<a href>``: a link within the page (#anchor) or to a file beside it."""
    return element("a", text, href=href)


def bullet_list(items):
    """``<ul>`` with one ``<li>`` per item."""
    return element("ul", join(element("li", item) for item in items))


@dataclass
class Cell:
    """A table cell with more than a value: ``differs`` highlights it, ``span`` columns wide,
    ``kind`` a class of the style (e.g. a verdict's colour), ``sort`` the value a sortable table
    orders it by ('' for none: sorted last), ``title`` a tooltip."""

    content: object
    differs: bool = False
    span: int = 1
    kind: str | None = None
    sort: object = None
    title: str | None = None


def table(columns, rows, caption=None, sortable=False):
    """A table with a header row of ``columns`` (names, or Cells) and ``rows`` of cells: a value
    (escaped) or a :class:`Cell`. ``sortable``: a click on a header sorts the rows by that column
    (the page's script), the caption is a paragraph above, and the table scrolls within a box of the page's
    width rather than overflowing it."""
    header = element("tr", join(_header(column) for column in columns))
    body = [element("tr", join(_cell(value) for value in row)) for row in rows]
    if not sortable:
        parts = [element("caption", caption)] if caption is not None else []
        return element("table", join([*parts, header, *body]))
    sorted_table = element("table", join([element("thead", header), element("tbody", join(body))]), class_="sortable")
    above = [element("p", caption, class_="caption")] if caption is not None else []
    return join([*above, element("div", sorted_table, class_="table-box")])


def _header(column):
    """``<th>`` of a column's name, or of a :class:`Cell` (its ``kind`` a class, e.g. "text")."""
    if isinstance(column, Cell):
        return element("th", column.content, class_=column.kind, title=column.title)
    return element("th", column)


def _cell(value):
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
    )


def figure(content, caption):
    """``content`` (an image or an inline SVG, as Markup) with its caption below."""
    return element("figure", join([content, element("figcaption", caption)]))


def options(values):
    """A compact grid of ``name: value`` pairs (``values`` a dict of texts)."""
    return element(
        "dl",
        join(element("div", join([element("dt", name), element("dd", value)])) for name, value in values.items()),
        class_="options",
    )


def document(title, body, style="", scripts=()):
    """The whole page: ``title`` and ``body`` (a list of Markup) in the shared skeleton and style;
    ``style``: more rules for this page, ``scripts``: inline scripts (Markup, written by deepgrad)
    for its head, run before the body's."""
    head_scripts = [f"<script>{script}</script>" for script in scripts]
    extra_style = [f"<style>\n{style}</style>"] if style else []
    return (
        "\n".join(
            [
                "<!DOCTYPE html>",
                '<html lang="en"><head><meta charset="utf-8">',
                GENERATOR,
                '<meta name="viewport" content="width=device-width, initial-scale=1">',
                f"<title>{escape(title)}</title>",
                f"<style>\n{STYLE}</style>",
                *extra_style,
                *head_scripts,
                "</head><body>",
                *(escape(part) for part in body),
                "</body></html>",
            ]
        )
        + "\n"
    )


def write_page(path, html):
    """Write the page ``html`` to ``path`` atomically; a file already there is replaced only when it
    is a page deepgrad wrote (a ConfigError otherwise: nothing deepgrad did not write is deleted)."""
    path = os.fspath(path)
    if os.path.isdir(path):
        raise ConfigError(f"{path} is a directory; give the HTML file to write")
    if os.path.exists(path) and not written_by_deepgrad(path):
        raise ConfigError(f"{path} exists and is not a page deepgrad wrote; pass another --out or remove it")
    io.write_text(path, html)
    return path


def written_by_deepgrad(path):
    """Whether the file at ``path`` is one of deepgrad's pages (its generator tag, or the skeleton
    and style of the pages written before the tag)."""
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read(1 << 16)
    except (OSError, UnicodeDecodeError):
        return False
    return GENERATOR in text or (text.startswith("<!DOCTYPE html>") and STYLE in text)
