// The health tab: what would make the next request fail or mislead (a call without its
// output and the reverse, unreadable rows, a held lease, …), and the repair, previewed first.

import { get, send } from "./api.js";
import { badge, confirmAction, exact, h, plural, pretty, sessionHash, toast } from "./dom.js";
import { describe } from "./items.js";

const NAMES = {
  call_without_output: "Call without output",
  output_without_call: "Output without call",
  corrupt_item: "Unreadable item",
  corrupt_record: "Unreadable record",
  summary_damaged: "Damaged summary",
  summary_stale: "Stale summary",
  lease_held: "Lease held",
  pending_approval: "Waiting for approval",
};

export class HealthView {
  constructor({ id, host, write, onChanged }) {
    this.id = id;
    this.host = host;
    this.write = write;
    this.onChanged = onChanged;
  }

  async show() {
    this.health = await get("/session/health", { id: this.id });
    this.draw();
  }

  draw() {
    const health = this.health;
    const host = this.host;
    host.replaceChildren();
    host.append(
      h(
        "p",
        { class: `verdict ${health.healthy ? "good" : "bad"}`, id: "health-verdict" },
        health.healthy ? "Healthy: every call has its output, every row reads, no writer holds the lease." : `${plural(health.flags.length, "problem")} found.`,
      ),
    );
    if (health.flags.length) {
      const list = h("ul", { class: "flags", id: "health-flags" });
      for (const flag of health.flags) {
        list.append(
          h(
            "li",
            { class: `flag flag-${flag.kind}` },
            badge(NAMES[flag.kind] || flag.kind, flag.kind === "lease_held" || flag.kind === "pending_approval" ? "warn" : "bad"),
            h("span", { class: "message", text: flag.message }),
            flag.positions.length
              ? h("a", { href: sessionHash(this.id, "", `at=${flag.positions[0]}`), class: "show", text: "show item" })
              : null,
          ),
        );
      }
      host.append(list);
    }
    const lease = health.lease;
    if (lease) {
      host.append(
        h("p", {
          class: "lease",
          text: lease.held
            ? `Writer lease: held by ${lease.holder || "another writer"}${lease.expires_in !== null && lease.expires_in !== undefined ? `, runs out in ${lease.expires_in.toFixed(1)} s unless renewed` : ""}.`
            : lease.checked === false
              ? "Writer lease: this store has none."
              : "Writer lease: free (checked by taking it and giving it back at once).",
        }),
      );
    }
    const repair = health.repair;
    if (!repair.needed) return;
    const rows = repair.drop.map((drop) => {
      const what = drop.corrupt ? "unreadable row" : describe(drop.item).label;
      const detail = drop.corrupt ? "" : pretty(drop.item).text;
      return h(
        "tr",
        {},
        h("td", { text: `#${drop.position}` }),
        h("td", { text: what }),
        h("td", {}, h("pre", { class: "json small", text: detail.length > 400 ? detail.slice(0, 400) + "…" : detail })),
      );
    });
    const apply = h("button", {
      type: "button",
      id: "repair-apply",
      class: "danger",
      disabled: !this.write,
      title: this.write ? "" : "read-only: restart the inspector with --write to repair",
      text: "Apply repair",
      onclick: () => this.apply(),
    });
    host.append(
      h(
        "section",
        { class: "repair", id: "repair-preview" },
        h("h3", { text: "Repair preview" }),
        h("p", {
          text: `The repair removes ${plural(repair.drop.length, "item")} and keeps ${exact(repair.keeps)}.${repair.drops_summary ? " The compaction summary is dropped too (the next compaction writes a new one)." : ""} Nothing changes until you apply it.`,
        }),
        h("table", { class: "drops" }, h("thead", {}, h("tr", {}, h("th", { text: "Item" }), h("th", { text: "Kind" }), h("th", { text: "Content" }))), h("tbody", {}, rows)),
        apply,
      ),
    );
  }

  async apply() {
    const repair = this.health.repair;
    const ok = await confirmAction(
      "Apply the repair?",
      `Remove ${plural(repair.drop.length, "item")} from ${this.id}? This rewrites the stored history and cannot be undone.`,
      "Apply repair",
    );
    if (!ok) return;
    try {
      const done = await send("POST", "/session/repair", { id: this.id }, { plan: repair.plan });
      toast(`Repaired: removed ${done.dropped} items, ${done.items} remain.`);
      this.onChanged();
    } catch (error) {
      toast(`Repair failed: ${error.message}`, true);
      await this.show();
    }
  }

  destroy() {}
}
