// OIDC return page: hand the provider's answer to the API's callback (with this browser's binding
// cookie), then go where the sign-in started.
"use strict";
(function () {
  var status = document.getElementById("oidc-status");
  fetch("/api/auth/external/oidc/callback" + window.location.search, {
    credentials: "same-origin", headers: { "Accept": "application/json" }
  }).then(function (response) {
    return response.json().then(function (body) { return { ok: response.ok, body: body }; });
  }).then(function (result) {
    if (!result.ok) { status.textContent = "Sign-in failed: " + (result.body.detail || "unknown error"); return; }
    var next = result.body.return_to;
    window.location.assign(typeof next === "string" && next.charAt(0) === "/" && next.charAt(1) !== "/" ? next : "/jobs");
  }).catch(function () { status.textContent = "Sign-in failed: the server could not be reached."; });
})();
