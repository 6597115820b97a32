// The conversation tab: every stored item, grouped into turns (a turn starts at a user
// message), each tool call with its output, per-item token estimates and per-turn usage;
// rendered lazily so that a 10,000-item conversation opens at once.

import { count, exact, h } from "./dom.js";
import { renderRow } from "./items.js";
import { LazyList } from "./vlist.js";

/**
 * The usage of turn k: the runs whose recorded start falls in the turn (summed: a run resumed
 * after approvals adds one). Runs recorded without a start (older threadline) are matched
 * to turns one to one only when there are as many runs as turns; otherwise none is shown.
 */
export function runOfTurn(detail, turn) {
  const runs = detail.runs || [];
  const placed = runs.filter((run) => typeof run.turn_index === "number");
  let mine;
  if (placed.length) mine = placed.filter((run) => run.turn_index === turn);
  else if (runs.length === detail.turns && runs.length > 0) mine = [runs[turn]];
  else return null;
  if (!mine.length) return null;
  const sum = (name) => mine.reduce((total, run) => total + (run[name] || 0), 0);
  return {
    label: mine.length === 1 ? `run ${mine[0].run}` : `runs ${mine.map((run) => run.run).join(", ")}`,
    requests: sum("requests"),
    input_tokens: sum("input_tokens"),
    output_tokens: sum("output_tokens"),
    time: mine[mine.length - 1].time,
  };
}

/** The header of turn k: its items, tokens, usage and the fork button. */
export function turnHeader(data, detail, turn, { write, onFork } = {}) {
  if (turn < 0) return null;
  const [start, stop] = data.turnRange(turn);
  const tokens = data.tokensOf(start, stop);
  const run = runOfTurn(detail, turn);
  return h(
    "div",
    { class: "turn-head", dataset: { turn } },
    h("span", { class: "turn-name", text: `Turn ${turn + 1}` }),
    h("span", { class: "turn-range", text: stop - start === 1 ? `item #${start}` : `items #${start}–#${stop - 1}` }),
    h("span", { class: "tok", title: "estimated tokens of the turn's items", text: tokens === null ? "" : `~${count(tokens)} tok` }),
    run
      ? h("span", {
          class: "usage",
          title: `${run.label}: ${run.requests} requests, last at ${run.time}`,
          text: `${exact(run.input_tokens)} in / ${exact(run.output_tokens)} out`,
        })
      : null,
    write && onFork
      ? h("button", {
          type: "button",
          class: "small fork-turn",
          title: `a new session holding turns 1–${turn + 1}`,
          text: "Fork after this turn",
          onclick: (event) => {
            event.stopPropagation();
            onFork(turn + 1);
          },
        })
      : null,
  );
}

export class ConversationView {
  constructor({ data, detail, root, host, write, onFork }) {
    this.data = data;
    this.expanded = new Set();
    host.classList.add("items");
    if (!data.total) {
      host.append(h("p", { class: "empty-note", text: "This session holds no items." }));
      return;
    }
    const context = {
      data,
      expanded: this.expanded,
      turnHead: (turn) => turnHeader(data, detail, turn, { write, onFork }),
    };
    this.list = new LazyList({
      root,
      host,
      size: data.total,
      render: (index) => renderRow(index, context),
      complete: (index) => data.loaded >= data.total || data.loaded > index + 60,
    });
    this.unsubscribe = data.onChange(() => this.list.refresh());
    this.list.start();
  }

  /** Scroll to the item at position and highlight it. */
  async reveal(position) {
    if (!this.list) return;
    await this.data.until(position);
    const call = this.data.callOf.get(position);
    this.list.reveal(call !== undefined ? call : position);
    const target = document.getElementById(`item-${position}`);
    if (!target) return;
    target.scrollIntoView({ block: "center" });
    target.classList.add("hit");
    const row = target.closest("article") || target;
    row.focus({ preventScroll: true });
  }

  destroy() {
    if (this.list) this.list.stop();
    if (this.unsubscribe) this.unsubscribe();
  }
}
