// Shared by the Try and Watch pages. Every string from the server or the user goes into the page with
// textContent (never innerHTML): the page shows markup, it never runs it. The server's Content-Security-Policy
// (no inline scripts, Trusted Types) would stop a slip, but nothing here relies on it.
"use strict";

const SVG_NS = "http://www.w3.org/2000/svg";

// An element with text and attributes; `children` are appended in order.
function element(tag, { text = null, className = null, attributes = {} } = {}, children = []) {
  const node = document.createElement(tag);
  if (text !== null) node.textContent = String(text);
  if (className) node.className = className;
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, String(value));
  for (const child of children) node.append(child);
  return node;
}

// An SVG element with attributes (and text, for <text> and <title>).
function svgElement(tag, attributes = {}, text = null) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, String(value));
  if (text !== null) node.textContent = String(text);
  return node;
}

function byId(id) { return document.getElementById(id); }

function clear(node) { node.replaceChildren(); return node; }

function percent(value, digits = 1) {
  return value === null || value === undefined ? "–" : `${(100 * value).toFixed(digits)}%`;
}

function number(value, digits = 3) {
  return value === null || value === undefined || Number.isNaN(value) ? "–" : Number(value).toFixed(digits);
}

// An error the server described: its message says what was wrong and what to do.
class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

// JSON from the server (same origin only), or an ApiError carrying the server's own message.
async function api(path, body = undefined) {
  const options = body === undefined ? { method: "GET" }
    : { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) };
  let response;
  try {
    response = await fetch(path, { ...options, credentials: "same-origin", cache: "no-store" });
  } catch (failure) {
    throw new ApiError(0, "unreachable", "The server does not answer; is it running?");
  }
  let payload = null;
  try { payload = await response.json(); } catch (ignored) { payload = null; }
  if (!response.ok) {
    const message = payload && typeof payload.message === "string" ? payload.message : `HTTP ${response.status}`;
    throw new ApiError(response.status, payload && payload.error, message);
  }
  return payload;
}
