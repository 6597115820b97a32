// The diff tab: a fork beside its parent (or any two sessions), aligned on the shared prefix;
// the turns after it side by side.

import { get } from "./api.js";
import { exact, h, plural, sessionHash } from "./dom.js";
import { SessionData, isUser } from "./data.js";
import { renderRow } from "./items.js";

const SHOWN = 300; // items of each side drawn at most

function sideData(side, shared) {
  const data = new SessionData(side.id, { items: side.items, turn_starts: [] });
  data.add({ data: side.data, corrupt: side.corrupt, start: shared, stop: shared + side.data.length + side.corrupt.length });
  data.loaded = data.total;
  return data;
}

function turnsOf(side) {
  const turns = [];
  for (const row of side.data.slice(0, SHOWN)) {
    if (!turns.length || isUser(row.item)) turns.push([]);
    turns[turns.length - 1].push(row.position);
  }
  return turns;
}

export class DiffView {
  constructor({ id, host, params, detail }) {
    this.id = id;
    this.host = host;
    this.other = params.get("with") || "";
    this.detail = detail;
    this.expanded = new Set();
  }

  async show() {
    const host = this.host;
    host.replaceChildren();
    const input = h("input", { id: "diff-with", name: "with", value: this.other, placeholder: "another session id" });
    host.append(
      h(
        "form",
        {
          class: "diff-form",
          onsubmit: (event) => {
            event.preventDefault();
            location.hash = sessionHash(this.id, "diff", input.value ? `with=${encodeURIComponent(input.value)}` : "");
          },
        },
        h("label", { for: "diff-with", text: "Compare with" }),
        input,
        h("button", { type: "submit", text: "Compare" }),
      ),
    );
    if (!this.other && !(this.detail.origin && this.detail.origin.parent_id)) {
      host.append(h("p", { class: "note", text: "This session is not a fork: name a session to compare it with." }));
      return;
    }
    const diff = await get("/session/diff", { id: this.id, with: this.other });
    this.draw(diff);
  }

  draw(diff) {
    const host = this.host;
    const left = diff.parent;
    const right = diff.fork;
    const leftData = sideData(left, diff.shared);
    const rightData = sideData(right, diff.shared);
    host.append(
      h(
        "p",
        { class: "shared", id: "diff-shared" },
        `Shared prefix: ${plural(diff.shared, "item")} (${plural(diff.shared_turns, "turn")}), identical in both. `,
        diff.shared ? h("a", { href: sessionHash(left.id, "", "at=0"), text: "Read it in the parent" }) : null,
      ),
    );
    const leftTurns = turnsOf(left);
    const rightTurns = turnsOf(right);
    const grid = h(
      "div",
      { class: "diff-grid", id: "diff-grid" },
      h("div", { class: "diff-col-head" }, "Parent ", h("a", { href: sessionHash(left.id), text: left.id }), ` · ${exact(left.items)} items, ${exact(left.items - diff.shared)} after the prefix`),
      h("div", { class: "diff-col-head" }, "Fork ", h("a", { href: sessionHash(right.id), text: right.id }), ` · ${exact(right.items)} items, ${exact(right.items - diff.shared)} after the prefix`),
    );
    const rows = Math.max(leftTurns.length, rightTurns.length);
    if (!rows) grid.append(h("p", { class: "note wide", text: "Both sessions end with the shared prefix: nothing differs." }));
    for (let index = 0; index < rows; index += 1) {
      for (const [turns, data] of [
        [leftTurns, leftData],
        [rightTurns, rightData],
      ]) {
        const cell = h("div", { class: "diff-cell" });
        const positions = turns[index];
        if (!positions) cell.append(h("p", { class: "note", text: "—" }));
        else {
          const ctx = { data, expanded: this.expanded, lenient: true };
          for (const position of positions) {
            const row = renderRow(position, ctx);
            row.removeAttribute("id"); // both sides may hold the same position
            for (const named of row.querySelectorAll("[id]")) named.removeAttribute("id");
            cell.append(row);
          }
        }
        grid.append(cell);
      }
    }
    host.append(grid);
    if (left.truncated || right.truncated || left.data.length > SHOWN || right.data.length > SHOWN) {
      host.append(h("p", { class: "note", text: `Only the first ${SHOWN} diverging items of each side are shown.` }));
    }
  }

  destroy() {}
}
