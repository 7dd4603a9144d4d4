// The playground pane: send a turn, stream its events over SSE, render the finished turn from the server.
// Streaming text is inserted as text (never HTML); the finished turn comes back from the server as
// sanitised markdown. EventSource reconnects by itself after a network drop and resumes with
// Last-Event-ID; after an answer that is not 200 (a 503 while the database restarts) it gives up,
// so the pane opens a new one itself, with backoff, from the last event it saw (?from_seq=).
// Files attached with the button or dropped on the message box go with the next message (chips
// with a remove button); the server reads them and answers a 422 naming the file if one cannot be used.
(function () {
  "use strict";
  var TERMINAL = ["run.succeeded", "run.failed", "run.cancelled", "run.timed_out"];
  var STEP_TYPES = ["tool.call", "tool.result", "sub_agent.start", "sub_agent.end"];

  function init() {
    var pane = document.getElementById("playground");
    if (!pane) return;
    var form = document.getElementById("pg-form");
    var input = document.getElementById("pg-message");
    var chat = document.getElementById("pg-chat");
    var status = document.getElementById("pg-status");
    var sendButton = document.getElementById("pg-send");
    var stopButton = document.getElementById("pg-stop");
    var retryButton = document.getElementById("pg-retry");
    var editButton = document.getElementById("pg-edit");
    var debug = document.getElementById("pg-debug");
    var attachButton = document.getElementById("pg-attach");
    var chips = document.getElementById("pg-files");
    var maxFiles = parseInt(pane.dataset.maxFiles, 10) || 5;
    var maxBytes = parseInt(pane.dataset.maxBytes, 10) || 10485760;
    var csrf = form.querySelector("input[name=csrfmiddlewaretoken]").value;
    var state = { source: null, run: null, lastText: lastUserText(), replaceLast: false, finishing: false, files: [] };

    // The editor's "Playground" jump (small screens) lands on the message box itself, ready to
    // type: jumping to the pane's top left the box below the fold when the pane was tall.
    document.querySelectorAll('a.b-jump[href="#playground"]').forEach(function (link) {
      link.addEventListener("click", function (event) {
        event.preventDefault();
        history.replaceState(null, "", "#playground");
        input.scrollIntoView({ block: "center" });
        input.focus({ preventScroll: true });
      });
    });

    // the text of the last message sent, or null when nothing was sent yet ("" for files alone)
    function lastUserText() {
      var users = chat.querySelectorAll(".b-msg--user");
      return users.length ? users[users.length - 1].textContent : null;
    }
    function setBusy(busy) {
      sendButton.disabled = busy;
      attachButton.disabled = busy;
      stopButton.hidden = !busy;
      retryButton.disabled = busy || state.lastText === null;
      editButton.disabled = busy || state.lastText === null;
      pane.setAttribute("aria-busy", busy ? "true" : "false");
    }
    function el(tag, cls, text) {
      var node = document.createElement(tag);
      if (cls) node.className = cls;
      if (text !== undefined) node.textContent = text;
      return node;
    }
    function scroll() { chat.scrollTop = chat.scrollHeight; }
    // as the server writes sizes: 12.3 MB, 10 MB (a round limit), 48 KB, 900 bytes
    function fileSize(bytes) {
      if (bytes >= 1048576) return (bytes % 1048576 ? (bytes / 1048576).toFixed(1) : bytes / 1048576) + " MB";
      if (bytes >= 1024) return Math.round(bytes / 1024) + " KB";
      return bytes + " bytes";
    }
    // the files of a message as chips; in the composer each has a remove button
    function fileChips(list, files, removable) {
      list.textContent = "";
      files.forEach(function (file, index) {
        var chip = el("li", "b-chip");
        chip.appendChild(el("span", "b-chip__name", file.name));
        chip.appendChild(el("span", "b-muted", fileSize(file.size)));
        if (removable) {
          var remove = el("button", "", "×");
          remove.type = "button";
          remove.setAttribute("aria-label", "Remove " + file.name);
          remove.addEventListener("click", function () {
            state.files.splice(index, 1);
            renderFiles();
            (chips.querySelector("button") || input).focus();
          });
          chip.appendChild(remove);
        }
        list.appendChild(chip);
      });
      list.hidden = !files.length;
    }
    function renderFiles() { fileChips(chips, state.files, true); }
    // Checked here for a quick answer; the server checks again (and reads each file).
    function addFiles(list) {
      var refused = [];
      Array.prototype.forEach.call(list, function (file) {
        if (!file.size) refused.push(file.name + ": the file is empty.");
        else if (file.size > maxBytes) refused.push(file.name + ": the file is " + fileSize(file.size) + "; attach files of at most " + fileSize(maxBytes) + ".");
        else if (state.files.length >= maxFiles) refused.push(file.name + ": attach at most " + maxFiles + " files to one message.");
        else state.files.push(file);
      });
      renderFiles();
      if (refused.length) showError(refused.join(" "));
      else if (status.classList.contains("b-error")) { status.textContent = ""; status.classList.remove("b-error"); }
    }
    // Why a message was not sent: shown under the chat, what was typed stays in the box.
    function showError(message) {
      status.textContent = message;
      status.classList.add("b-error");
    }

    debug.addEventListener("change", function () { pane.classList.toggle("b-debug", debug.checked); });
    setBusy(false);

    // The file picker's input is made on each click and never put in the page: the admin theme's
    // script decorates every file input in the document with its own upload widget.
    attachButton.addEventListener("click", function () {
      var picker = document.createElement("input");
      picker.type = "file";
      picker.multiple = true;
      picker.accept = attachButton.dataset.accept || "";
      picker.addEventListener("change", function () {
        addFiles(picker.files);
        input.focus();
      });
      picker.click();
    });
    // dropping files on the message box (or anywhere on the composer) attaches them
    function dragsFiles(event) {
      return event.dataTransfer && Array.prototype.indexOf.call(event.dataTransfer.types || [], "Files") >= 0;
    }
    form.addEventListener("dragover", function (event) {
      if (!dragsFiles(event)) return;
      event.preventDefault();
      form.classList.add("b-composer--drop");
    });
    form.addEventListener("dragleave", function (event) {
      if (!form.contains(event.relatedTarget)) form.classList.remove("b-composer--drop");
    });
    form.addEventListener("drop", function (event) {
      form.classList.remove("b-composer--drop");
      if (!dragsFiles(event)) return;
      event.preventDefault();
      if (state.run || state.sending) return;
      addFiles(event.dataTransfer.files);
      input.focus();
    });

    input.addEventListener("keydown", function (event) {
      if (event.key === "Enter" && !event.shiftKey) { event.preventDefault(); form.requestSubmit(); }
    });

    chat.addEventListener("click", function (event) {
      var suggestion = event.target.closest("[data-suggestion]");
      if (!suggestion || state.run || state.sending) return;
      input.value = suggestion.getAttribute("data-suggestion");
      form.requestSubmit();
    });

    // retry and edit send no files: the server keeps those of the message they replace
    retryButton.addEventListener("click", function () {
      if (state.lastText === null) return;
      removeLastTurn();
      send(state.lastText, true, []);
    });
    editButton.addEventListener("click", function () {
      input.value = state.lastText || "";
      state.replaceLast = true;
      input.focus();
      status.textContent = "Editing your last message: sending replaces it (its attached files are kept).";
    });

    function removeLastTurn() {
      var turns = chat.querySelectorAll(".b-turn");
      if (turns.length) turns[turns.length - 1].remove();
    }

    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var text = input.value.trim();
      var files = state.files.slice();
      if ((!text && !files.length && !state.replaceLast) || state.run || state.sending) return;
      saveEditsFirst(function () {
        if (state.replaceLast) removeLastTurn();
        send(text, state.replaceLast, files);
      });
    });

    // The playground runs the saved draft, so edits on screen are saved before a message goes:
    // what is tried is what is seen. A save refused (422) sends nothing and says why.
    function saveEditsFirst(then) {
      var editor = (window.builderUnsaved ? window.builderUnsaved() : []).filter(function (f) {
        return f.id === "agent-editor" || f.id === "system-form";
      })[0];
      if (!editor || !window.htmx) { then(); return; }
      if (editor.id === "system-form") {
        // saving a system reloads the page; say so rather than send to the old version
        showError("Save the system first (Save system): the playground runs what is saved.");
        return;
      }
      status.classList.remove("b-error");
      status.textContent = "Saving your edits first…";
      // htmx:afterRequest of a form it replaced fires on an ancestor, so the status is taken
      // from htmx:beforeOnLoad, which still fires on the form itself
      var answered = null;
      function loaded(event) { if (event.detail.elt === editor) answered = event.detail.xhr.status; }
      function done(event) {
        if (answered === null && event.detail.elt !== editor) return;
        document.removeEventListener("htmx:beforeOnLoad", loaded);
        document.removeEventListener("htmx:afterRequest", done);
        var code = answered || 0;
        if (code >= 200 && code < 300) { status.textContent = ""; then(); }
        else if (code === 422) showError("Your edits were not saved: fix what the settings say, then send again.");
        else showError(code ? window.builderNotice.messageFor(code) : window.builderNotice.network);
      }
      document.addEventListener("htmx:beforeOnLoad", loaded);
      document.addEventListener("htmx:afterRequest", done);
      editor.requestSubmit();
    }

    function newKey() {
      // crypto.randomUUID needs a secure context; a plain-HTTP intranet host has none
      if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
      return String(Date.now()) + "-" + Math.random().toString(16).slice(2);
    }

    function send(text, replaceLast, files) {
      // Enter pressed twice, or a double click, before the first answer: one run, not two
      if (state.sending) return;
      state.sending = true;
      // the opening message stays as the conversation's first bubble; suggestions and hints go
      var empty = document.getElementById("pg-empty");
      if (empty) {
        empty.querySelectorAll(".b-suggestions, .b-empty").forEach(function (node) { node.remove(); });
        empty.removeAttribute("id");
      }
      var body = new FormData();
      body.append("message", text);
      body.append("idempotency_key", newKey());
      body.append("target", document.getElementById("pg-target").value);
      body.append("conversation_id", pane.dataset.conversationId || "");
      if (replaceLast) body.append("replace_last", "1");
      files.forEach(function (file) { body.append("files", file, file.name); });
      state.replaceLast = false;
      setBusy(true);
      status.classList.remove("b-error");
      status.textContent = files.length ? "Sending and reading " + files.length + " file" + (files.length > 1 ? "s" : "") + "…" : "Sending…";
      fetch(pane.dataset.sendUrl, { method: "POST", body: body, headers: { "X-CSRFToken": csrf }, credentials: "same-origin" })
        .then(function (response) {
          // a 422 answers in JSON with the reason; a 500 or a proxy's 502 page is HTML
          var type = response.headers.get("Content-Type") || "";
          if (type.indexOf("application/json") < 0) {
            return { ok: false, data: { message: window.builderNotice.messageFor(response.status) } };
          }
          return response.json().then(function (data) { return { ok: response.ok, data: data }; });
        })
        .then(function (result) {
          state.sending = false;
          // refused: what was typed and the attached files stay, with the reason next to them
          if (!result.ok) { showError(result.data.message || "Could not send."); setBusy(false); return; }
          status.classList.remove("b-error");
          input.value = "";
          if (files.length) { state.files = []; renderFiles(); }
          state.lastText = text;
          pane.dataset.conversationId = result.data.conversation_id;
          startTurn(text, result.data, files);
        })
        .catch(function () { state.sending = false; showError(window.builderNotice.network); setBusy(false); });
    }

    function startTurn(text, run, files) {
      var turn = el("div", "b-turn");
      turn.dataset.runId = run.run_id;
      turn.appendChild(el("div", "b-msg b-msg--user", text));
      if (files.length) {
        var sent = el("ul", "b-attachments b-attachments--sent");
        sent.setAttribute("aria-label", "Attached files");
        fileChips(sent, files, false);
        turn.appendChild(sent);
      }
      var reply = el("div", "b-msg b-msg--assistant");
      turn.appendChild(reply);
      chat.appendChild(turn);
      scroll();
      state.run = { info: run, turn: turn, reply: reply, text: "", lastSeq: 0, delay: 0, timer: null };
      status.textContent = "Thinking…";
      connect();
    }

    function streamUrl(run) {
      if (!run.lastSeq) return run.info.stream_url;
      var joiner = run.info.stream_url.indexOf("?") >= 0 ? "&" : "?";
      return run.info.stream_url + joiner + "from_seq=" + (run.lastSeq + 1);
    }

    function connect() {
      var run = state.run;
      if (!run || state.finishing) return;
      var source = new EventSource(streamUrl(run), { withCredentials: true });
      state.source = source;
      function on(type, handler) {
        source.addEventListener(type, function (event) {
          if (state.run !== run) return;
          var seq = parseInt(event.lastEventId, 10);
          if (seq > run.lastSeq) run.lastSeq = seq;
          handler(event);
        });
      }
      source.addEventListener("open", function () { run.delay = 0; });
      on("assistant.delta", function (event) {
        var data = JSON.parse(event.data);
        run.text += (data.payload && data.payload.delta) || "";
        run.reply.textContent = run.text;
        status.textContent = "Streaming…";
        scroll();
      });
      on("assistant.message", function (event) {
        var data = JSON.parse(event.data);
        var payload = data.payload || {};
        if (payload.agent_key) {
          // a hand-off or a sub-agent speaking: show who
          var other = el("div", "b-msg b-msg--assistant");
          other.appendChild(el("span", "b-speaker", payload.agent_key));
          other.appendChild(document.createTextNode(payload.content || ""));
          run.turn.appendChild(other);
        } else if (!run.text) {
          run.reply.textContent = payload.content || "";
        }
        scroll();
      });
      STEP_TYPES.forEach(function (type) {
        on(type, function (event) { addStep(type, JSON.parse(event.data)); });
      });
      on("retrieval", function (event) {
        // the passages this answer is given; the finished turn (server-rendered) links each to its place
        var payload = JSON.parse(event.data).payload || {};
        var citations = payload.citations || [];
        var box = el("div", "b-sources");
        box.setAttribute("role", "group");
        box.setAttribute("aria-label", "Sources");
        box.appendChild(el("span", "b-muted", citations.length ? "Sources" : "No passages found in the knowledge base"));
        var list = el("ol");
        citations.forEach(function (c) {
          list.appendChild(el("li", "", "[" + c.number + "] " + c.document + (c.page ? ", page " + c.page : "")));
        });
        box.appendChild(list);
        if (payload.pending_documents) {
          box.appendChild(el("p", "b-muted", payload.pending_documents + " document(s) still being indexed could not be searched."));
        }
        run.turn.insertBefore(box, run.reply.nextSibling);
        scroll();
      });
      on("run.retrying", function () {
        run.text = "";
        run.reply.textContent = "";
        status.textContent = "Retrying…";
      });
      source.addEventListener("error", function (event) {
        if (event.data) {
          if (state.run !== run) return;
          var data = JSON.parse(event.data);
          run.lastSeq = Math.max(run.lastSeq, parseInt(event.lastEventId, 10) || 0);
          addError((data.payload && data.payload.message) || "Something went wrong.");
          return;
        }
        // The connection dropped or the server closed the stream: finished, or reconnecting.
        if (source.readyState === EventSource.CLOSED) reconnectLater(source);
        checkFinished();
      });
      TERMINAL.forEach(function (type) { on(type, function () { finish(); }); });
    }

    function reconnectLater(source) {
      var run = state.run;
      if (!run || state.finishing || state.source !== source || run.timer) return;
      run.delay = Math.min(run.delay ? run.delay * 2 : 1000, 15000);
      run.timer = setTimeout(function () {
        run.timer = null;
        if (state.run === run && !state.finishing) connect();
      }, run.delay);
    }

    function addStep(type, data) {
      var payload = data.payload || {};
      var failed = type === "sub_agent.end" && payload.status === "failed";
      var step = el("details", failed ? "b-step b-step--error" : "b-step");
      var label = type === "tool.call" ? "Tool call: " + (payload.tool || "") :
        type === "tool.result" ? "Tool result: " + (payload.tool || "") :
        type === "sub_agent.start" ? "Agent " + (payload.sub_agent_key || "") + " starts (" + (payload.invocation_mode || "") + ")" :
        failed ? "Agent " + (payload.sub_agent_key || "") + " failed: " + (payload.error || "") :
        "Agent " + (payload.sub_agent_key || "") + " finished: " + (payload.status || "");
      step.appendChild(el("summary", "", label));
      step.appendChild(el("pre", "", JSON.stringify(payload, null, 2)));
      state.run.turn.insertBefore(step, state.run.reply);
      scroll();
    }
    function addError(message) {
      state.run.turn.appendChild(el("div", "b-msg b-msg--error", message));
    }

    function checkFinished() {
      if (!state.run) return;
      fetch(state.run.info.turn_url, { credentials: "same-origin" }).then(function (response) {
        var runStatus = response.headers.get("X-Run-Status");
        if (["succeeded", "failed", "cancelled", "timed_out"].indexOf(runStatus) >= 0) finish();
        else status.textContent = "Connection lost; reconnecting…";
      }).catch(function () { status.textContent = "Connection lost; reconnecting…"; });
    }

    function finish() {
      if (!state.run || state.finishing) return;
      state.finishing = true;
      var run = state.run;
      if (state.source) state.source.close();
      if (run.timer) clearTimeout(run.timer);
      fetch(run.info.turn_url, { credentials: "same-origin" })
        .then(function (response) { return response.text(); })
        .then(function (html) {
          // Server-rendered and sanitised (nh3); replaces the streamed plain text.
          var holder = document.createElement("div");
          holder.innerHTML = html;
          var fresh = holder.firstElementChild;
          // keep the steps, in order, between the question (and its files) and the answer
          var anchor = fresh.children[1] || null;
          if (anchor && anchor.classList.contains("b-attachments")) anchor = anchor.nextElementSibling;
          run.turn.querySelectorAll(".b-step").forEach(function (step) { fresh.insertBefore(step, anchor); });
          run.turn.replaceWith(fresh);
        })
        .finally(function () {
          state.run = null; state.source = null; state.finishing = false;
          status.textContent = "";
          setBusy(false);
          scroll();
        });
    }

    stopButton.addEventListener("click", function () {
      if (!state.run) return;
      stopButton.disabled = true;
      status.textContent = "Stopping…";
      fetch(state.run.info.cancel_url, { method: "POST", headers: { "X-CSRFToken": csrf }, credentials: "same-origin" })
        .then(function () { checkFinished(); })
        .finally(function () { stopButton.disabled = false; });
    });
  }
  document.addEventListener("DOMContentLoaded", init);
})();
