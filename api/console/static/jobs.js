// Jobs list: keep each row's status and attempt current from /api/events/stream (SSE), and on the
// first page put jobs submitted meanwhile at the top when they match the page's filters.
"use strict";
(function () {
  var table = document.getElementById("jobs-table");
  if (!table || !window.EventSource) { return; }
  var TYPES = ["job.submitted", "job.queued", "job.started", "job.completed", "job.failed", "job.cancelled",
               "job.pending", "job.pending_approval", "job.running", "approval.required", "approval.granted",
               "approval.rejected", "approval.expired", "approval.cancelled", "message"];
  var filters = JSON.parse(table.getAttribute("data-filters") || "{}");
  var firstPage = table.getAttribute("data-first-page") === "1";
  var body = table.querySelector("tbody");
  var total = document.getElementById("jobs-total");
  var asked = {};

  function cell(attr, jobId) {
    var found = null;
    table.querySelectorAll("[" + attr + "]").forEach(function (el) {
      if (el.getAttribute(attr) === jobId) { found = el; }
    });
    return found;
  }
  function matches(job) {
    return (!filters.status || job.status === filters.status) && (!filters.user || job.owner === filters.user ||
      job.user_id === filters.user) && (!filters.config || job.config_name === filters.config) &&
      (!filters.target || job.target === filters.target);
  }
  function td(text, className) {
    var el = document.createElement("td");
    if (className) { el.className = className; }
    el.textContent = text;
    return el;
  }
  function addRow(job) {
    if (cell("data-status-for", job.job_id) || !matches(job)) { return; }
    var row = document.createElement("tr");
    row.setAttribute("data-job-id", job.job_id);
    row.className = "new-row";
    var first = document.createElement("td");
    var link = document.createElement("a");
    link.href = "/jobs/" + encodeURIComponent(job.job_id);
    link.textContent = job.job_id;
    first.appendChild(link);
    row.appendChild(first);
    row.appendChild(td(job.config_name, "config"));
    var statusCell = document.createElement("td");
    var status = document.createElement("span");
    status.className = "status";
    status.setAttribute("data-status", job.status);
    status.setAttribute("data-status-for", job.job_id);
    status.textContent = job.status;
    statusCell.appendChild(status);
    row.appendChild(statusCell);
    row.appendChild(td(job.owner || ""));
    row.appendChild(td(job.target));
    var attempt = td(String(job.attempt));
    attempt.setAttribute("data-attempt-for", job.job_id);
    row.appendChild(attempt);
    var when = document.createElement("td");
    var time = document.createElement("time");
    time.setAttribute("datetime", job.created_at || "");
    time.textContent = (job.created_at || "").slice(0, 19).replace("T", " ");
    when.appendChild(time);
    row.appendChild(when);
    var empty = body.querySelector("td.empty");
    if (empty) { empty.parentNode.remove(); }
    body.insertBefore(row, body.firstChild);
    if (total) {
      var n = parseInt(total.textContent, 10) + 1;
      if (!isNaN(n)) { total.textContent = n + " job" + (n === 1 ? "" : "s"); }
    }
  }
  function show(jobId, status, attempt) {
    var el = cell("data-status-for", jobId);
    if (el && status) { el.textContent = status; el.setAttribute("data-status", status); }
    var at = cell("data-attempt-for", jobId);
    if (at && attempt) { at.textContent = String(attempt); }
  }
  function read(jobId, then) {
    fetch("/api/cloud/jobs/" + encodeURIComponent(jobId), {
      credentials: "same-origin", headers: { "Accept": "application/json" }
    }).then(function (answer) {
      return answer.ok ? answer.json() : null;
    }).then(function (job) {
      if (job) { then(job); }
    }).catch(function () { /* the next page load shows it */ });
  }
  function fetchNew(jobId) {
    // events of this job that arrive while it is read may be newer than the answer: read it again
    if (asked[jobId]) { return; }
    asked[jobId] = { reading: true, changed: false };
    read(jobId, function (job) {
      addRow(job);
      asked[jobId].reading = false;
      if (asked[jobId].changed) { read(jobId, function (again) { show(jobId, again.status, again.attempt); }); }
    });
  }
  function onEvent(event) {
    var data;
    try { data = JSON.parse(event.data); } catch (e) { return; }
    if (!data || !data.job_id) { return; }
    if (!cell("data-status-for", data.job_id)) {
      if (asked[data.job_id] && asked[data.job_id].reading) { asked[data.job_id].changed = true; }
      else if (firstPage && event.type === "job.submitted") { fetchNew(data.job_id); }
      return;
    }
    show(data.job_id, data.status, data.data && data.data.attempt);
  }
  var source = new EventSource(table.getAttribute("data-events-url"));
  TYPES.forEach(function (type) { source.addEventListener(type, onEvent); });
})();
