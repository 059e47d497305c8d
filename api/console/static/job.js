// Job page: live status from /api/events/stream?job_id=…, live log lines from the job's log stream,
// and the progress the training reports, read from the job every few seconds while it runs.
"use strict";
(function () {
  var job = document.getElementById("job");
  if (!job || !window.EventSource) { return; }
  var TERMINAL = ["completed", "failed", "cancelled"];
  var TYPES = ["job.submitted", "job.queued", "job.started", "job.completed", "job.failed", "job.cancelled",
               "job.pending", "job.pending_approval", "job.running", "approval.required", "approval.granted",
               "approval.rejected", "approval.expired", "approval.cancelled", "message"];
  var startedTerminal = job.getAttribute("data-terminal") === "1";
  var logs = document.getElementById("logs");
  var follow = document.getElementById("follow");
  var logsState = document.getElementById("logs-state");
  var reloading = false;

  function setText(id, text) {
    var el = document.getElementById(id);
    if (el) { el.textContent = text; }
  }
  function finished() {
    // the page as the server renders a finished job: outputs, cost and the final facts
    if (!startedTerminal && !reloading) { reloading = true; window.location.reload(); }
  }

  var events = new EventSource(job.getAttribute("data-events-url"));
  function onEvent(event) {
    var data;
    try { data = JSON.parse(event.data); } catch (e) { return; }
    if (!data || data.job_id !== job.getAttribute("data-job-id")) { return; }
    var extra = data.data || {};
    if (data.status) {
      var status = document.getElementById("job-status");
      status.textContent = data.status;
      status.setAttribute("data-status", data.status);
    }
    if (extra.agent_name) { setText("job-agent", extra.agent_name); }
    if (extra.queue_reason) { setText("job-queue-reason", extra.queue_reason); }
    if (extra.attempt) {
      var attempt = document.getElementById("job-attempt");
      if (attempt) { attempt.textContent = attempt.textContent.replace(/^\d+/, String(extra.attempt)); }
    }
    if (event.type.indexOf("approval.") === 0) { setText("job-approval", event.type.slice(9)); }
    if (data.status && TERMINAL.indexOf(data.status) >= 0) { events.close(); }
  }
  TYPES.forEach(function (type) { events.addEventListener(type, onEvent); });

  var stream = new EventSource(job.getAttribute("data-logs-url"));
  stream.addEventListener("log", function (event) {
    var data;
    try { data = JSON.parse(event.data); } catch (e) { return; }
    logs.appendChild(document.createTextNode(data.line + "\n"));
    if (follow && follow.checked) { logs.scrollTop = logs.scrollHeight; }
  });
  stream.addEventListener("end", function () {
    stream.close();
    events.close();
    logsState.textContent = "Complete.";
    finished();
  });
  if (follow && follow.checked) { logs.scrollTop = logs.scrollHeight; }

  var PROGRESS_EVERY_MS = 3000;
  var progress = document.getElementById("job-progress");
  function showProgress(value) {
    if (!progress || !value) { return; }
    progress.textContent = "";
    if (typeof value.percent === "number") {
      progress.appendChild(document.createTextNode(Math.round(value.percent) + "%"));
    }
    Object.keys(value).forEach(function (key) {
      if (key === "percent") { return; }
      var tag = document.createElement("span");
      tag.className = "tag";
      tag.textContent = key + ": " + String(value[key]);
      progress.appendChild(document.createTextNode(" "));
      progress.appendChild(tag);
    });
  }
  function readProgress() {
    if (reloading || startedTerminal) { return; }
    fetch("/api/cloud/jobs/" + encodeURIComponent(job.getAttribute("data-job-id")), {
      credentials: "same-origin", headers: { "Accept": "application/json" }
    }).then(function (answer) {
      return answer.ok ? answer.json() : null;
    }).then(function (data) {
      if (!data) { return; }
      showProgress(data.progress);
      if (TERMINAL.indexOf(data.status) < 0) { window.setTimeout(readProgress, PROGRESS_EVERY_MS); }
    }).catch(function () { window.setTimeout(readProgress, PROGRESS_EVERY_MS * 2); });
  }
  window.setTimeout(readProgress, PROGRESS_EVERY_MS);
})();
