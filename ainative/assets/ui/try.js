// The Try page: classify a message, explain the answer, correct it.
"use strict";

const MAX_OPTIONS = 8;          // labels listed at once while searching (77 or 150 in all)
const TOP_WORDS = 5;            // words listed under "mattered most"
const state = { text: null, answer: null, labels: null, chosen: null };

function showError(message) {
  const box = byId("error");
  box.textContent = message;
  box.hidden = !message;
}

// A ranked row: name, a bar as wide as `share` (0..1), and the value as text.
function rankedRow(name, share, valueText, tone = "neutral") {
  const bar = element("span", { className: `bar ${tone}` });
  bar.style.width = `${Math.max(0, Math.min(1, share)) * 100}%`;  // CSSOM, which the style policy allows
  return element("li", {}, [element("span", { text: name, className: "name" }),
                            element("span", { className: "track" }, [bar]),
                            element("span", { text: valueText, className: "value" })]);
}

function renderAnswer(text, answer) {
  byId("asked").textContent = text;
  const abstained = answer.abstained === true || answer.intent === null;
  byId("intent").textContent = abstained ? "no intent (abstained)" : answer.intent;
  byId("confidence-text").textContent = `${percent(answer.confidence)} confident`;
  byId("confidence-bar").style.width = `${Math.max(0, Math.min(1, answer.confidence)) * 100}%`;
  byId("abstained").hidden = !abstained;
  byId("truncated").hidden = !answer.truncated;
  clear(byId("alternatives")).append(
    ...answer.top_k.map((alternative) => rankedRow(alternative.intent, alternative.confidence, percent(alternative.confidence))));
  byId("version").textContent = answer.model_version;
  byId("request-id").textContent = answer.request_id;
  byId("answer").hidden = false;
  byId("explanation").hidden = true;
  byId("correction").hidden = true;
  byId("why").disabled = false;
}

async function ask(event) {
  event.preventDefault();
  const text = byId("message").value;
  if (!text.trim()) { showError("Type a message first."); return; }
  showError("");
  byId("ask").disabled = true;
  try {
    const answer = await api("/predict", { text });
    state.text = text;
    state.answer = answer;
    renderAnswer(text, answer);
  } catch (failure) {
    showError(failure.message);
  } finally {
    byId("ask").disabled = false;
  }
}

// Background of a word: green when it raised the explained class's probability, red when it lowered it.
function shade(attribution, scale) {
  const strength = scale > 0 ? Math.min(Math.abs(attribution) / scale, 1) : 0;
  const colour = attribution >= 0 ? "22, 163, 74" : "220, 38, 38";
  return `rgba(${colour}, ${(0.08 + 0.72 * strength).toFixed(2)})`;
}

function renderExplanation(explanation) {
  const words = explanation.words;
  const scale = Math.max(0, ...words.map((word) => Math.abs(word.attribution)));
  const spans = words.map((word) => {
    const span = element("span", { text: word.word, className: word.attribution >= 0 ? "word positive" : "word negative",
                                   attributes: { title: `${word.attribution >= 0 ? "+" : ""}${word.attribution.toFixed(3)}` } });
    span.style.backgroundColor = shade(word.attribution, scale);
    return span;
  });
  const line = clear(byId("words"));
  spans.forEach((span, index) => { if (index) line.append(" "); line.append(span); });
  const ranked = [...words].sort((a, b) => Math.abs(b.attribution) - Math.abs(a.attribution)).slice(0, TOP_WORDS);
  clear(byId("top-words")).append(...ranked.map((word) => rankedRow(
    word.word, scale > 0 ? Math.abs(word.attribution) / scale : 0,
    `${word.attribution >= 0 ? "+" : ""}${word.attribution.toFixed(3)}`, word.attribution >= 0 ? "positive" : "negative")));
  byId("explained-label").textContent = explanation.label;
  byId("explain-note").textContent = `${explanation.label}: ${percent(explanation.probability)} for this message, ` +
    `${percent(explanation.baseline_probability)} for an empty one; integrated gradients, ${explanation.n_steps} steps` +
    (explanation.truncated ? "; the message was truncated" : "") + ".";
  byId("explain-status").textContent = "";
  byId("explain-body").hidden = false;
}

async function explain() {
  if (!state.answer) return;
  byId("explanation").hidden = false;
  byId("explain-body").hidden = true;
  byId("explain-status").textContent = "Computing the explanation (a few seconds on a CPU)…";
  byId("why").disabled = true;
  const request = { text: state.text };
  if (state.answer.intent !== null && state.answer.intent !== undefined) request.target = state.answer.intent;
  try {
    renderExplanation(await api("/explain", request));
  } catch (failure) {
    byId("explain-status").textContent = failure.message;
  } finally {
    byId("why").disabled = false;
  }
}

// Labels whose words contain every typed word ("refund card" finds "card_refund_pending").
function matchingLabels(labels, query) {
  const terms = query.toLowerCase().replace(/[_-]/g, " ").split(/\s+/).filter(Boolean);
  return labels.filter((label) => {
    const spaced = label.toLowerCase().replace(/[_-]/g, " ");
    return terms.every((term) => spaced.includes(term));
  });
}

function choose(label) {
  state.chosen = label;
  byId("label-search").value = label;
  byId("send-correction").disabled = false;
  renderOptions();
}

function renderOptions() {
  const query = byId("label-search").value;
  const found = matchingLabels(state.labels || [], query);
  const options = found.slice(0, MAX_OPTIONS).map((label) => {
    const option = element("li", { text: label, className: label === state.chosen ? "option chosen" : "option",
                                   attributes: { role: "option", tabindex: "0", "aria-selected": label === state.chosen } });
    option.addEventListener("click", () => choose(label));
    option.addEventListener("keydown", (event) => { if (event.key === "Enter") choose(label); });
    return option;
  });
  if (found.length > MAX_OPTIONS) options.push(element("li", { text: `… ${found.length - MAX_OPTIONS} more: keep typing`, className: "more" }));
  if (!found.length) options.push(element("li", { text: "no label matches", className: "more" }));
  clear(byId("label-options")).append(...options);
  byId("label-search").setAttribute("aria-expanded", "true");
}

async function openCorrection() {
  byId("correction").hidden = false;
  byId("correction-status").textContent = "";
  state.chosen = null;
  byId("send-correction").disabled = true;
  byId("label-search").value = "";
  if (state.labels === null) {
    try { state.labels = (await api("/ui/api/labels")).labels; }
    catch (failure) { byId("correction-status").textContent = failure.message; return; }
  }
  renderOptions();
  byId("label-search").focus();
}

async function sendCorrection() {
  if (!state.answer || !state.chosen) return;
  byId("send-correction").disabled = true;
  try {
    const stored = await api("/feedback", { request_id: state.answer.request_id, label: state.chosen });
    const item = stored.items[0];
    byId("correction-status").textContent = item.correct
      ? `Stored: you confirmed ${item.label}.`
      : `Stored: the right intent is ${item.label} (the model said ${item.predicted}). Thank you.`;
  } catch (failure) {
    byId("correction-status").textContent = failure.message;
    byId("send-correction").disabled = false;
  }
}

async function showServed() {
  try {
    const served = await api("/model");
    byId("served").textContent = served.version ? `${served.name} ${served.version} (${served.alias})` : "no model loaded yet";
  } catch (failure) {
    byId("served").textContent = failure.message;
  }
}

document.addEventListener("DOMContentLoaded", () => {
  byId("ask-form").addEventListener("submit", ask);
  byId("message").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey) { event.preventDefault(); byId("ask-form").requestSubmit(); }
  });
  byId("why").addEventListener("click", explain);
  byId("wrong").addEventListener("click", openCorrection);
  byId("label-search").addEventListener("input", () => {
    state.chosen = null;
    byId("send-correction").disabled = true;
    renderOptions();
  });
  byId("send-correction").addEventListener("click", sendCorrection);
  showServed();
});
