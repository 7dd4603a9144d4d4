// The API keys page: copy the new key. Markup says what (data-copy="#input"), this says how.
(function () {
  "use strict";
  function fallbackCopy(input) {
    input.select();
    try { return document.execCommand("copy"); } catch (e) { return false; }
  }
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy]");
    if (!button) return;
    var input = document.querySelector(button.getAttribute("data-copy"));
    var status = button.parentNode.querySelector("[data-copy-status]");
    if (!input) return;
    function done(ok) {
      if (status) {
        status.textContent = ok ? "Copied. Paste it where your program keeps secrets."
          : "Could not copy: select the key and copy it with Ctrl+C (⌘C on a Mac).";
      }
      if (ok) button.textContent = "Copied";
    }
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(input.value).then(function () { done(true); }, function () {
        done(fallbackCopy(input));
      });
    } else {
      done(fallbackCopy(input));
    }
  });
})();
