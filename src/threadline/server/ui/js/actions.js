// What a person can do to a session: rename and edit metadata, undo the last turn, fork at a
// turn, compact now, export, delete. Writes need the server's --write; destructive ones ask.

import { download, send } from "./api.js";
import { confirmAction, h, openDialog, sessionHash, toast } from "./dom.js";

function readOnlyTitle(write, text) {
  return write ? text : "read-only: restart the inspector with --write";
}

export class Actions {
  /** app: the page; detail: the session's detail; changed(kind): reload after a write. */
  constructor({ app, detail, changed }) {
    this.app = app;
    this.detail = detail;
    this.changed = changed;
    this.write = Boolean(app.info.write);
  }

  toolbar() {
    const write = this.write;
    const button = (id, text, title, onclick, { needsWrite = true, danger = false } = {}) =>
      h("button", {
        type: "button",
        id,
        class: danger ? "danger" : "",
        disabled: needsWrite && !write,
        title: needsWrite ? readOnlyTitle(write, title) : title,
        text,
        onclick,
      });
    return h(
      "div",
      { class: "actions", role: "toolbar", "aria-label": "Session actions" },
      button("act-metadata", "Rename / metadata", "change the title and metadata", () => this.editMetadata()),
      button("act-undo", "Undo last turn", "remove the last user message and everything after it", () => this.undo()),
      button("act-fork", "Fork…", "copy the first turns into a new session", () => this.fork()),
      button("act-compact", "Compact now", "summarise the older turns (the raw items stay stored)", () => this.compact()),
      button("act-export-jsonl", "Export JSONL", "download the session in threadline's export format", () => this.exportAs("jsonl"), { needsWrite: false }),
      button("act-export-md", "Export Markdown", "download the conversation as Markdown", () => this.exportAs("markdown"), { needsWrite: false }),
      button("act-delete", "Delete", "delete the session and its items", () => this.remove(), { danger: true }),
    );
  }

  async run(label, work) {
    try {
      return await work();
    } catch (error) {
      toast(`${label} failed: ${error.message}`, true);
      return null;
    }
  }

  async editMetadata() {
    const metadata = { ...(this.detail.metadata || {}) };
    const title = typeof metadata.title === "string" ? metadata.title : "";
    delete metadata.title;
    const titleInput = h("input", { name: "title", id: "meta-title", value: title, placeholder: this.detail.title || "" });
    const area = h("textarea", { name: "metadata", id: "meta-json", rows: "8", spellcheck: "false" });
    area.value = JSON.stringify(metadata, null, 2);
    const answer = await openDialog({
      title: "Rename and edit metadata",
      body: [h("label", {}, "Title", titleInput), h("label", {}, "Metadata (a JSON object)", area)],
      confirm: "Save",
    });
    if (!answer) return;
    let value;
    try {
      value = JSON.parse(answer.get("metadata") || "{}");
      if (!value || typeof value !== "object" || Array.isArray(value)) throw new Error("metadata must be a JSON object");
    } catch (error) {
      toast(`Not saved: ${error.message}`, true);
      return;
    }
    const newTitle = String(answer.get("title") || "").trim();
    if (newTitle) value.title = newTitle;
    else delete value.title;
    const done = await this.run("Saving metadata", () => send("POST", "/session/metadata", { id: this.detail.id }, { metadata: value }));
    if (done) {
      toast("Metadata saved");
      this.changed("metadata");
    }
  }

  async undo() {
    const ok = await confirmAction(
      "Undo the last turn?",
      `Remove the last user message of ${this.detail.id} and every item after it? This cannot be undone.`,
      "Undo last turn",
    );
    if (!ok) return;
    const done = await this.run("Undo", () => send("POST", "/session/undo", { id: this.detail.id }));
    if (done) {
      toast(done.removed ? `Removed ${done.removed} items; ${done.items} remain` : "Nothing to undo: no user message");
      this.changed("items");
    }
  }

  async fork(atTurn = null) {
    const turns = this.detail.turns;
    const select = h("select", { name: "at_turn", id: "fork-turn" });
    for (let keep = turns; keep >= 0; keep -= 1) {
      select.append(
        h("option", {
          value: String(keep),
          text: keep === turns ? `all ${turns} turns` : keep === 0 ? "no turns (an empty session)" : `the first ${keep} turn${keep === 1 ? "" : "s"}`,
        }),
      );
    }
    select.value = String(atTurn === null ? turns : atTurn);
    const idInput = h("input", { name: "new_id", id: "fork-id", placeholder: "a new id (default: generated)" });
    const answer = await openDialog({
      title: `Fork ${this.detail.id}`,
      body: [h("label", {}, "Keep", select), h("label", {}, "New session id", idInput)],
      confirm: "Fork",
    });
    if (!answer) return;
    const body = { at_turn: Number(answer.get("at_turn")) };
    const newId = String(answer.get("new_id") || "").trim();
    if (newId) body.new_id = newId;
    const done = await this.run("Fork", () => send("POST", "/session/fork", { id: this.detail.id }, body));
    if (done) {
      toast(`Forked into ${done.id} (${done.items} items)`);
      this.changed("fork");
      location.hash = sessionHash(done.id);
    }
  }

  async compact() {
    toast("Compacting… (the model writes a summary)");
    const done = await this.run("Compaction", () => send("POST", "/session/compact", { id: this.detail.id }, {}));
    if (done) {
      toast(done.message, done.status === "failed");
      if (done.status === "compacted") this.changed("summary");
    }
  }

  async exportAs(format) {
    const suffix = format === "jsonl" ? ".jsonl" : ".md";
    await this.run("Export", () => download("/session/export", { id: this.detail.id, format }, `${this.detail.id}${suffix}`));
  }

  async remove() {
    const ok = await confirmAction(
      "Delete this session?",
      `Delete ${this.detail.id} and its ${this.detail.items} items? This cannot be undone (export it first to keep a copy).`,
      "Delete",
    );
    if (!ok) return;
    const done = await this.run("Delete", () => send("DELETE", "/session", { id: this.detail.id }));
    if (done) {
      toast(`Deleted ${done.id}`);
      this.changed("deleted");
      location.hash = "#/";
    }
  }
}
