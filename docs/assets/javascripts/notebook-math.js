// The notebooks' formulas ($…$, $$…$$, \(…\), \[…\]) typeset with the vendored KaTeX (docs/assets/katex,
// MIT), so that the site needs no network. Only inside the notebooks' pages: a guide's "$" stays text.
function typesetNotebooks() {
  document.querySelectorAll(".jupyter-wrapper").forEach(function (element) {
    renderMathInElement(element, {
      delimiters: [
        { left: "$$", right: "$$", display: true },
        { left: "\\[", right: "\\]", display: true },
        { left: "$", right: "$", display: false },
        { left: "\\(", right: "\\)", display: false },
      ],
      throwOnError: false,
    });
  });
}
if (window.document$) {
  window.document$.subscribe(typesetNotebooks); // Material's page-load stream
} else {
  document.addEventListener("DOMContentLoaded", typesetNotebooks);
}
