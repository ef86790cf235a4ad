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
  // A value as recorded: numbers in full (JavaScript's shortest exact form), objects as JSON.
  function exact(v) {
    if (v === null || v === undefined) return "";
    return typeof v === "string" ? v : isNumber(v) ? String(v) : JSON.stringify(v);
  }
  // A value for a label where space is short: integers and integer digits are never rounded,
  // fractions to 4 significant digits (as the table shows them; the tooltip has the exact value).
  function fmt(v) {
    if (!isNumber(v)) return exact(v);
    if (Number.isInteger(v) && Math.abs(v) < 1e15) return String(v);
    var whole = Math.abs(v) >= 1 && Math.abs(v) < 1e15 ? Math.floor(Math.log10(Math.abs(v))) + 1 : 0;
    return String(Number(v.toPrecision(Math.max(4, whole))));
  }
  // Text of at most ``limit`` characters: a path keeps its last parts ("…/data/adult.csv"),
  // other text (and a file name too long) its start and end ("long-na…e-end"). Callers put the
  // full text in a tooltip. The same as nbsweep.results.index.shortened.
  function shorten(content, limit) {
    if (content.length <= limit) return content;
    var parts = content.split("/"), tail = "";
    if (parts.length > 1 && limit > 8) {
      while (parts.length > 1 && ("…/" + parts[parts.length - 1] + (tail && "/" + tail)).length <= limit) {
        tail = parts.pop() + (tail && "/" + tail);
      }
      return "…/" + (tail || shorten(parts.pop(), limit - 2));
    }
    var head = Math.ceil((limit - 1) / 2);
    return content.slice(0, head) + "…" + content.slice(content.length - (limit - 1 - head));
  }
  function keyOf(v) { return JSON.stringify(v === undefined ? null : v); }
  function compare(a, b) {
    return isNumber(a) && isNumber(b) ? a - b : collator.compare(exact(a), exact(b));
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
      lines.push(name + " = " + exact(run.params[name]) + (isDefault ? " (default)" : ""));
    });
    Object.keys(run.metrics).forEach(function (name) { lines.push(name + " = " + exact(run.metrics[name])); });
    return lines.join("\n");
  }

  // One run's mark: a shape carrying data-run and a tooltip, linked to the run's rendering.
  function mark(run, tag, attrs) {
    var shape = "<" + tag + " " + attrs + ' class="mark st-' + run.status.replace(" ", "-") + '" data-run="' + esc(run.run) + '">'
      + "<title>" + esc(tooltip(run)) + "</title></" + tag + ">";
    return run.href && !embedded ? '<a href="' + esc(run.href) + '">' + shape + "</a>" : shape;
  }

  // A run's point; in a series (a colour of the chart's key) it carries the series' colour.
  function point(run, x, y, series) {
    if (run.status === "failed") {  // a diamond
      return mark(run, "path", 'd="M' + x + " " + (y - 6) + "l6 6l-6 6l-6-6z" + '"' + seriesAttrs(series, "stroke"));
    }
    var paint = run.status === "not run" ? "stroke" : "fill";
    return mark(run, "circle", 'cx="' + x + '" cy="' + y + '" r="4.5"' + seriesAttrs(series, paint));
  }
  function seriesAttrs(series, paint) {
    return series ? ' data-series="' + esc(series.name) + '" style="' + paint + ": " + series.colour + '"' : "";
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

  // A label of at most ``limit`` characters; a shortened one has its full text as tooltip and data-full.
  function label(x, y, content, limit, attrs) {
    var short = shorten(content, Math.max(limit, 6));
    if (short === content) return text(x, y, content, attrs);
    return '<text x="' + x + '" y="' + y + '" ' + (attrs || "") + ' data-full="' + esc(content) + '">' + esc(short)
      + "<title>" + esc(content) + "</title></text>";
  }

  function svg(width, height, name, body) {
    return '<svg class="chart" width="' + width + '" height="' + height + '" viewBox="0 0 ' + width + " " + height
      + '" role="img" aria-label="' + esc(name) + '">' + body + "</svg>";
  }

  // ---- charts --------------------------------------------------------------------------------

  // Colours of series (a parameter that varies besides the x axis); none is a status colour.
  var PALETTE = ["#0969da", "#bf3989", "#1a7f37", "#8250df", "#1b7c83", "#953800", "#0a3069", "#7d4e00"];

  // The runs grouped by the values of ``params`` (the parameters that vary besides the chart's
  // axis): [{name, colour, runs}], in value order; colour is null when there are too many.
  function seriesOf(runs, params) {
    if (!params.length) return [];
    var groups = {}, order = [];
    runs.forEach(function (run) {
      var values = params.map(function (p) { return run.params[p]; }), key = keyOf(values);
      if (!(key in groups)) { groups[key] = { values: values, runs: [] }; order.push(groups[key]); }
      groups[key].runs.push(run);
    });
    order.sort(function (x, y) {
      for (var n = 0; n < params.length; n++) { var c = compare(x.values[n], y.values[n]); if (c) return c; }
      return 0;
    });
    order.forEach(function (group, n) {
      group.name = params.length === 1 ? exact(group.values[0])
        : params.map(function (p, i) { return p + " = " + exact(group.values[i]); }).join(", ");
      group.colour = order.length <= PALETTE.length ? PALETTE[n] : null;
    });
    return order;
  }

  // The series' key below a chart: one entry (swatch and value) per line, each with data-series.
  function seriesLegend(series, params, x, y, width) {
    var parts = [text(x, y, "colour: " + params.join(", "), 'class="label"')];
    series.forEach(function (group, n) {
      var yy = y + 16 * (n + 1);
      parts.push('<g class="entry" data-series="' + esc(group.name) + '">'
        + '<circle class="key" cx="' + (x + 5) + '" cy="' + (yy - 4) + '" r="4.5" style="fill: ' + group.colour + '"/>'
        + label(x + 14, yy, group.name, Math.floor((width - 14) / 6.2)) + "</g>");
    });
    return '<g class="series-legend">' + parts.join("") + "</g>";
  }

  // A metric against a parameter (numeric, or the run label when no number varies): one mark per
  // run; runs without a value for the metric (failed, not run) sit in a strip below the axis.
  // The other parameters that vary are the marks' colour (with a key), each series joined by a line.
  function scatter(runs, metric, param, others) {
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
    var series = byLabel ? [] : seriesOf(runs, others);
    var coloured = series.length > 1 && series[0].colour !== null;
    var title = metric + (byLabel ? " per run" : " vs " + param);
    var parts = [label(8, 16, title, Math.floor((W - 16) / 7.2), 'class="title"')];
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
        parts.push(label(x, base + 12, r.label, Math.floor((x - 2) / 4.7),
          'text-anchor="end" transform="rotate(-30 ' + x + " " + (base + 12) + ')"'));
      });
    }
    if (!byLabel) parts.push(text((left + W - right) / 2, base + 28, param + (axis.log ? " (log scale)" : ""), 'text-anchor="middle" class="label"'));
    if (missing) parts.push(text(left - 5, strip + 4, "no value", 'text-anchor="end" class="label"'));
    // Each series a little to the side of the others (dodged), so equal values do not hide each other.
    var seriesOfRun = {}, dodge = {}, step = Math.min(4, 24 / series.length);
    if (coloured) {
      series.forEach(function (group, k) {
        var shift = (k - (series.length - 1) / 2) * step;
        group.runs.forEach(function (r) { seriesOfRun[r.run] = group; dodge[r.run] = shift; });
        var line = group.runs.filter(function (r) { return isNumber(r.metrics[metric]); })
          .sort(function (a, b) { return compare(a.params[param], b.params[param]); })
          .map(function (r) { return (axis.scale(r.params[param]) + shift) + "," + y(r.metrics[metric]); });
        if (line.length > 1) parts.push('<polyline class="series" points="' + line.join(" ") + '" style="stroke: ' + group.colour + '"/>');
      });
    }
    runs.forEach(function (r, n) {
      var v = r.metrics[metric];
      parts.push(point(r, axis.scale(xs[n]) + (dodge[r.run] || 0), isNumber(v) ? y(v) : strip, seriesOfRun[r.run]));
    });
    if (coloured) {
      var top2 = missing ? H + 12 : base + 46;
      parts.push(seriesLegend(series, others, left, top2, W - left - right));
      H = top2 + 16 * series.length + 8;
    } else if (series.length > 1) {  // too many to tell apart by colour: say so
      parts.push(label(left, H + 12, "also varying, not shown: " + others.join(", "), Math.floor((W - left - right) / 6), 'class="label"'));
      H += 20;
    }
    return svg(W, H, metric + " against " + (byLabel ? "run" : param), parts.join(""));
  }

  // A 2-parameter grid: one cell per run, coloured by the metric's value and labelled with it.
  function heatmap(runs, metric, rowParam, colParam) {
    var rowsV = distinct(runs.map(function (r) { return r.params[rowParam]; }));
    var colsV = distinct(runs.map(function (r) { return r.params[colParam]; }));
    var widest = function (values) { return Math.max.apply(null, values.map(function (v) { return fmt(v).length; })); };
    var cellText = function (v) { return isNumber(v) ? fmt(v) : ""; };
    var widestCell = Math.max.apply(null, runs.map(function (r) { return cellText(r.metrics[metric]).length; }));
    var cw = Math.min(140, Math.max(60, 12 + 7 * Math.max(widest(colsV), widestCell))), ch = 26;
    var left = Math.min(240, Math.max(48, 12 + 7 * Math.max(widest(rowsV), rowParam.length))), top = 48;
    var title = metric + " by " + rowParam + " × " + colParam;
    var W = Math.max(left + cw * colsV.length + 10, 16 + 7 * title.length), H = top + ch * rowsV.length + 8;
    var values = runs.map(function (r) { return r.metrics[metric]; }).filter(isNumber);
    var lo = Math.min.apply(null, values), hi = Math.max.apply(null, values);
    var parts = [text(8, 16, title, 'class="title"')];
    parts.push(text(left + cw * colsV.length / 2, 32, colParam, 'text-anchor="middle" class="label"'));
    parts.push(text(8, top - 4, rowParam, 'class="label"'));
    colsV.forEach(function (v, c) { parts.push(label(left + cw * c + cw / 2, top - 4, fmt(v), Math.floor((cw - 6) / 6.2), 'text-anchor="middle"')); });
    rowsV.forEach(function (v, r) { parts.push(label(left - 6, top + ch * r + ch / 2 + 4, fmt(v), Math.floor((left - 12) / 6.2), 'text-anchor="end"')); });
    runs.forEach(function (run) {
      var c = colsV.findIndex(function (v) { return keyOf(v) === keyOf(run.params[colParam]); });
      var r = rowsV.findIndex(function (v) { return keyOf(v) === keyOf(run.params[rowParam]); });
      var x = left + cw * c, yy = top + ch * r, v = run.metrics[metric], shade = isNumber(v) ? (hi > lo ? (v - lo) / (hi - lo) : 0.5) : null;
      var fill = shade === null ? "" : ' style="fill: hsl(212, 80%, ' + Math.round(94 - shade * 58) + '%)"';
      parts.push(mark(run, "rect", 'x="' + (x + 1) + '" y="' + (yy + 1) + '" width="' + (cw - 2) + '" height="' + (ch - 2) + '"' + fill));
      var content = isNumber(v) ? cellText(v) : run.status === "failed" ? "failed" : "–";
      parts.push(label(x + cw / 2, yy + ch / 2 + 4, content, Math.floor((cw - 6) / 6.2), 'text-anchor="middle" class="cell' + (shade > 0.55 ? " dark" : "") + '"'));
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
      var sides = varying.map(function (name) { return distinct(runs.map(function (r) { return r.params[name]; })); });
      if (cells.length === runs.length && runs.length > Math.max(sides[0].length, sides[1].length)) {
        // Rows are the first parameter, unless only the second has values too long for a column.
        var width = function (n) { return Math.max.apply(null, sides[n].map(function (v) { return fmt(v).length; })); };
        var pair = width(1) > Math.max(12, width(0)) ? [varying[1], varying[0]] : varying;
        metrics.forEach(function (m) { out.push(heatmap(runs, m, pair[0], pair[1])); });
      }
    }
    metrics.forEach(function (m) {
      if (numeric.length) {
        numeric.forEach(function (p) { out.push(scatter(runs, m, p, varying.filter(function (o) { return o !== p; }))); });
      } else if (runs.length > 1) out.push(scatter(runs, m, null, []));
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
      // What the filter matches: each cell's full text (a shortened one has it as its tooltip).
      texts: rows.map(function (row) {
        return Array.prototype.map.call(row.cells, function (cell) {
          return cell.textContent + (cell.title ? " " + cell.title : "");
        }).join(" ").toLowerCase();
      }),
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
