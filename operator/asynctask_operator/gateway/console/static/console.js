// The console's few live parts: rows and a task's status follow server-sent events; the log viewer.
// Every value from the server goes in as text (textContent), never as HTML.
"use strict";

function phaseBadge(cell, phase, reason) {
  let badge = cell.querySelector(".phase");
  if (!badge) {
    badge = document.createElement("span");
    cell.replaceChildren(badge);
  }
  badge.className = "phase phase-" + phase;
  badge.dataset.phase = phase;
  badge.textContent = phase;
  if (reason) badge.title = reason; else badge.removeAttribute("title");
}

function setProgress(container, percent) {
  const bar = container.querySelector("progress");
  if (!bar) return;
  if (percent === null || percent === undefined) { bar.hidden = true; return; }
  bar.hidden = false;
  bar.value = Math.round(percent);
  bar.textContent = Math.round(percent) + "%";
}

function text(root, name, value) {
  const cell = root.querySelector('[data-cell="' + name + '"]');
  if (cell) cell.textContent = value === null || value === undefined ? "" : String(value);
}

function followRows(table) {
  const source = new EventSource(table.dataset.live);
  const notice = document.getElementById("new-tasks");
  let fresh = 0;
  source.addEventListener("row", (event) => {
    const data = JSON.parse(event.data);
    const row = table.querySelector('tr[data-key="' + CSS.escape(data.key) + '"]');
    if (!row) {
      if (data.added && data.match && notice) {
        fresh += 1;
        notice.hidden = false;
        notice.querySelector("span").textContent = String(fresh);
      }
      return;
    }
    phaseBadge(row.querySelector('[data-cell="phase"]'), data.phase, data.reason);
    setProgress(row.querySelector('[data-cell="progress"]'), data.percent);
    text(row, "step", data.step);
    text(row, "attempt", data.attempt);
    text(row, "duration", data.duration);
    text(row, "message", data.message);
    row.dataset.phase = data.phase;
  });
  source.addEventListener("gone", (event) => {
    const data = JSON.parse(event.data);
    const row = table.querySelector('tr[data-key="' + CSS.escape(data.key) + '"]');
    if (row) row.classList.add("gone");
  });
}

function followTask(card) {
  const source = new EventSource(card.dataset.live);
  const attempts = Number(card.dataset.attempts);
  source.addEventListener("status", (event) => {
    const data = JSON.parse(event.data);
    phaseBadge(card.querySelector('[data-cell="phase"]'), data.phase, data.reason);
    text(card, "reason", data.reason);
    text(card, "message", data.message);
    text(card, "headline", data.headline);
    text(card, "attempt", data.attempt);
    text(card, "duration", data.duration);
    setProgress(card.querySelector('[data-cell="progress"]'), data.percent);
    text(card, "step", data.step ? "step " + data.step : "");
    text(card, "progress-message", data.progressMessage);
    const finished = ["Succeeded", "Failed", "Cancelled"].includes(data.phase);
    if (data.attempts !== attempts || (finished && card.dataset.phase !== data.phase)) {
      source.close();
      window.location.reload(); // a new attempt, or the end: the result, error and buttons change
    }
  });
  source.addEventListener("deleted", () => { source.close(); text(card, "message", "This task was deleted."); });
}

function logViewer(form) {
  const out = document.querySelector("pre.log");
  const stop = form.querySelector('[data-do="stop"]');
  let source = null;
  const base = form.dataset.log + (form.dataset.log.includes("?") ? "&" : "?");
  const url = (extra) => base + "attempt=" + encodeURIComponent(form.elements.attempt.value) + extra;
  const halt = () => { if (source) source.close(); source = null; stop.hidden = true; };
  form.querySelector('[data-do="tail"]').addEventListener("click", async () => {
    halt();
    const answer = await fetch(url(""), { credentials: "same-origin" });
    out.textContent = answer.ok ? await answer.text() : "(" + answer.status + ") " + (await answer.text());
  });
  const follow = form.querySelector('[data-do="follow"]');
  if (follow) follow.addEventListener("click", () => {
    halt();
    out.textContent = "";
    source = new EventSource(url("&follow=true"));
    stop.hidden = false;
    source.addEventListener("line", (event) => { out.textContent += JSON.parse(event.data) + "\n"; });
    source.addEventListener("failed", (event) => { out.textContent += "(" + JSON.parse(event.data) + ")\n"; });
    source.addEventListener("end", halt);
    source.onerror = () => { if (source && source.readyState === EventSource.CLOSED) halt(); };
  });
  stop.addEventListener("click", halt);
}

document.addEventListener("DOMContentLoaded", () => {
  const table = document.querySelector("table.tasks[data-live]");
  if (table) followRows(table);
  const card = document.querySelector("section.status[data-live]");
  if (card) followTask(card);
  const logs = document.querySelector("form.logs[data-log]");
  if (logs) logViewer(logs);
  const all = document.getElementById("select-page");
  if (all) {
    all.addEventListener("change", () => {
      document.querySelectorAll('input[type="checkbox"][name="task"]').forEach((box) => { box.checked = all.checked; });
    });
  }
});
