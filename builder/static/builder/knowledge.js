// Knowledge uploads: a progress bar while the files travel, then a cleared file picker.
// The form works without this file (a plain multipart POST); htmx sends it and reports progress.
(function () {
  "use strict";
  document.addEventListener("htmx:xhr:progress", function (event) {
    var form = event.target.closest && event.target.closest("#upload-form");
    if (!form || !event.detail.lengthComputable) return;
    var bar = document.getElementById("upload-progress");
    bar.hidden = false;
    bar.value = Math.round((event.detail.loaded / event.detail.total) * 100);
    bar.textContent = bar.value + "%";
  });
  document.addEventListener("htmx:afterRequest", function (event) {
    if (!event.target.closest || !event.target.closest("#upload-form")) return;
    var bar = document.getElementById("upload-progress");
    bar.hidden = true;
    bar.value = 0;
    // cleared only when everything was taken (200); a refusal (422) keeps what was chosen and
    // typed, so the address or text can be corrected and sent again
    var xhr = event.detail.xhr;
    if (event.detail.successful && xhr && xhr.status === 200) event.target.closest("#upload-form").reset();
  });
})();
