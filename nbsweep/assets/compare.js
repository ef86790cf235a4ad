// compare.html: a template's runs side by side, cell by cell (nbsweep.results.compare_page).
// The data holds each distinct output once; this script draws the table for the chosen runs,
// collapses cells whose outputs are the same in all of them and marks what differs.
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("compare-data").textContent);
  var runs = data.runs, cells = data.cells, contents = data.contents;
  var MOST = 12, WIDTH = 360; // runs shown at first; widest image, in CSS pixels
  var chosen = new Set();

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "text") node.textContent = attrs[k];
      else if (k === "class") node.className = attrs[k];
      else node.setAttribute(k, attrs[k]);
    });
    (children || []).forEach(function (c) { if (c) node.appendChild(c); });
    return node;
  }
  function show(value) { return typeof value === "string" ? value : JSON.stringify(value); }

  // ------------------------------------------------------------------ choosing runs
  function byName(name) { return runs.findIndex(function (r) { return r.name === name; }); }
  function firstRuns() {
    var found = [];
    runs.forEach(function (r, i) { if (!r.of && found.length < MOST) found.push(i); });
    return found;
  }
  function fragment() {
    try { return decodeURIComponent(location.hash.slice(1)); } catch (malformed) { return ""; } // a link typed by hand: the first runs
  }
  function fromHash() {
    var hash = fragment();
    if (!hash) return firstRuns();
    if (hash.indexOf("previous:") === 0) {
      var label = hash.slice(9);
      return runs.map(function (r, i) { return r.label === label || r.of === label ? i : -1; }).filter(function (i) { return i >= 0; });
    }
    var found = firstRuns(), at = runs.findIndex(function (r) { return r.label === hash; });
    if (at >= 0 && found.indexOf(at) < 0) found.push(at);
    return found;
  }
  function matches(run, words) {
    // "lr=0.1" matches a parameter's value, other words any part of the label or a parameter
    return words.every(function (word) {
      var eq = word.indexOf("=");
      if (eq > 0) {
        var name = word.slice(0, eq), want = word.slice(eq + 1);
        var value = run.params[name];
        return Object.prototype.hasOwnProperty.call(run.params, name) && (show(value) === want || (typeof value === "number" && want.trim() !== "" && Number(want) === value));
      }
      var text = (run.label + " " + Object.keys(run.params).map(function (k) { return k + "=" + show(run.params[k]); }).join(" ")).toLowerCase();
      return text.indexOf(word.toLowerCase()) >= 0;
    });
  }
  function choose(indexes) {
    chosen = new Set(indexes);
    document.querySelectorAll("#picker input[type=checkbox]").forEach(function (box) { box.checked = chosen.has(+box.value); });
    draw();
  }
  function picker() {
    var root = document.getElementById("picker");
    var filter = el("input", { type: "search", id: "filter", placeholder: "Choose runs: words or name=value (lr=0.1 l2=0)", "aria-label": "Choose runs" });
    filter.addEventListener("input", function () {
      var words = filter.value.trim().split(/\s+/).filter(Boolean);
      if (!words.length) return choose(firstRuns());
      choose(runs.map(function (r, i) { return !r.of && matches(r, words) ? i : -1; }).filter(function (i) { return i >= 0; }));
    });
    function button(text, pick) {
      var b = el("button", { type: "button", text: text });
      b.addEventListener("click", function () { filter.value = ""; choose(pick()); });
      return b;
    }
    var list = el("div", { class: "boxes" });
    runs.forEach(function (run, i) {
      var box = el("input", { type: "checkbox", value: String(i), "data-run": run.name });
      box.addEventListener("change", function () {
        if (box.checked) chosen.add(i); else chosen.delete(i);
        draw();
      });
      list.appendChild(el("label", { class: "st-" + run.status.replace(" ", "-") + (run.of ? " previous" : "") }, [box, document.createTextNode(" " + run.label)]));
    });
    var all = runs.map(function (_, i) { return i; }).filter(function (i) { return !runs[i].of; });
    root.appendChild(el("div", { class: "controls" }, [
      filter,
      button("all " + all.length, function () { return all; }),
      button("first " + Math.min(MOST, all.length), firstRuns),
      button("none", function () { return []; }),
      el("span", { id: "chosen" }),
    ]));
    root.appendChild(el("details", {}, [el("summary", { text: "runs (" + runs.length + ")" }), list]));
  }

  // ------------------------------------------------------------------ differences
  function lines(text) { return text.split("\n"); }
  function lcsTable(a, b) {
    var table = [];
    for (var i = 0; i <= a.length; i++) table.push(new Uint32Array(b.length + 1));
    for (i = a.length - 1; i >= 0; i--)
      for (var j = b.length - 1; j >= 0; j--)
        table[i][j] = a[i] === b[j] ? table[i + 1][j + 1] + 1 : Math.max(table[i + 1][j], table[i][j + 1]);
    return table;
  }
  function changes(a, b) {
    // each item of `a` not in a longest common subsequence with `b` -> the item of `b` it replaces (or null)
    var changed = new Map();
    if (a.length * b.length > 250000) {
      var have = new Set(b);
      a.forEach(function (item, i) { if (!have.has(item)) changed.set(i, null); });
      return changed;
    }
    var table = lcsTable(a, b), i = 0, j = 0, mine = [], theirs = [];
    function pair() {
      mine.forEach(function (at, k) { changed.set(at, k < theirs.length ? b[theirs[k]] : null); });
      mine = []; theirs = [];
    }
    while (i < a.length || j < b.length) {
      if (i < a.length && j < b.length && a[i] === b[j]) { pair(); i++; j++; }
      else if (j < b.length && (i === a.length || table[i][j + 1] >= table[i + 1][j])) theirs.push(j++);
      else mine.push(i++);
    }
    pair();
    return changed;
  }
  function words(line) { return line.split(/(\s+|[^\w.]+)/).filter(function (w) { return w !== ""; }); }
  function lineNode(line, replaced) {
    // a changed line: the words that differ from the line it replaces marked, else all of it
    if (replaced === null || line.length > 400 || replaced.length > 400) return el("span", { class: "chg", text: line });
    var mine = words(line), differing = changes(mine, words(replaced));
    var span = el("span", { class: "chg-line" });
    mine.forEach(function (w, k) { span.appendChild(differing.has(k) ? el("span", { class: "chg", text: w }) : document.createTextNode(w)); });
    return span;
  }
  function textBlock(text, reference, css) {
    var pre = el("pre", { class: css });
    var mine = lines(text);
    var changed = reference === null || reference === text ? new Map() : changes(mine, lines(reference));
    mine.forEach(function (line, i) {
      pre.appendChild(changed.has(i) ? lineNode(line, changed.get(i)) : document.createTextNode(line));
      pre.appendChild(document.createTextNode("\n"));
    });
    return pre;
  }
  // An output's HTML is shown, never run: parsed in a document without a window (nothing in it
  // runs or loads), then stripped of scripts, frames, event handlers and javascript: URLs.
  var ACTIVE = "script, iframe, frame, frameset, object, embed, applet, base, link, meta, form, noscript, template";
  function parsed(html) { return new DOMParser().parseFromString(html, "text/html").body; }
  function inert(html) {
    var body = parsed(html);
    body.querySelectorAll(ACTIVE).forEach(function (node) { node.remove(); });
    body.querySelectorAll("*").forEach(function (node) {
      Array.prototype.slice.call(node.attributes).forEach(function (a) {
        var value = a.value.replace(/[\s\u0000-\u001f]/g, "").toLowerCase();
        if (a.name.toLowerCase().indexOf("on") === 0 || /^(javascript|vbscript):/.test(value)) node.removeAttribute(a.name);
      });
    });
    var found = document.createDocumentFragment();
    Array.prototype.slice.call(body.childNodes).forEach(function (node) { found.appendChild(document.importNode(node, true)); });
    return found;
  }
  function markTable(node, reference) {
    var mine = node.querySelectorAll("td, th"), theirs = reference ? reference.querySelectorAll("td, th") : [];
    mine.forEach(function (c, i) { if (!theirs[i] || theirs[i].textContent !== c.textContent) c.classList.add("chg"); });
  }

  // ------------------------------------------------------------------ drawing
  function pieceNode(p, ref, scale) {
    var refText = ref && ref.k === p.k ? ref.t : null;
    if (p.k === "image") {
      var img = el("img", { src: p.src, alt: p.t, title: p.t});
      if (p.w && p.h) { img.width = Math.round(p.w * scale); img.height = Math.round(p.h * scale); }
      return img;
    }
    if (p.k === "html" && p.html) {
      var box = el("div", { class: "html" });
      box.appendChild(inert(p.html));
      if (ref && ref.k === "html" && ref.html !== p.html) markTable(box, parsed(ref.html));
      return box;
    }
    if (p.k === "error") {
      return el("div", { class: "error" }, [textBlock(p.t, null, ""), el("details", {}, [el("summary", { text: "traceback" }), el("pre", { text: p.trace || "" })])]);
    }
    if (p.k === "pending") return el("p", { class: "pending", text: p.t });
    return textBlock(p.t, refText, p.k + (p.err ? " stderr" : ""));
  }
  function outputNode(id, refId, scale) {
    if (id === null || id === undefined) return el("p", { class: "pending", text: "(no such cell in this notebook)" });
    var pieces = contents[id], ref = refId === null || refId === id ? null : contents[refId];
    if (!pieces.length) return el("p", { class: "empty", text: "(no output)" });
    var box = el("div", { class: "outputs" });
    pieces.forEach(function (p, k) { box.appendChild(pieceNode(p, ref ? ref[k] : null, scale)); });
    return box;
  }
  function imageScale(ids) {
    var widest = 0;
    ids.forEach(function (id) {
      (id === null ? [] : contents[id]).forEach(function (p) { if (p.k === "image" && p.w) widest = Math.max(widest, p.w); });
    });
    return widest > WIDTH ? WIDTH / widest : 1;
  }
  function header(order) {
    var params = {};
    order.forEach(function (i) { Object.keys(runs[i].params).forEach(function (k) { params[k] = true; }); });
    var varying = [], constant = [];
    Object.keys(params).forEach(function (k) {
      var values = new Set(order.map(function (i) { return show(runs[i].params[k]); }));
      (values.size > 1 ? varying : constant).push(k);
    });
    var note = document.getElementById("constants");
    note.textContent = constant.length && order.length > 1
      ? "Same in the " + order.length + " chosen runs: " + constant.map(function (k) { return k + " = " + show(runs[order[0]].params[k]); }).join(", ")
      : "";
    var row = el("tr", {}, [el("th", { class: "cell", text: "cell" })]);
    order.forEach(function (i) {
      var run = runs[i];
      var target = fragment() === run.label ? " target" : ""; // the run index.html linked
      var head = el("th", { "data-run": run.name, class: "run st-" + run.status.replace(" ", "-") + target }, [
        run.href ? el("a", { href: run.href, text: run.label }) : el("span", { text: run.label }),
        el("span", { class: "badge", text: run.status }),
      ]);
      varying.forEach(function (k) {
        if (k in run.params) head.appendChild(el("div", { class: "param", text: k + " = " + show(run.params[k]) }));
      });
      var previous = runs.findIndex(function (r) { return r.of === run.label; });
      if (previous >= 0) {
        var link = el("a", { class: "vs-previous", href: "#previous:" + encodeURIComponent(run.label), text: "vs previous" });
        head.appendChild(el("div", {}, [link]));
      }
      row.appendChild(head);
    });
    return el("thead", {}, [row]);
  }
  function draw() {
    var order = runs.map(function (_, i) { return i; }).filter(function (i) { return chosen.has(i); });
    document.getElementById("chosen").textContent = order.length + " of " + runs.length + " shown";
    var root = document.getElementById("compare");
    root.textContent = "";
    root.appendChild(el("p", { id: "constants", class: "meta" }));
    if (!order.length) { root.appendChild(el("p", { class: "meta", text: "No run chosen." })); return; }
    var table = el("table", { class: "compare" });
    var body = el("tbody");
    var same = 0, differing = 0;
    cells.forEach(function (cell, c) {
      var ids = order.map(function (i) { return cell.out[i]; });
      var title = el("th", { class: "cell", title: cell.source, text: cell.title });
      if (cell.type !== "code") {
        body.appendChild(el("tr", { class: "md", "data-cell": String(c) }, [el("td", { colspan: String(order.length + 1), text: cell.source.split("\n")[0] })]));
        return;
      }
      var scale = imageScale(ids);
      if (ids.every(function (id) { return id === ids[0]; }) && ids[0] !== null) {
        same++;
        var label = order.length > 1 ? "same in all " + order.length + " runs" : "";
        var details = el("details", {}, [el("summary", { text: label || "output" })]);
        details.addEventListener("toggle", function () {
          if (details.open && details.children.length === 1) details.appendChild(outputNode(ids[0], null, scale));
        }, { once: true });
        body.appendChild(el("tr", { class: "same" + (cell.params ? " params" : ""), "data-cell": String(c) }, [title, el("td", { colspan: String(order.length) }, [details])]));
        return;
      }
      differing++;
      var tr = el("tr", { class: "diff" + (cell.params ? " params" : ""), "data-cell": String(c) }, [title]);
      ids.forEach(function (id) { tr.appendChild(el("td", {}, [outputNode(id, ids[0], scale)])); });
      body.appendChild(tr);
    });
    table.appendChild(header(order));
    table.appendChild(body);
    root.appendChild(el("p", { class: "meta", id: "tally", text: differing + " cell" + (differing === 1 ? "" : "s") + " differ, " + same + " the same" }));
    root.appendChild(el("div", { class: "wrap" }, [table]));
  }

  picker();
  choose(fromHash());
  window.addEventListener("hashchange", function () { choose(fromHash()); });
  window.nbsweepChoose = function (names) { choose(names.map(byName).filter(function (i) { return i >= 0; })); };
})();
