// The Publish page: copy the snippet, and reload the preview after the settings are saved.
(function () {
  "use strict";
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy]");
    if (!button) return;
    var source = document.querySelector(button.getAttribute("data-copy"));
    var status = button.parentNode.querySelector("[data-copy-status]");
    function said(text) { if (status) status.textContent = text; }
    function fallback() {
      source.focus();
      source.select();
      try { said(document.execCommand("copy") ? "Copied." : "Press Ctrl+C (or ⌘C) to copy."); }
      catch (e) { said("Press Ctrl+C (or ⌘C) to copy."); }
    }
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(source.value).then(function () { said("Copied."); }, fallback);
    } else {
      fallback();
    }
  });
  document.addEventListener("htmx:afterSwap", function (event) {
    if (event.detail.target && event.detail.target.id === "widget-settings" || (event.detail.elt && event.detail.elt.id === "widget-settings")) {
      var form = document.getElementById("widget-settings");
      var frame = document.getElementById("widget-preview");
      if (frame && form && form.querySelector(".b-alert--ok")) frame.src = frame.src;
    }
  });
})();
