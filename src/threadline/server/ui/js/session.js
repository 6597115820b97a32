// One session's page: its header (title, counts, tokens, tags, badges, fork origin), the
// actions, and the tabs: conversation, context, health, diff.

import { get } from "./api.js";
import { ago, badge, count, exact, h, iso, plural, sessionHash } from "./dom.js";
import { Actions } from "./actions.js";
import { ContextView } from "./context.js";
import { ConversationView } from "./conversation.js";
import { PAGE, SessionData } from "./data.js";
import { DiffView } from "./diff.js";
import { HealthView } from "./health.js";

const TABS = [
  ["", "Conversation"],
  ["context", "Context"],
  ["health", "Health"],
  ["diff", "Diff"],
];

function headerBadges(detail) {
  const b = detail.badges || {};
  return [
    b.busy ? badge("busy", "busy", "a request of this server is writing to it") : null,
    b.pending_approval ? badge("awaiting approval", "warn") : null,
    b.compacted ? badge("compacted", "info") : null,
    b.corrupt ? badge("corrupt", "bad") : b.needs_repair ? badge("needs repair", "bad") : null,
    b.fork ? badge("fork", "fork") : null,
  ];
}

export class SessionPage {
  constructor(app, id) {
    this.app = app;
    this.id = id;
    this.view = null;
  }

  async load() {
    const [detail, first] = await Promise.all([
      get("/session", { id: this.id }),
      get("/session/items", { id: this.id, start: 0, limit: PAGE }),
    ]);
    detail.items = first.total;
    this.detail = detail;
    this.data = new SessionData(this.id, detail);
    this.data.add(first);
    this.data.loadAll().catch(() => {});
  }

  header(tab) {
    const detail = this.detail;
    const usage = detail.usage || {};
    const origin = detail.origin;
    const tags = Object.entries(detail.metadata || {})
      .filter(([key]) => key !== "title")
      .map(([key, value]) => h("span", { class: "tag", text: `${key}=${typeof value === "string" ? value : JSON.stringify(value)}` }));
    const actions = new Actions({ app: this.app, detail, changed: (kind) => this.app.changed(kind) });
    this.actions = actions;
    const meta = [
      h("code", { class: "sid", text: detail.id }),
      `${plural(detail.items, "item")} · ${plural(detail.turns, "turn")}`,
      h("span", { title: iso(detail.updated_at), text: `updated ${ago(detail.updated_at)}` }),
      h("span", { title: iso(detail.created_at), text: `created ${ago(detail.created_at)}` }),
      usage.runs
        ? `${exact(usage.input_tokens)} tokens in / ${exact(usage.output_tokens)} out over ${usage.runs} run${usage.runs === 1 ? "" : "s"}`
        : "no usage recorded",
    ];
    const metaLine = h("p", { class: "meta" });
    meta.forEach((part, index) => {
      if (index) metaLine.append(h("span", { class: "sep", text: " · " }));
      metaLine.append(part instanceof Node ? part : document.createTextNode(part));
    });
    return h(
      "header",
      { class: "session-head" },
      h(
        "div",
        { class: "title-row" },
        h("a", { href: "#/", class: "back button", text: "← Sessions" }),
        h("h1", { id: "session-title", text: detail.title || detail.id }),
        headerBadges(detail),
      ),
      metaLine,
      tags.length ? h("div", { class: "tags" }, tags) : null,
      origin && origin.parent_id
        ? h(
            "p",
            { class: "origin" },
            "Fork of ",
            h("a", { href: sessionHash(origin.parent_id), text: origin.parent_id }),
            ` at item #${origin.forked_at}${origin.at_turn !== null && origin.at_turn !== undefined ? ` (the first ${plural(origin.at_turn, "turn")})` : ""} · `,
            h("a", { href: sessionHash(detail.id, "diff"), text: "compare" }),
          )
        : null,
      detail.summary
        ? h("p", {
            class: "summary-line",
            text: `Compacted: a summary (~${count(detail.summary.tokens)} tokens) covers items #0–#${detail.summary.covers[1] - 1}.`,
          })
        : null,
      actions.toolbar(),
      h(
        "nav",
        { class: "tabs", role: "tablist", "aria-label": "Session views" },
        TABS.map(([name, label]) =>
          h("a", {
            role: "tab",
            id: `tab-${name || "conversation"}`,
            href: sessionHash(detail.id, name),
            "aria-selected": String(name === tab),
            class: name === tab ? "current" : "",
            text: label,
          }),
        ),
      ),
    );
  }

  /** Draw the page with tab shown; resolves when the tab's first content is drawn. */
  async show(tab, params) {
    if (this.view) this.view.destroy();
    const container = document.getElementById("view");
    const body = h("div", { class: "tab-body", role: "tabpanel", id: "tab-body" });
    container.replaceChildren(this.header(tab), body);
    const main = document.getElementById("main");
    const write = Boolean(this.app.info.write);
    if (tab === "context") {
      this.view = new ContextView({ data: this.data, id: this.id, root: main, host: body, params });
      await this.view.show();
    } else if (tab === "health") {
      this.view = new HealthView({ id: this.id, host: body, write, onChanged: () => this.app.changed("items") });
      await this.view.show();
    } else if (tab === "diff") {
      this.view = new DiffView({ id: this.id, host: body, params, detail: this.detail });
      await this.view.show();
    } else {
      this.view = new ConversationView({
        data: this.data,
        detail: this.detail,
        root: main,
        host: body,
        write,
        onFork: (turns) => this.actions.fork(turns),
      });
      const at = params.get("at");
      if (at !== null && at !== "") this.view.reveal(Number(at));
    }
  }

  destroy() {
    if (this.view) this.view.destroy();
  }
}
