// Konvrt dashboard: small progressive enhancements. Every page works without this file.
"use strict";

function copyFrom(button) {
  const field = document.querySelector(button.dataset.copy);
  if (!field) return;
  const done = () => {
    const label = button.textContent;
    button.textContent = "Copied";
    setTimeout(() => { button.textContent = label; }, 1500);
  };
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(field.value).then(done, () => {});
  } else {
    const type = field.type;
    field.type = "text";
    field.select();
    document.execCommand("copy");
    field.type = type;
    done();
  }
}

function reveal(button) {
  const field = document.querySelector(button.dataset.reveal);
  if (!field) return;
  const hidden = field.type === "password";
  field.type = hidden ? "text" : "password";
  button.textContent = hidden ? "Hide" : "Show";
}

document.addEventListener("click", (event) => {
  const button = event.target.closest("button[data-copy], button[data-reveal]");
  if (!button) return;
  if (button.dataset.copy) copyFrom(button);
  else reveal(button);
});

document.addEventListener("submit", (event) => {
  const form = event.target.closest("form[data-confirm]");
  if (form && !window.confirm(form.dataset.confirm)) event.preventDefault();
});

// One-time sign-in links carry their token after '#': browsers never send that part to a server,
// so it stays out of access logs and Referer headers. Move it into the form, then off the address bar.
(function fillLinkToken() {
  const field = document.getElementById("link-token");
  if (!field || location.hash.length < 2) return;
  field.value = decodeURIComponent(location.hash.slice(1));
  history.replaceState(null, "", location.pathname);
})();

// While a job is unfinished, refresh the jobs table every 1.5 s.
(function pollJobs() {
  const POLL_MS = 1500;
  function schedule() {
    const table = document.getElementById("jobs-table");
    if (table && table.dataset.live === "true") setTimeout(refresh, POLL_MS);
  }
  async function refresh() {
    try {
      const response = await fetch("/dashboard/jobs/table", { credentials: "same-origin", cache: "no-store" });
      if (!response.ok) return; // signed out or server trouble: stop quietly; a reload starts again
      const holder = document.createElement("div");
      holder.innerHTML = await response.text();
      const fresh = holder.querySelector("#jobs-table");
      const current = document.getElementById("jobs-table");
      if (fresh && current) current.replaceWith(fresh);
    } catch (error) {
      // a network blip: try again on the next tick
    }
    schedule();
  }
  schedule();
})();
