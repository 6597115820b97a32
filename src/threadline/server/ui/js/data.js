// One session's items as the page knows them: loaded page by page in order (so a tool call is
// always known before its output), with each call paired with its output and every item placed
// in its turn.

import { get } from "./api.js";

export const PAGE = 2000;

const OUTPUT_OF = {
  function_call: "function_call_output",
  custom_tool_call: "custom_tool_call_output",
};

/** The (output type, call id) an output item answers, or null. */
export function outputKey(item) {
  const type = item.type;
  if (type === "function_call_output" || type === "custom_tool_call_output") {
    return `${type}\u0000${item.call_id}`;
  }
  if (item.role === "tool" && (type === undefined || type === "message")) {
    return `function_call_output\u0000${item.tool_call_id}`;
  }
  return null;
}

export function isUser(item) {
  return item.role === "user" && (item.type === undefined || item.type === "message");
}

export class SessionData {
  constructor(id, detail) {
    this.id = id;
    this.detail = detail;
    this.total = detail.items;
    this.entries = new Array(this.total);
    this.loaded = 0; // positions [0, loaded) are known
    this.callOf = new Map(); // output position -> call position
    this.outputOf = new Map(); // call position -> output position
    this.waiting = new Map(); // output key -> [call positions]
    this.listeners = new Set();
    this.loading = null;
    this.failed = null;
    this.turnStarts = detail.turn_starts || [];
  }

  /** Call fn() after each page arrives. */
  onChange(fn) {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  entry(position) {
    return this.entries[position];
  }

  /** Add one page of the items route's answer. */
  add(page) {
    for (const row of page.data) {
      this.entries[row.position] = { item: row.item, tokens: row.tokens, id: row.id };
    }
    for (const bad of page.corrupt) {
      this.entries[bad.position] = { corrupt: bad.reason };
    }
    for (let position = page.start; position < page.stop; position += 1) {
      const entry = this.entries[position];
      if (!entry || !entry.item) continue;
      const item = entry.item;
      const outputType = OUTPUT_OF[item.type];
      if (outputType) {
        const key = `${outputType}\u0000${item.call_id}`;
        if (!this.waiting.has(key)) this.waiting.set(key, []);
        this.waiting.get(key).push(position);
        continue;
      }
      const key = outputKey(item);
      if (key === null) continue;
      const calls = this.waiting.get(key);
      if (calls && calls.length) {
        const call = calls.shift();
        this.callOf.set(position, call);
        this.outputOf.set(call, position);
      }
    }
    this.loaded = Math.max(this.loaded, page.stop);
    for (const fn of this.listeners) fn();
  }

  /** Load every page in order (the first one first); resolves when all are in. */
  loadAll() {
    if (!this.loading) this.loading = this._load();
    return this.loading;
  }

  async _load() {
    try {
      while (this.loaded < this.total) {
        const page = await get("/session/items", { id: this.id, start: this.loaded, limit: PAGE });
        if (page.stop <= this.loaded) break; // the session shrank meanwhile
        this.add(page);
      }
    } catch (error) {
      this.failed = error;
      for (const fn of this.listeners) fn();
      throw error;
    }
  }

  /** Resolves once position is loaded (or loading failed). */
  async until(position) {
    this.loadAll().catch(() => {});
    while (this.loaded <= position && this.loaded < this.total && !this.failed) {
      await new Promise((resolve) => {
        const stop = this.onChange(() => {
          stop();
          resolve();
        });
      });
    }
  }

  /** The turn (0-based) of position, or -1 before the first user message. */
  turnOf(position) {
    const starts = this.turnStarts;
    let low = 0;
    let high = starts.length - 1;
    let found = -1;
    while (low <= high) {
      const middle = (low + high) >> 1;
      if (starts[middle] <= position) {
        found = middle;
        low = middle + 1;
      } else high = middle - 1;
    }
    return found;
  }

  /** [start, stop) of turn k. */
  turnRange(turn) {
    const starts = this.turnStarts;
    return [starts[turn], turn + 1 < starts.length ? starts[turn + 1] : this.total];
  }

  /** Estimated tokens of [start, stop), or null while some are not loaded. */
  tokensOf(start, stop) {
    if (stop > this.loaded) return null;
    let sum = 0;
    for (let position = start; position < stop; position += 1) {
      const entry = this.entries[position];
      if (entry && entry.tokens) sum += entry.tokens;
    }
    return sum;
  }
}
