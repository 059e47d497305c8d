// Jobs list: keep each row's status and attempt current from /api/events/stream (SSE).
"use strict";
(function () {
  var table = document.getElementById("jobs-table");
  if (!table || !window.EventSource) { return; }
  var TYPES = ["job.submitted", "job.queued", "job.started", "job.completed", "job.failed", "job.cancelled",
               "job.pending", "job.pending_approval", "job.running", "approval.required", "approval.granted",
               "approval.rejected", "approval.expired", "approval.cancelled", "message"];
  function cell(attr, jobId) {
    var found = null;
    table.querySelectorAll("[" + attr + "]").forEach(function (el) {
      if (el.getAttribute(attr) === jobId) { found = el; }
    });
    return found;
  }
  function onEvent(event) {
    var data;
    try { data = JSON.parse(event.data); } catch (e) { return; }
    if (!data || !data.job_id) { return; }
    if (data.status) {
      var status = cell("data-status-for", data.job_id);
      if (status) { status.textContent = data.status; status.setAttribute("data-status", data.status); }
    }
    if (data.data && data.data.attempt) {
      var attempt = cell("data-attempt-for", data.job_id);
      if (attempt) { attempt.textContent = String(data.data.attempt); }
    }
  }
  var source = new EventSource(table.getAttribute("data-events-url"));
  TYPES.forEach(function (type) { source.addEventListener(type, onEvent); });
})();
