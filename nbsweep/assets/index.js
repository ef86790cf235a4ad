// Sort (click a column header) and filter (text, status, template) the runs table.
(function () {
  "use strict";
  var table = document.getElementById("runs");
  var body = table.tBodies[0];
  var rows = Array.prototype.slice.call(body.rows);
  var headers = Array.prototype.slice.call(table.tHead.rows[0].cells);
  var filter = document.getElementById("filter");
  var status = document.getElementById("status");
  var template = document.getElementById("template");
  var count = document.getElementById("count");
  var collator = new Intl.Collator(undefined, { numeric: true, sensitivity: "base" });
  var texts = rows.map(function (row) { return row.textContent.toLowerCase(); });
  var sorted = { column: -1, direction: 1 };

  // A cell's sort key: its number (data-sort) if it has one, else its text; null when empty.
  function key(row, column) {
    var cell = row.cells[column];
    if (cell.hasAttribute("data-sort")) return Number(cell.getAttribute("data-sort"));
    var text = cell.textContent.trim();
    return text === "" ? null : text;
  }

  function sortBy(column) {
    sorted.direction = sorted.column === column ? -sorted.direction : 1;
    sorted.column = column;
    var keyed = rows.map(function (row, n) { return { key: key(row, column), n: n, row: row }; });
    keyed.sort(function (x, y) {
      var a = x.key, b = y.key;
      if (a === null || b === null) return a === b ? x.n - y.n : a === null ? 1 : -1;  // empty cells last
      var order = typeof a !== typeof b ? (typeof a === "number" ? -1 : 1)
        : typeof a === "number" ? a - b : collator.compare(a, b);
      return order * sorted.direction || x.n - y.n;
    });
    keyed.forEach(function (k) { body.appendChild(k.row); });
    headers.forEach(function (th, n) {
      th.setAttribute("aria-sort", n === column ? (sorted.direction > 0 ? "ascending" : "descending") : "none");
    });
  }

  // Columns that are empty in every shown row are hidden (e.g. another template's parameters).
  function hideEmptyColumns() {
    headers.forEach(function (th, column) {
      var empty = rows.every(function (row) { return row.hidden || row.cells[column].textContent === ""; });
      th.hidden = empty;
      rows.forEach(function (row) { row.cells[column].hidden = empty; });
    });
  }

  function applyFilter() {
    var words = filter.value.toLowerCase().split(/\s+/).filter(Boolean);
    var shown = 0;
    rows.forEach(function (row, n) {
      var visible = (!status.value || row.getAttribute("data-status") === status.value)
        && (!template.value || row.getAttribute("data-template") === template.value)
        && words.every(function (word) { return texts[n].indexOf(word) >= 0; });
      row.hidden = !visible;
      if (visible) shown += 1;
    });
    count.textContent = shown + " of " + rows.length + " runs shown";
    hideEmptyColumns();
  }

  // Inside a Snakemake report the page is a data: URL, where links to the run files cannot work.
  if (location.protocol === "data:") document.body.classList.add("embedded");
  headers.forEach(function (th, column) {
    th.querySelector("button").addEventListener("click", function () { sortBy(column); });
  });
  [filter, status, template].forEach(function (control) { control.addEventListener("input", applyFilter); });
  applyFilter();
})();
