"""The run report's own style and inline script (no file, nothing fetched): the controls of the
training curves (x axis, smoothing, loss axis), a run's legend entry hiding or showing it in every
chart, and sortable tables. The charts themselves are plotly.js's (inlined once, with the first
chart); each line keeps its alternatives in its ``meta`` (see ``report/charts.py``).
"""

from .page import Markup

STYLE = """\
.charts{grid-template-columns:repeat(auto-fill,minmax(min(100%,36em),1fr))}
.charts figure{min-width:0;margin:.5em 0}
.plot{border:1px solid #e3e3e3;border-radius:4px;background:#fff}
.toolbar{display:flex;flex-wrap:wrap;gap:.5em 1.5em;align-items:center;padding:.5em .8em;margin:.5em 0;
background:#f6f6f6;border:1px solid #e3e3e3;border-radius:4px;font-size:.95em}
.toolbar label{white-space:nowrap}.toolbar select{font:inherit;margin-left:.3em}
.table-box{max-width:100%;overflow-x:auto;margin:1em 0}.table-box table{margin:0}
p.caption{margin:1em 0 .3em;font-size:.92em}
table.sortable{font-size:.88em}table.sortable td,table.sortable th{padding:.2em .4em}
table.sortable th{cursor:pointer;user-select:none;white-space:normal;vertical-align:bottom;text-align:right}
table.sortable th:first-child,table.sortable th.text{text-align:left}
table.sortable th:hover{background:#e8eef7}
table.sortable th[aria-sort=ascending]::after{content:" ▲";font-size:.8em}
table.sortable th[aria-sort=descending]::after{content:" ▼";font-size:.8em}
table.sortable td{white-space:nowrap}table.sortable td.run,table.sortable td.state,table.sortable td.wrap{
white-space:normal;overflow-wrap:break-word;min-width:5em;max-width:18em;text-align:left}
table.sortable td.state{min-width:7.5em}
td.best{background:#dff3e0;font-weight:bold}.best-mark{color:#1e7b34}.partial-mark{color:#8a6d00;margin-left:.15em}
.state{font-weight:bold}.state-running{color:#1565c0}.state-finished{color:#1e7b34}.state-stopped_early{color:#1e7b34}
.state-interrupted{color:#8a6d00}.state-diverged,.state-failed,.state-gone{color:#b3261e}.state-unknown{color:#666}
p.state{font-weight:normal;border-left:4px solid currentColor;padding:.3em .8em;background:#f8f8f8}
code{overflow-wrap:anywhere}
"""

SCRIPT = Markup(
    """
"use strict";
const deepgrad = {
  settings: {x: "step", smooth: "none", y: "log"},
  curves() { return Array.from(document.querySelectorAll(".curves .js-plotly-plot")); },
  // Show a curve chart with the settings: each trace's x and y for them (kept in its meta).
  apply(chart) {
    const meta = chart.layout.meta || {}, s = deepgrad.settings;
    const scale = meta.toggle ? s.y : meta.scale, x = [], y = [], hover = [];
    for (const trace of chart.data) {
      const m = trace.meta || {};
      x.push(m.x && m.x[s.x] ? m.x[s.x] : trace.x);
      if (m.kind === "line") {
        const smooth = m.y[s.smooth] ? s.smooth : "none";
        y.push(m.y[smooth]);
        hover.push(m.hover[smooth === "none" ? "none" : "smoothed"]);
      } else if (m.kind === "mark") {
        y.push(m.y[scale] || m.y.linear);
        hover.push(trace.hovertemplate);
      } else { y.push(trace.y); hover.push(trace.hovertemplate); }
    }
    const layout = {"xaxis.autorange": true, "yaxis.type": scale, "yaxis.autorange": true};
    if (meta.xtitle && meta.xtitle[s.x]) layout["xaxis.title.text"] = meta.xtitle[s.x];
    if (meta.ticks) {
      const ticks = meta.ticks[scale];
      layout["yaxis.tickmode"] = ticks ? "array" : "auto";
      layout["yaxis.tickvals"] = ticks ? ticks.tickvals : null;
      layout["yaxis.ticktext"] = ticks ? ticks.ticktext : null;
    }
    const range = meta.range && meta.range[scale];
    // the axis type first, then its range (Plotly converts a range given with a change of type)
    return Plotly.update(chart, {x: x, y: y, hovertemplate: hover}, layout)
      .then(() => range ? Plotly.relayout(chart, {"yaxis.range": range.slice()}) : chart);
  },
  // One change after the other on a chart: a change made while Plotly still lays out the last one
  // (an autorange) would otherwise get that layout's range.
  set(key, value) {
    deepgrad.settings[key] = value;
    for (const chart of deepgrad.curves()) {
      chart.deepgradQueue = (chart.deepgradQueue || Promise.resolve()).then(() => deepgrad.apply(chart));
    }
  },
  // A run's legend entry hides or shows the run in every curve chart; a double click shows it alone.
  show(group, visible) {
    for (const chart of deepgrad.curves()) {
      const which = [], state = [];
      chart.data.forEach((trace, i) => {
        const on = typeof visible === "function" ? visible(trace.legendgroup)
          : (trace.legendgroup === group ? visible : null);
        if (on !== null && on !== undefined) { which.push(i); state.push(on ? true : "legendonly"); }
      });
      if (which.length) Plotly.restyle(chart, {visible: state}, which);
    }
  },
  legend(id) {
    const chart = document.getElementById(id);
    chart.on("plotly_legendclick", (event) => {
      const trace = event.data[event.curveNumber];
      deepgrad.show(trace.legendgroup, trace.visible === "legendonly");
      return false;
    });
    chart.on("plotly_legenddoubleclick", (event) => {
      const group = event.data[event.curveNumber].legendgroup;
      const alone = event.data.every((t) => t.legendgroup === group || t.visible === "legendonly");
      deepgrad.show(null, (g) => alone || g === group);
      return false;
    });
  },
  sort(th) {
    const table = th.closest("table"), body = table.tBodies[0];
    const column = Array.from(th.parentNode.children).indexOf(th);
    const ascending = th.getAttribute("aria-sort") !== "ascending";
    table.querySelectorAll("th").forEach((h) => h.removeAttribute("aria-sort"));
    th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
    const key = (row) => {
      const cell = row.cells[column];
      if (!cell) return null;
      const value = cell.dataset.sort;
      if (value === undefined) return cell.textContent;
      if (value === "") return null;
      const n = Number(value);
      return Number.isNaN(n) ? value : n;
    };
    const rows = Array.from(body.rows);
    rows.sort((a, b) => {
      const p = key(a), q = key(b);
      if (p === null || q === null) return (p === null) - (q === null);  // missing values last
      const d = typeof p === "number" && typeof q === "number" ? p - q
        : String(p).localeCompare(String(q), undefined, {numeric: true});
      return ascending ? d : -d;
    });
    rows.forEach((row) => body.appendChild(row));
  },
};
document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("[data-setting]").forEach((control) => {
    deepgrad.settings[control.dataset.setting] = control.value;
    control.addEventListener("change", () => deepgrad.set(control.dataset.setting, control.value));
  });
  document.querySelectorAll("table.sortable th").forEach((th) => {
    th.tabIndex = 0;
    th.title = "sort by this column";
    th.addEventListener("click", () => deepgrad.sort(th));
    th.addEventListener("keydown", (e) => {
      if (e.key === "Enter" || e.key === " ") { e.preventDefault(); deepgrad.sort(th); }
    });
  });
});
"""
)
