// The sessions list (newest first, a cursor page at a time, filtered by metadata), full-text
// search, import, and keyboard navigation: ↑/↓ (or j/k), Home/End, Enter opens, / searches.

import { get, send } from "./api.js";
import { ago, badge, clear, count, h, iso, openDialog, plural, sessionHash, toast } from "./dom.js";

const PAGE = 50;

function parseFilter(text) {
  const wanted = {};
  for (const pair of text.split(/[\s,]+/).filter(Boolean)) {
    const at = pair.indexOf("=");
    if (at <= 0) throw new Error(`"${pair}" is not key=value`);
    wanted[`metadata.${pair.slice(0, at)}`] = pair.slice(at + 1);
  }
  return wanted;
}

const CHECKED = {
  all: "the whole session was checked",
  function_calls: "function calls checked in the whole session, other tool calls among the newest 20 items",
  newest: "the newest 20 items were checked (open Health for the whole session)",
};

function badges(row) {
  const found = [];
  const b = row.badges || {};
  if (b.busy) {
    const lease = row.lease || {};
    const who = lease.holder || "a writer";
    const left = typeof lease.expires_in === "number" ? ` (its lease runs out in ${lease.expires_in.toFixed(1)} s unless renewed)` : "";
    found.push(badge("busy", "busy", `${who} holds the writer lease${left}`));
  }
  if (b.pending_approval) found.push(badge("awaiting approval", "warn"));
  if (b.compacted) found.push(badge("compacted", "info", "a compaction summary covers its older turns"));
  if (b.corrupt) found.push(badge("corrupt", "bad", "a stored row cannot be read"));
  else if (b.needs_repair) found.push(badge("needs repair", "bad", `a call without its output (or the reverse); ${CHECKED[row.repair_checked] || CHECKED.newest}`));
  if (b.fork) found.push(badge("fork", "fork", row.parent_id ? `fork of ${row.parent_id}` : "a fork"));
  return found;
}

function tags(metadata) {
  return Object.entries(metadata || {})
    .filter(([key]) => key !== "title")
    .slice(0, 6)
    .map(([key, value]) =>
      h("span", { class: "tag", text: `${key}=${typeof value === "string" ? value : JSON.stringify(value)}` }),
    );
}

function sessionOption(row, index) {
  const usage = row.usage || {};
  return h(
    "li",
    {
      role: "option",
      class: "session",
      id: `session-${index}`,
      tabindex: "-1",
      "aria-selected": "false",
      dataset: { id: row.id },
    },
    h(
      "div",
      { class: "row1" },
      h("span", { class: "title", text: row.title || row.id }),
      h("time", { class: "updated", datetime: iso(row.updated_at), title: iso(row.updated_at), text: ago(row.updated_at) }),
    ),
    row.preview ? h("div", { class: "preview", text: row.preview }) : h("div", { class: "preview empty", text: "(no messages)" }),
    h(
      "div",
      { class: "row3" },
      h("span", { class: "counts", text: `${plural(row.turns, "turn", count)} · ${plural(row.items, "item", count)}` }),
      usage.input_tokens || usage.output_tokens
        ? h("span", {
            class: "tokens",
            title: `${usage.input_tokens} input / ${usage.output_tokens} output tokens reported over ${usage.runs} runs`,
            text: `${count(usage.input_tokens)} in / ${count(usage.output_tokens)} out`,
          })
        : null,
      badges(row),
      tags(row.metadata),
    ),
    h("div", { class: "sid", text: row.id }),
  );
}

function hitOption(hit, index) {
  const snippet = h("div", { class: "snippet" });
  for (const [text, matched] of hit.parts || [[hit.snippet, false]]) {
    snippet.append(matched ? h("mark", { text }) : document.createTextNode(text));
  }
  return h(
    "li",
    {
      role: "option",
      class: "session hit",
      id: `session-${index}`,
      tabindex: "-1",
      "aria-selected": "false",
      dataset: { id: hit.session_id, at: hit.position },
    },
    h(
      "div",
      { class: "row1" },
      h("span", { class: "title", text: hit.title || hit.session_id }),
      h("span", { class: "pos", text: `#${hit.position}` }),
    ),
    snippet,
    h("div", { class: "sid", text: `${hit.session_id} · ${hit.role || hit.type}` }),
  );
}

export class SessionList {
  constructor(app) {
    this.app = app;
    this.ul = document.getElementById("session-list");
    this.more = document.getElementById("more");
    this.status = document.getElementById("list-status");
    this.search = document.getElementById("search");
    this.filter = document.getElementById("filter");
    this.rows = [];
    this.cursor = null;
    this.active = -1;
    this.mode = "list";
    this.token = 0;
    this.more.addEventListener("click", () => this.loadMore());
    this.ul.addEventListener("keydown", (event) => this.key(event));
    this.ul.addEventListener("click", (event) => {
      const option = event.target.closest("li[role=option]");
      if (option) this.open(Number(option.id.slice("session-".length)));
    });
    this.ul.addEventListener("focus", () => {
      if (this.active < 0 && this.ul.children.length) this.focus(0);
      else if (this.active >= 0) this.focus(this.active);
    });
    document.getElementById("search-form").addEventListener("submit", (event) => {
      event.preventDefault();
      this.runSearch();
    });
    this.search.addEventListener("keydown", (event) => {
      if (event.key === "Escape") {
        this.search.value = "";
        this.reload();
        this.ul.focus();
      } else if (event.key === "ArrowDown") {
        event.preventDefault();
        this.ul.focus();
      }
    });
    this.search.addEventListener("search", () => {
      if (!this.search.value) this.reload();
    });
    document.getElementById("filter-form").addEventListener("submit", (event) => {
      event.preventDefault();
      this.search.value = "";
      this.reload();
    });
    this.scroller = document.getElementById("list-scroll");
    new IntersectionObserver(
      (entries) => {
        if (entries.some((entry) => entry.isIntersecting)) this.loadMore();
      },
      { root: this.scroller, rootMargin: "0px 0px 300px 0px" },
    ).observe(this.more);
    document.getElementById("import-file").addEventListener("change", (event) => this.importFile(event));
  }

  setStatus(text) {
    this.status.textContent = text;
  }

  async reload() {
    this.token += 1;
    this.loading = false;
    this.mode = "list";
    this.rows = [];
    this.cursor = null;
    this.active = -1;
    clear(this.ul);
    this.ul.setAttribute("aria-label", "Sessions, most recently updated first");
    await this.loadMore(true);
  }

  /** Whether the end of the list is in view (or nearly). */
  endInView() {
    const bottom = this.scroller.getBoundingClientRect().bottom;
    return !this.more.hidden && this.more.getBoundingClientRect().top < bottom + 300;
  }

  async loadMore(first = false) {
    if (!first && (!this.cursor || this.mode !== "list")) return;
    if (this.loading) return;
    const token = this.token;
    let params;
    try {
      params = { limit: PAGE, after: first ? null : this.cursor, ...parseFilter(this.filter.value) };
    } catch (error) {
      this.setStatus(`Filter: ${error.message}`);
      return;
    }
    this.loading = true;
    this.setStatus("Loading…");
    try {
      const page = await get("/sessions", params);
      if (token !== this.token) return;
      const start = this.rows.length;
      this.rows.push(...page.data);
      this.cursor = page.next_cursor;
      const fragment = document.createDocumentFragment();
      page.data.forEach((row, offset) => fragment.append(sessionOption(row, start + offset)));
      this.ul.append(fragment);
      this.more.hidden = !this.cursor;
      const filtered = this.filter.value.trim() ? " matching the filter" : "";
      this.setStatus(
        this.rows.length
          ? `${this.rows.length}${this.cursor ? "+" : ""} sessions${filtered}`
          : `No sessions${filtered}`,
      );
      this.markCurrent();
    } catch (error) {
      this.setStatus(`Cannot list sessions: ${error.message}`);
    } finally {
      this.loading = false;
    }
    // A short page may leave the end in view: keep going until it is not.
    if (token === this.token && this.cursor && this.endInView()) requestAnimationFrame(() => this.loadMore());
  }

  async runSearch() {
    const text = this.search.value.trim();
    if (!text) return this.reload();
    this.token += 1;
    const token = this.token;
    this.mode = "search";
    this.setStatus("Searching…");
    try {
      const found = await get("/search", { q: text, limit: 50 });
      if (token !== this.token) return;
      this.rows = found.data;
      this.cursor = null;
      this.active = -1;
      this.more.hidden = true;
      clear(this.ul);
      this.ul.setAttribute("aria-label", `Search results for ${text}`);
      found.data.forEach((hit, index) => this.ul.append(hitOption(hit, index)));
      this.setStatus(found.data.length ? `${found.data.length} matches for “${text}” (Esc clears)` : `No item holds every word of “${text}”`);
    } catch (error) {
      this.setStatus(`Search failed: ${error.message}`);
    }
  }

  options() {
    return this.ul.querySelectorAll("li[role=option]");
  }

  focus(index) {
    const options = this.options();
    if (!options.length) return;
    index = Math.max(0, Math.min(options.length - 1, index));
    options.forEach((option, i) => option.setAttribute("tabindex", i === index ? "0" : "-1"));
    this.active = index;
    this.ul.setAttribute("aria-activedescendant", options[index].id);
    options[index].focus();
    if (index >= options.length - 3 && this.cursor && this.mode === "list") this.loadMore();
  }

  key(event) {
    const keys = { ArrowDown: 1, j: 1, ArrowUp: -1, k: -1 };
    if (event.target.tagName === "INPUT") return;
    if (event.key in keys) {
      event.preventDefault();
      this.focus((this.active < 0 ? -1 : this.active) + keys[event.key]);
    } else if (event.key === "Home") {
      event.preventDefault();
      this.focus(0);
    } else if (event.key === "End") {
      event.preventDefault();
      this.focus(this.options().length - 1);
    } else if (event.key === "Enter" || event.key === " ") {
      event.preventDefault();
      if (this.active >= 0) this.open(this.active);
    }
  }

  open(index) {
    const option = this.options()[index];
    if (!option) return;
    this.active = index;
    const at = option.dataset.at;
    location.hash = sessionHash(option.dataset.id, "", at !== undefined ? `at=${at}` : "");
  }

  /** Mark the open session's row. */
  markCurrent() {
    const current = this.app.currentId;
    const at = this.app.currentAt;
    for (const option of this.options()) {
      const same = option.dataset.id === current && (option.dataset.at === undefined || option.dataset.at === at);
      option.setAttribute("aria-selected", String(same));
    }
  }

  async importFile(event) {
    const input = event.target;
    const file = input.files && input.files[0];
    input.value = "";
    if (!file) return;
    if (!this.app.info.write) {
      toast("This inspector is read-only: restart it with --write to import.", true);
      return;
    }
    const idInput = h("input", { name: "id", id: "import-id", placeholder: "the id in the file" });
    const mode = h(
      "select",
      { name: "mode", id: "import-mode" },
      h("option", { value: "refuse", text: "new session (refuse an existing one)" }),
      h("option", { value: "append", text: "append to an existing session" }),
      h("option", { value: "replace", text: "replace an existing session" }),
    );
    const answer = await openDialog({
      title: `Import ${file.name}`,
      body: [
        h("label", {}, "Session id (empty: the file's own)", idInput),
        h("label", {}, "Mode", mode),
      ],
      confirm: "Import",
    });
    if (!answer) return;
    try {
      const text = await file.text();
      const done = await send("POST", "/import", { id: answer.get("id"), mode: answer.get("mode") }, undefined, {
        raw: text,
        type: "application/x-ndjson",
      });
      toast(`Imported ${done.items} items into ${done.id}`);
      await this.reload();
      location.hash = sessionHash(done.id);
    } catch (error) {
      toast(`Import failed: ${error.message}`, true);
    }
  }
}
