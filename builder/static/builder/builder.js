// Small behaviours for builder pages; markup says what, this file says how. No inline handlers.
(function () {
  "use strict";
  function openDialogs(root) {
    root.querySelectorAll("dialog[data-open-on-load]").forEach(function (dialog) {
      if (!dialog.open && dialog.showModal) dialog.showModal();
    });
  }
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-close-dialog]");
    if (!button) return;
    var dialog = button.closest("dialog");
    if (dialog) { dialog.close(); dialog.remove(); }
    else { window.history.back(); }
  });
  document.addEventListener("DOMContentLoaded", function () { openDialogs(document); });
  document.addEventListener("htmx:afterSwap", function (event) { openDialogs(event.target); });
})();
