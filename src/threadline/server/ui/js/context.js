// The context tab: "what the next request sends" (the compaction summary, then the window)
// or "stored" (every raw item, each marked summarised / sent / not sent), with a bar showing
// how the budget splits between summary, window and free room.

import { get } from "./api.js";
import { exact, h, longText, sessionHash } from "./dom.js";
import { renderRow, stateBadge } from "./items.js";
import { LazyList } from "./vlist.js";

function bar(context) {
  const { split, budget, stored_tokens: stored } = context;
  const whole = budget.max_tokens || Math.max(1, stored + split.summary);
  const parts = [
    ["summary", split.summary, "Summary"],
    ["window", split.window, "Window"],
    budget.max_tokens ? ["free", split.free || 0, "Free"] : ["unsent", Math.max(0, whole - split.summary - split.window), "Not sent"],
  ];
  const track = h("div", { class: "bar", role: "img" });
  const legend = h("ul", { class: "legend" });
  const described = [];
  for (const [kind, tokens, label] of parts) {
    const segment = h("div", { class: `segment ${kind}`, title: `${label}: ${exact(tokens)} tokens` });
    segment.style.width = `${Math.min(100, (100 * tokens) / whole)}%`;
    track.append(segment);
    legend.append(h("li", { class: kind }, h("span", { class: "swatch" }), `${label} ${exact(tokens)} tok`));
    described.push(`${label} ${tokens} tokens`);
  }
  track.setAttribute("aria-label", described.join(", "));
  let caption;
  if (!budget.max_tokens) {
    caption = `No budget: the model's context window is unknown, so the window holds everything after the summary (${exact(stored)} stored tokens). Give a budget to see what a smaller one keeps.`;
  } else if (budget.source === "model") {
    caption = `Budget ${exact(budget.max_tokens)} estimated tokens: what the served agent's model fits${budget.context_window ? ` (a ${exact(budget.context_window)}-token context window, less instructions, tools and the reply)` : ""}.`;
  } else if (budget.calibration && budget.requested_max_tokens !== budget.max_tokens) {
    caption = `Budget ${exact(budget.requested_max_tokens)} tokens, which is ${exact(budget.max_tokens)} estimated tokens at this session's measured ratio of ${budget.calibration.toFixed(2)} reported tokens per estimated one.`;
  } else {
    caption = `Budget ${exact(budget.max_tokens)} estimated tokens.`;
  }
  return h("div", { class: "budget" }, h("p", { class: "caption", text: caption }), track, legend);
}

function summaryBox(context, expanded) {
  const summary = context.summary;
  if (context.summary_damaged) return h("p", { class: "warn", text: context.summary_damaged });
  if (!summary) return h("p", { class: "note", text: "No compaction summary: the window is raw items only." });
  const [start, end] = summary.covers;
  const state = summary.sent
    ? "sent first in the next request"
    : summary.holds === false
      ? "stale: the items it covers changed, so it is not sent"
      : "not sent (it does not fit this budget)";
  return h(
    "section",
    { class: "summary-box" },
    h("h3", { text: "Compaction summary" }),
    h("p", {
      class: "covers",
      text: `Covers items #${start}–#${end - 1} (${exact(end - start)} items, ~${exact(summary.covered_tokens)} tokens of raw history) in ~${exact(summary.tokens)} tokens; built by ${summary.compactions} compaction${summary.compactions === 1 ? "" : "s"}${summary.model ? ` with ${summary.model}` : ""}; ${state}.`,
    }),
    longText(summary.text, { key: "summary", expanded }),
  );
}

export class ContextView {
  constructor({ data, id, root, host, params }) {
    this.data = data;
    this.id = id;
    this.root = root;
    this.host = host;
    this.expanded = new Set();
    this.mode = params.get("mode") === "stored" ? "stored" : "next";
    this.maxTokens = params.get("max_tokens") || "";
  }

  async show() {
    const context = await get("/session/context", { id: this.id, max_tokens: this.maxTokens });
    this.context = context;
    this.draw();
  }

  link(mode, maxTokens = this.maxTokens) {
    const query = new URLSearchParams();
    if (mode === "stored") query.set("mode", "stored");
    if (maxTokens) query.set("max_tokens", maxTokens);
    return sessionHash(this.id, "context", query.toString());
  }

  draw() {
    const context = this.context;
    const host = this.host;
    host.replaceChildren();
    const toggle = h(
      "div",
      { class: "toggle", role: "group", "aria-label": "What to show" },
      h("a", { href: this.link("next"), class: "button", "aria-pressed": String(this.mode === "next"), id: "mode-next", text: "What the next request sends" }),
      h("a", { href: this.link("stored"), class: "button", "aria-pressed": String(this.mode === "stored"), id: "mode-stored", text: "Stored (every raw item)" }),
    );
    const input = h("input", { type: "number", min: "1", name: "max_tokens", id: "budget-input", value: this.maxTokens, placeholder: "the model's" });
    const form = h(
      "form",
      {
        class: "budget-form",
        onsubmit: (event) => {
          event.preventDefault();
          location.hash = this.link(this.mode, input.value);
        },
      },
      h("label", { for: "budget-input", text: "Budget (tokens)" }),
      input,
      h("button", { type: "submit", text: "Apply" }),
    );
    const win = context.window;
    const counts = h("p", {
      class: "counts",
      id: "context-counts",
      text: `The next request sends ${context.summary && context.summary.sent ? "the summary and " : ""}${exact(win.positions.length)} of ${exact(context.items)} stored items (#${win.start}–#${win.stop - 1}), ~${exact(context.split.summary + context.split.window)} tokens${win.dropped_orphans.length ? `; ${win.dropped_orphans.length} unpaired items are left out` : ""}.`,
    });
    host.append(h("div", { class: "context-head" }, toggle, form), bar(context), counts, summaryBox(context, this.expanded));
    const listHost = h("div", { class: "items context-items" });
    host.append(listHost);
    this.drawItems(listHost);
  }

  drawItems(listHost) {
    const context = this.context;
    const data = this.data;
    const sentSet = new Set(context.window.positions);
    const dropped = new Set(context.window.dropped_orphans);
    const summaryEnd = context.summary && context.summary.sent ? context.summary.covers[1] : 0;
    const stateOf = (position) =>
      position < summaryEnd && !sentSet.has(position)
        ? "summarised"
        : sentSet.has(position)
          ? "sent"
          : dropped.has(position)
            ? "dropped"
            : "unsent";
    const decorate = (position, row) => {
      const state = stateOf(position);
      row.classList.add(`state-${state}`);
      const head = row.querySelector(".item-head");
      if (head) head.append(stateBadge(state));
    };
    const rctx = { data, expanded: this.expanded, decorate: this.mode === "stored" ? decorate : null };
    let positions;
    if (this.mode === "stored") positions = null;
    else {
      positions = context.window.positions;
      if (!positions.length) {
        listHost.append(h("p", { class: "empty-note", text: "The window is empty: nothing stored is sent." }));
        return;
      }
    }
    const size = positions ? positions.length : data.total;
    const at = (index) => (positions ? positions[index] : index);
    this.list = new LazyList({
      root: this.root,
      host: listHost,
      size,
      render: (index) => renderRow(at(index), rctx),
      complete: (index) => data.loaded >= data.total || data.loaded > at(index) + 60,
    });
    this.unsubscribe = data.onChange(() => this.list.refresh());
    this.list.start();
  }

  destroy() {
    if (this.list) this.list.stop();
    if (this.unsubscribe) this.unsubscribe();
  }
}

