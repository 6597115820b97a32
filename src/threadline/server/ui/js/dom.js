// DOM helpers. Every stored string reaches the page through text nodes (textContent or
// document.createTextNode), never through innerHTML: stored items are untrusted.

/**
 * Make an element: h("div", {class: "x", onclick: fn, dataset: {pos: 1}}, child, "text", …).
 * Children may be nodes, strings (added as text), numbers, arrays, null or false (skipped).
 */
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  if (props) {
    for (const [key, value] of Object.entries(props)) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") el.className = value;
      else if (key === "dataset") Object.assign(el.dataset, value);
      else if (key.startsWith("on") && typeof value === "function") {
        el.addEventListener(key.slice(2), value);
      } else if (key === "text") el.textContent = String(value);
      else if (key in el && typeof value !== "string") el[key] = value;
      else el.setAttribute(key, value === true ? "" : String(value));
    }
  }
  append(el, children);
  return el;
}

/** Append children (see h) to el. */
export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** Remove every child of el. */
export function clear(el) {
  el.replaceChildren();
  return el;
}

const compact = new Intl.NumberFormat("en", { notation: "compact", maximumFractionDigits: 1 });

/** 1234 → "1.2K". */
export function count(n) {
  return typeof n === "number" ? compact.format(n) : "–";
}

/** A number with thousands separators. */
export function exact(n) {
  return typeof n === "number" ? n.toLocaleString("en") : "–";
}

/** "1 turn", "3 turns" (fmt formats the number). */
export function plural(n, word, fmt = exact) {
  return `${fmt(n)} ${word}${n === 1 ? "" : "s"}`;
}

/** "3 min ago" for a Unix time in seconds. */
export function ago(seconds) {
  if (typeof seconds !== "number") return "";
  const delta = Date.now() / 1000 - seconds;
  const steps = [
    [60, "s", 1],
    [3600, "min", 60],
    [86400, "h", 3600],
    [86400 * 30, "d", 86400],
    [86400 * 365, "mo", 86400 * 30],
  ];
  if (delta < 5) return "just now";
  for (const [limit, unit, size] of steps) {
    if (delta < limit) return `${Math.floor(delta / size)} ${unit} ago`;
  }
  return `${Math.floor(delta / (86400 * 365))} y ago`;
}

/** ISO 8601 text for a Unix time in seconds. */
export function iso(seconds) {
  return typeof seconds === "number" ? new Date(seconds * 1000).toISOString() : "";
}

/** A value as pretty JSON text; a string holding JSON is parsed first. */
export function pretty(value) {
  if (typeof value === "string") {
    const trimmed = value.trim();
    if (trimmed.startsWith("{") || trimmed.startsWith("[")) {
      try {
        return { text: JSON.stringify(JSON.parse(trimmed), null, 2), json: true };
      } catch {
        return { text: value, json: false };
      }
    }
    return { text: value, json: false };
  }
  return { text: JSON.stringify(value, null, 2), json: true };
}

const LONG_CHARS = 1500;
const LONG_LINES = 24;

/**
 * A block of text (pre-wrapped), collapsed to its start with a "Show all" button when long.
 * `key` names it in `expanded` (a Set kept by the caller), so re-rendering keeps it open.
 */
export function longText(text, { key, expanded, json = false, className = "" } = {}) {
  const value = String(text ?? "");
  const lines = value.split("\n");
  const pre = h("pre", { class: `${json ? "json" : "text"} ${className}`.trim() });
  if (value.length <= LONG_CHARS && lines.length <= LONG_LINES) {
    pre.textContent = value;
    return pre;
  }
  let short = lines.slice(0, LONG_LINES).join("\n");
  if (short.length > LONG_CHARS) short = short.slice(0, LONG_CHARS);
  short += "…";
  const more = `Show all (${exact(value.length)} characters)`;
  let local = false;
  const isOpen = () => (expanded ? expanded.has(key) : local);
  pre.textContent = isOpen() ? value : short;
  const button = h("button", {
    type: "button",
    class: "link show-all",
    "aria-expanded": String(isOpen()),
    text: isOpen() ? "Show less" : more,
    onclick: (event) => {
      event.stopPropagation();
      const open = !isOpen();
      local = open;
      if (expanded) {
        if (open) expanded.add(key);
        else expanded.delete(key);
      }
      pre.textContent = open ? value : short;
      button.textContent = open ? "Show less" : more;
      button.setAttribute("aria-expanded", String(open));
    },
  });
  return h("div", { class: "long" }, pre, button);
}

/** A small labelled badge. */
export function badge(text, kind = "", title = "") {
  return h("span", { class: `badge ${kind}`.trim(), title: title || null, text });
}

const dialog = () => document.getElementById("dialog");

/**
 * Show the page's dialog: a title, a body (nodes) and buttons. Resolves with the form's
 * FormData on confirm, or null on cancel (Escape included).
 */
export function openDialog({ title, body = [], confirm = "OK", danger = false, cancel = "Cancel" }) {
  const box = dialog();
  const form = h(
    "form",
    { method: "dialog", class: "dialog-form" },
    h("h2", { id: "dialog-title", text: title }),
    h("div", { class: "dialog-body" }, body),
    h(
      "div",
      { class: "dialog-buttons" },
      cancel ? h("button", { type: "button", id: "dialog-cancel", value: "cancel", text: cancel }) : null,
      h("button", {
        type: "submit",
        id: "dialog-confirm",
        value: "confirm",
        class: danger ? "danger" : "primary",
        text: confirm,
      }),
    ),
  );
  clear(box).append(form);
  box.setAttribute("aria-labelledby", "dialog-title");
  return new Promise((resolve) => {
    let result = null;
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      result = new FormData(form);
      box.close();
    });
    const cancelButton = form.querySelector("#dialog-cancel");
    if (cancelButton) cancelButton.addEventListener("click", () => box.close());
    box.addEventListener("close", () => resolve(result), { once: true });
    box.showModal();
    const first = form.querySelector("input, textarea, select") || form.querySelector("#dialog-confirm");
    if (first) first.focus();
  });
}

/** Ask to confirm a destructive action. */
export async function confirmAction(title, message, confirm = "Confirm") {
  const answer = await openDialog({ title, body: [h("p", { text: message })], confirm, danger: true });
  return answer !== null;
}

let toastTimer = 0;

/** A short message at the bottom of the page (errors stay longer). */
export function toast(message, error = false) {
  const box = document.getElementById("toast");
  box.textContent = message;
  box.className = error ? "show error" : "show";
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => {
    box.className = "";
  }, error ? 8000 : 3500);
}

/** Encode a session id for the page's address (#/s/ID). */
export function sessionHash(id, view = "", query = "") {
  return `#/s/${encodeURIComponent(id)}${view ? "/" + view : ""}${query ? "?" + query : ""}`;
}
