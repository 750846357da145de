"""The HTML run report, and the page machinery that deepgrad's HTML pages share.

    from deepgrad.report import write_report
    write_report(["runs/adam", "runs/sgd"], "report.html")   # one self-contained page
    write_report(["runs"], "report.html", filter="adam")     # the runs (and searches) below runs/

``build.py`` assembles the report, ``runs.py`` reads run directories (and finds them below a
folder), ``charts.py`` makes the curves and diagnostics Plotly figures (plotly.js inlined once per
page), ``scripts.py`` the page's controls and sortable tables, ``tables.py`` the results and config
differences, ``search.py`` a search's trials and view, and ``page.py`` is the skeleton, style,
escaping and tables that the experiments' index page (``experiments.py``) uses too.
"""

from .build import build_report, write_report
from .experiments import write_experiments_index
from .runs import RunRecord, find_sources, read_run

__all__ = ["RunRecord", "build_report", "find_sources", "read_run", "write_experiments_index", "write_report"]
