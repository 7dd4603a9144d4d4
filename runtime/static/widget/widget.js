/*! Agent chat widget. No dependencies. Embed with:
 *  <script src="https://YOUR-SERVER/static/widget/widget.js" data-key="pk_..." async></script>
 * Options (attributes of that tag): data-mode="inline" + data-target="#css-selector" renders the chat
 * inside that element instead of a launcher bubble; data-theme="light" | "dark" (default: the
 * visitor's system setting); data-open="true" opens the launcher's panel at once.
 * Files: when the owner allows them (config.attachments), an attach button and dropping on the message
 * box add files (chips with a remove button); they go with the next message as a multipart form.
 *
 * Safety: model text is never given to innerHTML. Markdown is parsed here into DOM nodes built with
 * createElement/createTextNode; links keep only http(s) and mailto targets. Styles live in a Shadow
 * DOM, so the host page's CSS and ours do not mix.
 */
(function () {
  "use strict";
  var script = document.currentScript || document.querySelector("script[data-key][src*='widget.js']");
  if (!script || script.__agentWidget) return;
  script.__agentWidget = true;
  var KEY = script.getAttribute("data-key") || "";
  var API = new URL(script.src, location.href).origin + "/api/widget/";
  var INLINE = script.getAttribute("data-mode") === "inline";
  var THEME = script.getAttribute("data-theme") || "auto";
  // identified visitors: the host's server signs its user id (a JWT) and puts it in the tag
  var USER_TOKEN = script.getAttribute("data-user-token") || null;
  var STORE = "agent-widget:" + KEY;
  var TERMINAL = ["run.succeeded", "run.failed", "run.cancelled", "run.timed_out"];
  var started = performance.now();

  var CSS =
    ":host{all:initial;display:block;font:15px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;--a:#2563eb;--bg:#fff;--fg:#111827;--mu:#6b7280;--bd:#e5e7eb;--me:#eef2ff;--er:#b91c1c;color:var(--fg)}" +
    ":host([data-theme=dark]){--bg:#111827;--fg:#f3f4f6;--mu:#9ca3af;--bd:#374151;--me:#1f2937;--er:#fca5a5}" +
    "@media (prefers-color-scheme:dark){:host([data-theme=auto]){--bg:#111827;--fg:#f3f4f6;--mu:#9ca3af;--bd:#374151;--me:#1f2937;--er:#fca5a5}}" +
    "*{box-sizing:border-box}" +
    ".fab{position:fixed;bottom:20px;right:20px;z-index:2147483000;width:56px;height:56px;border-radius:50%;border:0;background:var(--a);color:#fff;cursor:pointer;box-shadow:0 4px 14px rgba(0,0,0,.25);display:flex;align-items:center;justify-content:center}" +
    ".left .fab,.left .panel{right:auto;left:20px}" +
    ".fab svg{width:26px;height:26px;fill:currentColor}" +
    ".panel{position:fixed;bottom:88px;right:20px;z-index:2147483001;width:380px;max-width:calc(100vw - 40px);height:560px;max-height:calc(100vh - 110px);display:flex;flex-direction:column;background:var(--bg);color:var(--fg);border:1px solid var(--bd);border-radius:14px;box-shadow:0 10px 40px rgba(0,0,0,.25);overflow:hidden}" +
    ".inline{height:100%}.inline .panel{position:static;width:100%;max-width:none;height:100%;min-height:360px;max-height:none;box-shadow:none}" +
    ".panel[hidden]{display:none}" +
    "header{display:flex;align-items:center;gap:8px;padding:12px 14px;background:var(--a);color:#fff}" +
    "header h2{flex:1;margin:0;font-size:16px;font-weight:600}" +
    "header button{background:transparent;border:0;color:#fff;font-size:22px;line-height:1;cursor:pointer;padding:2px 6px;border-radius:6px}" +
    ".log{flex:1;overflow-y:auto;padding:14px;display:flex;flex-direction:column;gap:10px}" +
    ".msg{max-width:88%;padding:9px 12px;border-radius:12px;overflow-wrap:anywhere;white-space:normal}" +
    ".msg p{margin:0 0 .5em}.msg p:last-child{margin:0}.msg ul,.msg ol{margin:.3em 0;padding-left:1.3em}" +
    ".msg pre{background:rgba(127,127,127,.15);padding:8px;border-radius:6px;overflow-x:auto;white-space:pre}" +
    ".msg code{font:13px ui-monospace,Menlo,Consolas,monospace}.msg a{color:inherit;text-decoration:underline}" +
    ".user{align-self:flex-end;background:var(--a);color:#fff}" +
    ".bot{align-self:flex-start;background:var(--me)}" +
    ".streaming::after{content:'\\258D';opacity:.6}" +
    ".err{align-self:stretch;color:var(--er);border:1px solid var(--er);background:transparent}" +
    ".meta{display:flex;gap:6px;align-items:center;font-size:12px;color:var(--mu);margin-top:-4px}" +
    ".meta button{border:1px solid var(--bd);background:var(--bg);color:var(--fg);border-radius:6px;cursor:pointer;padding:1px 7px;font-size:13px}" +
    ".meta button[aria-pressed=true]{border-color:var(--a);background:var(--a);color:#fff}" +
    ".src{font-size:12px;color:var(--mu);margin:-4px 0 0}.src ol{margin:2px 0;padding-left:1.4em}" +
    ".sugg{display:flex;flex-wrap:wrap;gap:6px}" +
    ".sugg button{border:1px solid var(--a);color:var(--a);background:var(--bg);border-radius:14px;padding:5px 10px;cursor:pointer;font:inherit;font-size:13px}" +
    "form{display:flex;gap:8px;padding:10px;border-top:1px solid var(--bd)}form.drop{outline:2px dashed var(--a);outline-offset:-4px}" +
    "form .att{background:transparent;color:var(--fg);border:1px solid var(--bd);padding:0 9px}.att svg{width:18px;height:18px;fill:none;stroke:currentColor;stroke-width:2}" +
    ".chips,.files{list-style:none;margin:0;padding:6px 10px 0;display:flex;flex-wrap:wrap;gap:6px;font-size:13px}.files{align-self:flex-end;justify-content:flex-end;padding:0;margin-top:-4px;color:var(--mu)}" +
    ".chips li,.files li{display:flex;align-items:center;gap:4px;border:1px solid var(--bd);border-radius:12px;padding:1px 8px;max-width:100%;min-width:0}.chips li{padding-right:2px}" +
    ".chips span,.files li{overflow:hidden;text-overflow:ellipsis;white-space:nowrap}.chips small{color:var(--mu);white-space:nowrap}" +
    ".chips button{border:0;background:transparent;color:var(--fg);cursor:pointer;font-size:16px;line-height:1;padding:2px 5px;border-radius:8px}" +
    ".ferr{margin:6px 10px 0;color:var(--er);font-size:13px}[hidden]{display:none!important}" +
    "textarea{flex:1;resize:none;font:inherit;color:var(--fg);background:var(--bg);border:1px solid var(--bd);border-radius:10px;padding:8px 10px;height:42px;max-height:120px}" +
    "form button{border:0;background:var(--a);color:#fff;border-radius:10px;padding:0 14px;font:inherit;cursor:pointer}" +
    "form button:disabled,textarea:disabled{opacity:.55;cursor:not-allowed}" +
    ":focus-visible{outline:3px solid var(--a);outline-offset:2px}header :focus-visible{outline-color:#fff}" +
    ".sr{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}" +
    ".status{min-height:0;padding:0 12px;font-size:12px;color:var(--mu)}" +
    "@media (max-width:480px){.launcher .panel{inset:0;width:100%;max-width:none;height:100%;max-height:none;border-radius:0;border:0}.fab[aria-expanded=true]{display:none}}";

  // ---- storage (the visitor token and the conversation id survive a reload) ----
  function load() {
    try { return JSON.parse(localStorage.getItem(STORE) || "{}") || {}; } catch (e) { return {}; }
  }
  function save(state) {
    try { localStorage.setItem(STORE, JSON.stringify(state)); } catch (e) { /* private mode: per page only */ }
  }
  var saved = load();

  // ---- DOM helpers: text only, never HTML strings ----
  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    if (attrs) for (var name in attrs) node.setAttribute(name, attrs[name]);
    if (text !== undefined) node.textContent = text;
    return node;
  }

  // ---- a small, safe markdown: paragraphs, headings, lists, quotes, code, **bold**, *em*, `code`, links ----
  var SAFE_URL = /^(https?:\/\/|mailto:)/i;
  var INLINE_RE = /`([^`]+)`|\*\*([^*]+)\*\*|__([^_]+)__|\[([^\]]+)\]\(([^)\s]+)\)|\*([^*\s][^*]*)\*|_([^_\s][^_]*)_|(https?:\/\/[^\s<>()]+[^\s<>().,;:!?'"])/g;
  function inline(parent, text) {
    // a regex per call: the recursion below must not move the caller's lastIndex
    var re = new RegExp(INLINE_RE.source, "g"), last = 0, m;
    while ((m = re.exec(text))) {
      if (m.index > last) parent.appendChild(document.createTextNode(text.slice(last, m.index)));
      if (m[1] !== undefined) parent.appendChild(el("code", null, m[1]));
      else if (m[2] !== undefined || m[3] !== undefined) inline(parent.appendChild(el("strong")), m[2] || m[3]);
      else if (m[4] !== undefined) {
        if (SAFE_URL.test(m[5])) {
          var a = parent.appendChild(el("a", { href: m[5], target: "_blank", rel: "noopener noreferrer nofollow" }));
          inline(a, m[4]);
        } else parent.appendChild(document.createTextNode(m[4]));
      } else if (m[6] !== undefined || m[7] !== undefined) inline(parent.appendChild(el("em")), m[6] || m[7]);
      else parent.appendChild(el("a", { href: m[8], target: "_blank", rel: "noopener noreferrer nofollow" }, m[8]));
      last = re.lastIndex;
    }
    if (last < text.length) parent.appendChild(document.createTextNode(text.slice(last)));
  }
  function markdown(target, source) {
    target.textContent = "";
    var lines = String(source).replace(/\r\n?/g, "\n").split("\n");
    var i = 0, para = [], list = null;
    function flush() {
      if (para.length) { inline(target.appendChild(el("p")), para.join("\n")); para = []; }
    }
    while (i < lines.length) {
      var line = lines[i], m;
      if (/^\s*```/.test(line)) {
        flush(); list = null;
        var code = [];
        for (i++; i < lines.length && !/^\s*```/.test(lines[i]); i++) code.push(lines[i]);
        target.appendChild(el("pre")).appendChild(el("code", null, code.join("\n")));
        i++; continue;
      }
      if ((m = /^(#{1,6})\s+(.*)$/.exec(line))) {
        flush(); list = null;
        inline(target.appendChild(el("h" + Math.min(6, m[1].length + 2))), m[2]);
      } else if ((m = /^\s*([-*+]|\d+[.)])\s+(.*)$/.exec(line))) {
        flush();
        var tag = /\d/.test(m[1]) ? "ol" : "ul";
        if (!list || list.tagName.toLowerCase() !== tag) list = target.appendChild(el(tag));
        inline(list.appendChild(el("li")), m[2]);
      } else if ((m = /^>\s?(.*)$/.exec(line))) {
        flush(); list = null;
        inline(target.appendChild(el("blockquote")), m[1]);
      } else if (!line.trim()) {
        flush(); list = null;
      } else {
        list = null; para.push(line);
      }
      i++;
    }
    flush();
  }

  // ---- the widget's DOM ----
  var host = el("div", { "data-agent-widget": KEY, "data-theme": THEME, "data-state": "loading" });
  var root = host.attachShadow({ mode: "open" });
  if (root.adoptedStyleSheets !== undefined && window.CSSStyleSheet && "replaceSync" in CSSStyleSheet.prototype) {
    var sheet = new CSSStyleSheet();
    sheet.replaceSync(CSS);
    root.adoptedStyleSheets = [sheet];
  } else {
    root.appendChild(el("style", null, CSS));
  }
  function icon(d) {
    var svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("aria-hidden", "true");
    svg.appendChild(document.createElementNS(svg.namespaceURI, "path")).setAttribute("d", d);
    return svg;
  }
  var wrap = root.appendChild(el("div", { class: INLINE ? "inline" : "launcher" }));
  var uid = "aw" + Math.random().toString(36).slice(2, 8);
  var fab = null;
  if (!INLINE) {
    fab = wrap.appendChild(el("button", { class: "fab", type: "button", "aria-expanded": "false", "aria-controls": uid, "aria-label": "Open chat" }));
    fab.appendChild(icon("M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H8l-4 4V6a2 2 0 0 1 2-2z"));
  }
  var panel = wrap.appendChild(el("section", { class: "panel", id: uid, "aria-labelledby": uid + "t" }));
  if (!INLINE) { panel.hidden = true; panel.setAttribute("role", "dialog"); }
  var head = panel.appendChild(el("header"));
  var title = head.appendChild(el("h2", { id: uid + "t" }, "Chat"));
  var closeBtn = INLINE ? null : head.appendChild(el("button", { type: "button", "aria-label": "Close chat" }, "\u00d7"));
  var log = panel.appendChild(el("div", { class: "log", role: "log", "aria-live": "polite", "aria-relevant": "additions", tabindex: "0", "aria-label": "Conversation" }));
  var status = panel.appendChild(el("div", { class: "status", role: "status" }));
  // files to send, and why one was refused (in the page only while there is a reason): by the message box
  var chips = panel.appendChild(el("ul", { class: "chips", "aria-label": "Files to send", hidden: "" }));
  var ferr = el("p", { class: "ferr", role: "alert" });
  var form = panel.appendChild(el("form"));
  form.appendChild(el("label", { class: "sr", for: uid + "m" }, "Message"));
  var attach = form.appendChild(el("button", { type: "button", class: "att", "aria-label": "Attach files", title: "Attach files", hidden: "" }));
  attach.appendChild(icon("M21 11l-8.5 8.5a5 5 0 0 1-7-7L14 4a3.3 3.3 0 0 1 4.8 4.8l-8.5 8.5a1.7 1.7 0 0 1-2.4-2.4L15.5 7.3"));
  var input = form.appendChild(el("textarea", { id: uid + "m", rows: "1", maxlength: "4000", placeholder: "Type your message\u2026", disabled: "" }));
  var sendBtn = form.appendChild(el("button", { type: "submit", disabled: "" }, "Send"));

  function mount() {
    var target = INLINE && document.querySelector(script.getAttribute("data-target") || "");
    (target || document.body).appendChild(host);
    if (INLINE && !target) wrap.className = "launcher";
  }
  if (document.body) mount(); else document.addEventListener("DOMContentLoaded", mount);

  function scroll() { log.scrollTop = log.scrollHeight; }
  function setStatus(text) { status.textContent = text || ""; }
  function open(focus) {
    if (INLINE) return;
    panel.hidden = false;
    fab.setAttribute("aria-expanded", "true");
    fab.setAttribute("aria-label", "Close chat");
    scroll();
    if (focus !== false) (input.disabled ? log : input).focus();
  }
  function close() {
    if (INLINE) return;
    panel.hidden = true;
    fab.setAttribute("aria-expanded", "false");
    fab.setAttribute("aria-label", "Open chat");
    fab.focus();
  }
  if (fab) fab.addEventListener("click", function () { if (panel.hidden) open(); else close(); });
  if (closeBtn) closeBtn.addEventListener("click", close);
  panel.addEventListener("keydown", function (event) { if (event.key === "Escape") close(); });

  // ---- the API ----
  function subjectOf(jwt) {
    try {
      return JSON.parse(atob(jwt.split(".")[1].replace(/-/g, "+").replace(/_/g, "/"))).sub || null;
    } catch (e) { return null; }
  }
  var state = { visitor: saved.visitor || null, token: saved.token, expires: saved.expires_at ? Date.parse(saved.expires_at) : 0, conversation: saved.conversation_id, config: saved.config || {}, busy: false, refreshTimer: null };
  function persist() {
    save({ visitor: state.visitor, token: state.token, expires_at: state.expires ? new Date(state.expires).toISOString() : null, conversation_id: state.conversation, config: state.config });
  }
  function call(method, path, body) {
    var multipart = body instanceof FormData, headers = multipart ? {} : { "Content-Type": "application/json" };
    if (state.token) headers["X-Anonymous-Token"] = state.token;
    return fetch(API + path, { method: method, headers: headers, body: body && !multipart ? JSON.stringify(body) : body, credentials: "omit", mode: "cors" })
      .then(function (response) {
        return response.json().catch(function () { return {}; }).then(function (data) {
          if (response.ok) return data;
          var error = (data && data.error) || {};
          var failure = new Error(error.message || "The chat service answered " + response.status + ".");
          failure.status = response.status;
          failure.code = error.code;
          failure.files = (error.fields || {}).files;
          throw failure;
        });
      }, function () {
        var failure = new Error("The chat service cannot be reached. Check your connection and try again.");
        failure.status = 0;
        throw failure;
      });
  }
  function took(data) {
    state.token = data.token;
    state.expires = Date.parse(data.expires_at);
    state.config = data.config || {};
    if (data.visitor !== undefined) state.visitor = data.visitor;
    persist();
    apply();
    // refresh a few minutes before expiry (or at 80% of a short lifetime)
    clearTimeout(state.refreshTimer);
    var left = state.expires - Date.now();
    state.refreshTimer = setTimeout(refresh, Math.max(5000, Math.min(left - 300000, left * 0.8)));
  }
  function mint() {
    var body = { key: KEY };
    if (USER_TOKEN) body.user_token = USER_TOKEN;
    return call("POST", "session/", body).then(function (data) {
      state.conversation = data.latest_conversation_id || null;
      took(data);
    });
  }
  function refresh() {
    return call("POST", "session/refresh/").then(took, function (error) {
      if (error.status === 401 || error.status === 403) { state.token = null; return mint(); }
      throw error;
    });
  }
  function session() {
    // a stored token is checked (and extended) at once: the channel may have been switched off
    // a different person on the host site (signed in, out, or as someone else): a different visitor
    var same = USER_TOKEN ? state.visitor === subjectOf(USER_TOKEN) : !state.visitor;
    if (state.token && same && state.expires > Date.now() + 5000) return refresh();
    state.token = null;
    return mint();
  }

  function apply() {
    var config = state.config;
    title.textContent = config.title || "Chat";
    if (fab) fab.setAttribute("title", config.title || "Chat");
    if (/^#[0-9a-f]{6}$/i.test(config.colour || "")) host.style.setProperty("--a", config.colour);
    wrap.classList.toggle("left", config.position === "bottom-left");
    attach.hidden = !config.attachments;
  }

  // ---- messages ----
  function addUser(text, files) {
    if (text) log.appendChild(el("div", { class: "msg user" }, text));
    if (files && files.length) {
      var list = log.appendChild(el("ul", { class: "files", "aria-label": "Attached files" }));
      files.forEach(function (f) { list.appendChild(el("li", null, f.name)); });
    }
    scroll();
  }
  function addBot(text) {
    var node = el("div", { class: "msg bot" });
    markdown(node, text);
    log.appendChild(node);
    scroll();
    return node;
  }
  function addError(text) {
    var node = log.appendChild(el("div", { class: "msg err", role: "alert" }, text));
    scroll();
    return node;
  }
  function addSources(after, citations) {
    if (!state.config.show_sources || !citations || !citations.length) return;
    var box = el("div", { class: "src", role: "group", "aria-label": "Sources" });
    box.appendChild(el("span", null, "Sources"));
    var list = box.appendChild(el("ol"));
    citations.forEach(function (c) {
      list.appendChild(el("li", null, (c.document || "") + (c.page ? ", page " + c.page : "")));
    });
    after.parentNode.insertBefore(box, after.nextSibling);
  }
  function addRating(after, runId, rating) {
    var meta = el("div", { class: "meta", role: "group", "aria-label": "Rate this answer" });
    var up = meta.appendChild(el("button", { type: "button", "aria-label": "Helpful", "aria-pressed": String(rating === "up") }, "\ud83d\udc4d"));
    var down = meta.appendChild(el("button", { type: "button", "aria-label": "Not helpful", "aria-pressed": String(rating === "down") }, "\ud83d\udc4e"));
    function rate(value) {
      call("POST", "feedback/", { run_id: runId, rating: value }).then(function () {
        up.setAttribute("aria-pressed", String(value === "up"));
        down.setAttribute("aria-pressed", String(value === "down"));
        setStatus("Thanks for your feedback.");
      }, function (error) { setStatus(error.message); });
    }
    up.addEventListener("click", function () { rate("up"); });
    down.addEventListener("click", function () { rate("down"); });
    var anchor = after.nextSibling && after.nextSibling.className === "src" ? after.nextSibling : after;
    anchor.parentNode.insertBefore(meta, anchor.nextSibling);
  }
  function intro() {
    var config = state.config;
    if (config.greeting) addBot(config.greeting).classList.add("greeting");
    if (config.suggested_questions && config.suggested_questions.length) {
      var box = log.appendChild(el("div", { class: "sugg", role: "group", "aria-label": "Suggested questions" }));
      config.suggested_questions.forEach(function (q) {
        box.appendChild(el("button", { type: "button" }, q)).addEventListener("click", function () {
          if (!state.busy && !input.disabled) send(q);
        });
      });
    }
  }
  function setBusy(busy) {
    state.busy = busy;
    sendBtn.disabled = busy || !state.token;
    log.setAttribute("aria-busy", String(busy));
  }
  function enable() {
    input.disabled = false;
    sendBtn.disabled = state.busy;
  }
  function disable(message) {
    input.disabled = true;
    sendBtn.disabled = true;
    addError(message);
  }

  // ---- files to send: checked here for a quick answer; the server checks again and reads them ----
  var files = [];
  function size(n) {
    return n >= 1048576 ? (n % 1048576 ? (n / 1048576).toFixed(1) : n / 1048576) + " MB" : n >= 1024 ? Math.round(n / 1024) + " KB" : n + " bytes";
  }
  function fileError(text) {
    ferr.textContent = text || "";
    if (text) panel.insertBefore(ferr, form); else ferr.remove();
  }
  function showFiles() {
    chips.textContent = "";
    files.forEach(function (file, i) {
      var chip = chips.appendChild(el("li"));
      chip.appendChild(el("span", { title: file.name }, file.name));
      chip.appendChild(document.createTextNode(" "));
      chip.appendChild(el("small", null, size(file.size)));
      chip.appendChild(el("button", { type: "button", "aria-label": "Remove " + file.name }, "\u00d7")).addEventListener("click", function () {
        files.splice(i, 1);
        showFiles();
        fileError("");
        (chips.querySelector("button") || input).focus();
      });
    });
    chips.hidden = !files.length;
  }
  function addFiles(list) {
    var limits = state.config.attachments, refused = [];
    if (!limits || input.disabled) return;
    Array.prototype.forEach.call(list, function (file) {
      if (!file.size) refused.push(file.name + ": the file is empty.");
      else if (file.size > limits.max_bytes) refused.push(file.name + ": the file is " + size(file.size) + "; attach files of at most " + limits.max_size + ".");
      else if (files.length >= limits.max_files) refused.push(file.name + ": attach at most " + limits.max_files + " files to one message.");
      else files.push(file);
    });
    showFiles();
    fileError(refused.join(" "));
  }
  // the picker stays in the form: a detached one may be collected before the visitor has chosen
  var picker = form.appendChild(el("input", { type: "file", multiple: "", hidden: "", tabindex: "-1", "aria-hidden": "true" }));
  picker.addEventListener("change", function () { addFiles(picker.files); picker.value = ""; input.focus(); });
  attach.addEventListener("click", function () { picker.click(); });
  // dropping files on the message box (or anywhere on the form) attaches them
  function dragsFiles(event) {
    return !attach.hidden && event.dataTransfer && [].indexOf.call(event.dataTransfer.types, "Files") >= 0;
  }
  form.addEventListener("dragover", function (event) {
    if (dragsFiles(event)) { event.preventDefault(); form.classList.add("drop"); }
  });
  form.addEventListener("dragleave", function (event) {
    if (!form.contains(event.relatedTarget)) form.classList.remove("drop");
  });
  form.addEventListener("drop", function (event) {
    form.classList.remove("drop");
    if (dragsFiles(event)) { event.preventDefault(); addFiles(event.dataTransfer.files); input.focus(); }
  });

  function send(text) {
    if (state.busy) return;
    var sugg = log.querySelector(".sugg");
    if (sugg) sugg.remove();
    setBusy(true);
    var sent = files.slice();
    setStatus(sent.length ? "Sending and reading " + sent.length + (sent.length > 1 ? " files" : " file") + "\u2026" : "Sending\u2026");
    fileError("");
    var body = { message: text, idempotency_key: Date.now().toString(36) + Math.random().toString(36).slice(2) };
    if (state.conversation) body.conversation_id = state.conversation;
    if (sent.length) {
      // the same keys as a multipart form, one "files" part per file
      var formData = new FormData();
      for (var name in body) formData.append(name, body[name]);
      sent.forEach(function (file) { formData.append("files", file, file.name); });
      body = formData;
    }
    var go = state.expires - Date.now() < 30000 ? refresh() : Promise.resolve();
    go.then(function () { return call("POST", "messages/", body); }).then(function (data) {
      input.value = "";
      files = [];
      showFiles();
      addUser(text, sent);
      state.conversation = data.conversation_id;
      persist();
      stream(data.run_id);
    }, function (error) {
      setBusy(false);
      setStatus("");
      // a refused file: said next to the message box; what was typed and the files stay
      if (sent.length || error.files) fileError((error.files || [error.message]).join(" "));
      else addError(error.message);
    });
  }

  function stream(runId) {
    var reply = el("div", { class: "msg bot streaming" });
    log.appendChild(reply);
    scroll();
    setBusy(true);
    setStatus("Thinking\u2026");
    var run = { text: "", lastSeq: 0, delay: 0, done: false, citations: null, source: null };
    function url() {
      var u = API + "runs/" + encodeURIComponent(runId) + "/stream/?anonymous_token=" + encodeURIComponent(state.token);
      return run.lastSeq ? u + "&from_seq=" + (run.lastSeq + 1) : u;
    }
    function finish(failed) {
      if (run.done) return;
      run.done = true;
      if (run.source) run.source.close();
      reply.classList.remove("streaming");
      if (failed) {
        if (!run.text) reply.remove();
        addError(failed);
      } else {
        markdown(reply, run.text || "(no answer)");
        addSources(reply, run.citations);
        addRating(reply, runId, null);
      }
      setBusy(false);
      setStatus("");
      scroll();
    }
    function connect() {
      if (run.done) return;
      var source = new EventSource(url());
      run.source = source;
      function on(type, handler) {
        source.addEventListener(type, function (event) {
          var seq = parseInt(event.lastEventId, 10);
          if (seq > run.lastSeq) run.lastSeq = seq;
          var data = {};
          try { data = JSON.parse(event.data || "{}"); } catch (e) { /* a keep-alive */ }
          handler(data.payload || {});
        });
      }
      source.addEventListener("open", function () { run.delay = 0; });
      on("assistant.delta", function (payload) {
        run.text += payload.delta || "";
        reply.textContent = run.text; // plain text while streaming; markdown once finished
        setStatus("");
        scroll();
      });
      on("assistant.message", function (payload) {
        if (!payload.agent_key && !run.text) { run.text = payload.content || ""; reply.textContent = run.text; }
      });
      on("retrieval", function (payload) { run.citations = payload.citations || []; });
      on("run.retrying", function () { run.text = ""; reply.textContent = ""; });
      on("run.succeeded", function () { finish(); });
      on("run.failed", function (payload) {
        finish((payload.error && payload.error.message) || "Sorry, something went wrong. Please try again.");
      });
      on("run.cancelled", function () { finish("The answer was stopped."); });
      on("run.timed_out", function () { finish("The answer took too long. Please try again."); });
      source.addEventListener("error", function (event) {
        if (run.done || event.data) return; // an "error" event the run emitted: its outcome follows
        if (source.readyState === EventSource.CLOSED) {
          // closed after an answer that was not 200: open a new stream from the last event seen
          run.delay = Math.min(run.delay ? run.delay * 2 : 1000, 15000);
          setStatus("Connection lost; reconnecting\u2026");
          setTimeout(function () {
            var renew = state.expires - Date.now() < 30000 ? refresh() : Promise.resolve();
            renew.then(connect, connect);
          }, run.delay);
        } else {
          setStatus("Connection lost; reconnecting\u2026");
        }
      });
    }
    connect();
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var text = input.value.trim();
    if ((text || files.length) && !input.disabled) send(text);
  });
  input.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey) { event.preventDefault(); form.requestSubmit ? form.requestSubmit() : form.dispatchEvent(new Event("submit")); }
  });

  function restore() {
    if (!state.conversation) { intro(); return Promise.resolve(); }
    return call("GET", "conversations/" + encodeURIComponent(state.conversation) + "/").then(function (data) {
      var messages = data.messages || [];
      if (!messages.length) intro();
      messages.forEach(function (m) {
        if (m.role === "user") addUser(m.content, m.files);
        else {
          var node = addBot(m.content);
          addSources(node, m.citations);
          if (m.run_id) addRating(node, m.run_id, m.rating);
        }
      });
      if (data.running_run_id) stream(data.running_run_id);
    }, function () {
      state.conversation = null;
      persist();
      intro();
    });
  }

  function ready() {
    host.setAttribute("data-state", "ready");
    var detail = { ms: performance.now() - started };
    script.dispatchEvent(new CustomEvent("agent-widget:ready", { detail: detail, bubbles: true }));
  }

  session()
    .then(function () { enable(); setBusy(false); return restore(); })
    .then(ready, function (error) {
      host.setAttribute("data-state", "refused");
      title.textContent = state.config.title || "Chat";
      disable(error.message || "This chat is not available.");
      script.dispatchEvent(new CustomEvent("agent-widget:error", { detail: { code: error.code, status: error.status }, bubbles: true }));
    })
    .then(function () {
      if (!INLINE && script.getAttribute("data-open") === "true") open(false);
    });
})();
