// The dashboard's page: the app's state arrives as server-sent events (`state`), and the buttons post
// JSON to the dashboard's own actions. Plain DOM, no library, no build step.
"use strict";

const $ = (id) => document.getElementById(id);
let current = null;

function text(el, value) { el.textContent = value == null ? "" : String(value); }

function cell(row, value) { const td = document.createElement("td"); text(td, value); row.appendChild(td); }

function seconds(ms) { return ms == null ? "" : (ms / 1000).toFixed(1) + " s"; }

function render(s) {
  current = s;
  text($("app"), s.app);
  text($("journal"), s.journal);
  const latest = s.latest;
  const release = s.releases[0];
  const running = !!(latest && latest.status === "running");
  const gate = latest && latest.waiting_gate;
  text($("release"), release ? `#${release.id} v${release.target.version} (${release.strategy})` : "none yet");
  text($("status"), latest ? latest.status : "–");
  $("status").className = "badge " + (latest ? latest.status : "");
  $("gate").hidden = !gate;
  text($("gate-name"), gate || "");
  $("promote").disabled = !gate;
  $("abort").disabled = !gate;
  $("rollback").disabled = running || s.releases.length === 0;

  const machines = $("machines").tBodies[0];
  machines.replaceChildren();
  const total = latest ? latest.machines.reduce((n, [, c]) => n + c, 0) : 0;
  for (const [version, count] of latest ? latest.machines : []) {
    const row = machines.insertRow();
    row.dataset.version = version;
    cell(row, "v" + version);
    cell(row, count);
    const bar = document.createElement("span");
    bar.className = "bar";
    bar.style.width = Math.round((120 * count) / Math.max(total, 1)) + "px";
    const td = document.createElement("td"); td.appendChild(bar); row.appendChild(td);
  }
  text($("weights"), latest && latest.weights.length
    ? latest.weights.map(([v, p]) => `v${v}: ${p}%`).join(", ") : "by machine count");

  const phases = $("phases");
  phases.replaceChildren();
  for (const p of latest ? latest.phases : []) {
    const li = document.createElement("li");
    text(li, `${p.name} (at ${seconds(p.at_ms)})`);
    phases.appendChild(li);
  }
  text($("log"), latest ? latest.log.join("\n") : "");

  const releases = $("releases").tBodies[0];
  releases.replaceChildren();
  for (const r of s.releases) {
    const row = releases.insertRow();
    row.dataset.id = r.id;
    cell(row, r.id);
    cell(row, "v" + r.target.version);
    cell(row, r.kind);
    cell(row, r.strategy);
    cell(row, r.platform);
    cell(row, r.status);
    cell(row, new Date(r.started_at_ms).toLocaleString());
    cell(row, seconds(r.duration_ms));
    row.addEventListener("click", () => showPicture(r));
  }
}

function showPicture(r) {
  const img = $("timeline-picture");
  text($("timeline-release"), `#${r.id} v${r.target.version}`);
  img.onerror = () => { $("timeline").hidden = true; };
  img.onload = () => { $("timeline").hidden = false; };
  img.src = `/api/releases/${r.id}/timeline.svg?at=${Date.now()}`;
}

async function act(name) {
  const message = $("message");
  message.className = "";
  text(message, `${name}…`);
  try {
    const response = await fetch(`/api/${name}`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: "{}",
      credentials: "same-origin",
    });
    const answer = await response.json().catch(() => ({}));
    message.className = response.ok ? "" : "error";
    text(message, answer.message || answer.error || `${name}: HTTP ${response.status}`);
  } catch (e) {
    message.className = "error";
    text(message, `${name}: ${e}`);
  }
}

function connect() {
  const source = new EventSource("/api/events");
  source.addEventListener("open", () => { text($("connection"), "live"); $("connection").className = "badge live"; });
  source.addEventListener("state", (e) => render(JSON.parse(e.data)));
  source.addEventListener("problem", (e) => {
    $("message").className = "error";
    text($("message"), "the journal cannot be read: " + JSON.parse(e.data).error);
  });
  source.addEventListener("error", () => { text($("connection"), "reconnecting"); $("connection").className = "badge lost"; });
}

document.addEventListener("DOMContentLoaded", () => {
  $("promote").addEventListener("click", () => act("promote"));
  $("abort").addEventListener("click", () => act("abort"));
  $("rollback").addEventListener("click", () => {
    if (confirm("Roll the app back to the release before the current one?")) act("rollback");
  });
  connect();
});
