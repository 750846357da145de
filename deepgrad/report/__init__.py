"""The HTML run report, and the page machinery that deepgrad's HTML pages share.

    from deepgrad.report import write_report
    write_report(["runs/adam", "runs/sgd"], "report.html")   # one self-contained page

``build.py`` assembles the report, ``runs.py`` reads run directories, ``charts.py`` draws the
curves and diagnostics as inline SVG, ``tables.py`` the results and config differences, and
``page.py`` is the skeleton, style, escaping and tables that the experiments' index page
(``experiments.py``) uses too.
"""

from .build import build_report, write_report
from .experiments import write_experiments_index
from .runs import RunRecord, read_run

__all__ = ["RunRecord", "build_report", "read_run", "write_experiments_index", "write_report"]
