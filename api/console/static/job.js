// Job page: live status from /api/events/stream?job_id=…, live log lines from the job's log stream.
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
})();
