// One stored item as a row of the page: messages as text, tool calls with their output,
// JSON pretty-printed, long values collapsed, reasoning folded, handoffs named.

import { badge, count, exact, h, longText, pretty } from "./dom.js";
import { isUser } from "./data.js";

const SUMMARY_PREFIX = "[threadline summary]";

function partText(part) {
  if (typeof part === "string") return { text: part };
  if (!part || typeof part !== "object") return { json: part };
  switch (part.type) {
    case "input_text":
    case "output_text":
    case "text":
    case "summary_text":
      return { text: part.text ?? "" };
    case "refusal":
      return { text: part.refusal ?? "", label: "Refusal" };
    case "input_image":
      return { note: `[image: ${part.image_url || part.file_id || "attached"}]` };
    case "input_file":
      return { note: `[file: ${part.filename || part.file_id || "attached"}]` };
    case "input_audio":
      return { note: "[audio]" };
    default:
      return { json: part };
  }
}

function contentNodes(content, key, expanded) {
  if (content === null || content === undefined) return [];
  if (typeof content === "string") return [longText(content, { key, expanded })];
  if (!Array.isArray(content)) {
    return [longText(pretty(content).text, { key, expanded, json: true })];
  }
  return content.map((part, index) => {
    const shown = partText(part);
    const partKey = `${key}.${index}`;
    if (shown.note) return h("p", { class: "note", text: shown.note });
    if (shown.json !== undefined) {
      return longText(pretty(shown.json).text, { key: partKey, expanded, json: true });
    }
    const block = longText(shown.text, { key: partKey, expanded });
    return shown.label ? h("div", { class: "refusal" }, h("strong", { text: shown.label }), block) : block;
  });
}

function head(position, label, kind, tokens, extra = []) {
  return h(
    "div",
    { class: "item-head" },
    h("span", { class: "pos", text: `#${position}` }),
    h("span", { class: `kind kind-${kind}`, text: label }),
    tokens ? h("span", { class: "tok", title: "estimated tokens", text: `~${count(tokens)} tok` }) : null,
    extra,
  );
}

function isHandoff(name) {
  return typeof name === "string" && name.startsWith("transfer_to_");
}

function outputBlock(data, position, expanded, standalone) {
  const entry = data.entry(position);
  if (!entry) return h("p", { class: "note", text: `output #${position}: loading…` });
  if (entry.corrupt) return h("p", { class: "warn", text: `output #${position} cannot be read: ${entry.corrupt}` });
  const item = entry.item;
  const value = item.output !== undefined ? item.output : item.content;
  const shown = pretty(Array.isArray(value) ? value : value ?? "");
  return h(
    "div",
    { class: "output", dataset: { pos: position }, id: standalone ? null : `item-${position}` },
    h(
      "div",
      { class: "output-head" },
      h("span", { class: "pos", text: `#${position}` }),
      h("span", { class: "kind kind-output", text: "Output" }),
      entry.tokens ? h("span", { class: "tok", text: `~${count(entry.tokens)} tok` }) : null,
    ),
    longText(shown.text, { key: `${position}.out`, expanded, json: shown.json }),
  );
}

function callBody(data, position, item, expanded, lenient) {
  const args = item.arguments !== undefined ? item.arguments : item.input;
  const shown = pretty(args ?? "");
  const output = data.outputOf.get(position);
  const nodes = [longText(shown.text, { key: `${position}.args`, expanded, json: shown.json })];
  if (output !== undefined) nodes.push(outputBlock(data, output, expanded, false));
  else if (data.loaded < data.total) nodes.push(h("p", { class: "note", text: "output: loading…" }));
  else if (lenient) nodes.push(h("p", { class: "note", text: "(no output in this part)" }));
  else nodes.push(h("p", { class: "warn", text: "No output was stored for this call: a model refuses this history (see Health)." }));
  return nodes;
}

/** The label and kind class of an item. */
export function describe(item) {
  const type = item.type;
  if (type === "function_call" || type === "custom_tool_call") {
    return isHandoff(item.name)
      ? { label: `Handoff → ${item.name.slice("transfer_to_".length)}`, kind: "handoff" }
      : { label: `Tool call ${item.name ?? ""}`.trim(), kind: "call" };
  }
  if (type === "function_call_output" || type === "custom_tool_call_output" || item.role === "tool") {
    return { label: "Tool output", kind: "output" };
  }
  if (type === "reasoning") return { label: "Reasoning", kind: "reasoning" };
  if (type === undefined || type === "message") {
    const role = typeof item.role === "string" ? item.role : "message";
    if (role === "system" && typeof item.content === "string" && item.content.startsWith(SUMMARY_PREFIX)) {
      return { label: "Compaction summary", kind: "summary" };
    }
    return { label: role.charAt(0).toUpperCase() + role.slice(1), kind: role };
  }
  return { label: String(type), kind: "other" };
}

/**
 * The row of position. ctx: {data, expanded, decorate(position, row), turnHead(turn)}.
 * A tool output shown with its call renders as an empty anchor row.
 */
export function renderRow(position, ctx) {
  const { data, expanded } = ctx;
  const entry = data.entry(position);
  const row = h("article", { class: "item", id: `item-${position}`, dataset: { pos: position }, tabindex: "-1" });
  if (!entry) {
    row.classList.add("loading");
    row.append(head(position, "loading…", "loading", 0));
    return row;
  }
  if (entry.corrupt) {
    row.classList.add("corrupt");
    row.append(head(position, "Unreadable item", "corrupt", 0), h("p", { class: "warn", text: entry.corrupt }));
    return row;
  }
  const item = entry.item;
  const call = data.callOf.get(position);
  if (call !== undefined) {
    row.classList.add("paired");
    row.id = `row-${position}`; // the output itself, inside its call's row, holds item-N
    row.dataset.call = call;
    return row;
  }
  const { label, kind } = describe(item);
  row.classList.add(`item-${kind}`);
  const extra = [];
  if (item.id) extra.push(h("span", { class: "item-id", text: item.id }));
  if ((kind === "call" || kind === "handoff") && item.call_id) {
    extra.push(h("span", { class: "call-id", text: item.call_id }));
  }
  row.append(head(position, label, kind, entry.tokens, extra));
  let body;
  if (kind === "call" || kind === "handoff") body = callBody(data, position, item, expanded, ctx.lenient);
  else if (kind === "output") {
    body = [
      ctx.lenient
        ? null
        : h("p", { class: "warn", text: "No call before this output: a model refuses this history (see Health)." }),
      outputBlock(data, position, expanded, true),
    ];
  } else if (kind === "reasoning") {
    const parts = Array.isArray(item.summary) ? item.summary : [];
    const text = parts.map((part) => (typeof part === "string" ? part : part && part.text) || "").join("\n\n");
    const details = h(
      "details",
      { class: "reasoning" },
      h("summary", { text: `Reasoning (${parts.length ? exact(text.length) + " characters" : "no summary"})` }),
      text ? longText(text, { key: `${position}.reason`, expanded }) : null,
      item.encrypted_content ? h("p", { class: "note", text: "(encrypted reasoning content kept for the model)" }) : null,
    );
    body = [details];
  } else if (kind === "other") {
    body = [longText(pretty(item).text, { key: `${position}.json`, expanded, json: true })];
  } else {
    body = contentNodes(item.content, `${position}.c`, expanded);
    if (item.type === undefined && item.content === undefined) body = [longText(pretty(item).text, { json: true })];
  }
  row.append(h("div", { class: "item-body" }, body));
  if (ctx.decorate) ctx.decorate(position, row);
  if (isUser(item) && ctx.turnHead) {
    const header = ctx.turnHead(data.turnOf(position));
    if (header) return h("div", { class: "turn-block" }, header, row);
  }
  return row;
}

/** A badge saying where an item stands in the next request. */
export function stateBadge(state) {
  const names = {
    summarised: ["summarised", "covered by the compaction summary: sent as the summary, not as is"],
    sent: ["sent", "in the window the next request sends"],
    unsent: ["not sent", "outside the window (older than the budget allows)"],
    dropped: ["dropped", "sent without it: a call and output that do not pair"],
  };
  const [text, title] = names[state] || [state, ""];
  return badge(text, `state-${state}`, title);
}
