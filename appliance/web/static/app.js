// SMS appliance pages: a live part counter on the compose page, live broadcast progress,
// confirmation before destructive buttons. Everything works without it, only less live.
"use strict";

function debounce(fn, ms) {
  let timer = null;
  return (...args) => { clearTimeout(timer); timer = setTimeout(() => fn(...args), ms); };
}

// <textarea data-counter-url="/compose/count" data-counter-target="id-of-output">
function setUpCounter(area) {
  const out = document.getElementById(area.dataset.counterTarget);
  const form = area.form;
  if (!out) return;
  let seq = 0;
  const token = form && form.querySelector("input[name=csrf_token]");
  const update = async () => {
    const mine = ++seq;
    const body = new URLSearchParams({ text: area.value });
    const kind = form && form.querySelector("input[name=kind]:checked");
    if (kind) body.set("kind", kind.value);
    try {
      const res = await fetch(area.dataset.counterUrl, {
        method: "POST", body,
        headers: { Accept: "application/json", "X-CSRF-Token": token ? token.value : "" },
      });
      if (!res.ok || mine !== seq) return;
      const c = await res.json();
      out.textContent = c.summary;
      out.dataset.parts = c.parts;
      out.dataset.encoding = c.encoding;
    } catch (e) { /* offline for a moment: keep the last count */ }
  };
  const later = debounce(update, 150);
  area.addEventListener("input", later);
  if (form) form.addEventListener("change", (ev) => { if (ev.target.name === "kind") later(); });
  update();
}

// <section data-progress-url="/broadcasts/7/progress"> with [data-field=name] children and a <progress>
function setUpProgress(box) {
  const bar = box.querySelector("progress");
  const tick = async () => {
    let data;
    try {
      const res = await fetch(box.dataset.progressUrl, { headers: { Accept: "application/json" } });
      if (res.status === 401) { window.location.reload(); return; }
      if (!res.ok) throw new Error(String(res.status));
      data = await res.json();
    } catch (e) { setTimeout(tick, 5000); return; }
    for (const el of box.querySelectorAll("[data-field]")) {
      const v = data[el.dataset.field];
      if (v !== undefined && v !== null) el.textContent = typeof v === "number" ? v.toLocaleString() : v;
    }
    if (bar) { bar.max = Math.max(data.total, 1); bar.value = data.done; }
    box.dataset.status = data.status;
    const finished = ["done", "cancelled"].includes(data.status);
    for (const el of document.querySelectorAll("[data-when-status]")) {
      el.hidden = !el.dataset.whenStatus.split(" ").includes(data.status);
    }
    if (!finished) setTimeout(tick, document.hidden ? 5000 : 1000);
  };
  setTimeout(tick, 500);
}

// <div data-refresh-url="/dashboard/live" data-refresh-every="5000">: its content is
// replaced by the server's fresh fragment, unless keyboard focus is inside it.
function setUpRefresh(box) {
  const every = Number(box.dataset.refreshEvery) || 10000;
  const tick = async () => {
    try {
      const res = await fetch(box.dataset.refreshUrl, { headers: { Accept: "text/html" } });
      if (res.status === 401 || res.redirected) { window.location.reload(); return; }
      if (res.ok && !box.contains(document.activeElement)) box.innerHTML = await res.text();
    } catch (e) { /* offline for a moment: try again later */ }
    setTimeout(tick, document.hidden ? every * 4 : every);
  };
  setTimeout(tick, every);
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("[data-refresh-url]").forEach(setUpRefresh);
  document.querySelectorAll("textarea[data-counter-url]").forEach(setUpCounter);
  document.querySelectorAll("[data-progress-url]").forEach(setUpProgress);
  // One click sends: a second click while the page loads would only be refused.
  document.querySelectorAll("form[data-once]").forEach((form) => {
    form.addEventListener("submit", (ev) => {
      const button = ev.submitter;
      if (button && button.formAction && !button.formAction.endsWith(form.getAttribute("action"))) return;
      if (form.dataset.sent) { ev.preventDefault(); return; }
      form.dataset.sent = "1";
      if (button) button.setAttribute("aria-disabled", "true");
    });
  });
  // A file over the appliance's upload limit is refused here, next to its field, rather
  // than by the server after the whole upload.
  document.querySelectorAll("input[type=file][data-max-bytes]").forEach((input) => {
    input.form.addEventListener("submit", (ev) => {
      const file = input.files && input.files[0];
      const max = Number(input.dataset.maxBytes);
      if (!file || file.size <= max) return;
      ev.preventDefault();
      let note = document.getElementById(input.id + "-size-error");
      if (!note) {
        note = document.createElement("p");
        note.id = input.id + "-size-error";
        note.className = "field-error";
        input.before(note);
        input.setAttribute("aria-describedby", ((input.getAttribute("aria-describedby") || "") + " " + note.id).trim());
      }
      const mb = (n) => (n / 1048576).toFixed(1);
      note.textContent = `This file is ${mb(file.size)} MB; the limit is ${mb(max)} MB. Split it into smaller files.`;
      input.setAttribute("aria-invalid", "true");
      input.closest(".field").classList.add("has-error");
      input.focus();
    });
  });
  document.querySelectorAll("form[data-confirm]").forEach((form) => {
    form.addEventListener("submit", (ev) => { if (!window.confirm(form.dataset.confirm)) ev.preventDefault(); });
  });
});
