// Manager dashboard: draws tables and inline-SVG plots from the analysis JSON (json_script).
// All data goes through textContent / setAttribute, never innerHTML.

const SVG = "http://www.w3.org/2000/svg";
const data = JSON.parse(document.getElementById("dashboard-data").textContent);
const status = JSON.parse(document.getElementById("dashboard-status").textContent);
let question = JSON.parse(document.getElementById("dashboard-question").textContent);

function el(tag, attrs = {}, text = null) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== null) node.textContent = text;
  return node;
}

function svgEl(tag, attrs = {}, text = null) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== null) node.textContent = text;
  return node;
}

const isNum = (v) => typeof v === "number" && Number.isFinite(v);

function fmt(v, digits = 3) {
  return isNum(v) ? v.toFixed(digits) : null;
}

// A cell showing a number, or "—" with the reason as tooltip.
function cell(value, reason, digits = 3, cls = "num") {
  const td = el("td", { class: cls });
  const text = typeof value === "string" ? value : fmt(value, digits);
  if (text === null) {
    td.textContent = "—";
    td.title = reason || "not available";
    td.classList.add("missing");
  } else {
    td.textContent = text;
  }
  return td;
}

function statCell(stat, digits = 3) {
  return cell(stat ? stat.value : null, stat ? stat.reason : "not computed", digits);
}

function intervalCell(lo, hi, reason, digits = 3) {
  if (isNum(lo) && isNum(hi)) return cell(`[${lo.toFixed(digits)}, ${hi.toFixed(digits)}]`, null);
  return cell(null, reason || "no interval");
}

function clear(node) {
  while (node.firstChild) node.removeChild(node.firstChild);
}

function emptyNote(container, text) {
  clear(container);
  container.appendChild(el("p", { class: "muted empty" }, text));
}

// ---- ranking ----
function renderRanking(q) {
  const tbody = document.querySelector("#ranking-table tbody");
  clear(tbody);
  const items = (q.ranking && q.ranking.items) || [];
  const reason = (q.ranking && q.ranking.reason) || q.reason;
  for (const it of items) {
    const tr = el("tr");
    tr.appendChild(cell(isNum(it.rank) ? String(it.rank) : null, reason));
    tr.appendChild(el("td", {}, String(it.generator)));
    tr.appendChild(cell(it.rating, reason, 1));
    tr.appendChild(intervalCell(it.ci_low, it.ci_high, reason, 1));
    tr.appendChild(cell(String(it.n), null));
    tr.appendChild(cell(String(it.wins ?? "—"), null));
    tr.appendChild(cell(String(it.ties ?? "—"), null));
    tr.appendChild(cell(String(it.losses ?? "—"), null));
    tbody.appendChild(tr);
  }
  if (!items.length) {
    const tr = el("tr");
    tr.appendChild(el("td", { colspan: "8", class: "muted" }, `No ranking: ${reason || "no judgments"}`));
    tbody.appendChild(tr);
  }
  renderRatingPlot(items, q);
}

function niceTicks(lo, hi, count = 5) {
  const span = hi - lo || 1;
  const step0 = span / count;
  const mag = 10 ** Math.floor(Math.log10(step0));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= step0) || mag;
  const ticks = [];
  for (let t = Math.ceil(lo / step) * step; t <= hi + 1e-9; t += step) ticks.push(Number(t.toPrecision(12)));
  return ticks;
}

function plotFrame(title, width, height) {
  const svg = svgEl("svg", { viewBox: `0 0 ${width} ${height}`, width, height, role: "img", class: "chart" });
  svg.appendChild(svgEl("title", {}, title));
  return svg;
}

function renderRatingPlot(items, q) {
  const box = document.getElementById("rating-plot");
  const rated = items.filter((it) => isNum(it.rating));
  if (!rated.length) return emptyNote(box, "No ratings to plot.");
  clear(box);
  const rowH = 28, left = 150, right = 30, top = 30, bottom = 50;
  const width = 720, height = top + bottom + rowH * rated.length;
  const vals = rated.flatMap((it) => [it.rating, it.ci_low, it.ci_high].filter(isNum));
  let lo = Math.min(...vals), hi = Math.max(...vals);
  const pad = (hi - lo) * 0.08 || 20;
  lo -= pad; hi += pad;
  const x = (v) => left + ((v - lo) / (hi - lo)) * (width - left - right);
  const svg = plotFrame(`Bradley–Terry rating with 95% interval, n = ${q.n_judgments} judgments`, width, height);
  const plotBottom = height - bottom;
  for (const t of niceTicks(lo, hi)) {
    svg.appendChild(svgEl("line", { x1: x(t), x2: x(t), y1: top - 5, y2: plotBottom, class: "grid" }));
    svg.appendChild(svgEl("text", { x: x(t), y: plotBottom + 16, "text-anchor": "middle", class: "tick" }, String(t)));
  }
  if (lo < 1000 && hi > 1000) {
    svg.appendChild(svgEl("line", { x1: x(1000), x2: x(1000), y1: top - 5, y2: plotBottom, class: "ref" }));
  }
  svg.appendChild(svgEl("line", { x1: left, x2: width - right, y1: plotBottom, y2: plotBottom, class: "axis" }));
  svg.appendChild(svgEl("text", { x: (left + width - right) / 2, y: height - 10, "text-anchor": "middle", class: "label" },
    `Rating (Arena Elo points; mean 1000) — n = ${q.n_judgments} judgments`));
  rated.forEach((it, i) => {
    const y = top + rowH * i + rowH / 2;
    svg.appendChild(svgEl("text", { x: left - 8, y: y + 4, "text-anchor": "end", class: "tick" }, String(it.generator)));
    if (isNum(it.ci_low) && isNum(it.ci_high)) {
      svg.appendChild(svgEl("line", { x1: x(it.ci_low), x2: x(it.ci_high), y1: y, y2: y, class: "errbar" }));
      for (const v of [it.ci_low, it.ci_high]) svg.appendChild(svgEl("line", { x1: x(v), x2: x(v), y1: y - 6, y2: y + 6, class: "errbar" }));
    }
    const dot = svgEl("circle", { cx: x(it.rating), cy: y, r: 5, class: "point" });
    dot.appendChild(svgEl("title", {}, `${it.generator}: ${it.rating.toFixed(1)} [${fmt(it.ci_low, 1) ?? "—"}, ${fmt(it.ci_high, 1) ?? "—"}], n = ${it.n}`));
    svg.appendChild(dot);
  });
  box.appendChild(svg);
}

// ---- win-rate heatmap ----
function heatColor(v) {
  // 0 → red, 0.5 → white, 1 → blue
  const t = Math.max(0, Math.min(1, v));
  const mix = (a, b, s) => Math.round(a + (b - a) * s);
  if (t < 0.5) { const s = t / 0.5; return `rgb(${mix(214, 255, s)},${mix(96, 255, s)},${mix(77, 255, s)})`; }
  const s = (t - 0.5) / 0.5; return `rgb(${mix(255, 47, s)},${mix(255, 111, s)},${mix(255, 219, s)})`;
}

function renderWinRates(q) {
  const box = document.getElementById("winrate-plot");
  const wr = q.win_rates;
  if (!wr || !wr.generators || wr.generators.length < 2) return emptyNote(box, `No win rates: ${q.reason || "fewer than two generators"}`);
  clear(box);
  const gens = wr.generators, k = gens.length;
  const cellSize = Math.max(28, Math.min(60, Math.floor(520 / k)));
  const left = 150, top = 40, bottom = 110;
  const width = Math.max(left + cellSize * k + 20, 600), height = top + cellSize * k + bottom;
  const total = wr.n.reduce((s, row) => s + row.reduce((a, b) => a + b, 0), 0) / 2;
  const svg = plotFrame(`Win-rate matrix, n = ${total} comparisons`, width, height);
  svg.appendChild(svgEl("text", { x: left + (cellSize * k) / 2, y: 16, "text-anchor": "middle", class: "label" },
    "Column generator (opponent)"));
  gens.forEach((g, j) => {
    const tx = left + cellSize * j + cellSize / 2;
    svg.appendChild(svgEl("text", { x: tx, y: top + cellSize * k + 14, transform: `rotate(40 ${tx} ${top + cellSize * k + 14})`, class: "tick" }, String(g)));
  });
  gens.forEach((g, i) => {
    svg.appendChild(svgEl("text", { x: left - 8, y: top + cellSize * i + cellSize / 2 + 4, "text-anchor": "end", class: "tick" }, String(g)));
    gens.forEach((h, j) => {
      const v = wr.win_rate[i][j];
      const rect = svgEl("rect", { x: left + cellSize * j, y: top + cellSize * i, width: cellSize - 1, height: cellSize - 1,
        fill: isNum(v) ? heatColor(v) : "#eceff3", class: "heat" });
      const tip = isNum(v)
        ? `${g} vs ${h}: win rate ${(v * 100).toFixed(1)}% (${wr.wins[i][j]} wins, ${wr.ties[i][j]} ties, ${wr.losses[i][j]} losses; n = ${wr.n[i][j]})`
        : (i === j ? `${g}: itself` : `${g} vs ${h}: never compared`);
      rect.appendChild(svgEl("title", {}, tip));
      svg.appendChild(rect);
      if (isNum(v) && cellSize >= 34) {
        svg.appendChild(svgEl("text", { x: left + cellSize * j + cellSize / 2, y: top + cellSize * i + cellSize / 2 + 4,
          "text-anchor": "middle", class: "cellval" }, `${Math.round(v * 100)}%`));
      }
    });
  });
  svg.appendChild(svgEl("text", { x: 14, y: top + (cellSize * k) / 2, transform: `rotate(-90 14 ${top + (cellSize * k) / 2})`,
    "text-anchor": "middle", class: "label" }, "Row generator"));
  svg.appendChild(svgEl("text", { x: left, y: height - 8, class: "label" },
    `Cell: row's win rate vs column (%; red 0 – white 50 – blue 100); n = ${total} comparisons`));
  box.appendChild(svg);
}

// ---- agreement ----
const AGREEMENT_ROWS = [
  ["percent_agreement", "Percent agreement", "Share of rater pairs on the same pair who gave the same answer."],
  ["krippendorff_alpha_nominal", "Krippendorff α (nominal)", "Chance-corrected agreement treating a, tie, b as unordered labels (1 = perfect, 0 = chance)."],
  ["krippendorff_alpha_ordinal", "Krippendorff α (ordinal)", "Chance-corrected agreement with tie as the middle of A…B: near-misses count partly."],
  ["fleiss_kappa", "Fleiss κ", "Chance-corrected agreement for a fixed number of raters per pair (nominal)."],
];

function renderAgreement(q) {
  const tbody = document.querySelector("#agreement-table tbody");
  clear(tbody);
  const agr = q.agreement || {};
  for (const [key, label, meaning] of AGREEMENT_ROWS) {
    const stat = agr[key];
    const tr = el("tr", { "data-stat": key });
    const th = el("th", { scope: "row" }, label);
    th.appendChild(el("div", { class: "meaning" }, meaning));
    tr.appendChild(th);
    tr.appendChild(statCell(stat));
    tr.appendChild(cell(stat && isNum(stat.n) ? `n = ${stat.n} pairs` : null, "no pairs", 0));
    tbody.appendChild(tr);
  }
}

// ---- position bias ----
function renderPosition(q) {
  const tbody = document.querySelector("#position-table tbody");
  clear(tbody);
  const o = (q.position_bias && q.position_bias.overall) || {};
  const rows = [
    ["P(left chosen)", cell(o.p_left, o.reason), "Share of decisive answers picking the video shown on the left; 0.5 = no bias."],
    ["95 % interval", intervalCell(o.ci_low, o.ci_high, o.reason), "Exact binomial interval."],
    ["p-value", cell(o.p_value, o.reason, 4), "Two-sided binomial test against 0.5; ties and unknown sides excluded."],
    ["n", cell(isNum(o.n) ? String(o.n) : null, o.reason), "Decisive answers with a known side."],
  ];
  for (const [label, td, meaning] of rows) {
    const tr = el("tr");
    const th = el("th", { scope: "row" }, label);
    th.appendChild(el("div", { class: "meaning" }, meaning));
    tr.appendChild(th);
    tr.appendChild(td);
    tbody.appendChild(tr);
  }
}

// ---- alignment ----
function renderAlignment(q) {
  const tbody = document.querySelector("#alignment-table tbody");
  clear(tbody);
  const al = q.alignment || {};
  const metrics = al.metrics || {};
  const names = Object.keys(metrics);
  if (!names.length) {
    const tr = el("tr");
    tr.appendChild(el("td", { colspan: "7", class: "muted" }, `No metric scores: ${al.reason || "no metrics computed for this project"}`));
    tbody.appendChild(tr);
  }
  for (const name of names) {
    const m = metrics[name];
    const pa = m.pairwise_accuracy || {};
    const tr = el("tr");
    tr.appendChild(el("td", {}, name));
    tr.appendChild(statCell(pa));
    tr.appendChild(intervalCell(pa.ci_low, pa.ci_high, pa.reason));
    tr.appendChild(cell(isNum(pa.n) ? String(pa.n) : null, pa.reason));
    tr.appendChild(cell(pa.tie_threshold, "no threshold", 3));
    tr.appendChild(statCell(m.kendall_tau_b));
    tr.appendChild(statCell(m.generator_spearman));
    tbody.appendChild(tr);
  }
  const select = document.getElementById("metric-select");
  const previous = select.value;
  clear(select);
  for (const name of names) select.appendChild(el("option", { value: name }, name));
  if (names.includes(previous)) select.value = previous;
  renderScatter(q);
}

function renderScatter() {
  const box = document.getElementById("scatter-plot");
  const metric = document.getElementById("metric-select").value;
  const pts = ((data.scatter || {})[question] || {})[metric];
  if (!metric || !pts || !pts.n_shown) return emptyNote(box, "No scored pairs to plot.");
  clear(box);
  const width = 640, height = 360, left = 60, right = 20, top = 20, bottom = 56;
  let lo = Math.min(...pts.delta), hi = Math.max(...pts.delta);
  const span = Math.max(Math.abs(lo), Math.abs(hi)) || 1;
  lo = -span * 1.05; hi = span * 1.05;
  const x = (v) => left + ((v - lo) / (hi - lo)) * (width - left - right);
  const y = (v) => top + ((1.1 - v) / 2.2) * (height - top - bottom);
  const svg = plotFrame(`Metric difference vs human preference, n = ${pts.n_shown} pairs`, width, height);
  for (const t of niceTicks(lo, hi)) {
    svg.appendChild(svgEl("line", { x1: x(t), x2: x(t), y1: top, y2: height - bottom, class: "grid" }));
    svg.appendChild(svgEl("text", { x: x(t), y: height - bottom + 16, "text-anchor": "middle", class: "tick" }, String(t)));
  }
  for (const t of [-1, -0.5, 0, 0.5, 1]) {
    svg.appendChild(svgEl("line", { x1: left, x2: width - right, y1: y(t), y2: y(t), class: t === 0 ? "ref" : "grid" }));
    svg.appendChild(svgEl("text", { x: left - 6, y: y(t) + 4, "text-anchor": "end", class: "tick" }, String(t)));
  }
  svg.appendChild(svgEl("line", { x1: x(0), x2: x(0), y1: top, y2: height - bottom, class: "ref" }));
  const g = svgEl("g", { class: "points" });
  pts.delta.forEach((d, i) => {
    g.appendChild(svgEl("circle", { cx: x(d).toFixed(1), cy: y(pts.preference[i]).toFixed(1), r: 3, class: "dot" }));
  });
  svg.appendChild(g);
  const sampled = pts.n_shown < pts.n_total ? ` (sample of ${pts.n_total})` : "";
  svg.appendChild(svgEl("text", { x: (left + width - right) / 2, y: height - 14, "text-anchor": "middle", class: "label" },
    `Δ ${metric} (A − B, metric units) — n = ${pts.n_shown} pairs${sampled}`));
  svg.appendChild(svgEl("text", { x: 14, y: (top + height - bottom) / 2, transform: `rotate(-90 14 ${(top + height - bottom) / 2})`,
    "text-anchor": "middle", class: "label" }, "Human preference for A (−1 … +1)"));
  box.appendChild(svg);
}

// ---- raters ----
function renderRaters(q) {
  const tbody = document.querySelector("#rater-table tbody");
  clear(tbody);
  const per = (q.agreement && q.agreement.per_rater) || [];
  const bias = new Map(((q.position_bias && q.position_bias.per_rater) || []).map((r) => [String(r.rater), r]));
  const values = per.map((r) => r.majority_agreement && r.majority_agreement.value).filter(isNum);
  let threshold = null;
  if (values.length >= 3) {
    const mean = values.reduce((a, b) => a + b, 0) / values.length;
    const sd = Math.sqrt(values.reduce((a, b) => a + (b - mean) ** 2, 0) / (values.length - 1));
    threshold = mean - 2 * sd;
  }
  for (const r of per) {
    const info = (data.raters || {})[String(r.rater)] || {};
    const tr = el("tr");
    tr.appendChild(el("td", {}, info.name ? `${info.name} (#${r.rater})` : `#${r.rater}`));
    tr.appendChild(cell(String(r.n), null));
    tr.appendChild(statCell(r.majority_agreement));
    tr.appendChild(statCell(r.pairwise_agreement));
    const ms = info.median_duration_ms;
    tr.appendChild(cell(isNum(ms) ? `${(ms / 1000).toFixed(1)} s` : null, info.median_duration_reason || "not recorded"));
    const b = bias.get(String(r.rater));
    tr.appendChild(cell(b ? b.p_left : null, b ? b.reason : "no decisive answers with a known side"));
    const ma = r.majority_agreement && r.majority_agreement.value;
    const flag = el("td");
    if (threshold !== null && isNum(ma) && ma < threshold) {
      tr.classList.add("outlier");
      flag.textContent = "outlier";
      flag.title = `agreement ${ma.toFixed(3)} is below mean − 2 SD (${threshold.toFixed(3)})`;
    }
    tr.appendChild(flag);
    tbody.appendChild(tr);
  }
}

function render() {
  const q = (data.questions || {})[question];
  const summary = document.getElementById("dash-summary");
  if (status.state === "computing") {
    summary.textContent = "Computing the first analysis…";
    return;
  }
  if (!q) {
    summary.textContent = `No analysis for this question: ${(data.summary && data.summary.reason) || "no judgments yet"}.`;
  }
  const qq = q || { reason: (data.summary && data.summary.reason) || "no judgments" };
  if (q) {
    summary.textContent = `${q.n_judgments} judgments on ${q.n_pairs} pairs by ${q.n_raters} raters` +
      (q.reason ? ` — ${q.reason}` : "");
  }
  renderRanking(qq);
  renderWinRates(qq);
  renderAgreement(qq);
  renderPosition(qq);
  renderAlignment(qq);
  renderRaters(qq);
}

document.getElementById("question-select").addEventListener("change", (event) => {
  question = event.target.value;
  const url = new URL(window.location.href);
  url.searchParams.set("question", question);
  window.history.replaceState(null, "", url);
  render();
});
document.getElementById("metric-select").addEventListener("change", () => renderScatter());

// ---- freshness ----
// While the result is being computed or is stale, ask the same URL (?status=1: one cache read,
// never a computation) whether a newer result exists. A first result reloads the page; a newer
// one is offered with a link, so the manager is not interrupted while reading.
const POLL_MS = { computing: 2000, stale: 5000 };

function statusUrl() {
  const url = new URL(window.location.href);
  url.searchParams.set("status", "1");
  return url;
}

async function poll() {
  let next;
  try {
    const response = await fetch(statusUrl(), { headers: { Accept: "application/json" }, credentials: "same-origin" });
    if (!response.ok) throw new Error(`status ${response.status}`);
    next = await response.json();
  } catch (err) {
    window.setTimeout(poll, POLL_MS.stale * 2);  // a hiccup (server restart): try again later
    return;
  }
  if (status.state === "computing") {
    if (next.state !== "computing") { window.location.reload(); return; }
  } else if (next.computed_at && next.computed_at !== status.computed_at) {
    const newer = document.getElementById("dash-newer");
    newer.hidden = false;
    document.getElementById("dash-reload").href = window.location.href;
    document.getElementById("dash-status").dataset.newer = "1";
    return;
  }
  window.setTimeout(poll, POLL_MS[status.state] || POLL_MS.stale);
}

render();
if (status.state === "computing" || status.state === "stale") window.setTimeout(poll, POLL_MS[status.state]);
document.body.dataset.dashboardReady = "1";
