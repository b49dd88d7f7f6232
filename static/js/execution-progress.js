// Live progress for an execution page: polls the execution's JSON (GET /api/v1/executions/<id>)
// and moves the bar; when the run finishes, reloads once so the server renders the final results.
// Plain JavaScript, no framework; without JavaScript the page refreshes itself (<noscript> meta).
(function () {
  "use strict";
  var section = document.getElementById("execution-progress");
  if (!section || section.dataset.finished === "true") return;
  var FINISHED = ["completed", "failed", "cancelled"];
  var url = section.dataset.url;
  var bar = section.querySelector(".bar");
  var box = section.querySelector(".progress");
  var delay = 700;

  function show(name, text) {
    document.querySelectorAll('[data-field="' + name + '"]').forEach(function (el) { el.textContent = text; });
  }

  function render(data) {
    var pct = Math.max(0, Math.min(100, data.progress_percentage || 0));
    bar.style.width = pct + "%";
    box.setAttribute("aria-valuenow", String(Math.round(pct)));
    show("progress_percentage", Math.round(pct) + "%");
    show("progress", data.progress);
    show("total_evaluations", data.total_evaluations);
    show("successful_evaluations", data.successful_evaluations);
    show("failed_evaluations", data.failed_evaluations);
    if (data.avg_score !== null) show("avg_score", data.avg_score.toFixed(3));
    if (data.avg_latency_ms !== null) show("avg_latency_ms", Math.round(data.avg_latency_ms) + " ms");
    if (data.duration_seconds !== null) show("duration_seconds", data.duration_seconds.toFixed(1) + " s");
    var status = document.getElementById("execution-status");
    if (status) {
      status.textContent = data.status.charAt(0).toUpperCase() + data.status.slice(1);
      status.className = "badge " + data.status;
    }
  }

  function poll() {
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.json();
      })
      .then(function (data) {
        render(data);
        if (FINISHED.indexOf(data.status) !== -1) {
          box.classList.add(data.status === "completed" ? "finished" : data.status);
          window.setTimeout(function () { window.location.reload(); }, 600);
          return;
        }
        delay = 700;
        window.setTimeout(poll, delay);
      })
      .catch(function () {
        delay = Math.min(delay * 2, 10000); // back off while the server is unreachable or throttling
        window.setTimeout(poll, delay);
      });
  }

  window.setTimeout(poll, 300);
})();
