// The Watch page: what is served, traffic and latency over the last hour, drift and feedback accuracy.
// Plots are plain SVG drawn here: no chart library, no network beyond this server.
"use strict";

const REFRESH_MS = 15000;
const MARGIN = { left: 44, right: 12, top: 10, bottom: 26 };

// The plot's drawn width in pixels, so that one unit of its coordinates is one pixel and text keeps its size.
function widthOf(svg) { return Math.max(svg.clientWidth || svg.parentNode.clientWidth || 0, 320); }

function fact(list, term, value) {
  list.append(element("dt", { text: term }), element("dd", { text: value === null || value === undefined ? "–" : value }));
}

function renderModel(served, readiness) {
  const facts = clear(byId("model-facts"));
  const line = byId("readiness");
  if (readiness.error) { line.textContent = readiness.error.message; line.className = "status-line alert"; }
  else {
    const ready = readiness.value.status === "ready";
    line.textContent = ready ? "Ready: answering requests." : `Not ready: ${(readiness.value.reasons || []).join("; ")}`;
    line.className = ready ? "status-line ok" : "status-line alert";
  }
  if (served.error) { fact(facts, "error", served.error.message); return; }
  const model = served.value;
  const metrics = model.metrics || {};
  fact(facts, "model", model.name);
  fact(facts, "version", model.version ? `${model.version} (alias ${model.alias})` : "none loaded");
  fact(facts, "variant", model.variant && `${model.variant} on ${model.provider}`);
  fact(facts, "labels", model.labels);
  fact(facts, "test accuracy", metrics.test_accuracy === undefined ? null : percent(metrics.test_accuracy));
  fact(facts, "test macro-F1", metrics.test_macro_f1 === undefined ? null : percent(metrics.test_macro_f1));
  fact(facts, "INT8 test accuracy", metrics.int8_test_accuracy === undefined ? null : percent(metrics.int8_test_accuracy));
  fact(facts, "data version", model.data_version);
  fact(facts, "loaded at", model.loaded_at);
  if (model.last_reload && !model.last_reload.ok) fact(facts, "last reload failed", model.last_reload.error);
}

// Axes of a time plot: y from 0 to `top`, x over `count` minutes ending now.
function timeAxes(svg, width, height, top, count) {
  const bottom = height - MARGIN.bottom;
  for (const fraction of [0, 0.5, 1]) {
    const y = bottom - fraction * (bottom - MARGIN.top);
    svg.append(svgElement("line", { x1: MARGIN.left, x2: width - MARGIN.right, y1: y, y2: y, class: "grid" }));
    svg.append(svgElement("text", { x: MARGIN.left - 6, y: y + 4, class: "tick", "text-anchor": "end" },
                          Number((top * fraction).toPrecision(3))));
  }
  const labels = [[0, `−${count} min`], [0.5, `−${count / 2} min`], [1, "now"]];
  for (const [fraction, text] of labels) {
    const x = MARGIN.left + fraction * (width - MARGIN.left - MARGIN.right);
    svg.append(svgElement("text", { x, y: height - 6, class: "tick",
                                    "text-anchor": fraction === 0 ? "start" : fraction === 1 ? "end" : "middle" }, text));
  }
}

function barPlot(svg, values, height = 140) {
  const width = widthOf(svg);
  clear(svg).setAttribute("viewBox", `0 0 ${width} ${height}`);
  const top = Math.max(1, ...values);
  timeAxes(svg, width, height, top, values.length);
  const plotWidth = width - MARGIN.left - MARGIN.right;
  const step = plotWidth / values.length;
  const bottom = height - MARGIN.bottom;
  values.forEach((value, index) => {
    const barHeight = (value / top) * (bottom - MARGIN.top);
    const bar = svgElement("rect", { x: MARGIN.left + index * step + 1, y: bottom - barHeight, width: Math.max(step - 2, 1),
                                     height: barHeight, class: "bar" });
    bar.append(svgElement("title", {}, `${values.length - index} min ago: ${value}`));
    svg.append(bar);
  });
}

// Lines with gaps where a minute had no answers (null).
function linePlot(svg, series, height = 140) {
  const width = widthOf(svg);
  clear(svg).setAttribute("viewBox", `0 0 ${width} ${height}`);
  const all = series.flatMap((line) => line.values).filter((value) => value !== null);
  const top = Math.max(1, ...all);
  const count = series[0].values.length;
  timeAxes(svg, width, height, top, count);
  const plotWidth = width - MARGIN.left - MARGIN.right;
  const bottom = height - MARGIN.bottom;
  for (const line of series) {
    let path = "";
    let pen = "M";
    line.values.forEach((value, index) => {
      if (value === null) { pen = "M"; return; }
      const x = MARGIN.left + (index + 0.5) * (plotWidth / count);
      const y = bottom - (value / top) * (bottom - MARGIN.top);
      path += `${pen}${x.toFixed(1)},${y.toFixed(1)} `;
      pen = "L";
    });
    svg.append(svgElement("path", { d: path.trim() || "M0,0", class: `line ${line.className}` }));
    line.values.forEach((value, index) => {  // a dot per minute, so a lone minute shows too
      if (value === null) return;
      const x = MARGIN.left + (index + 0.5) * (plotWidth / count);
      const y = bottom - (value / top) * (bottom - MARGIN.top);
      svg.append(svgElement("circle", { cx: x.toFixed(1), cy: y.toFixed(1), r: 2.5, class: `dot ${line.className}` }));
    });
  }
}

function renderTraffic(traffic) {
  const summary = byId("traffic-summary");
  if (traffic.error) {
    summary.textContent = traffic.error.message;
    clear(byId("traffic-plot"));
    clear(byId("latency-plot"));
    return;
  }
  const minutes = traffic.value.minutes;
  const answers = minutes.map((minute) => minute.answers);
  const total = answers.reduce((sum, n) => sum + n, 0);
  summary.textContent = `${total} answers in the last ${minutes.length} minutes` +
    (traffic.value.latency_p95_ms === null ? "." : `; latency median ${number(traffic.value.latency_p50_ms, 1)} ms, ` +
     `95th percentile ${number(traffic.value.latency_p95_ms, 1)} ms.`);
  barPlot(byId("traffic-plot"), answers);
  linePlot(byId("latency-plot"), [
    { className: "p50", values: minutes.map((minute) => minute.latency_p50_ms) },
    { className: "p95", values: minutes.map((minute) => minute.latency_p95_ms) }]);
}

const STATUS_ORDER = ["ok", "skipped", "warn", "alert"];

// One horizontal bar per drift score: its value as a share of its alert threshold, coloured by its status.
function driftPlot(svg, scores) {
  const graded = scores.filter(([, score]) => typeof score.value === "number" && typeof score.alert === "number" && score.alert > 0);
  const rowHeight = 24;
  const height = graded.length * rowHeight + 30;
  const width = widthOf(svg);
  svg.parentNode.classList.toggle("empty", !graded.length);  // the figure, caption included
  clear(svg).setAttribute("viewBox", `0 0 ${width} ${height}`);
  const left = 170;
  const plotWidth = width - left - 60;
  const scale = (value) => left + Math.min(value, 1.5) / 1.5 * plotWidth;  // up to 1.5 x the alert threshold
  if (!graded.length) return;
  graded.forEach(([name, score], row) => {
    const y = 8 + row * rowHeight;
    svg.append(svgElement("text", { x: left - 8, y: y + 13, class: "tick", "text-anchor": "end" }, name));
    const bar = svgElement("rect", { x: left, y, width: Math.max(scale(score.value / score.alert) - left, 1), height: 16,
                                     class: `bar status-${score.status}` });
    bar.append(svgElement("title", {}, `${name}: ${number(score.value)} (alert at ${number(score.alert)})`));
    svg.append(bar);
    if (typeof score.warn === "number") {  // each score warns at its own share of its alert threshold
      const x = scale(score.warn / score.alert);
      svg.append(svgElement("line", { x1: x, x2: x, y1: y - 2, y2: y + 18, class: "warn-mark" }));
    }
  });
  const bottom = 8 + graded.length * rowHeight;
  svg.append(svgElement("line", { x1: left + plotWidth - 150, x2: left + plotWidth - 150, y1: bottom + 6, y2: bottom + 18, class: "warn-mark" }));
  svg.append(svgElement("text", { x: left + plotWidth - 144, y: bottom + 16, class: "tick" }, "warn threshold"));
  for (const [fraction, text] of [[0, "0"], [1, "alert"]]) {
    svg.append(svgElement("line", { x1: scale(fraction), x2: scale(fraction), y1: 4, y2: bottom, class: fraction ? "threshold" : "grid" }));
    svg.append(svgElement("text", { x: scale(fraction), y: bottom + 16, class: "tick", "text-anchor": "middle" }, text));
  }
}

function renderDrift(monitor) {
  const summary = byId("drift-summary");
  const body = clear(byId("drift-table").tBodies[0]);
  if (monitor.error) {
    summary.textContent = monitor.error.message;
    summary.className = "status-line";
    clear(byId("drift-plot"));
    return null;
  }
  const drift = monitor.value.drift;
  const scores = Object.entries(drift.scores || {});
  summary.textContent = `Drift: ${drift.status} · ${monitor.value.window_requests} answers in the window` +
    (drift.reason ? ` · ${drift.reason}` : "") + ([...(drift.alerts || []), ...(drift.warnings || [])].length
      ? ` · ${[...(drift.alerts || []), ...(drift.warnings || [])].join(" ")}` : "");
  summary.className = `status-line status-${drift.status}`;
  byId("drift-table").hidden = !scores.length;
  for (const [name, score] of scores) {
    const status = element("span", { text: score.status, className: `chip status-${score.status}` });
    if (score.reason) status.title = score.reason;
    body.append(element("tr", {}, [
      element("td", { text: name }), element("td", { text: number(score.value) }), element("td", { text: number(score.warn) }),
      element("td", { text: number(score.alert) }), element("td", {}, [status])]));
  }
  driftPlot(byId("drift-plot"), scores);
  return monitor.value.feedback_accuracy;
}

function renderFeedback(accuracy, error) {
  const svg = clear(byId("feedback-plot"));
  const width = widthOf(svg);
  const summary = byId("feedback-summary");
  if (error) { summary.textContent = error.message; return; }
  if (!accuracy || !accuracy.length) {
    summary.textContent = "No feedback yet: corrections sent from the Try page appear here.";
    svg.classList.add("empty");
    return;
  }
  svg.classList.remove("empty");
  summary.textContent = `${accuracy.reduce((sum, group) => sum + group.answers, 0)} answers received feedback.`;
  const rowHeight = 26;
  const height = accuracy.length * rowHeight + 28;
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  const left = 110;
  const plotWidth = width - left - 120;
  accuracy.forEach((group, row) => {
    const y = 6 + row * rowHeight;
    svg.append(svgElement("text", { x: left - 8, y: y + 14, class: "tick", "text-anchor": "end" }, group.group));
    svg.append(svgElement("rect", { x: left, y, width: plotWidth, height: 18, class: "track" }));
    svg.append(svgElement("rect", { x: left, y, width: Math.max(group.accuracy * plotWidth, 1), height: 18, class: "bar" }));
    svg.append(svgElement("text", { x: left + plotWidth + 8, y: y + 14, class: "tick" },
                          `${percent(group.accuracy)} of ${group.answers}`));
  });
  const bottom = 6 + accuracy.length * rowHeight;
  for (const fraction of [0, 0.5, 1]) {
    svg.append(svgElement("text", { x: left + fraction * plotWidth, y: bottom + 16, class: "tick", "text-anchor": "middle" },
                          percent(fraction, 0)));
  }
}

// The outcome of a request: {value} or {error}, so one failing endpoint leaves the other cards drawn.
async function settled(path) {
  try { return { value: await api(path) }; } catch (failure) { return { error: failure }; }
}

async function refresh() {
  const [served, readiness, traffic, monitor] = await Promise.all(
    [settled("/model"), settled("/ready"), settled("/ui/api/traffic"), settled("/monitor")]);
  renderModel(served, readiness.error && readiness.error.status === 503 ? { value: { status: "not_ready", reasons: [readiness.error.message] } } : readiness);
  renderTraffic(traffic);
  renderFeedback(renderDrift(monitor), monitor.error);
  byId("updated").textContent = `updated ${new Date().toLocaleTimeString()}`;
  document.body.dataset.loaded = "true";
}

document.addEventListener("DOMContentLoaded", () => {
  byId("refresh").addEventListener("click", refresh);
  refresh();
  setInterval(refresh, REFRESH_MS);
});
