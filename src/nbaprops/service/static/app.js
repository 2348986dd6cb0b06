// nbaprops dashboard: live progress over server-sent events, and sortable tables. No library, no build step.
"use strict";

function updateProgress(el, data) {
  const c = data.requests;
  const total = c.pending + c.leased + c.done + c.skipped + c.failed;
  const ended = c.done + c.skipped + c.failed;
  const bar = el.querySelector("progress");
  if (bar) { bar.max = Math.max(total, 1); bar.value = ended; }
  const set = (field, value) => el.querySelectorAll(`[data-field="${field}"]`).forEach((n) => { n.textContent = value; });
  set("ratio", `${ended}/${total}`);
  set("done", c.done); set("skipped", c.skipped); set("failed", c.failed); set("open", c.pending + c.leased);
  set("state", data.state);
  if (data.phase) set("phase", data.phase);
  el.querySelectorAll('[data-field="state"]').forEach((n) => { n.className = `state state-${data.state}`; });
}

function follow(el) {
  const source = new EventSource(el.dataset.events);
  source.addEventListener("progress", (e) => updateProgress(el, JSON.parse(e.data)));
  source.addEventListener("end", (e) => {
    updateProgress(el, JSON.parse(e.data));
    source.close();
    if (el.dataset.reload) window.setTimeout(() => window.location.reload(), 300);
  });
  source.addEventListener("closing", () => source.close());
}

function cellValue(row, index, numeric) {
  const text = row.children[index].textContent.trim();
  if (text === "") return null;
  if (!numeric) return text.toLowerCase();
  const value = parseFloat(text);
  return Number.isNaN(value) ? null : value;
}

function makeSortable(table) {
  const headers = Array.from(table.querySelectorAll("thead th"));
  headers.forEach((th, index) => {
    th.addEventListener("click", () => {
      const numeric = th.dataset.type === "number";
      const descending = th.getAttribute("aria-sort") !== "descending";
      headers.forEach((h) => h.removeAttribute("aria-sort"));
      th.setAttribute("aria-sort", descending ? "descending" : "ascending");
      const body = table.tBodies[0];
      const rows = Array.from(body.rows);
      rows.sort((a, b) => {
        const x = cellValue(a, index, numeric);
        const y = cellValue(b, index, numeric);
        if (x === null || y === null) return (x === null) - (y === null); // empty cells last, either way
        return (x < y ? -1 : x > y ? 1 : 0) * (descending ? -1 : 1);
      });
      rows.forEach((row) => body.appendChild(row));
    });
  });
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("[data-events]").forEach(follow);
  document.querySelectorAll("table.sortable").forEach(makeSortable);
});
