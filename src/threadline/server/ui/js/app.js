// The inspector page: the server's info, the sessions list, and the router (#/ and
// #/s/ID[/context|health|diff][?at=N]). Times the first paint of each conversation view.

import { ApiError, get, getKey, setKey, whenUnauthorized } from "./api.js";
import { h, openDialog, plural, toast } from "./dom.js";
import { SessionList } from "./list.js";
import { SessionPage } from "./session.js";

const timings = [];
window.threadlineInspector = { timings };

const app = {
  info: { write: false },
  currentId: null,
  page: null,
  list: null,
  changed: null,
};

function afterPaint(fn) {
  requestAnimationFrame(() => {
    const channel = new MessageChannel();
    channel.port1.onmessage = () => fn();
    channel.port2.postMessage(0);
  });
}

function parseHash() {
  const raw = location.hash.replace(/^#/, "") || "/";
  const [path, query = ""] = raw.split("?", 2);
  const params = new URLSearchParams(query);
  const match = /^\/s\/([^/]+)(?:\/(context|health|diff))?\/?$/.exec(path);
  if (!match) return { params };
  return { id: decodeURIComponent(match[1]), tab: match[2] || "", params };
}

function placeholder(text) {
  document.getElementById("view").replaceChildren(h("div", { class: "placeholder" }, h("p", { text })));
}

function overview() {
  const stats = app.info.stats;
  const keys = [
    ["↑ ↓  or  j k", "move in the list"],
    ["Home / End", "first / last session"],
    ["Enter", "open the session"],
    ["/", "search every stored item"],
    ["Esc", "clear the search"],
  ];
  document.getElementById("view").replaceChildren(
    h(
      "div",
      { class: "placeholder overview" },
      h("h2", { text: stats ? `${plural(stats.sessions, "session")} · ${plural(stats.items, "item")}` : "Sessions" }),
      h("p", { class: "store-name", text: app.info.store }),
      h("p", { text: "Pick a session to see its turns, what the next request sends, its health, and how a fork differs from its parent." }),
      h(
        "table",
        { class: "keys" },
        h("caption", { text: "Keyboard" }),
        h("tbody", {}, keys.map(([key, what]) => h("tr", {}, h("th", { scope: "row" }, h("kbd", { text: key })), h("td", { text: what })))),
      ),
      app.info.write ? null : h("p", { class: "note", text: "Read-only: restart with --write to rename, undo, fork, compact, repair, delete or import." }),
    ),
  );
}

let routing = 0;

async function route() {
  const started = performance.now();
  const token = ++routing;
  const { id, tab, params } = parseHash();
  if (!id) {
    document.body.classList.remove("has-session");
    if (app.page) app.page.destroy();
    app.page = null;
    app.currentId = null;
    app.currentAt = undefined;
    app.list.markCurrent();
    overview();
    return;
  }
  document.body.classList.add("has-session");
  app.currentId = id;
  app.currentAt = params.get("at") ?? undefined;
  app.list.markCurrent();
  try {
    if (!app.page || app.page.id !== id) {
      if (app.page) app.page.destroy();
      const page = new SessionPage(app, id);
      placeholder("Loading…");
      await page.load();
      if (token !== routing) return;
      app.page = page;
    }
    await app.page.show(tab, params);
    if (token !== routing) return;
    const typing = document.activeElement && ["INPUT", "TEXTAREA", "SELECT"].includes(document.activeElement.tagName);
    if (!typing) document.getElementById("main").focus({ preventScroll: true });
    if (!tab) {
      const items = app.page.data.total;
      afterPaint(() => {
        const ms = performance.now() - started;
        timings.push({ view: "conversation", id, items, ms });
        document.body.dataset.conversationMs = ms.toFixed(1);
      });
    }
  } catch (error) {
    if (token !== routing) return;
    placeholder(error instanceof ApiError && error.status === 404 ? `No session “${id}” here (deleted?).` : `Cannot show it: ${error.message}`);
  }
}

async function askKey(reason = "") {
  const input = h("input", { type: "password", name: "key", id: "key-input", autocomplete: "off", value: getKey() });
  const answer = await openDialog({
    title: "API key",
    body: [
      reason ? h("p", { class: "warn", text: reason }) : null,
      h("p", { text: "This server needs an API key. It is kept for this tab only (sessionStorage) and sent as a Bearer token to this server only." }),
      h("label", {}, "Key", input),
    ],
    confirm: "Use this key",
  });
  if (answer) {
    setKey(String(answer.get("key") || ""));
    await start();
  }
}

let asking = false;
whenUnauthorized((message) => {
  if (asking) return;
  asking = true;
  askKey(message).finally(() => {
    asking = false;
  });
});

async function start() {
  try {
    app.info = await get("");
  } catch (error) {
    document.getElementById("mode").textContent = "";
    placeholder(`Cannot reach the inspector's routes: ${error.message}`);
    return;
  }
  const mode = document.getElementById("mode");
  mode.textContent = app.info.write ? "write" : "read-only";
  mode.className = `mode ${app.info.write ? "write" : "readonly"}`;
  mode.title = app.info.write ? "changes are allowed (--write)" : "restart with --write to change sessions";
  document.getElementById("store").textContent = app.info.store;
  await app.list.reload();
  app.page = null;
  await route();
}

app.changed = async (kind) => {
  const id = app.currentId;
  if (app.page) app.page.destroy();
  app.page = null;
  const reload = app.list.reload();
  if (kind !== "deleted" && kind !== "fork" && id) await route();
  await reload;
};

function keys(event) {
  const typing = ["INPUT", "TEXTAREA", "SELECT"].includes(event.target.tagName) || event.target.isContentEditable;
  if (event.key === "/" && !typing && !document.querySelector("dialog[open]")) {
    event.preventDefault();
    document.getElementById("search").focus();
  }
}

app.list = new SessionList(app);
window.addEventListener("hashchange", route);
document.addEventListener("keydown", keys);
document.getElementById("key-button").addEventListener("click", () => askKey());
start().catch((error) => toast(error.message, true));
