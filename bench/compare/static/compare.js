// The /compare page: starts a bench without leaving the page, shows its
// progress by polling /compare/status, and reloads the page when the run is
// over so that the new table and chart appear.
"use strict";

(function () {
  const form = document.getElementById("compare-form");
  if (!form) {
    return;
  }
  const button = document.getElementById("compare-run");
  const box = document.getElementById("compare-progress");
  const status = document.getElementById("compare-status");
  const count = document.getElementById("compare-count");
  const bar = document.getElementById("compare-bar");
  const pollEvery = 400;

  function show(p) {
    box.hidden = false;
    count.textContent = p.done + " of " + p.total + " measurements";
    bar.max = Math.max(p.total, 1);
    bar.value = p.done;
    status.textContent = p.case ? "Running " + p.case + "…" : "Starting…";
  }

  function fail(text) {
    button.disabled = false;
    box.hidden = false;
    status.textContent = text;
    status.classList.add("failed");
    document.body.dataset.compare = "failed";
  }

  function poll() {
    fetch("/compare/status", { headers: { Accept: "application/json" } })
      .then(function (resp) { return resp.json(); })
      .then(function (p) {
        if (p.running) {
          show(p);
          setTimeout(poll, pollEvery);
          return;
        }
        if (p.error) {
          fail(p.error);
          return;
        }
        status.textContent = "Done.";
        document.body.dataset.compare = "done";
        window.location.reload();
      })
      .catch(function () { fail("The connection to the frontend was lost. Reload the page."); });
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    button.disabled = true;
    fetch("/compare/run", { method: "POST", headers: { Accept: "application/json" }, body: new URLSearchParams(new FormData(form)) })
      .then(function (resp) {
        return resp.json().then(function (body) {
          if (!resp.ok) {
            fail(body.error || "The bench could not start.");
            return;
          }
          document.body.dataset.compare = "running";
          show({ done: 0, total: 0, case: "" });
          poll();
        });
      })
      .catch(function () { fail("The connection to the frontend was lost. Reload the page."); });
  });

  if (box.dataset.running === "true") {
    button.disabled = true;
    poll();
  }
})();
