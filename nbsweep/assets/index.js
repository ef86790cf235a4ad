// index.html's script: each template's charts (inline SVG drawn from the embedded run data),
// sorting (click a column header) and filtering (text, status, template) of the runs tables.
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("runs-data").textContent);
  // Inside a Snakemake report the page is a data: URL, where links to the run files cannot work.
  var embedded = location.protocol === "data:";
  var collator = new Intl.Collator(undefined, { numeric: true, sensitivity: "base" });
  var MAX_CHARTS = 24;  // per template

  // ---- values -------------------------------------------------------------------------------

  function esc(text) {
    return String(text).replace(/[&<>"']/g, function (c) { return "&#" + c.charCodeAt(0) + ";"; });
  }
  function isNumber(v) { return typeof v === "number" && isFinite(v); }
  function fmt(v) {
    if (isNumber(v)) return String(Number(v.toPrecision(4)));
    if (v === null || v === undefined) return "";
    return typeof v === "string" ? v : JSON.stringify(v);
  }
  function keyOf(v) { return JSON.stringify(v === undefined ? null : v); }
  function compare(a, b) {
    return isNumber(a) && isNumber(b) ? a - b : collator.compare(fmt(a), fmt(b));
  }
  function distinct(values) {
    var seen = {}, out = [];
    values.forEach(function (v) { var k = keyOf(v); if (!(k in seen)) { seen[k] = true; out.push(v); } });
    return out.sort(compare);
  }
  function names(runs, field) {
    var out = [];
    runs.forEach(function (run) {
      Object.keys(run[field]).forEach(function (name) { if (out.indexOf(name) < 0) out.push(name); });
    });
    return out;
  }

  // ---- marks ---------------------------------------------------------------------------------

  function tooltip(run) {
    var lines = [run.run + " (" + run.status + ")"];
    Object.keys(run.params).forEach(function (name) {
      var isDefault = run.defaults.indexOf(name.split(".")[0]) >= 0;
      lines.push(name + " = " + fmt(run.params[name]) + (isDefault ? " (default)" : ""));
    });
    Object.keys(run.metrics).forEach(function (name) { lines.push(name + " = " + fmt(run.metrics[name])); });
    return lines.join("\n");
  }

  // One run's mark: a shape carrying data-run and a tooltip, linked to the run's rendering.
  function mark(run, tag, attrs) {
    var shape = "<" + tag + " " + attrs + ' class="mark st-' + run.status.replace(" ", "-") + '" data-run="' + esc(run.run) + '">'
      + "<title>" + esc(tooltip(run)) + "</title></" + tag + ">";
    return run.href && !embedded ? '<a href="' + esc(run.href) + '">' + shape + "</a>" : shape;
  }

  function point(run, x, y) {
    if (run.status === "failed") {  // a diamond
      return mark(run, "path", 'd="M' + x + " " + (y - 6) + "l6 6l-6 6l-6-6z" + '"');
    }
    return mark(run, "circle", 'cx="' + x + '" cy="' + y + '" r="4.5"');
  }

  // ---- scales and axes -----------------------------------------------------------------------

  function linear(lo, hi, a, b) {
    if (lo === hi) { lo -= Math.abs(lo) || 1; hi += Math.abs(hi) || 1; }
    var pad = (hi - lo) * 0.06;
    lo -= pad; hi += pad;
    var f = function (v) { return a + (v - lo) / (hi - lo) * (b - a); };
    f.domain = [lo, hi];
    return f;
  }

  function niceTicks(lo, hi, count) {
    var raw = (hi - lo) / count, step = Math.pow(10, Math.floor(Math.log10(raw))), ratio = raw / step;
    step *= ratio >= 7.5 ? 10 : ratio >= 3.5 ? 5 : ratio >= 1.5 ? 2 : 1;
    var out = [];
    for (var t = Math.ceil(lo / step) * step; t <= hi; t += step) out.push(Number(t.toPrecision(12)));
    return out;
  }

  // An x axis for a parameter: its own values as ticks when few, log-spaced when they span decades.
  function xAxis(values, a, b) {
    var lo = Math.min.apply(null, values), hi = Math.max.apply(null, values);
    var log = lo > 0 && hi / lo >= 10;
    var f = log ? linear(Math.log10(lo), Math.log10(hi), a, b) : linear(lo, hi, a, b);
    var scale = log ? function (v) { return f(Math.log10(v)); } : f;
    var ticks = values.length <= 8 ? values : log
      ? niceTicks(Math.log10(lo), Math.log10(hi), 5).map(function (t) { return Math.pow(10, t); })
      : niceTicks(f.domain[0], f.domain[1], 5);
    return { scale: scale, ticks: ticks, log: log };
  }

  function text(x, y, content, attrs) {
    return '<text x="' + x + '" y="' + y + '" ' + (attrs || "") + ">" + esc(content) + "</text>";
  }

  function svg(width, height, label, body) {
    return '<svg class="chart" width="' + width + '" height="' + height + '" viewBox="0 0 ' + width + " " + height
      + '" role="img" aria-label="' + esc(label) + '">' + body + "</svg>";
  }

  // ---- charts --------------------------------------------------------------------------------

  // A metric against a parameter (numeric, or the run label when no number varies): one mark per
  // run; runs without a value for the metric (failed, not run) sit in a strip below the axis.
  function scatter(runs, metric, param) {
    var W = 320, left = 56, right = 14, top = 28, plotH = 140;
    var byLabel = param === null;
    var xs = byLabel ? runs.map(function (r, n) { return n; }) : runs.map(function (r) { return r.params[param]; });
    var axis = byLabel ? { scale: linear(0, Math.max(runs.length - 1, 1), left, W - right), ticks: [], log: false }
      : xAxis(distinct(xs), left, W - right);
    var values = runs.map(function (r) { return r.metrics[metric]; }).filter(isNumber);
    var y = linear(Math.min.apply(null, values), Math.max.apply(null, values), top + plotH, top);
    var missing = runs.some(function (r) { return !isNumber(r.metrics[metric]); });
    var labelsBelow = byLabel && runs.length <= 12;
    var base = top + plotH, strip = base + (labelsBelow ? 58 : byLabel ? 22 : 46), H = strip + (missing ? 18 : 0) + 4;
    var parts = [text(left, 16, metric + (byLabel ? " per run" : " vs " + param), 'class="title"')];
    parts.push('<line class="axis" x1="' + left + '" y1="' + base + '" x2="' + (W - right) + '" y2="' + base + '"/>');
    parts.push('<line class="axis" x1="' + left + '" y1="' + top + '" x2="' + left + '" y2="' + base + '"/>');
    niceTicks(y.domain[0], y.domain[1], 4).forEach(function (t) {
      parts.push('<line class="grid" x1="' + left + '" y1="' + y(t) + '" x2="' + (W - right) + '" y2="' + y(t) + '"/>');
      parts.push(text(left - 5, y(t) + 4, fmt(t), 'text-anchor="end"'));
    });
    axis.ticks.forEach(function (t) {
      parts.push(text(axis.scale(t), base + 15, fmt(t), 'text-anchor="middle"'));
    });
    if (labelsBelow) {
      runs.forEach(function (r, n) {
        var x = axis.scale(n);
        parts.push(text(x, base + 12, r.label, 'text-anchor="end" transform="rotate(-30 ' + x + " " + (base + 12) + ')"'));
      });
    }
    if (!byLabel) parts.push(text((left + W - right) / 2, base + 28, param + (axis.log ? " (log scale)" : ""), 'text-anchor="middle" class="label"'));
    if (missing) parts.push(text(left - 5, strip + 4, "no value", 'text-anchor="end" class="label"'));
    runs.forEach(function (r, n) {
      var v = r.metrics[metric];
      parts.push(point(r, axis.scale(xs[n]), isNumber(v) ? y(v) : strip));
    });
    return svg(W, H, metric + " against " + (byLabel ? "run" : param), parts.join(""));
  }

  // A 2-parameter grid: one cell per run, coloured by the metric's value.
  function heatmap(runs, metric, rowParam, colParam) {
    var rowsV = distinct(runs.map(function (r) { return r.params[rowParam]; }));
    var colsV = distinct(runs.map(function (r) { return r.params[colParam]; }));
    var widest = function (values) { return Math.max.apply(null, values.map(function (v) { return fmt(v).length; })); };
    var cw = Math.min(140, Math.max(60, 12 + 7 * widest(colsV))), ch = 26;
    var left = Math.min(160, Math.max(48, 12 + 7 * Math.max(widest(rowsV), rowParam.length))), top = 48;
    var title = metric + " by " + rowParam + " × " + colParam;
    var W = Math.max(left + cw * colsV.length + 10, 16 + 7 * title.length), H = top + ch * rowsV.length + 8;
    var values = runs.map(function (r) { return r.metrics[metric]; }).filter(isNumber);
    var lo = Math.min.apply(null, values), hi = Math.max.apply(null, values);
    var parts = [text(8, 16, title, 'class="title"')];
    parts.push(text(left + cw * colsV.length / 2, 32, colParam, 'text-anchor="middle" class="label"'));
    parts.push(text(8, top - 4, rowParam, 'class="label"'));
    colsV.forEach(function (v, c) { parts.push(text(left + cw * c + cw / 2, top - 4, fmt(v), 'text-anchor="middle"')); });
    rowsV.forEach(function (v, r) { parts.push(text(left - 6, top + ch * r + ch / 2 + 4, fmt(v), 'text-anchor="end"')); });
    runs.forEach(function (run) {
      var c = colsV.findIndex(function (v) { return keyOf(v) === keyOf(run.params[colParam]); });
      var r = rowsV.findIndex(function (v) { return keyOf(v) === keyOf(run.params[rowParam]); });
      var x = left + cw * c, yy = top + ch * r, v = run.metrics[metric], shade = isNumber(v) ? (hi > lo ? (v - lo) / (hi - lo) : 0.5) : null;
      var fill = shade === null ? "" : ' style="fill: hsl(212, 80%, ' + Math.round(94 - shade * 58) + '%)"';
      parts.push(mark(run, "rect", 'x="' + (x + 1) + '" y="' + (yy + 1) + '" width="' + (cw - 2) + '" height="' + (ch - 2) + '"' + fill));
      var label = isNumber(v) ? fmt(v) : run.status === "failed" ? "failed" : "–";
      parts.push(text(x + cw / 2, yy + ch / 2 + 4, label, 'text-anchor="middle" class="cell' + (shade > 0.55 ? " dark" : "") + '"'));
    });
    return svg(W, H, metric + " by " + rowParam + " and " + colParam, parts.join(""));
  }

  function charts(runs) {
    var metrics = names(runs, "metrics").filter(function (name) {
      var values = runs.map(function (r) { return r.metrics[name]; }).filter(function (v) { return v !== null && v !== undefined; });
      return values.length > 0 && values.every(isNumber);
    });
    var varying = names(runs, "params").filter(function (name) {
      return distinct(runs.map(function (r) { return r.params[name]; })).length > 1;
    });
    var numeric = varying.filter(function (name) { return runs.every(function (r) { return isNumber(r.params[name]); }); });
    var out = [];
    if (varying.length === 2) {
      // A grid: each pair of values once, and more runs than values of either (not two that vary together).
      var cells = distinct(runs.map(function (r) { return [r.params[varying[0]], r.params[varying[1]]]; }));
      var sides = varying.map(function (name) { return distinct(runs.map(function (r) { return r.params[name]; })).length; });
      if (cells.length === runs.length && runs.length > Math.max(sides[0], sides[1])) {
        metrics.forEach(function (m) { out.push(heatmap(runs, m, varying[0], varying[1])); });
      }
    }
    metrics.forEach(function (m) {
      if (numeric.length) numeric.forEach(function (p) { out.push(scatter(runs, m, p)); });
      else if (runs.length > 1) out.push(scatter(runs, m, null));
    });
    return out;
  }

  var LEGEND = '<p class="legend"><span class="key st-ok"></span>ok <span class="key st-stale"></span>stale '
    + '<span class="key st-failed"></span>failed <span class="key st-not-run"></span>not run '
    + "<span>· hover a mark for its run, click it to open the notebook</span></p>";

  Array.prototype.forEach.call(document.querySelectorAll(".charts"), function (box) {
    var template = box.getAttribute("data-template");
    var drawn = charts(data.filter(function (run) { return run.template === template; }));
    if (!drawn.length) return;
    var more = drawn.length > MAX_CHARTS ? '<p class="legend">' + (drawn.length - MAX_CHARTS) + " more charts not shown</p>" : "";
    box.innerHTML = LEGEND + drawn.slice(0, MAX_CHARTS).join("") + more;
  });
  var marks = Array.prototype.slice.call(document.querySelectorAll(".charts [data-run]"));

  // ---- tables --------------------------------------------------------------------------------

  var filter = document.getElementById("filter");
  var status = document.getElementById("status");
  var template = document.getElementById("template");
  var count = document.getElementById("count");
  var sections = Array.prototype.slice.call(document.querySelectorAll("section.template"));
  var tables = Array.prototype.slice.call(document.querySelectorAll("table.runs")).map(function (table) {
    var rows = Array.prototype.slice.call(table.tBodies[0].rows);
    return {
      body: table.tBodies[0],
      rows: rows,
      headers: Array.prototype.slice.call(table.tHead.rows[0].cells),
      texts: rows.map(function (row) { return row.textContent.toLowerCase(); }),
      sorted: { column: -1, direction: 1 },
    };
  });
  var total = tables.reduce(function (n, t) { return n + t.rows.length; }, 0);

  // A cell's sort key: its number (data-sort) if it has one, else its text; null when empty.
  function key(row, column) {
    var cell = row.cells[column];
    if (cell.hasAttribute("data-sort")) return Number(cell.getAttribute("data-sort"));
    var content = cell.textContent.trim();
    return content === "" ? null : content;
  }

  function sortBy(table, column) {
    var sorted = table.sorted;
    sorted.direction = sorted.column === column ? -sorted.direction : 1;
    sorted.column = column;
    var keyed = table.rows.map(function (row, n) { return { key: key(row, column), n: n, row: row }; });
    keyed.sort(function (x, y) {
      var a = x.key, b = y.key;
      if (a === null || b === null) return a === b ? x.n - y.n : a === null ? 1 : -1;  // empty cells last
      var order = typeof a !== typeof b ? (typeof a === "number" ? -1 : 1)
        : typeof a === "number" ? a - b : collator.compare(a, b);
      return order * sorted.direction || x.n - y.n;
    });
    keyed.forEach(function (k) { table.body.appendChild(k.row); });
    table.headers.forEach(function (th, n) {
      th.setAttribute("aria-sort", n === column ? (sorted.direction > 0 ? "ascending" : "descending") : "none");
    });
  }

  // Columns that are empty in every shown row are hidden (e.g. metrics only ok runs have).
  function hideEmptyColumns(table) {
    table.headers.forEach(function (th, column) {
      var empty = table.rows.every(function (row) { return row.hidden || row.cells[column].textContent === ""; });
      th.hidden = empty;
      table.rows.forEach(function (row) { row.cells[column].hidden = empty; });
    });
  }

  function applyFilter() {
    var words = filter.value.toLowerCase().split(/\s+/).filter(Boolean);
    var shown = 0, visible = {};
    sections.forEach(function (section) {
      section.hidden = !!template.value && section.getAttribute("data-template") !== template.value;
    });
    tables.forEach(function (table) {
      var inSection = !template.value || table.body.closest("section").getAttribute("data-template") === template.value;
      table.rows.forEach(function (row, n) {
        var show = inSection && (!status.value || row.getAttribute("data-status") === status.value)
          && words.every(function (word) { return table.texts[n].indexOf(word) >= 0; });
        row.hidden = !show;
        if (show) { shown += 1; visible[row.getAttribute("data-run")] = true; }
      });
      hideEmptyColumns(table);
    });
    marks.forEach(function (m) { m.classList.toggle("dim", !visible[m.getAttribute("data-run")]); });
    count.textContent = shown + " of " + total + " runs shown";
  }

  if (embedded) document.body.classList.add("embedded");
  tables.forEach(function (table) {
    table.headers.forEach(function (th, column) {
      th.querySelector("button").addEventListener("click", function () { sortBy(table, column); });
    });
  });
  [filter, status, template].forEach(function (control) { control.addEventListener("input", applyFilter); });
  applyFilter();
})();
