// The live view: reads the backend's stream as Server-Sent Events and shows
// each item as it arrives. The server ends every stream with a "done" or an
// "error" event; the page then closes the EventSource, which would otherwise
// reconnect and start the stream over.
"use strict";

(function () {
  const rows = document.getElementById("live-items");
  if (!rows) {
    return;
  }
  const status = document.getElementById("live-status");
  const count = document.getElementById("live-count");
  const progress = document.getElementById("live-progress");
  const keep = 500;
  let received = 0;
  let pending = [];
  let timer = 0;

  // Drawing each of many thousand items on its own would stall the page, so
  // items are drawn in batches.
  function draw() {
    timer = 0;
    const batch = document.createDocumentFragment();
    for (const item of pending.slice(-keep)) {
      const row = document.createElement("tr");
      const id = document.createElement("td");
      id.className = "id";
      id.textContent = item.id;
      const name = document.createElement("td");
      name.textContent = item.name;
      row.append(id, name);
      batch.append(row);
    }
    pending = [];
    rows.append(batch);
    while (rows.children.length > keep) {
      rows.firstElementChild.remove();
    }
    count.textContent = received;
    progress.value = received;
  }

  function finish(text, state) {
    source.close();
    if (timer) {
      clearTimeout(timer);
    }
    draw();
    status.textContent = text;
    status.classList.add(state);
    document.body.dataset.live = state;
  }

  const source = new EventSource(rows.dataset.src);
  source.addEventListener("open", function () {
    status.textContent = "Streaming…";
  });
  source.addEventListener("message", function (event) {
    pending.push(JSON.parse(event.data));
    received++;
    if (!timer) {
      timer = setTimeout(draw, 50);
    }
  });
  source.addEventListener("done", function (event) {
    finish("Done: received " + event.data + " items.", "done");
  });
  // The server's "error" event carries a message; the browser's own, for a
  // lost connection, has none.
  source.addEventListener("error", function (event) {
    finish(event.data || "The connection to the frontend was lost. Reload the page to start again.", "failed");
  });
})();
