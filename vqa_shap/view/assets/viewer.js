/* vqa-shap view: the pages of a static attributions site. Plain JavaScript, no dependencies.
 * Data comes from <script> files that fill window.VQA_DATA (browsers refuse to fetch local files):
 * data/site.js (configs, metrics), data/<config>/list.js, data/<config>/chunk-<k>.js. */
(function () {
  "use strict";
  var D = window.VQA_DATA || {site: null, lists: {}, chunks: {}};
  var SITE = D.site || {configs: [], reports: [], title: "vqa-shap"};
  var PAGE_SIZE = 50;
  var SIGNALS = ["Ground Truth", "False", "All"];
  var MOD = {v: "video", q: "question", a: "answer"};

  // ---------------------------------------------------------------- helpers
  function h(tag, attrs, kids) {
    var el = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "text") el.textContent = attrs[k];
      else if (k === "style") el.style.cssText = attrs[k];
      else if (k.slice(0, 2) === "on") el.addEventListener(k.slice(2), attrs[k]);
      else el.setAttribute(k, attrs[k]);
    });
    (kids || []).forEach(function (c) { if (c != null) el.appendChild(typeof c === "string" ? document.createTextNode(c) : c); });
    return el;
  }
  function params() {
    var out = {};
    new URLSearchParams(location.search).forEach(function (v, k) { out[k] = v; });
    return out;
  }
  function url(page, p) { return page + "?" + new URLSearchParams(p).toString(); }
  var loading = {};
  function load(src) {  // a data script, once
    if (!loading[src]) loading[src] = new Promise(function (resolve, reject) {
      var s = h("script", {src: src});
      s.onload = resolve;
      s.onerror = function () { reject(new Error("cannot load " + src)); };
      document.head.appendChild(s);
    });
    return loading[src];
  }
  function config(name) { return SITE.configs.filter(function (c) { return c.name === name; })[0]; }
  function loadList(name) { return load("data/" + name + "/list.js").then(function () { return D.lists[name]; }); }
  function loadQuestion(name, i) {
    var k = Math.floor(i / config(name).chunk);
    return load("data/" + name + "/chunk-" + k + ".js").then(function () { return D.chunks[name + "/" + k][i % config(name).chunk]; });
  }
  function fmt(x, d) {
    if (x === null || x === undefined) return "–";
    if (x === "inf") return "∞";
    if (typeof x !== "number") return String(x);
    return x.toFixed(d === undefined ? 3 : d);
  }
  // A row's relative_error as the question page words it (data.error_label): exact, n/a, ∞ or 2 digits.
  function errorText(v) {
    if (v === null || v === undefined) return "n/a";
    if (v === 0) return "exact";
    if (v === "inf") return "∞";
    return typeof v === "number" ? String(Number(v.toPrecision(2))) : String(v);
  }
  function letter(k) { return k < 26 ? String.fromCharCode(65 + k) : "O" + (k + 1); }
  function fail(err) { document.getElementById("app").appendChild(h("p", {"class": "fail", text: String(err)})); }

  // Diverging colour scale (blue – grey – red, as matplotlib's coolwarm) of a value in [-1, 1].
  var LOW = [59, 76, 192], MID = [221, 221, 221], HIGH = [180, 4, 38];
  function colour(t) {
    if (t === null || isNaN(t)) return "rgb(245,245,245)";
    t = Math.max(-1, Math.min(1, t));
    var a = t < 0 ? LOW : HIGH, f = Math.abs(t);
    return "rgb(" + [0, 1, 2].map(function (j) { return Math.round(MID[j] + (a[j] - MID[j]) * f); }).join(",") + ")";
  }
  function ink(t) { return t !== null && Math.abs(t) > 0.6 ? "#fff" : "#111"; }
  function legend(label) {
    return h("div", {"class": "legend"}, [h("span", {text: "−1"}), h("span", {"class": "bar"}), h("span", {text: "+1"}),
      h("span", {"class": "legend-label", text: label})]);
  }

  // ---------------------------------------------------------------- index
  function ci(v, se) {
    if (!v || v[0] === null) return h("td", {text: "–"});
    var interval = v[1] !== null && v[1] !== undefined ? h("small", {"class": "ci", text: " [" + fmt(v[1]) + ", " + fmt(v[2]) + "]"}) : null;
    return h("td", {title: se !== null && se !== undefined ? "propagated stderr ± " + fmt(se, 4) : ""}, [fmt(v[0]), interval]);
  }
  function metricsTable(signal) {
    var keys = ["mc_v", "mc_q", "mc_a", "pf_v", "pf_q", "pf_a"];
    var head = ["Config", "Model", "Benchmark", "Variant", "Estimator", "Questions", "Errors", "Accuracy"].concat(
      keys.map(function (k) { return k.slice(0, 2).toUpperCase() + " " + k.slice(3).toUpperCase(); }));
    var rows = SITE.configs.map(function (c) {
      var m = c.metrics[signal] || {};
      var se = m.se || {};
      return h("tr", {}, [h("td", {}, [h("a", {href: url("questions.html", {c: c.name}), text: c.name})]),
        h("td", {text: c.model}), h("td", {text: c.benchmark}), h("td", {text: c.variant}),
        h("td", {text: c.estimator + " · " + c.budget + (c.has_stderr ? " · stderr" : "")}),
        h("td", {text: String(c.n_rows - c.n_errors)}), h("td", {text: String(c.n_errors)}), ci(m.accuracy)].concat(
        keys.map(function (k) { return ci(m[k], se[k]); })));
    });
    return h("table", {"class": "metrics", id: "metrics"}, [h("thead", {}, [h("tr", {}, head.map(function (t) { return h("th", {text: t}); }))]),
      h("tbody", {}, rows)]);
  }
  function configSelect(id, selected) {
    return h("select", {id: id}, SITE.configs.map(function (c) {
      var o = h("option", {value: c.name, text: c.name});
      if (c.name === selected) o.selected = true;
      return o;
    }));
  }
  function pageIndex(app) {
    var holder = h("div");
    var boot = SITE.configs.length ? SITE.configs[0].bootstrap : 0;
    var pick = h("select", {id: "signal", onchange: function () { holder.replaceChildren(metricsTable(pick.value)); }},
      SIGNALS.map(function (s) { return h("option", {value: s, text: s}); }));
    holder.appendChild(metricsTable(SIGNALS[0]));
    app.append(h("h1", {text: SITE.title}),
      h("p", {"class": "muted", text: "Built " + SITE.built + " with vqa-shap " + SITE.version + ". Means over questions (error rows excluded) with " +
        (boot ? "95% bootstrap intervals (" + boot + " resamples)" : "no intervals") + "; MC = modality contribution, PF = per-feature contribution (docs/analysis.md)."}),
      h("label", {}, ["Signal ", pick]), holder);
    if (SITE.configs.length > 1) {
      var a = configSelect("cmp-a", SITE.configs[0].name), b = configSelect("cmp-b", SITE.configs[1].name);
      app.append(h("h2", {text: "Compare two configs"}), h("p", {}, [a, " vs ", b, " ",
        h("button", {id: "cmp-open", onclick: function () { location.href = url("compare.html", {a: a.value, b: b.value}); }, text: "Open"})]));
    }
    if (SITE.reports.length || (SITE.report_tables || []).length) reportSection(app);
  }
  // `vqa-shap report` figures by kind (file-name prefixes as the report writes them), then its tables
  var KINDS = [["modality_", "Modality metrics"], ["answer_replacement", "Answer replacement"], ["words__", "Words"],
    ["heatmap__", "Heat maps"], ["convergence", "Convergence"]];
  function kindOf(path) {
    var name = path.split("/").pop(), kind = KINDS.filter(function (k) { return name.indexOf(k[0]) === 0; })[0];
    return kind ? kind[1] : "Other figures";
  }
  function reportSection(app) {
    app.append(h("h2", {text: "Report figures"}));
    KINDS.map(function (k) { return k[1]; }).concat(["Other figures"]).forEach(function (title) {
      var figs = SITE.reports.filter(function (r) { return kindOf(r) === title; });
      if (!figs.length) return;
      app.append(h("h3", {text: title}), h("div", {"class": "reports", "data-kind": title}, figs.map(function (r) {
        return h("a", {href: r}, [h("img", {src: r, alt: r, loading: "lazy"}), h("span", {text: r.split("/").pop()})]);
      })));
    });
    var tables = SITE.report_tables || [];
    if (tables.length) app.append(h("h3", {text: "Tables"}), h("ul", {"class": "report-tables"}, tables.map(function (t) {
      return h("li", {}, [h("a", {href: t, text: t.split("/").pop()})]);
    })));
  }

  // ---------------------------------------------------------------- question list
  function pageQuestions(app) {
    var p = params(), names = SITE.configs.map(function (c) { return c.name; });
    var chosen = p.c && names.indexOf(p.c) >= 0 ? [p.c] : names;
    Promise.all(chosen.map(loadList)).then(function (lists) {
      var cols = SITE.list_columns, all = [];
      lists.forEach(function (list, j) {
        list.rows.forEach(function (r, i) { var o = {config: chosen[j], i: i}; cols.forEach(function (c, k) { o[c] = r[k]; }); all.push(o); });
      });
      questionTable(app, all, chosen.length > 1 ? "all configs" : chosen[0]);
    }).catch(fail);
  }
  function distinct(rows, key) { return rows.map(function (r) { return r[key]; }).filter(function (v, i, a) { return a.indexOf(v) === i; }).sort(); }
  function filterSelect(id, label, values) {
    return h("label", {}, [label + " ", h("select", {id: id}, [h("option", {value: "", text: "all"})].concat(
      values.map(function (v) { return h("option", {value: v, text: v}); })))]);
  }
  function questionTable(app, all, what) {
    var state = {sort: "", dir: 1, page: 0};
    var cols = ["config", "qid", "benchmark", "task", "variant", "answer", "prediction", "status", "n_features", "mc_v", "mc_q", "mc_a", "relative_error"];
    var labels = {n_features: "F", mc_v: "MC V", mc_q: "MC Q", mc_a: "MC A", relative_error: "est. error"};
    var controls = h("div", {"class": "filters"}, [filterSelect("f-config", "Config", distinct(all, "config")),
      filterSelect("f-benchmark", "Benchmark", distinct(all, "benchmark")),
      filterSelect("f-task", "Task", distinct(all, "task")), filterSelect("f-status", "Status", ["correct", "incorrect", "error", "unknown"]),
      h("label", {}, ["qid ", h("input", {id: "f-qid", type: "search", placeholder: "contains…"})])]);
    var count = h("p", {id: "count"}), body = h("tbody"), pager = h("p", {"class": "pager"});
    var head = h("tr", {}, cols.map(function (c) {
      return h("th", {"data-col": c, "class": "sortable", text: labels[c] || c, onclick: function () {
        state.dir = state.sort === c ? -state.dir : 1; state.sort = c; state.page = 0; draw();
      }});
    }));
    function value(id) { return document.getElementById(id).value; }
    function rows() {
      var cf = value("f-config"), b = value("f-benchmark"), t = value("f-task"), s = value("f-status"), q = value("f-qid").toLowerCase();
      var out = all.filter(function (r) {
        return (!cf || r.config === cf) && (!b || r.benchmark === b) && (!t || r.task === t) && (!s || r.status === s) && (!q || r.qid.toLowerCase().indexOf(q) >= 0);
      });
      if (state.sort) {
        var k = state.sort;
        out.sort(function (x, y) {
          var a = x[k], c = y[k];
          if (a === c) return 0;
          if (a === null || a === undefined) return 1;
          if (c === null || c === undefined) return -1;
          return (a < c ? -1 : 1) * state.dir;
        });
      }
      return out;
    }
    function turn(page) { state.page = page; draw(); window.scrollTo(0, 0); }
    function draw() {
      var list = rows(), pages = Math.max(1, Math.ceil(list.length / PAGE_SIZE));
      state.page = Math.min(state.page, pages - 1);
      var start = state.page * PAGE_SIZE, shown = list.slice(start, start + PAGE_SIZE);
      body.replaceChildren.apply(body, shown.map(function (r) {
        return h("tr", {"class": "st-" + r.status}, cols.map(function (c) {
          if (c === "qid") return h("td", {}, [h("a", {href: url("question.html", {c: r.config, i: r.i}), text: r.qid})]);
          var v = r[c];
          if (c === "answer" || c === "prediction") v = v === null ? "–" : letter(v);
          if (c === "relative_error") return h("td", {text: errorText(v)});
          return h("td", {text: typeof v === "number" && c.slice(0, 3) === "mc_" ? fmt(v) : (v === null ? "–" : String(v))});
        }));
      }));
      count.textContent = list.length + " of " + all.length + " questions (" + what + ")" +
        (list.length ? "; showing " + (start + 1) + "–" + (start + shown.length) : "");
      Array.prototype.forEach.call(head.children, function (th) {
        th.className = "sortable" + (th.getAttribute("data-col") === state.sort ? (state.dir > 0 ? " asc" : " desc") : "");
      });
      pager.replaceChildren(h("button", {id: "prev-page", onclick: function () { turn(Math.max(0, state.page - 1)); }, text: "‹ previous"}),
        " page " + (state.page + 1) + " of " + pages + " ",
        h("button", {id: "next-page", onclick: function () { turn(Math.min(pages - 1, state.page + 1)); }, text: "next ›"}));
    }
    app.append(h("h1", {text: "Questions"}), controls, count,
      h("table", {"class": "questions", id: "questions"}, [h("thead", {}, [head]), body]), pager);
    controls.addEventListener("input", function () { state.page = 0; draw(); });
    controls.addEventListener("change", function () { state.page = 0; draw(); });
    draw();
  }

  // ---------------------------------------------------------------- one question
  // The values drawn for the explained option: psi = phi / max|phi| of that option's column (the
  // normalisation of the modality metrics), or the mean psi over the false / all options.
  function column(q, sel) {
    var K = q.phi.length ? q.phi[0].length : 0, norm = [];
    for (var c = 0; c < K; c++) {
      var m = 0;
      q.phi.forEach(function (row) { m = Math.max(m, Math.abs(row[c])); });
      norm.push(m);
    }
    var psi = function (i, c) { return norm[c] ? q.phi[i][c] / norm[c] : 0; };
    return q.phi.map(function (row, i) {
      if (sel === "false" || sel === "all") {
        var cs = []; for (var c = 0; c < K; c++) if (sel === "all" || c !== q.answer) cs.push(c);
        var s = 0; cs.forEach(function (c) { s += psi(i, c); });
        return {psi: cs.length ? s / cs.length : null, phi: null, se: null, near: false};
      }
      return {psi: psi(i, sel), phi: row[sel], se: q.stderr ? q.stderr[i][sel] : null, near: !!(q.near_zero && q.near_zero[i][sel])};
    });
  }
  function paint(panel, q, sel) {
    var vals = column(q, sel);
    panel.querySelectorAll("[data-idx]").forEach(function (el) {
      var v = vals[+el.getAttribute("data-idx")], bg = colour(v.psi);
      var tip = el.getAttribute("data-name") + ": ψ = " + fmt(v.psi) + (v.phi !== null ? ", φ = " + fmt(v.phi, 5) : "") +
        (v.se !== null ? ", stderr = " + fmt(v.se, 5) : "") + (v.near ? " (within two standard errors of zero)" : "");
      el.title = tip;
      el.classList.toggle("near-zero", v.near);
      if (el.classList.contains("frame")) { el.style.borderColor = bg; el.querySelector(".val").textContent = fmt(v.psi, 2); }
      else if (el.tagName === "TR") { el.cells[2].textContent = fmt(v.phi, 5); el.cells[3].textContent = fmt(v.psi); el.cells[4].textContent = fmt(v.se, 5); el.cells[3].style.background = bg; }
      else { el.style.background = bg; el.style.color = ink(v.psi); }
    });
    panel.querySelectorAll(".toggle button").forEach(function (b) { b.classList.toggle("on", b.getAttribute("data-sel") === String(sel)); });
    var what = sel === "false" ? "the mean over the false options" : sel === "all" ? "the mean over all options" : "option " + letter(sel);
    paintInteractions(panel, q, sel);
    panel.querySelector(".legend-label").textContent = "ψ = φ / max|φ| of " + what + (q.stderr ? " (hover: φ and stderr)" : " (hover: φ)") +
      (q.near_zero && typeof sel === "number" ? "; dashed: within two standard errors of zero" : "");
  }
  // Pairwise interactions (an interactions config of the same model, benchmark and variant): a frame × word
  // heat map when the players include frames and other players, else player × player. Colour: the
  // explained option's value / max |value| over the pairs (mean over options for "false" / "all").
  function interactionTables(q) {
    return (q.interactions || []).map(function (block) {
      var players = block.players, lookup = {}, idx = players.map(function (_, i) { return i; });
      block.pairs.forEach(function (pr, p) { lookup[pr[0] + "," + pr[1]] = p; lookup[pr[1] + "," + pr[0]] = p; });
      var rows = idx.filter(function (i) { return players[i][1] === "v"; }), cols = idx.filter(function (i) { return players[i][1] !== "v"; });
      var cross = rows.length > 0 && cols.length > 0;
      if (!cross) { rows = idx; cols = idx; }
      var head = h("tr", {}, [h("th")].concat(cols.map(function (j) { return h("th", {text: players[j][0]}); })));
      var body = rows.map(function (i) {
        return h("tr", {}, [h("th", {text: players[i][0]})].concat(cols.map(function (j) {
          var p = lookup[i + "," + j];
          return p === undefined ? h("td", {"class": "self"}) : h("td", {"data-pair": p, "data-names": players[i][0] + " × " + players[j][0]});
        })));
      });
      return h("div", {"class": "interactions", "data-config": block.config}, [
        h("h3", {text: "Interactions: " + (cross ? "frames × other players" : "players × players") + " (" + block.index + ", " + block.kind + ")"}),
        h("p", {"class": "muted", text: "from " + block.config + "; colour: the pair's value / max |value| of the explained option (hover: value)"}),
        h("table", {"class": "imap"}, [h("thead", {}, [head]), h("tbody", {}, body)])]);
    });
  }
  function paintInteractions(panel, q, sel) {
    var boxes = panel.querySelectorAll(".interactions");
    (q.interactions || []).forEach(function (block, b) {
      var K = block.values.length ? block.values[0].length : 0;
      var vals = block.values.map(function (row) {
        if (sel !== "false" && sel !== "all") return row[sel];
        var s = 0, n = 0;
        for (var c = 0; c < K; c++) if ((sel === "all" || c !== q.answer) && row[c] !== null) { s += row[c]; n++; }
        return n ? s / n : null;
      });
      var m = 0;
      vals.forEach(function (v) { if (v !== null) m = Math.max(m, Math.abs(v)); });
      boxes[b].querySelectorAll("td[data-pair]").forEach(function (td) {
        var v = vals[+td.getAttribute("data-pair")], t = v === null ? null : (m ? v / m : 0);
        td.style.background = colour(t);
        td.style.color = ink(t);
        td.textContent = fmt(v, 2);
        td.title = td.getAttribute("data-names") + ": " + fmt(v, 5);
      });
    });
  }
  function word(q, i) { return h("span", {"class": "word", "data-idx": i, "data-name": q.features[i][0], text: q.features[i][0]}); }
  function panel(q, cfg) {
    var el = h("section", {"class": "panel", "data-config": cfg, "data-qid": q.qid});
    var status = h("span", {"class": "badge st-" + q.status, text: q.status});
    el.append(h("h2", {}, [q.qid + " ", status]), h("p", {"class": "muted", text: [cfg, q.benchmark, q.task, q.variant, q.model].join(" · ")}));
    if (q.error) { el.append(h("p", {"class": "error", text: "This question could not be explained: " + q.error})); return el; }
    var K = q.phi.length ? q.phi[0].length : 0, sel = q.answer;
    var buttons = [];
    for (var k = 0; k < K; k++) {
      var tags = [k === q.answer ? "ground truth" : null, k === q.prediction ? "predicted" : null].filter(Boolean);
      buttons.push(h("button", {"data-sel": String(k), text: letter(k) + (tags.length ? " (" + tags.join(", ") + ")" : "")}));
    }
    if (K > 1) buttons.push(h("button", {"data-sel": "false", text: "mean of false"}), h("button", {"data-sel": "all", text: "mean of all"}));
    var toggle = h("div", {"class": "toggle"}, [h("span", {text: "Explained option: "})].concat(buttons));
    toggle.addEventListener("click", function (e) {
      var s = e.target.getAttribute && e.target.getAttribute("data-sel");
      if (s !== null && s !== undefined) { sel = isNaN(+s) ? s : +s; paint(el, q, sel); }
    });
    el.append(h("p", {}, ["Answer: ", h("b", {text: letter(q.answer)}), " · prediction: ",
      h("b", {text: q.prediction === null ? "unknown" : letter(q.prediction)}), " · estimated error: ",
      h("b", {"class": "est-error", title: "estimated relative L2 error of the chosen option's values (relative_error): " +
        "exact = computed exactly; n/a = the estimator gives no standard errors; ∞ = fewer than two samples", text: q.error_label})]),
      toggle, legend(""));
    var strip = h("div", {"class": "strip"});
    q.features.forEach(function (f, i) {
      if (f[1] !== "v") return;
      var j = strip.children.length, src = q.frames && q.frames[j] ? q.frames[j] : "assets/placeholder.svg";
      strip.appendChild(h("figure", {"class": "frame", "data-idx": i, "data-name": f[0]}, [h("img", {src: src, alt: f[0]}),
        h("figcaption", {}, [f[4] !== null ? "t=" + fmt(f[4], 1) + "s " : f[0] + " ", h("span", {"class": "val"})])]));
    });
    el.append(h("h3", {text: "Frames (" + strip.children.length + ")"}), strip);
    if (q.frame_note) el.append(h("p", {"class": "note", text: "Placeholder frames: " + q.frame_note}));
    var qwords = h("p", {"class": "words"});
    q.features.forEach(function (f, i) { if (f[1] === "q") qwords.append(word(q, i), " "); });
    el.append(h("h3", {text: "Question"}));
    if (q.text) el.append(h("p", {"class": "verbatim", text: q.text}));
    el.append(qwords);
    var opts = h("ol", {"class": "options"});
    for (k = 0; k < K; k++) {
      var li = h("li", {"class": (k === q.answer ? "gt " : "") + (k === q.prediction ? "pred" : "")}, [h("b", {text: letter(k) + ". "})]);
      q.features.forEach(function (f, i) { if (f[1] === "a" && f[2] === k) li.append(word(q, i), " "); });
      if (k === q.answer) li.append(h("span", {"class": "mark", text: "✓ answer"}));
      if (k === q.prediction) li.append(h("span", {"class": "mark", text: "▶ predicted"}));
      if (q.value_full) li.append(h("span", {"class": "score", text: "score " + fmt(q.value_full[k])}));
      opts.appendChild(li);
    }
    el.append(h("h3", {text: "Options"}), opts, featureTable(q), h("p", {"class": "muted", text: "estimator " + q.estimator + " · budget " +
      q.budget + " · evaluations " + q.evaluations + " · seed " + fmt(q.seed, 0) + " · runtime " + fmt(q.runtime_s, 2) + " s" +
      (q.stderr ? "" : " · no standard errors (the estimator has none)")}));
    interactionTables(q).forEach(function (box) { el.append(box); });
    paint(el, q, sel);
    return el;
  }
  function featureTable(q) {
    var rows = q.features.map(function (f, i) {
      return h("tr", {"data-idx": i, "data-name": f[0]}, [h("td", {text: f[0]}), h("td", {text: MOD[f[1]] + (f[2] >= 0 ? " " + letter(f[2]) : "")}),
        h("td"), h("td"), h("td")]);
    });
    return h("details", {}, [h("summary", {text: "All " + q.features.length + " players (φ, ψ, stderr)"}),
      h("table", {"class": "features"}, [h("thead", {}, [h("tr", {}, ["player", "modality", "φ", "ψ", "stderr"].map(function (t) { return h("th", {text: t}); }))]),
        h("tbody", {}, rows)])]);
  }
  function pageQuestion(app) {
    var p = params(), name = p.c || (SITE.configs[0] || {}).name, i = +(p.i || 0);
    if (!config(name)) return fail("unknown config " + name);
    loadList(name).then(function (list) {
      var n = list.rows.length, byQid = list.rows.map(function (r) { return r[0]; }).indexOf(p.q);
      if (!n) throw new Error("config " + name + " has no questions");
      i = byQid >= 0 ? byQid : Math.max(0, Math.min(n - 1, isNaN(i) ? 0 : i));
      return loadQuestion(name, i).then(function (q) {
        var nav = h("p", {"class": "nav"}, [
          i > 0 ? h("a", {id: "prev", href: url("question.html", {c: name, i: i - 1}), text: "‹ previous"}) : h("span", {text: "‹ previous"}),
          " question " + (i + 1) + " of " + n + " in ", h("a", {href: url("questions.html", {c: name}), text: name}), " ",
          i < n - 1 ? h("a", {id: "next", href: url("question.html", {c: name, i: i + 1}), text: "next ›"}) : h("span", {text: "next ›"})]);
        var others = SITE.configs.filter(function (c) { return c.name !== name; });
        if (others.length) {
          var other = configSelect("cmp-b", others[0].name);
          other.querySelector("option[value='" + name + "']").remove();
          nav.append(" · compare with ", other, " ", h("button", {text: "Open", onclick: function () {
            location.href = url("compare.html", {a: name, b: other.value, q: q.qid}); }}));
        }
        app.append(nav, panel(q, name));
      });
    }).catch(fail);
  }

  // ---------------------------------------------------------------- compare
  function pageCompare(app) {
    var p = params(), names = SITE.configs.map(function (c) { return c.name; });
    if (names.length < 2) return fail("compare needs two configs; this site has " + names.length);
    var a = config(p.a) ? p.a : names[0], b = config(p.b) ? p.b : names[1];
    var sa = configSelect("cmp-a", a), sb = configSelect("cmp-b", b);
    app.append(h("h1", {text: "Compare two configs"}), h("p", {}, [sa, " vs ", sb, " ",
      h("button", {text: "Open", onclick: function () { location.href = url("compare.html", {a: sa.value, b: sb.value}); }})]));
    Promise.all([loadList(a), loadList(b)]).then(function (lists) {
      var inB = {};
      lists[1].rows.forEach(function (r, i) { inB[r[0]] = i; });
      var common = [];
      lists[0].rows.forEach(function (r, i) { if (r[0] in inB) common.push([r[0], i, inB[r[0]]]); });
      if (!common.length) return fail("no question is in both " + a + " and " + b);
      var k = Math.max(0, common.map(function (c) { return c[0]; }).indexOf(p.q));
      var go = function (j) { return url("compare.html", {a: a, b: b, q: common[j][0]}); };
      app.append(h("p", {"class": "nav"}, [k > 0 ? h("a", {id: "prev", href: go(k - 1), text: "‹ previous"}) : "‹ previous",
        " question " + (k + 1) + " of " + common.length + " in both ", k < common.length - 1 ? h("a", {id: "next", href: go(k + 1), text: "next ›"}) : "next ›"]));
      return Promise.all([loadQuestion(a, common[k][1]), loadQuestion(b, common[k][2])]).then(function (qs) {
        app.append(h("div", {"class": "compare"}, [h("div", {"class": "col"}, [panel(qs[0], a)]), h("div", {"class": "col"}, [panel(qs[1], b)])]));
      });
    }).catch(fail);
  }

  // ---------------------------------------------------------------- start
  var pages = {index: pageIndex, questions: pageQuestions, question: pageQuestion, compare: pageCompare};
  document.addEventListener("keydown", function (e) {  // ← / → follow the previous / next links
    var link = e.target.tagName !== "INPUT" && document.getElementById({ArrowLeft: "prev", ArrowRight: "next"}[e.key]);
    if (link) location.href = link.href;
  });
  document.addEventListener("DOMContentLoaded", function () {
    var app = document.getElementById("app");
    document.getElementById("site-title").textContent = SITE.title;
    if (!D.site) return fail("data/site.js is missing: build the site with `vqa-shap view`");
    pages[document.body.getAttribute("data-page")](app);
  });
})();
