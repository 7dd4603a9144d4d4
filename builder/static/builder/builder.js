// Small behaviours for builder pages; markup says what, this file says how. No inline handlers.
(function () {
  "use strict";

  // htmx 2 swaps only 2xx by default, so a form answered with 422 (its errors next to the fields)
  // or a delete refused with 409 looked like a dead button. Decided once, here: those two swap
  // where the form's hx-target expects; every other 4xx/5xx is not swapped and is announced in
  // the notice region instead (see showNotice).
  if (window.htmx) {
    htmx.config.responseHandling = [
      { code: "204", swap: false },
      { code: "[23]..", swap: true },
      { code: "422", swap: true },
      { code: "409", swap: true },
      { code: "[45]..", swap: false, error: true },
      { code: "...", swap: false },
    ];
    // htmx would otherwise inject an inline <style>; a strict CSP forbids it (builder.css has them)
    htmx.config.includeIndicatorStyles = false;
  }

  var MESSAGES = {
    403: "You are not allowed to do that, or your session expired. Reload the page and sign in again.",
    404: "This item no longer exists. Reload the page to see what is there now.",
    413: "That is too large for the server to accept. Send something smaller.",
    429: "Too many requests. Wait a moment, then try again.",
  };
  var NETWORK = "Could not reach the server: check your connection, then try again. Nothing was saved.";

  function messageFor(status) {
    if (MESSAGES[status]) return MESSAGES[status];
    if (status === 502 || status === 503 || status === 504) {
      return "The server is not answering right now (it may be restarting). Nothing was saved; try again in a moment.";
    }
    if (status >= 500) {
      return "The server ran into a problem (error " + status + ") and nothing was saved. Try again; if it keeps happening, tell your administrator.";
    }
    return "The request was refused (error " + status + "). Reload the page and try again.";
  }

  function showNotice(text) {
    var notice = document.getElementById("b-notice");
    if (!notice) return;
    notice.querySelector("[data-notice-text]").textContent = text;
    notice.hidden = false;
  }
  function hideNotice() {
    var notice = document.getElementById("b-notice");
    if (notice) notice.hidden = true;
  }
  window.builderNotice = { show: showNotice, hide: hideNotice, messageFor: messageFor, network: NETWORK };

  function openDialogs(root) {
    if (!root || !root.querySelectorAll) return;
    var dialogs = Array.prototype.slice.call(root.querySelectorAll("dialog[data-open-on-load]"));
    if (root.matches && root.matches("dialog[data-open-on-load]")) dialogs.push(root);
    dialogs.forEach(function (dialog) {
      if (!dialog.open && dialog.showModal) dialog.showModal();
    });
  }

  document.addEventListener("click", function (event) {
    if (event.target.closest("[data-dismiss-notice]")) { hideNotice(); return; }
    var button = event.target.closest("[data-close-dialog]");
    if (!button) return;
    var dialog = button.closest("dialog");
    if (dialog) { dialog.close(); dialog.remove(); }
    else { window.history.back(); }
  });

  // Every request: its buttons are disabled and a "Working…" indicator shows until it ends;
  // a result shown from an earlier request (try-it) goes at once, so it can never pass for the
  // new one, whether the new one succeeds, fails or never reaches the server.
  var pending = 0;
  document.addEventListener("htmx:beforeRequest", function (event) {
    var elt = event.detail.elt;
    hideNotice();
    var scope = elt.closest("form") || elt;
    scope.querySelectorAll(".b-result").forEach(function (node) { node.remove(); });
    scope.querySelectorAll("button, input[type=submit]").forEach(function (button) {
      if (!button.disabled) { button.disabled = true; button.setAttribute("data-b-busy", ""); }
    });
    scope.setAttribute("aria-busy", "true");
    pending += 1;
    document.documentElement.classList.add("b-loading");
  });
  document.addEventListener("htmx:afterRequest", function (event) {
    var elt = event.detail.elt;
    var scope = elt.closest("form") || elt;
    scope.querySelectorAll("[data-b-busy]").forEach(function (button) {
      button.disabled = false; button.removeAttribute("data-b-busy");
    });
    scope.removeAttribute("aria-busy");
    pending = Math.max(0, pending - 1);
    if (!pending) document.documentElement.classList.remove("b-loading");
  });
  document.addEventListener("htmx:responseError", function (event) {
    // a refusal that says why (builder.views.common.refused) shows its own words
    var own = event.detail.xhr.getResponseHeader("X-Notice");
    showNotice(own ? decodeURIComponent(own) : messageFor(event.detail.xhr.status));
  });
  document.addEventListener("htmx:sendError", function () { showNotice(NETWORK); });
  document.addEventListener("htmx:timeout", function () { showNotice(NETWORK); });

  // The key follows the name while it still is what the name suggested (or empty); once the
  // user types their own key it is left alone. Same rules as key_from_name in Python.
  function keyFromName(name) {
    var key = name.normalize("NFKD").replace(/[^\x00-\x7f]/g, "").toLowerCase()
      .replace(/[^a-z0-9]+/g, "-").replace(/^-+|-+$/g, "").slice(0, 64).replace(/-+$/, "");
    if (key.length < 3) key = key ? "agent-" + key : "agent";
    return key;
  }
  document.addEventListener("input", function (event) {
    var name = event.target;
    if (!name.form || name.name !== "name") return;
    var key = name.form.querySelector("[data-key-from=name]");
    if (!key) return;
    var previous = name.hasAttribute("data-prev") ? name.getAttribute("data-prev") : name.defaultValue;
    if (!key.value || key.value === keyFromName(previous)) key.value = name.value.trim() ? keyFromName(name.value) : "";
    name.setAttribute("data-prev", name.value);
  });

  // Unsaved changes: a form the user has typed into is "dirty" until it is saved; leaving the
  // page then asks first. A form answered with 422 comes back still unsaved (what was typed).
  var GUARDED = "form[data-warn-unsaved], #tool-form, #system-form";
  function dirtyForms() {
    return Array.prototype.filter.call(document.querySelectorAll(GUARDED), function (form) {
      return form.hasAttribute("data-dirty");
    });
  }
  function markDirty(event) {
    var form = event.target.form || (event.target.closest && event.target.closest("form"));
    if (form && form.matches(GUARDED)) form.setAttribute("data-dirty", "");
  }
  document.addEventListener("input", markDirty);
  document.addEventListener("change", markDirty);
  document.addEventListener("submit", function (event) {
    // a full-page submit (no htmx) leaves the page on purpose
    if (event.target.matches(GUARDED) && !event.target.hasAttribute("hx-post")) event.target.removeAttribute("data-dirty");
  });
  var refused = null; // id of a guarded form answered 422, re-marked once its answer is swapped in
  document.addEventListener("htmx:beforeOnLoad", function (event) {
    var form = event.detail.elt;
    if (!form.matches || !form.matches(GUARDED)) return;
    // saved: cleared before htmx follows an HX-Redirect, which would otherwise ask "leave the page?"
    if (event.detail.xhr.status < 400) form.removeAttribute("data-dirty");
    if (event.detail.xhr.status === 422 && form.id) refused = form.id;
  });
  document.addEventListener("htmx:afterRequest", function () {
    // (fires on an ancestor when the form itself was replaced)
    var now = refused && document.getElementById(refused);
    if (now) now.setAttribute("data-dirty", "");
    refused = null;
  });
  window.addEventListener("beforeunload", function (event) {
    if (!dirtyForms().length) return;
    event.preventDefault();
    event.returnValue = "";
  });
  window.builderUnsaved = dirtyForms;

  // On a phone a list table is shown one card per row (builder.css, .b-table--stacked): each cell
  // is labelled with its column's header. Compact and diff tables stay tables. The roles keep the
  // table a table for screen readers once CSS changes its display.
  var STACKED = "table.b-table:not(.b-table--compact):not(.b-diff-table)";
  function stackTables(root) {
    if (!root || !root.querySelectorAll) return;
    var tables = Array.prototype.slice.call(root.querySelectorAll(STACKED));
    if (root.matches && root.matches(STACKED)) tables.push(root);
    if (root.closest && root.closest(STACKED) && root.matches("tr, tbody")) tables.push(root.closest(STACKED));
    tables.forEach(function (table) {
      var headers = Array.prototype.map.call(table.querySelectorAll("thead th"), function (th) {
        return th.querySelector(".b-sr") ? "" : th.textContent.trim();
      });
      table.setAttribute("role", "table");
      table.querySelectorAll("tr").forEach(function (tr) { tr.setAttribute("role", "row"); });
      table.querySelectorAll("thead th").forEach(function (th) { th.setAttribute("role", "columnheader"); });
      table.querySelectorAll("tbody tr").forEach(function (tr) {
        Array.prototype.forEach.call(tr.children, function (cell, i) {
          cell.setAttribute("role", cell.tagName === "TH" ? "rowheader" : "cell");
          if (headers[i] && cell.tagName === "TD" && !cell.hasAttribute("colspan")) cell.setAttribute("data-label", headers[i]);
        });
      });
      table.classList.add("b-table--stacked");
    });
  }

  document.addEventListener("DOMContentLoaded", function () { openDialogs(document); stackTables(document); });
  // htmx:load fires on the new content itself (afterSwap fires on the replaced, detached target)
  document.addEventListener("htmx:load", function (event) { openDialogs(event.target); stackTables(event.target); });
})();
