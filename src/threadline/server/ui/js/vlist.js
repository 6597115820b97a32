// A long list rendered lazily: rows are grouped in chunks; a chunk is rendered when it comes
// near the viewport and emptied (keeping its measured height) when it moves far away, so a
// conversation of 10,000 or 1,000,000 items keeps a few hundred rows in the page.

import { h } from "./dom.js";

const CHUNK = 40;
const ESTIMATE = 76; // px a row takes before it is measured
const MARGIN = "1500px 0px";

export class LazyList {
  /**
   * root: the scrolling element; host: where the chunks go; size: how many rows;
   * render(index) -> Node; complete(index) -> whether row index can no longer change.
   */
  constructor({ root, host, size, render, complete = () => true }) {
    this.root = root;
    this.host = host;
    this.size = size;
    this.render = render;
    this.complete = complete;
    this.chunks = [];
    this.rendered = new Set();
    this.dirty = new Set();
    const count = Math.ceil(size / CHUNK);
    const fragment = document.createDocumentFragment();
    for (let index = 0; index < count; index += 1) {
      const rows = Math.min(CHUNK, size - index * CHUNK);
      const chunk = h("div", { class: "chunk", dataset: { chunk: index } });
      chunk.style.height = `${rows * ESTIMATE}px`;
      this.chunks.push(chunk);
      fragment.append(chunk);
    }
    host.append(fragment);
    this.observer = new IntersectionObserver((entries) => this._seen(entries), {
      root,
      rootMargin: MARGIN,
    });
  }

  /** Render the chunks in view now (so the first paint shows rows), then watch the rest. */
  start() {
    const top = this.root.scrollTop;
    const bottom = top + this.root.clientHeight + 400;
    const offset = this.host.offsetTop;
    for (let index = 0; index < this.chunks.length; index += 1) {
      const chunk = this.chunks[index];
      const chunkTop = chunk.offsetTop - offset;
      if (chunkTop > bottom) break;
      if (chunkTop + chunk.offsetHeight >= top - 400) this._render(index);
    }
    for (const chunk of this.chunks) this.observer.observe(chunk);
  }

  stop() {
    this.observer.disconnect();
  }

  _seen(entries) {
    for (const entry of entries) {
      const index = Number(entry.target.dataset.chunk);
      if (entry.isIntersecting) this._render(index);
      else if (this.rendered.has(index)) this._empty(index);
    }
  }

  _render(index, force = false) {
    if (this.rendered.has(index) && !force) return;
    const chunk = this.chunks[index];
    const start = index * CHUNK;
    const stop = Math.min(this.size, start + CHUNK);
    const fragment = document.createDocumentFragment();
    let complete = true;
    for (let row = start; row < stop; row += 1) {
      fragment.append(this.render(row));
      if (complete && !this.complete(row)) complete = false;
    }
    chunk.replaceChildren(fragment);
    chunk.style.height = "";
    this.rendered.add(index);
    if (complete) this.dirty.delete(index);
    else this.dirty.add(index);
  }

  _empty(index) {
    const chunk = this.chunks[index];
    chunk.style.height = `${chunk.getBoundingClientRect().height}px`;
    chunk.replaceChildren();
    this.rendered.delete(index);
  }

  /** Re-render the shown chunks whose rows were still waiting for data. */
  refresh() {
    for (const index of [...this.dirty]) {
      if (this.rendered.has(index)) this._render(index, true);
    }
  }

  /** Re-render every shown chunk (after a change that touches every row). */
  redraw() {
    for (const index of [...this.rendered]) this._render(index, true);
  }

  /** Render row index's chunk and return it (to scroll to a row inside it). */
  reveal(index) {
    const chunk = Math.floor(index / CHUNK);
    if (chunk < 0 || chunk >= this.chunks.length) return null;
    this._render(chunk);
    return this.chunks[chunk];
  }
}
