// The agent dashboard's live layer: the /ws/agent/ socket (queue, presence,
// messages, typing), fragment swaps instead of page loads, forms posted with
// fetch (CSRF header), canned responses. Every text from the server is put in
// the page with textContent, never as HTML; fragments come from Django
// templates, which escape.
(function () {
  "use strict";

  const queueEl = document.getElementById("queue");
  const paneEl = document.getElementById("pane");
  const layoutEl = document.querySelector(".layout");
  const dotEl = document.getElementById("connection-dot");
  const canned = JSON.parse(document.getElementById("canned-responses").textContent);
  const intentNames = JSON.parse(document.getElementById("intent-names").textContent);
  let socket = null;
  let heartbeat = null;
  let myId = null; // this agent, from the hello frame
  // The newest suggestions for the open conversation: the set made when an agent takes a
  // conversation over often arrives before the page re-renders it with its composer.
  let lastSuggestions = null;
  let retryMs = 500;
  let typingOffTimer = null;
  let lastTypingSent = 0;
  let visitorTypingTimer = null;

  // --- Helpers ----------------------------------------------------------------

  function csrfToken() {
    const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    if (match) return decodeURIComponent(match[1]);
    const input = document.querySelector("input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function toast(text) {
    const box = document.getElementById("toast");
    box.textContent = text;
    box.hidden = false;
    clearTimeout(toast.timer);
    toast.timer = setTimeout(() => (box.hidden = true), 4000);
  }

  function conversationEl() {
    return document.getElementById("conversation");
  }

  function openedId() {
    const conv = conversationEl();
    return conv ? conv.dataset.conversationId : null;
  }

  function send(frame) {
    if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(frame));
  }

  function since(iso) {
    const seconds = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
    if (seconds < 60) return "just now";
    const minutes = Math.floor(seconds / 60);
    if (minutes < 60) return minutes + " min";
    const hours = Math.floor(minutes / 60);
    if (hours < 24) return hours + " h " + (minutes % 60) + " min";
    return Math.floor(hours / 24) + " d";
  }

  function refreshTimes() {
    document.querySelectorAll("time[data-since]").forEach((t) => {
      if (t.dataset.since) t.textContent = since(t.dataset.since);
    });
  }

  function timeOfDay(iso) {
    const d = new Date(iso);
    return String(d.getHours()).padStart(2, "0") + ":" + String(d.getMinutes()).padStart(2, "0");
  }

  // --- The queue ----------------------------------------------------------------

  let queueRequests = 0;
  let queueApplied = 0;

  async function refreshQueue() {
    // Fetches can finish out of order: never paint an older answer over a newer one.
    const ticket = ++queueRequests;
    const response = await fetch("/agent/queue/" + inboxQuery(), { credentials: "same-origin", cache: "no-store" });
    if (response.status === 403 || response.redirected) return (location.href = "/agent/login/");
    if (!response.ok) return;
    const html = await response.text();
    if (ticket < queueApplied) return;
    queueApplied = ticket;
    queueEl.innerHTML = html; // a Django template: escaped server-side
    markActive();
    refreshTimes();
    const waiting = queueEl.querySelector("[data-waiting-count]");
    const count = waiting ? Number(waiting.dataset.waitingCount) : 0;
    document.title = (count ? "(" + count + ") " : "") + "Agent dashboard · Northwind Support";
  }
  const scheduleQueueRefresh = debounce(refreshQueue, 250);

  function debounce(fn, ms) {
    let timer = null;
    return () => {
      clearTimeout(timer);
      timer = setTimeout(fn, ms);
    };
  }

  function markActive() {
    const id = openedId();
    queueEl.querySelectorAll(".queue-item").forEach((a) => a.classList.toggle("active", a.dataset.conversation === id));
  }

  function renderPresence(online) {
    const box = document.getElementById("online-agents");
    box.replaceChildren();
    if (!online.length) box.append(el("span", "muted", "nobody"));
    online.forEach((agent) => box.append(el("span", "chip", agent.name)));
  }

  // --- The open conversation --------------------------------------------------------

  async function openConversation(id, push) {
    const draft = composerText();
    const sameConversation = id === openedId();
    const response = await fetch("/agent/c/" + id + "/?fragment=1", { credentials: "same-origin", cache: "no-store" });
    if (!response.ok) return toast("Could not open that conversation.");
    paneEl.innerHTML = await response.text(); // a Django template: escaped server-side
    layoutEl.classList.add("has-conversation");
    if (push) history.pushState({ id: id }, "", "/agent/c/" + id + "/");
    if (sameConversation && draft) {
      const textarea = document.getElementById("composer-text");
      if (textarea) textarea.value = draft;
    }
    if (lastSuggestions && lastSuggestions.conversation_id === id) showSuggestions(lastSuggestions);
    markActive();
    refreshTimes();
    scrollToEnd();
    send({ type: "open", conversation_id: id });
  }

  function composerText() {
    const textarea = document.getElementById("composer-text");
    return textarea ? textarea.value : "";
  }

  function scrollToEnd() {
    const transcript = document.getElementById("transcript");
    if (transcript) transcript.scrollTop = transcript.scrollHeight;
  }

  function intentForm(message) {
    const conv = openedId();
    const form = el("form", "intent-form");
    form.method = "post";
    form.action = "/agent/c/" + conv + "/messages/" + message.message_id + "/intent";
    form.dataset.action = "correct";
    const pill = el("span", "intent-pill none", "not analysed yet");
    pill.title = "What the bot understood";
    const select = el("select");
    select.name = "intent";
    select.setAttribute("aria-label", "Correct intent");
    select.append(new Option("Correct intent…", ""));
    intentNames.forEach((name) => select.append(new Option(name, name)));
    form.append(pill, select, whyToggle(message.message_id));
    if (message.intent !== undefined && message.confidence !== null && message.confidence !== undefined) {
      setPrediction(form, message.intent, message.confidence);
    }
    return form;
  }

  function setPrediction(form, intent, confidence) {
    const pill = form.querySelector(".intent-pill");
    pill.replaceChildren();
    pill.className = "intent-pill";
    if (!intent) {
      pill.classList.add("none");
      pill.textContent = "out of scope";
      return;
    }
    if (confidence < 0.5) pill.classList.add("low");
    pill.append(document.createTextNode(intent + " "), el("b", "", Math.round(confidence * 100) + "%"));
  }

  function appendMessage(message) {
    const transcript = document.getElementById("transcript");
    if (!transcript || transcript.querySelector('[data-message-id="' + message.message_id + '"]')) return;
    const placeholder = transcript.querySelector("p.muted");
    if (placeholder) placeholder.remove();
    const box = el("div", "msg msg-" + message.sender + (message.internal ? " msg-note" : ""));
    box.dataset.messageId = message.message_id;
    box.dataset.seq = message.seq;
    if (message.sender === "system") {
      const line = el("div", "system-line");
      line.append(el("span", "", message.text), document.createTextNode(" "), el("time", "", timeOfDay(message.created_at)));
      box.append(line);
    } else {
      const meta = el("div", "msg-meta");
      const who = { visitor: "Visitor", bot: "Bot" }[message.sender] || message.agent_name || "Agent";
      meta.append(el("span", "who", who + (message.internal ? " · internal note" : "")), el("time", "", timeOfDay(message.created_at)));
      box.append(meta, el("div", "bubble", message.text));
      if (message.sender === "visitor") box.append(intentForm(message), whyPanel(message.message_id));
    }
    // Keep seq order even if frames cross.
    const later = Array.from(transcript.children).find((child) => Number(child.dataset.seq) > message.seq);
    transcript.insertBefore(box, later || null);
    scrollToEnd();
  }

  // --- "Why?": the explanation of a visitor message's intent ------------------------------
  // Asked with POST (202 while a task computes it), then pushed as an "explanation"
  // frame on the socket; a slow poll covers a frame lost while reconnecting.

  function whyToggle(messageId) {
    const button = el("button", "btn btn-small btn-ghost why-toggle", "Why?");
    button.type = "button";
    button.title = "Why the bot understood it so";
    button.setAttribute("aria-expanded", "false");
    button.setAttribute("aria-controls", "why-" + messageId);
    return button;
  }

  function whyPanel(messageId) {
    const panel = el("div", "why");
    panel.id = "why-" + messageId;
    panel.hidden = true;
    return panel;
  }

  function whyUrl(messageId) {
    return "/agent/c/" + openedId() + "/messages/" + messageId + "/why";
  }

  async function askWhy(panel, messageId) {
    panel.dataset.state = "pending";
    panel.replaceChildren(el("p", "muted", "Working out why…"));
    let response;
    let body = {};
    try {
      response = await fetch(whyUrl(messageId), {
        method: "POST",
        credentials: "same-origin",
        headers: { "X-CSRFToken": csrfToken(), Accept: "application/json" },
      });
      body = await response.json();
    } catch (error) {
      body = { message: "Could not ask for the explanation." };
    }
    if (response && response.status === 202) return pollWhy(panel, messageId, 0);
    if (response && response.ok) return renderWhy(panel, body);
    panel.dataset.state = "error";
    panel.replaceChildren(el("p", "muted", body.message || "No explanation."));
  }

  function pollWhy(panel, messageId, tries) {
    setTimeout(async () => {
      if (panel.dataset.state !== "pending" || !panel.isConnected || tries > 40) return;
      const response = await fetch(whyUrl(messageId), { credentials: "same-origin", cache: "no-store" });
      if (response.status === 200) renderWhy(panel, await response.json());
      else pollWhy(panel, messageId, tries + 1);
    }, 3000);
  }

  function percentOf(p) {
    return Math.round(p * 1000) / 10 + "%";
  }

  function renderWhy(panel, body) {
    if (body.status === "pending") return;
    const knowledge = body.knowledge;
    if (!body.explanation && !(knowledge && knowledge.data)) {
      panel.dataset.state = "error";
      const reason = body.error || (knowledge && knowledge.error) || "unknown error";
      panel.replaceChildren(el("p", "muted", "Could not explain it: " + reason));
      return;
    }
    panel.dataset.state = "ready";
    panel.replaceChildren();
    if (body.explanation) renderIntentWhy(panel, body.explanation, body);
    else if (body.error) panel.append(el("p", "muted", "Could not explain the intent: " + body.error));
    if (knowledge && knowledge.data) renderKnowledgeWhy(panel, knowledge.data, body.index_version);
    else if (knowledge && knowledge.error) panel.append(el("p", "muted", "Could not explain the help center's answer: " + knowledge.error));
  }

  function renderIntentWhy(panel, data, body) {
    // The visitor's words, each shaded by how much the intent's probability falls without it.
    const text = el("p", "why-text");
    const strongest = Math.max(1e-9, ...data.words.map((w) => Math.abs(w.weight)));
    let at = 0;
    data.words.forEach((w) => {
      if (w.start > at) text.append(document.createTextNode(data.text.slice(at, w.start)));
      const word = el("mark", "why-word" + (w.weight < 0 ? " against" : ""), data.text.slice(w.start, w.end));
      const shade = Math.abs(w.weight) / strongest;
      word.style.setProperty("--shade", shade.toFixed(2));
      word.dataset.weight = String(w.weight);
      word.title = (w.weight >= 0 ? "+" : "") + w.weight.toFixed(3) + " to " + data.explained_intent;
      text.append(word);
      at = w.end;
    });
    if (at < data.text.length) text.append(document.createTextNode(data.text.slice(at)));

    const rule = el("dl", "why-rule");
    const decision = data.out_of_scope ? "out of scope" : data.intent;
    [
      ["Decision", decision],
      ["Confidence", percentOf(data.confidence) + " for " + data.explained_intent],
      ["Rule", data.score_name + " " + data.score.toFixed(3) + " against threshold " + data.threshold.toFixed(3) +
        (data.out_of_scope ? " → rejected" : " → accepted")],
      ["Model", "v" + body.model_version + " · " + String(data.model_id).slice(0, 12)],
    ].forEach(([term, value]) => rule.append(el("dt", "", term), el("dd", "", value)));

    const runners = el("ol", "why-runners");
    data.runners_up.forEach(([label, p]) => runners.append(el("li", "", label + " " + percentOf(p))));

    const nearest = el("ul", "why-neighbours");
    data.neighbours.forEach((n) => {
      const item = el("li");
      item.append(el("span", "why-sim", n.similarity.toFixed(2)), el("span", "intent-pill", n.intent), el("q", "", n.text));
      if (n.edit_url) {
        const link = el("a", "why-edit", "edit");
        link.href = n.edit_url;
        link.target = "_blank";
        link.rel = "noopener";
        item.append(link);
      }
      nearest.append(item);
    });

    const legend = el("p", "why-legend muted", "Blue: the word pulled towards " + data.explained_intent + "; red: away. The darker, the stronger.");
    panel.append(el("h3", "", "Words that drove it"), text, legend, rule);
    if (data.runners_up.length) panel.append(el("h3", "", "Runners-up"), runners);
    if (data.neighbours.length) panel.append(el("h3", "", "Nearest training examples"), nearest);
  }

  // The help center's part: the passages weighed with their BM25, dense and fused scores,
  // the abstention score against the threshold, the chosen sentences, the index version.
  function renderKnowledgeWhy(panel, data, indexVersion) {
    const box = el("div", "why-knowledge");
    const score = data.score === null ? "none" : data.score.toFixed(3);
    const rule = el("dl", "why-rule why-kb-rule");
    const decision = data.answered ? "answered from “" + data.chosen.title + "”" : "declined: the best passage scored below the threshold";
    const parts = data.score_rule;
    [
      ["Decision", decision],
      ["Rule", "score " + score + " against threshold " + data.threshold.toFixed(3) + (data.answered ? " → answered" : " → declined")],
      ["Score", "sigmoid(" + parts.bias.toFixed(2) + parts.terms.map((t) => " + " + t.weight.toFixed(2) + " × " + t.feature + " " +
        t.value.toFixed(3)).join("") + ")"],
      ["Threshold", data.threshold_rule],
      ["Index", "v" + indexVersion + " · " + String(data.index_id || "").slice(0, 12)],
    ].forEach(([term, value]) => rule.append(el("dt", "", term), el("dd", "", value)));
    box.append(el("h3", "", "Help center"), rule);
    if (data.chosen && data.chosen.sentences.length) {
      const sentences = el("ol", "why-kb-sentences");
      data.chosen.sentences.forEach((sentence) => sentences.append(el("li", "", sentence)));
      box.append(el("h3", "", "Chosen sentences"), sentences);
    }
    const table = el("table", "why-kb-passages");
    const head = el("tr");
    ["#", "passage", "BM25", "dense", "fused"].forEach((name) => head.append(el("th", "", name)));
    table.append(head);
    data.passages.forEach((p) => {
      const row = el("tr", p.chosen ? "chosen" : "");
      const cell = el("td", "why-kb-passage");
      cell.append(el("b", "", p.title + (p.heading ? " › " + p.heading : "")), el("div", "muted", p.text));
      row.append(el("td", "", String(p.rank)), cell, el("td", "num", p.bm25.toFixed(3)), el("td", "num", p.dense.toFixed(3)), el("td", "num", p.fused.toFixed(3)));
      table.append(row);
    });
    box.append(el("h3", "", "Passages considered"), table);
    panel.append(box);
  }

  document.addEventListener("click", (event) => {
    const button = event.target.closest(".why-toggle");
    if (!button) return;
    const box = button.closest(".msg");
    const panel = box.querySelector(".why");
    const open = button.getAttribute("aria-expanded") !== "true";
    button.setAttribute("aria-expanded", open ? "true" : "false");
    panel.hidden = !open;
    if (open && panel.dataset.state !== "ready" && panel.dataset.state !== "pending") askWhy(panel, box.dataset.messageId);
  });

  function showVisitorTyping(on) {
    const box = document.getElementById("visitor-typing");
    if (!box) return;
    box.hidden = !on;
    clearTimeout(visitorTypingTimer);
    if (on) visitorTypingTimer = setTimeout(() => (box.hidden = true), 6000);
  }

  // --- The socket ------------------------------------------------------------------

  function connect() {
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    socket = new WebSocket(scheme + location.host + "/ws/agent/");
    socket.addEventListener("open", () => {
      retryMs = 500;
      dotEl.className = "dot live";
      dotEl.title = "Connected";
      const id = openedId();
      if (id) send({ type: "open", conversation_id: id });
      scheduleQueueRefresh(); // catch up on anything missed while disconnected
    });
    socket.addEventListener("message", (event) => {
      let frame;
      try {
        frame = JSON.parse(event.data);
      } catch (error) {
        return;
      }
      onFrame(frame);
    });
    socket.addEventListener("close", (event) => {
      clearInterval(heartbeat);
      dotEl.className = "dot down";
      dotEl.title = "Reconnecting…";
      if (event.code === 4403) {
        location.href = "/agent/login/?next=" + encodeURIComponent(location.pathname);
        return;
      }
      setTimeout(connect, retryMs);
      retryMs = Math.min(retryMs * 2, 15000);
    });
  }

  function onFrame(frame) {
    const opened = openedId();
    switch (frame.type) {
      case "hello":
        myId = frame.agent.id;
        clearInterval(heartbeat);
        heartbeat = setInterval(() => send({ type: "ping" }), (frame.heartbeat_s || 20) * 1000);
        break;
      case "presence":
        renderPresence(frame.online);
        break;
      case "queue":
        scheduleQueueRefresh();
        notifyOnQueue(frame);
        break;
      case "message":
        if (frame.conversation_id === opened) appendMessage(frame.message);
        if (frame.conversation_id === opened && frame.message.sender === "visitor") scheduleArticles();
        if (frame.message.sender === "visitor") showVisitorTyping(false);
        break;
      case "prediction": {
        const form = document.querySelector('[data-message-id="' + frame.message_id + '"] .intent-form');
        if (form && frame.conversation_id === opened) setPrediction(form, frame.out_of_scope ? "" : frame.intent, frame.confidence);
        break;
      }
      case "explanation": {
        const panel = document.getElementById("why-" + frame.message_id);
        if (panel && frame.conversation_id === opened && panel.dataset.state === "pending") renderWhy(panel, frame);
        break;
      }
      case "suggestions":
        if (frame.conversation_id === opened) {
          const stale = lastSuggestions && lastSuggestions.conversation_id === opened && Number(frame.message_id) < Number(lastSuggestions.message_id);
          if (!stale) lastSuggestions = frame;
          showSuggestions(frame);
        }
        break;
      case "articles":
        if (frame.conversation_id === opened) showSuggestedArticles(frame);
        break;
      case "opened":
        if (frame.conversation_id === opened) scheduleArticles();
        break;
      case "status":
        if (frame.conversation_id === opened) openConversation(opened, false);
        break;
      case "typing":
        if (frame.conversation_id === opened && frame.sender === "visitor") showVisitorTyping(frame.on);
        break;
    }
  }

  // --- Suggested replies: one click puts one in the reply box ------------------------------

  function showSuggestions(frame) {
    const box = document.getElementById("reply-suggestions");
    if (!box || !frame.suggestions || !frame.suggestions.length) return;
    // Sets are made by separate tasks and can arrive out of order: the set for the
    // visitor's newest message wins, a late one for an earlier message is dropped.
    if (Number(frame.message_id) < Number(box.dataset.messageId || 0)) return;
    box.dataset.messageId = String(frame.message_id);
    // The row takes height from the transcript: keep the newest message in view.
    const transcript = document.getElementById("transcript");
    const atEnd = !transcript || transcript.scrollHeight - transcript.scrollTop - transcript.clientHeight < 60;
    box.replaceChildren();
    frame.suggestions.forEach((suggestion) => {
      const button = el("button", "btn btn-ghost suggestion", suggestion.text); // textContent, never HTML
      button.type = "button";
      button.dataset.eventId = String(frame.event_id);
      box.append(button);
    });
    box.hidden = false;
    if (atEnd) scrollToEnd();
  }

  function clearSuggestions(form) {
    const box = document.getElementById("reply-suggestions");
    lastSuggestions = null;
    if (box) {
      box.replaceChildren();
      box.hidden = true;
    }
    form.elements.suggestion_event_id.value = "";
    form.elements.suggestion_inserted.value = "";
  }

  document.addEventListener("click", (event) => {
    const button = event.target.closest("#reply-suggestions .suggestion");
    if (!button) return;
    const form = button.closest("form");
    const textarea = form.querySelector("textarea");
    textarea.value = button.textContent;
    form.elements.suggestion_event_id.value = button.dataset.eventId;
    form.elements.suggestion_inserted.value = "1";
    textarea.focus();
  });

  // --- The help center: suggested articles, search, one click inserts title + link -----------
  // Suggestions are asked for when the conversation is opened on the socket and on each
  // new visitor message; a task on the inference queue finds them and they come back as
  // an "articles" frame. Search asks the server directly. Text goes in as textContent.

  async function askForArticles() {
    const id = openedId();
    if (!id || !document.getElementById("article-suggestions")) return;
    try {
      await fetch("/agent/c/" + id + "/articles", {
        method: "POST",
        credentials: "same-origin",
        headers: { "X-CSRFToken": csrfToken(), Accept: "application/json" },
      });
    } catch (error) {
      /* no suggestions: the search box still works */
    }
  }
  const scheduleArticles = debounce(askForArticles, 300);

  function articleItem(article) {
    const item = el("div", "article-item");
    item.dataset.articleId = article.article_id;
    const title = el("div", "article-title", article.title);
    item.append(title);
    if (article.heading) item.append(el("div", "article-heading muted", article.heading));
    if (article.snippet) item.append(el("p", "article-snippet", article.snippet));
    const bar = el("div", "article-bar");
    const insert = el("button", "btn btn-small article-insert", "Insert link");
    insert.type = "button";
    insert.dataset.title = article.title;
    insert.dataset.url = article.url || "";
    bar.append(insert);
    if (/^https?:\/\//.test(article.url || "")) {
      const open = el("a", "article-open", "open");
      open.href = article.url;
      open.target = "_blank";
      open.rel = "noopener noreferrer";
      bar.append(open);
    }
    item.append(bar);
    return item;
  }

  function showArticles(box, articles, empty) {
    box.replaceChildren();
    if (!articles.length) box.append(el("p", "muted", empty));
    articles.forEach((article) => box.append(articleItem(article)));
  }

  function showSuggestedArticles(frame) {
    const box = document.getElementById("article-suggestions");
    if (!box || Number(frame.message_id) < Number(box.dataset.messageId || 0)) return;
    box.dataset.messageId = String(frame.message_id);
    showArticles(box, frame.articles || [], "No article fits the visitor's last message.");
  }

  document.addEventListener("submit", async (event) => {
    const form = event.target;
    if (form.id !== "article-search") return;
    event.preventDefault();
    const results = document.getElementById("article-results");
    const query = form.elements.q.value.trim();
    if (!query) return;
    const response = await fetch(form.action + "?q=" + encodeURIComponent(query), {
      credentials: "same-origin",
      headers: { Accept: "application/json" },
    });
    const body = await response.json().catch(() => ({}));
    if (!response.ok) return toast(body.message || "Search did not work.");
    showArticles(results, body.articles || [], "No article matches “" + query + "”.");
  });

  document.addEventListener("click", (event) => {
    const button = event.target.closest(".article-insert");
    if (!button) return;
    const textarea = document.getElementById("composer-text");
    if (!textarea) return toast("This conversation is closed.");
    const link = button.dataset.title + (button.dataset.url ? " — " + button.dataset.url : "");
    const start = textarea.selectionStart ?? textarea.value.length;
    const end = textarea.selectionEnd ?? start;
    const before = textarea.value.slice(0, start);
    const spacer = before && !/\s$/.test(before) ? " " : "";
    textarea.value = before + spacer + link + textarea.value.slice(end);
    const at = (before + spacer + link).length;
    textarea.focus();
    textarea.setSelectionRange(at, at);
  });

  // --- Forms: posted with fetch, CSRF in a header ------------------------------------------

  async function post(form, action) {
    const response = await fetch(action || form.action, {
      method: "POST",
      body: new FormData(form),
      credentials: "same-origin",
      headers: { "X-CSRFToken": csrfToken(), Accept: "application/json" },
    });
    let body = {};
    try {
      body = await response.json();
    } catch (error) {
      body = { message: "Something went wrong (" + response.status + ")." };
    }
    if (!response.ok) {
      toast(body.message || "That did not work.");
      return null;
    }
    return body;
  }

  document.addEventListener("submit", async (event) => {
    const form = event.target;
    if (!form.dataset.action) return;
    event.preventDefault();
    const submitter = event.submitter;
    const action = submitter && submitter.getAttribute("formaction");
    if (form.dataset.action === "compose") {
      const textarea = form.querySelector("textarea");
      if (!textarea.value.trim()) return;
      const body = await post(form, action);
      if (body) {
        if (!action) clearSuggestions(form); // a reply settles them; a note does not
        textarea.value = "";
        sendTyping(false);
        if (body.message) appendMessage(body.message);
      }
      textarea.focus();
      return;
    }
    const body = await post(form, action);
    if (!body) return;
    if (form.dataset.action === "correct") {
      let mark = form.querySelector(".corrected");
      if (!mark) form.append((mark = el("span", "corrected")));
      mark.textContent = "✓ corrected";
    } else {
      openConversation(openedId(), false);
      scheduleQueueRefresh();
    }
  });

  document.addEventListener("change", (event) => {
    const select = event.target;
    if (select.matches(".intent-form select") && select.value) select.form.requestSubmit();
  });

  // --- Navigation without reloads ----------------------------------------------------

  document.addEventListener("click", (event) => {
    const link = event.target.closest("a[data-conversation], a[data-back]");
    if (!link || event.metaKey || event.ctrlKey || event.shiftKey || event.button !== 0) return;
    event.preventDefault();
    if (link.dataset.back !== undefined) {
      layoutEl.classList.remove("has-conversation");
      history.pushState({}, "", "/agent/");
      return;
    }
    openConversation(link.dataset.conversation, true);
  });

  window.addEventListener("popstate", () => {
    const match = location.pathname.match(/^\/agent\/c\/([0-9a-f-]{36})\/$/);
    if (match) openConversation(match[1], false);
    else layoutEl.classList.remove("has-conversation");
  });

  // --- Composer: Enter sends, typing indicator, "/" canned responses --------------------------

  function sendTyping(on) {
    const conv = conversationEl();
    if (!conv || conv.dataset.mine !== "1") return;
    const now = Date.now();
    clearTimeout(typingOffTimer);
    if (on) {
      if (now - lastTypingSent > 2000) {
        send({ type: "typing", on: true });
        lastTypingSent = now;
      }
      typingOffTimer = setTimeout(() => sendTyping(false), 3000);
    } else if (lastTypingSent) {
      send({ type: "typing", on: false });
      lastTypingSent = 0;
    }
  }

  function cannedQuery(textarea) {
    const before = textarea.value.slice(0, textarea.selectionStart);
    const match = before.match(/(?:^|\s)\/([\w-]*)$/);
    return match ? match[1].toLowerCase() : null;
  }

  function renderCanned(textarea) {
    const menu = document.getElementById("canned-menu");
    if (!menu) return;
    const query = cannedQuery(textarea);
    const matches = query === null ? [] : canned.filter((c) => c.shortcut.startsWith(query) || c.title.toLowerCase().includes(query));
    menu.replaceChildren();
    menu.hidden = matches.length === 0;
    matches.forEach((c, index) => {
      const option = el("button", "canned-option");
      option.type = "button";
      option.setAttribute("role", "option");
      option.setAttribute("aria-selected", index === 0 ? "true" : "false");
      option.dataset.shortcut = c.shortcut;
      option.append(el("b", "", "/" + c.shortcut), el("span", "", c.title));
      option.title = c.text;
      menu.append(option);
    });
  }

  function insertCanned(textarea, shortcut) {
    const item = canned.find((c) => c.shortcut === shortcut);
    if (!item) return;
    const cursor = textarea.selectionStart;
    const before = textarea.value.slice(0, cursor).replace(/\/[\w-]*$/, "");
    textarea.value = before + item.text + textarea.value.slice(cursor);
    const end = (before + item.text).length;
    textarea.setSelectionRange(end, end);
    document.getElementById("canned-menu").hidden = true;
    textarea.focus();
  }

  document.addEventListener("input", (event) => {
    if (event.target.id !== "composer-text") return;
    renderCanned(event.target);
    if (event.target.value.trim()) sendTyping(true);
  });

  document.addEventListener("keydown", (event) => {
    const textarea = event.target;
    if (textarea.id !== "composer-text") return;
    const menu = document.getElementById("canned-menu");
    const options = menu && !menu.hidden ? Array.from(menu.children) : [];
    if (options.length) {
      const current = Math.max(0, options.findIndex((o) => o.getAttribute("aria-selected") === "true"));
      if (event.key === "ArrowDown" || event.key === "ArrowUp") {
        event.preventDefault();
        const next = (current + (event.key === "ArrowDown" ? 1 : options.length - 1)) % options.length;
        options.forEach((o, i) => o.setAttribute("aria-selected", i === next ? "true" : "false"));
        return;
      }
      if (event.key === "Enter" || event.key === "Tab") {
        event.preventDefault();
        insertCanned(textarea, options[current].dataset.shortcut);
        return;
      }
      if (event.key === "Escape") {
        menu.hidden = true;
        return;
      }
    }
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      const form = textarea.form;
      const replyButton = form.querySelector('[data-kind="reply"]');
      const noteButton = form.querySelector('[data-kind="note"]');
      form.requestSubmit(replyButton.disabled ? noteButton : replyButton);
    }
  });

  document.addEventListener("click", (event) => {
    const option = event.target.closest(".canned-option");
    if (option) insertCanned(document.getElementById("composer-text"), option.dataset.shortcut);
  });

  // --- Inbox views and search (Mine / Unassigned / All open / Closed) -----------------

  const inbox = { view: "", q: "" };

  // The page each queue section shows ("N more" pages through a long one; the server caps each page).
  const queuePages = {};

  function inboxQuery() {
    const params = new URLSearchParams();
    if (inbox.view) params.set("view", inbox.view);
    if (inbox.q) params.set("q", inbox.q);
    Object.entries(queuePages).forEach(([section, page]) => {
      if (page > 1) params.set(section + "_page", String(page));
    });
    const query = params.toString();
    return query ? "?" + query : "";
  }

  document.addEventListener("click", (event) => {
    const link = event.target.closest("a[data-queue-page]");
    if (!link || event.metaKey || event.ctrlKey || event.shiftKey || event.button !== 0) return;
    event.preventDefault();
    queuePages[link.dataset.queueSection] = Number(link.dataset.queuePage) || 1;
    refreshQueue();
  });

  document.addEventListener("click", (event) => {
    const link = event.target.closest(".inbox-views a[data-view]");
    if (!link || event.metaKey || event.ctrlKey || event.shiftKey || event.button !== 0) return;
    event.preventDefault();
    inbox.view = link.dataset.view;
    refreshQueue();
  });

  document.addEventListener("submit", (event) => {
    const form = event.target;
    if (!form.matches("[data-inbox-search]")) return;
    event.preventDefault();
    inbox.q = form.elements.q.value.trim();
    refreshQueue();
  });

  // --- Notifications: a new waiting conversation (a tone; a notification too while the
  // tab is hidden), and a visitor's message in one of mine while the tab is hidden.
  // Both come from the queue frames every agent gets, whatever view or conversation is open.

  function notifyOnQueue(frame) {
    if (frame.entered_queue) {
      notify("A visitor is waiting", "New conversation in the queue.", true);
    } else if (frame.visitor_message && myId !== null && frame.assigned_agent_id === myId) {
      notify("New message from a visitor", "In one of your conversations.", false);
    }
  }

  function notify(title, body, soundWhileVisible) {
    if (!document.hidden && !soundWhileVisible) return;
    try {
      const context = new (window.AudioContext || window.webkitAudioContext)();
      const tone = context.createOscillator();
      tone.frequency.value = 880;
      tone.connect(context.destination);
      tone.start();
      tone.stop(context.currentTime + 0.15);
    } catch (error) {
      /* no sound: autoplay refused */
    }
    if (document.hidden && "Notification" in window && Notification.permission === "granted") {
      new Notification(title, { body: body, tag: title });
    }
  }

  // Asked once, on the first click (browsers refuse a request without a user gesture).
  function askForNotificationsOnce() {
    if (!("Notification" in window) || Notification.permission !== "default" || localStorage.getItem("asked-notify")) return;
    localStorage.setItem("asked-notify", "1");
    Notification.requestPermission();
  }
  document.addEventListener("click", askForNotificationsOnce, { once: true });

  // --- Start -----------------------------------------------------------------------

  markActive();
  refreshTimes();
  scrollToEnd();
  setInterval(refreshTimes, 15000);
  setInterval(refreshQueue, 30000); // a safety net for events lost while reconnecting
  connect();
})();
