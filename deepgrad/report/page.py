"""The HTML page machinery of deepgrad's pages (the run report, the experiments' index): one
stylesheet, the page skeleton, escaping, tables and figures. A page is self-contained: nothing is
fetched; its scripts, if it has any (the run report's charts and sortable tables), are inline.

Every function here escapes what it is given unless it is :class:`Markup` (HTML already built by
these functions or :mod:`deepgrad.markup`'s, whose escaping, elements and tables the pages share with
the notebooks' displays), so text from a file or a directory name can never become markup.

    body = [heading(1, "runs"), table(["run", "loss"], [["a<b", 0.25]], caption="losses")]
    document("my runs", body)      # '<!DOCTYPE html>...'
"""

import os

from .. import io
from ..errors import ConfigError
from ..markup import Cell, Markup, element, escape, join, table  # noqa: F401  (the page's builders)

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


GENERATOR = '<meta name="generator" content="deepgrad">'  # what marks a page as one of deepgrad's


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
