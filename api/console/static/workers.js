// Worker token page: a button that copies the agent's command line (without script, select the text).
"use strict";
(function () {
  var button = document.getElementById("copy-command");
  if (!button || !navigator.clipboard) { return; }
  var state = document.getElementById("copy-state");
  button.hidden = false;
  button.addEventListener("click", function () {
    var text = document.getElementById(button.getAttribute("data-copy")).textContent;
    navigator.clipboard.writeText(text).then(function () { state.textContent = "Copied."; },
                                             function () { state.textContent = "Could not copy: select the text."; });
  });
})();
