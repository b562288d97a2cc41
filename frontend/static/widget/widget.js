/* The chat widget: one script tag puts a chat bubble on any site and talks to
 * the chatbot server over the protocol of docs/protocol.md (one POST, then a
 * websocket). Plain JavaScript, no build step; everything it draws lives in an
 * open Shadow DOM so the host page's CSS and the widget's cannot meet.
 * Message content only ever reaches the page through textContent. */
(function () {
  "use strict";

  if (window.ChatWidget && window.ChatWidget.version) return; // the snippet was pasted twice

  var VERSION = "1.0.0";
  var MAX_CHARS = 2000; // the server's MAX_MESSAGE_CHARS
  var HISTORY_CAP = 200; // messages kept in localStorage for an instant redraw
  var RECONNECT_BASE_MS = 500;
  var RECONNECT_MAX_MS = 30000;
  var PING_EVERY_MS = 25000;
  var PONG_WITHIN_MS = 10000;
  var RESUME_RETRY_MS = 5000; // at most one resume request in flight per this long
  var TYPING_TIMEOUT_MS = 20000;
  // The visitor's typing frames: at most one "on" every 3 s, "off" after 4 s idle or on send.
  var TYPING_SEND_EVERY_MS = 3000;
  var TYPING_IDLE_MS = 4000;
  var SESSION_AUTO_RETRIES = 4;

  // --- Configuration: window.ChatWidgetConfig wins over data- attributes ------

  var script =
    document.currentScript || document.querySelector('script[src*="widget/widget.js"][data-server], script[src*="widget/widget.js"]');
  var dataset = (script && script.dataset) || {};
  var jsConfig = window.ChatWidgetConfig || {};

  function option(name, fallback) {
    if (jsConfig[name] !== undefined && jsConfig[name] !== null) return jsConfig[name];
    if (dataset[name] !== undefined) return dataset[name];
    return fallback;
  }

  var server = String(option("server", script && script.src ? new URL(script.src, location.href).origin : location.origin)).replace(/\/+$/, "");
  var wsUrl = server.replace(/^http/, "ws") + "/ws/chat/";
  var locale = String(option("locale", document.documentElement.lang || navigator.language || "en"));
  var position = option("position", "right") === "left" ? "left" : "right";
  var accent = safeColour(option("color", option("colour", "#2563eb")));

  var TEXTS = {
    en: {
      title: "Chat with us",
      greeting: "Hi there! How can we help you today?",
      botName: "Assistant",
      you: "You",
      statusBot: "Replies in a few seconds",
      statusWaiting: "Waiting for a member of our team",
      statusAgent: "You are chatting with {name}",
      statusAgentAnon: "You are chatting with our team",
      statusClosed: "This conversation has ended",
      open: "Open chat",
      openUnread: "Open chat, {n} unread",
      close: "Close chat",
      input: "Message",
      placeholder: "Write a message…",
      send: "Send message",
      connecting: "Connecting…",
      reconnecting: "Connection lost. Reconnecting…",
      offline: "You are offline. Messages will be sent when you are back online.",
      unavailable: "The chat can't be reached from this page right now.",
      retry: "Try again",
      human: "Talk to a human",
      end: "End chat",
      repliesIn: "Our team typically replies in {time}",
      closedNow: "We're away right now. Leave a message and we'll reply within {time}.",
      emailAsk: "Leave your email address and we'll reply there.",
      emailLabel: "Your email address",
      emailSave: "Save",
      helpful: "Helpful",
      notHelpful: "Not helpful",
      fromHelpCenter: "From our help center",
      readArticle: "Read the article",
      wasHelpful: "Was this helpful?",
      yes: "Yes",
      no: "No",
      feedbackThanks: "Thanks for the feedback.",
      ratePrompt: "How would you rate this conversation?",
      rateLabel: "Rate this conversation",
      star: "{n} out of 5",
      notNow: "Back to the chat",
      rated: "Thanks for your rating!",
      newChat: "Start a new chat",
      queued: "Waiting to send",
      sending: "Sending…",
      typing: "{name} is typing",
      counter: "{n} / {max}",
      tooLong: "Your message is {n} characters too long.",
      errRateLimited: "You are sending messages too quickly. Wait a few seconds, then send it again.",
      errTooLong: "That message is too long: 2,000 characters at most.",
      errEmpty: "The message is empty.",
      errOther: "The message could not be sent ({message}).",
    },
    de: {
      title: "Chatten Sie mit uns",
      greeting: "Hallo! Wie können wir Ihnen helfen?",
      botName: "Assistent",
      you: "Sie",
      statusBot: "Antwortet in wenigen Sekunden",
      statusWaiting: "Warten auf eine Person aus unserem Team",
      statusAgent: "Sie chatten mit {name}",
      statusAgentAnon: "Sie chatten mit unserem Team",
      statusClosed: "Dieses Gespräch ist beendet",
      open: "Chat öffnen",
      openUnread: "Chat öffnen, {n} ungelesen",
      close: "Chat schließen",
      input: "Nachricht",
      placeholder: "Nachricht schreiben…",
      send: "Nachricht senden",
      connecting: "Verbinden…",
      reconnecting: "Verbindung unterbrochen. Neu verbinden…",
      offline: "Sie sind offline. Nachrichten werden gesendet, sobald Sie wieder online sind.",
      unavailable: "Der Chat ist von dieser Seite aus gerade nicht erreichbar.",
      retry: "Erneut versuchen",
      human: "Mit einem Menschen sprechen",
      end: "Chat beenden",
      helpful: "Hilfreich",
      notHelpful: "Nicht hilfreich",
      fromHelpCenter: "Aus unserem Hilfe-Center",
      readArticle: "Artikel lesen",
      wasHelpful: "War das hilfreich?",
      yes: "Ja",
      no: "Nein",
      feedbackThanks: "Danke für Ihr Feedback.",
      ratePrompt: "Wie bewerten Sie dieses Gespräch?",
      rateLabel: "Gespräch bewerten",
      star: "{n} von 5",
      notNow: "Zurück zum Chat",
      rated: "Danke für Ihre Bewertung!",
      newChat: "Neuen Chat beginnen",
      queued: "Wartet auf Versand",
      sending: "Wird gesendet…",
      typing: "{name} schreibt",
      tooLong: "Ihre Nachricht ist {n} Zeichen zu lang.",
      errRateLimited: "Sie senden zu schnell. Warten Sie einige Sekunden und senden Sie dann erneut.",
      errTooLong: "Die Nachricht ist zu lang: höchstens 2.000 Zeichen.",
      errEmpty: "Die Nachricht ist leer.",
      errOther: "Die Nachricht konnte nicht gesendet werden ({message}).",
    },
    fr: {
      title: "Discutons",
      greeting: "Bonjour ! Comment pouvons-nous vous aider ?",
      botName: "Assistant",
      you: "Vous",
      statusBot: "Répond en quelques secondes",
      statusWaiting: "En attente d'un membre de notre équipe",
      statusAgent: "Vous discutez avec {name}",
      statusAgentAnon: "Vous discutez avec notre équipe",
      statusClosed: "Cette conversation est terminée",
      open: "Ouvrir le chat",
      openUnread: "Ouvrir le chat, {n} non lus",
      close: "Fermer le chat",
      input: "Message",
      placeholder: "Écrivez un message…",
      send: "Envoyer le message",
      connecting: "Connexion…",
      reconnecting: "Connexion perdue. Reconnexion…",
      offline: "Vous êtes hors ligne. Les messages partiront à votre retour en ligne.",
      unavailable: "Le chat est injoignable depuis cette page pour le moment.",
      retry: "Réessayer",
      human: "Parler à un humain",
      end: "Terminer le chat",
      helpful: "Utile",
      notHelpful: "Pas utile",
      fromHelpCenter: "De notre centre d'aide",
      readArticle: "Lire l'article",
      wasHelpful: "Cela vous a-t-il aidé ?",
      yes: "Oui",
      no: "Non",
      feedbackThanks: "Merci pour votre avis.",
      ratePrompt: "Comment évaluez-vous cette conversation ?",
      rateLabel: "Évaluer cette conversation",
      star: "{n} sur 5",
      notNow: "Revenir au chat",
      rated: "Merci pour votre note !",
      newChat: "Nouvelle conversation",
      queued: "En attente d'envoi",
      sending: "Envoi…",
      typing: "{name} écrit",
      tooLong: "Votre message a {n} caractères de trop.",
      errRateLimited: "Vous envoyez trop vite. Attendez quelques secondes, puis renvoyez.",
      errTooLong: "Ce message est trop long : 2 000 caractères au plus.",
      errEmpty: "Le message est vide.",
      errOther: "Le message n'a pas pu être envoyé ({message}).",
    },
  };
  var texts = Object.assign({}, TEXTS.en, TEXTS[locale.slice(0, 2).toLowerCase()] || {}, option("strings", {}));
  var title = String(option("title", texts.title));
  var greeting = String(option("greeting", texts.greeting));
  var botName = String(option("botName", texts.botName));

  function t(key, values) {
    return String(texts[key] || TEXTS.en[key] || key).replace(/\{(\w+)\}/g, function (_, name) {
      return values && values[name] !== undefined ? values[name] : "";
    });
  }

  function safeColour(value) {
    // Only plain colours reach CSS: a data attribute must not inject declarations.
    value = String(value || "").trim();
    return /^#[0-9a-f]{3}([0-9a-f]{3})?$/i.test(value) || /^(rgb|hsl)a?\([\d\s.,%]+\)$/i.test(value) ? value : "#2563eb";
  }

  // --- Persistence: one JSON record per server, in localStorage ---------------

  var storeKey = "chatwidget:v1:" + server;
  var memoryStore = {};
  function readStore() {
    try {
      return JSON.parse(localStorage.getItem(storeKey) || "{}") || {};
    } catch (e) {
      return memoryStore;
    }
  }
  var S = readStore();
  function save() {
    if (S.messages && S.messages.length > HISTORY_CAP) S.messages = S.messages.slice(-HISTORY_CAP);
    try {
      localStorage.setItem(storeKey, JSON.stringify(S));
    } catch (e) {
      memoryStore = S; // storage full or blocked (private mode, sandbox): keep going in memory
    }
  }
  function resetConversation() {
    S.conversationId = null;
    S.lastSeq = 0;
    S.messages = [];
    S.status = "bot";
    S.ended = false;
    S.rated = false;
    S.feedback = {};
  }
  if (!Array.isArray(S.messages)) S.messages = [];
  if (!Array.isArray(S.queue)) S.queue = [];
  if (!Array.isArray(S.outbox)) S.outbox = [];
  if (!S.feedback) S.feedback = {};
  S.lastSeq = S.lastSeq || 0;

  function newId() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    // randomUUID needs a secure context; build the same version-4 UUID by hand.
    var b = crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    var hex = Array.prototype.map.call(b, function (x) { return (x + 0x100).toString(16).slice(1); }).join("");
    return hex.slice(0, 8) + "-" + hex.slice(8, 12) + "-" + hex.slice(12, 16) + "-" + hex.slice(16, 20) + "-" + hex.slice(20);
  }

  // --- Events for the host page ----------------------------------------------

  var listeners = {};
  function emit(name, detail) {
    (listeners[name] || []).slice().forEach(function (fn) {
      try { fn(detail); } catch (e) { setTimeout(function () { throw e; }); }
    });
    try { window.dispatchEvent(new CustomEvent("chatwidget:" + name, { detail: detail })); } catch (e) { /* old browsers */ }
  }

  // --- DOM helpers: text goes in as text nodes, never as markup ---------------

  function h(tag, attrs) {
    var el = document.createElement(tag);
    for (var key in attrs || {}) {
      var value = attrs[key];
      if (value === undefined || value === null || value === false) continue;
      if (key === "class") el.className = value;
      else if (key === "text") el.textContent = value;
      else if (key.slice(0, 2) === "on") el.addEventListener(key.slice(2), value);
      else el.setAttribute(key, value === true ? "" : value);
    }
    for (var i = 2; i < arguments.length; i++) {
      var child = arguments[i];
      if (child !== null && child !== undefined && child !== false) el.append(child);
    }
    return el;
  }

  // Icon paths from Material Icons (Apache-2.0): static strings, not content.
  var ICONS = {
    chat: "M20 2H4a2 2 0 0 0-2 2v18l4-4h14a2 2 0 0 0 2-2V4a2 2 0 0 0-2-2zM6 9h12v2H6V9zm8 5H6v-2h8v2zm4-6H6V6h12v2z",
    close: "M19 6.41 17.59 5 12 10.59 6.41 5 5 6.41 10.59 12 5 17.59 6.41 19 12 13.41 17.59 19 19 17.59 13.41 12z",
    down: "M7.41 8.59 12 13.17l4.59-4.58L18 10l-6 6-6-6z",
    send: "M2.01 21 23 12 2.01 3 2 10l15 2-15 2z",
    thumb: "M1 21h4V9H1v12zm22-11a2 2 0 0 0-2-2h-6.31l.95-4.57.03-.32c0-.41-.17-.79-.44-1.06L14.17 1 7.59 7.59C7.22 7.95 7 8.45 7 9v10a2 2 0 0 0 2 2h9c.83 0 1.54-.5 1.84-1.22l3.02-7.05c.09-.23.14-.47.14-.73v-2z",
    person: "M12 12a4 4 0 1 0 0-8 4 4 0 0 0 0 8zm0 2c-2.67 0-8 1.34-8 4v2h16v-2c0-2.66-5.33-4-8-4z",
    star: "M12 17.27 18.18 21l-1.64-7.03L22 9.24l-7.19-.61L12 2 9.19 8.63 2 9.24l5.46 4.73L5.82 21z",
  };
  function icon(name, cls) {
    var ns = "http://www.w3.org/2000/svg";
    var svg = document.createElementNS(ns, "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("aria-hidden", "true");
    svg.setAttribute("focusable", "false");
    if (cls) svg.setAttribute("class", cls);
    var path = document.createElementNS(ns, "path");
    path.setAttribute("d", ICONS[name]);
    svg.appendChild(path);
    return svg;
  }

  // --- Styles ----------------------------------------------------------------

  function inkFor(colour) {
    // Black or white text on the accent, whichever reads better (WCAG contrast).
    var probe = document.createElement("span");
    probe.style.color = colour;
    document.body.appendChild(probe);
    var rgb = (getComputedStyle(probe).color.match(/[\d.]+/g) || [37, 99, 235]).slice(0, 3).map(Number);
    probe.remove();
    var lum = rgb.map(function (c) {
      c /= 255;
      return c <= 0.03928 ? c / 12.92 : Math.pow((c + 0.055) / 1.055, 2.4);
    });
    var l = 0.2126 * lum[0] + 0.7152 * lum[1] + 0.0722 * lum[2];
    return (1.05 / (l + 0.05)) >= (l + 0.05) / 0.05 ? "#ffffff" : "#111827";
  }

  // Knowledge answers (issue 16): the citation card and "Was this helpful?".
  var KNOWLEDGE_CSS = [
    ".kb-card{margin-top:6px;padding:8px 12px;border:1px solid #e5e7eb;border-left:3px solid var(--accent-strong);border-radius:10px;background:#fff;max-width:100%;overflow-wrap:anywhere}",
    ".kb-source{font-size:11px;color:#6b7280;text-transform:uppercase;letter-spacing:.04em}",
    ".kb-title{font-weight:600;font-size:14px;color:#111827;margin:2px 0}",
    ".kb-link{font-size:13px;color:var(--accent-strong)}",
    ".kb-helpful{display:flex;align-items:center;gap:6px;margin-top:4px;font-size:12px;color:#4b5563}",
    ".kb-helpful button{border:1px solid #d1d5db;background:#fff;border-radius:12px;padding:1px 10px;font-size:12px;color:#374151}",
    ".kb-helpful button[aria-pressed=true]{background:#e0e7ff;border-color:var(--accent-strong);color:#111827}",
  ];

  var CSS = [
    ":host{all:initial}",
    "*,*::before,*::after{box-sizing:border-box}",
    "[hidden]{display:none!important}",
    ".root{font:15px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,'Helvetica Neue',Arial,sans-serif;color:#1f2937;-webkit-font-smoothing:antialiased}",
    "button,textarea{font:inherit;color:inherit}",
    "button{cursor:pointer}",
    "svg{width:20px;height:20px;fill:currentColor;flex:none}",
    ".sr{position:absolute!important;width:1px;height:1px;padding:0;margin:-1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap;border:0}",
    ":focus-visible{outline:3px solid var(--focus);outline-offset:2px}",
    ".launcher{position:fixed;bottom:20px;right:20px;z-index:2147483000;width:60px;height:60px;border:0;border-radius:50%;background:var(--accent);color:var(--ink);display:flex;align-items:center;justify-content:center;box-shadow:0 6px 24px rgba(15,23,42,.24);transition:transform .15s ease}",
    ".launcher:hover{transform:scale(1.05)}",
    ".launcher svg{width:28px;height:28px}",
    ".badge{position:absolute;top:-2px;right:-2px;min-width:22px;height:22px;padding:0 6px;border-radius:11px;background:#b91c1c;color:#fff;font-size:12px;font-weight:700;line-height:22px;text-align:center;border:2px solid #fff}",
    ".left .launcher{right:auto;left:20px}",
    ".panel{position:fixed;bottom:96px;right:20px;z-index:2147483000;width:384px;height:min(640px,calc(100vh - 120px));min-height:360px;display:flex;flex-direction:column;background:#fff;border-radius:16px;overflow:hidden;box-shadow:0 16px 56px rgba(15,23,42,.22),0 2px 8px rgba(15,23,42,.08);transform-origin:bottom right;animation:pop .18s ease-out}",
    ".left .panel{right:auto;left:20px;transform-origin:bottom left}",
    "@keyframes pop{from{opacity:0;transform:translateY(12px) scale(.98)}to{opacity:1;transform:none}}",
    "@media (prefers-reduced-motion:reduce){.panel,.dots span{animation:none!important}.launcher{transition:none}}",
    ".head{background:var(--accent);color:var(--ink);padding:16px 12px 16px 16px;display:flex;align-items:center;gap:12px;flex:none}",
    ".avatar{width:40px;height:40px;border-radius:50%;background:var(--ink);color:var(--accent);display:flex;align-items:center;justify-content:center;flex:none;font-weight:700}",
    ".avatar svg{width:22px;height:22px}",
    ".who{flex:1;min-width:0}",
    ".who h2{margin:0;font-size:16px;font-weight:650;line-height:1.3;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}",
    ".who p{margin:2px 0 0;font-size:13px;line-height:1.3}",
    ".hbtn{border:0;background:transparent;color:var(--ink);height:36px;min-width:36px;border-radius:8px;display:flex;align-items:center;justify-content:center;gap:6px;padding:0 8px;font-size:13px;font-weight:600}",
    ".hbtn:hover{background:rgba(127,127,127,.22)}",
    ".head :focus-visible{outline-color:var(--ink)}",
    ".conn{flex:none;padding:8px 16px;font-size:13px;background:#fef3c7;color:#78350f;display:flex;align-items:center;gap:8px}",
    ".conn.bad{background:#fee2e2;color:#7f1d1d}",
    ".conn button{margin-left:auto;border:1px solid currentColor;background:#fff;border-radius:6px;padding:2px 10px;font-size:13px;font-weight:600}",
    ".spin{width:12px;height:12px;border-radius:50%;border:2px solid currentColor;border-right-color:transparent;animation:spin .8s linear infinite;flex:none}",
    "@keyframes spin{to{transform:rotate(360deg)}}",
    ".body{flex:1;overflow-y:auto;background:#f6f7f9;padding:16px 14px 8px;overscroll-behavior:contain}",
    ".log{display:flex;flex-direction:column;gap:2px}",
    ".msg{display:flex;flex-direction:column;align-items:flex-start;max-width:84%;margin-top:10px}",
    ".msg.same{margin-top:2px}",
    ".msg.visitor{align-self:flex-end;align-items:flex-end}",
    ".name{font-size:12px;color:#4b5563;margin:0 0 3px 4px;font-weight:600}",
    ".same .name{display:none}",
    ".bubble{padding:9px 13px;border-radius:16px;white-space:pre-wrap;overflow-wrap:anywhere;word-break:break-word;background:#fff;border:1px solid #e5e7eb;border-bottom-left-radius:5px;box-shadow:0 1px 1px rgba(15,23,42,.04)}",
    ".bubble a{color:var(--accent-strong);text-decoration:underline;text-underline-offset:2px}",
    ".visitor .bubble{background:var(--accent);color:var(--ink);border-color:transparent;border-radius:16px;border-bottom-right-radius:5px}",
    ".agent .bubble{border-color:#c7d2fe;background:#eef2ff}",
    ".pending .bubble{opacity:.75}",
    ".foot{display:flex;align-items:center;gap:2px;font-size:12px;color:#4b5563;margin:3px 4px 0;min-height:16px}",
    ".foot time{margin-right:4px}",
    ".thumb{border:0;background:transparent;color:#4b5563;width:28px;height:28px;border-radius:6px;display:inline-flex;align-items:center;justify-content:center;padding:0}",
    ".thumb svg{width:16px;height:16px}",
    ".thumb.down svg{transform:rotate(180deg)}",
    ".thumb:hover{background:#e5e7eb;color:#111827}",
    ".thumb[aria-pressed=true]{color:var(--accent-strong);background:#e0e7ff}",
    ".system{align-self:center;max-width:92%;text-align:center;font-size:12.5px;color:#4b5563;margin:12px 0 4px}",
    ".typing{margin-top:10px}",
    ".dots{display:inline-flex;gap:4px;padding:12px 14px;background:#fff;border:1px solid #e5e7eb;border-radius:16px;border-bottom-left-radius:5px}",
    ".dots span{width:7px;height:7px;border-radius:50%;background:#6b7280;animation:blink 1.2s infinite ease-in-out}",
    ".dots span:nth-child(2){animation-delay:.15s}.dots span:nth-child(3){animation-delay:.3s}",
    "@keyframes blink{0%,80%,100%{opacity:.3;transform:translateY(0)}40%{opacity:1;transform:translateY(-3px)}}",
    ".chips{display:flex;flex-wrap:wrap;gap:6px;justify-content:flex-end;padding:4px 14px 10px;background:#f6f7f9;flex:none}",
    ".chips:empty{display:none}",
    ".hours{margin:2px 0 0;font-size:12px}",
    ".email{display:flex;flex-wrap:wrap;gap:6px;align-items:center;padding:6px 14px;background:#f6f7f9;font-size:13px}",
    ".email p{margin:0;width:100%;color:#4b5563}",
    ".email-save{border:1.5px solid var(--accent);background:#fff;color:#1f2937;border-radius:999px;padding:5px 12px;font:inherit}",
    ".email input{flex:1;min-width:0;font:inherit;padding:6px 8px;border:1px solid #d1d5db;border-radius:8px}",
    ".chip{border:1.5px solid var(--accent);background:#fff;color:#1f2937;border-radius:999px;padding:6px 13px;font-size:14px;line-height:1.3;display:inline-flex;align-items:center;gap:6px}",
    ".chip:hover{background:#eef2ff}",
    ".chip svg{width:16px;height:16px}",
    ".chip.human{border-color:#9ca3af}",
    ".card{background:#fff;border:1px solid #e5e7eb;border-radius:14px;padding:16px;margin:14px 0 6px;text-align:center}",
    ".card p{margin:0 0 10px;font-weight:600}",
    ".stars{display:flex;justify-content:center;gap:4px;margin-bottom:8px}",
    ".star{border:0;background:transparent;color:#9ca3af;width:42px;height:42px;border-radius:8px;display:flex;align-items:center;justify-content:center;padding:0}",
    ".star svg{width:30px;height:30px}",
    ".star.lit{color:#b45309}",
    ".link{border:0;background:transparent;color:var(--accent-strong);font-weight:600;text-decoration:underline;padding:6px}",
    ".primary{border:0;background:var(--accent);color:var(--ink);border-radius:10px;padding:9px 16px;font-weight:600;margin-top:6px}",
    ".composer{flex:none;border-top:1px solid #e5e7eb;background:#fff;padding:10px 12px 8px}",
    ".row{display:flex;align-items:flex-end;gap:8px;border:1px solid #d1d5db;border-radius:22px;padding:3px 4px 3px 14px;background:#fff}",
    ".row:focus-within{border-color:var(--focus);box-shadow:0 0 0 2px var(--focus)}",
    "textarea{flex:1;border:0;resize:none;background:transparent;padding:8px 0;max-height:132px;min-height:38px;line-height:1.4;font-size:15px}",
    "textarea:focus,textarea:focus-visible{outline:none}",
    "textarea::placeholder{color:#6b7280}",
    ".send{border:0;background:var(--accent);color:var(--ink);width:38px;height:38px;border-radius:50%;display:flex;align-items:center;justify-content:center;flex:none;margin:1px 0}",
    ".send[aria-disabled=true]{background:#e5e7eb;color:#4b5563;cursor:default}",
    ".send svg{width:18px;height:18px;margin-left:2px}",
    ".under{display:flex;gap:8px;font-size:12px;color:#4b5563;padding:4px 6px 0}",
    ".under:empty,.under:has(.err:empty):has(.count:empty){display:none}",
    ".err{color:#b91c1c;flex:1}",
    ".count{margin-left:auto}",
    ".count.over{color:#b91c1c;font-weight:700}",
    "@media (max-width:480px){.panel{inset:0;width:100%;height:100%;min-height:0;border-radius:0;animation:none}.open .launcher{display:none}}",
  ].concat(KNOWLEDGE_CSS).join("\n");

  // --- The DOM ---------------------------------------------------------------

  var host, root, els = {};

  function build() {
    host = document.createElement("chat-widget");
    // Inline !important beats any page rule on the host element itself.
    host.style.setProperty("all", "initial", "important");
    host.style.setProperty("--accent", accent);
    host.style.setProperty("--ink", inkFor(accent));
    host.style.setProperty("--accent-strong", inkFor(accent) === "#ffffff" ? accent : "#1f2937");
    host.style.setProperty("--focus", inkFor(accent) === "#ffffff" ? accent : "#1f2937");
    var shadow = host.attachShadow({ mode: "open" });
    if (shadow.adoptedStyleSheets !== undefined && window.CSSStyleSheet && CSSStyleSheet.prototype.replaceSync) {
      // A constructed sheet needs no 'unsafe-inline' in the host page's style-src.
      var sheet = new CSSStyleSheet();
      sheet.replaceSync(CSS);
      shadow.adoptedStyleSheets = [sheet];
    } else {
      shadow.append(h("style", { text: CSS }));
    }

    els.launcher = h("button", { class: "launcher", type: "button", "aria-expanded": "false", "aria-controls": "cw-panel", onclick: toggle }, icon("chat"));
    els.badge = h("span", { class: "badge", "aria-hidden": "true", hidden: true });
    els.launcher.append(els.badge);

    els.statusLine = h("p", { id: "cw-status" });
    els.endButton = h("button", { class: "hbtn", type: "button", text: t("end"), onclick: endChat });
    els.closeButton = h("button", { class: "hbtn", type: "button", "aria-label": t("close"), title: t("close"), onclick: function () { close(true); } }, icon("down"));
    var head = h(
      "div",
      { class: "head" },
      h("div", { class: "avatar", "aria-hidden": "true" }, icon("chat")),
      h("div", { class: "who" }, h("h2", { id: "cw-title", text: title }), els.statusLine, (els.hours = h("p", { class: "hours", hidden: true }))),
      els.endButton,
      els.closeButton
    );

    els.connText = h("span");
    els.connSpin = h("span", { class: "spin", "aria-hidden": "true" });
    els.retry = h("button", { type: "button", text: t("retry"), hidden: true, onclick: retryNow });
    els.conn = h("div", { class: "conn", role: "status", hidden: true }, els.connSpin, els.connText, els.retry);

    els.log = h("div", { class: "log", role: "log", "aria-live": "polite", "aria-relevant": "additions", "aria-label": title });
    els.typingText = h("span", { class: "sr" });
    els.typing = h("div", { class: "msg typing", hidden: true }, els.typingText, h("span", { class: "dots", "aria-hidden": "true" }, h("span"), h("span"), h("span")));
    els.stars = h("div", { class: "stars", role: "group", "aria-label": t("rateLabel") });
    for (var n = 1; n <= 5; n++) els.stars.append(starButton(n));
    els.notNow = h("button", { class: "link", type: "button", text: t("notNow"), onclick: resumeChat });
    els.rateAsk = h("div", {}, h("p", { id: "cw-rate", text: t("ratePrompt") }), els.stars);
    els.rateDone = h("div", { hidden: true }, h("p", { text: t("rated") }));
    els.newChat = h("button", { class: "primary", type: "button", text: t("newChat"), onclick: newChat });
    els.card = h("div", { class: "card", hidden: true }, els.rateAsk, els.rateDone, els.notNow, els.newChat);
    els.body = h("div", { class: "body" });
    if (greeting) els.body.append(h("div", { class: "msg bot greeting" }, h("div", { class: "name", text: botName }), h("div", { class: "bubble", text: greeting })));
    els.body.append(els.log, els.typing, els.card);

    els.chips = h("div", { class: "chips", role: "group", "aria-label": t("human") });
    els.emailInput = h("input", { type: "email", id: "cw-email", required: "", autocomplete: "email", "aria-label": t("emailLabel"), placeholder: "name@example.com" });
    els.emailForm = h(
      "form",
      { class: "email", hidden: true, onsubmit: function (e) { e.preventDefault(); leaveEmail(); } },
      h("p", { text: t("emailAsk") }),
      els.emailInput,
      h("button", { class: "email-save", type: "submit", text: t("emailSave") })
    );

    els.input = h("textarea", { id: "cw-input", rows: "1", placeholder: t("placeholder"), "aria-describedby": "cw-err cw-count", autocomplete: "off" });
    els.input.addEventListener("keydown", onInputKey);
    els.input.addEventListener("input", onInput);
    els.send = h("button", { class: "send", type: "submit", "aria-label": t("send"), title: t("send"), "aria-disabled": "true" }, icon("send"));
    els.error = h("div", { class: "err", id: "cw-err", role: "alert" });
    els.count = h("div", { class: "count", id: "cw-count" });
    els.composer = h(
      "form",
      { class: "composer", onsubmit: function (e) { e.preventDefault(); submit(); } },
      h("label", { class: "sr", for: "cw-input", text: t("input") }),
      h("div", { class: "row" }, els.input, els.send),
      h("div", { class: "under" }, els.error, els.count)
    );

    els.panel = h(
      "div",
      { class: "panel", id: "cw-panel", role: "dialog", "aria-labelledby": "cw-title", "aria-describedby": "cw-status", hidden: true, onkeydown: onPanelKey },
      head,
      els.conn,
      els.body,
      els.chips,
      els.emailForm,
      els.composer
    );
    els.root = h("div", { class: "root " + position, lang: locale }, els.panel, els.launcher);
    shadow.append(els.root);
    document.body.appendChild(host);
  }

  function starButton(n) {
    var b = h("button", { class: "star", type: "button", "aria-label": t("star", { n: n }), onclick: function () { rate(n); } }, icon("star"));
    function light(k) {
      Array.prototype.forEach.call(els.stars.children, function (s, i) { s.classList.toggle("lit", i < k); });
    }
    b.addEventListener("mouseenter", function () { light(n); });
    b.addEventListener("focus", function () { light(n); });
    b.addEventListener("mouseleave", function () { light(0); });
    b.addEventListener("blur", function () { light(0); });
    return b;
  }

  // --- Rendering messages ----------------------------------------------------

  var timeFormat;
  try {
    timeFormat = new Intl.DateTimeFormat(locale, { hour: "numeric", minute: "2-digit" });
  } catch (e) {
    timeFormat = new Intl.DateTimeFormat("en", { hour: "numeric", minute: "2-digit" });
  }

  function senderName(m) {
    if (m.sender === "bot") return botName;
    if (m.sender === "agent") return m.agent_name || t("statusAgentAnon").replace(/^.* /, "");
    if (m.sender === "visitor") return t("you");
    return "";
  }

  function messageElement(m, pending) {
    var cls = "msg " + (m.sender === "system" ? "system" : m.sender) + (pending ? " pending" : "");
    if (m.sender === "system") return h("div", { class: cls, "data-seq": m.seq }, m.text);
    var foot = h("div", { class: "foot" });
    var when = m.created_at ? new Date(m.created_at) : new Date();
    if (pending) foot.append(h("span", { class: "state", text: t(pending === "sending" ? "sending" : "queued") }));
    else if (!isNaN(when)) foot.append(h("time", { datetime: when.toISOString(), text: timeFormat.format(when) }));
    if (m.sender === "bot" && m.message_id && !pending && m.answer && m.source !== "article") {
      // Thumbs on answers only, never on a handoff or queue line; an article answer
      // asks "Was this helpful?" instead (helpfulQuestion).
      foot.append(thumbButton(m.message_id, "up"), thumbButton(m.message_id, "down"));
    }
    return h(
      "div",
      { class: cls, "data-seq": m.seq, "data-key": m.seq ? "s" + m.seq : "c" + m.client_msg_id, "data-sender": m.sender + ":" + (m.agent_name || "") },
      h("div", { class: "name" + (m.sender === "visitor" ? " sr" : ""), text: senderName(m) }),
      h("div", { class: "bubble" }, m.sender === "visitor" ? m.text : withLinks(m.text)),
      citationCards(m),
      foot,
      pending ? null : helpfulQuestion(m)
    );
  }

  function withLinks(text) {
    // Web addresses in answers become links; built as elements, never parsed as markup.
    var out = document.createDocumentFragment();
    var pattern = /\bhttps?:\/\/[^\s<>"']+/g;
    var last = 0;
    var match;
    while ((match = pattern.exec(text))) {
      var url = match[0].replace(/[.,;:!?)\]]+$/, "");
      out.append(text.slice(last, match.index));
      out.append(h("a", { href: url, target: "_blank", rel: "noopener noreferrer nofollow", text: url }));
      last = match.index + url.length;
      pattern.lastIndex = last;
    }
    out.append(text.slice(last));
    return out;
  }

  // --- Knowledge answers: citation card and "Was this helpful?" (issue 16) ----

  function safeArticleUrl(value) {
    // Only http(s) addresses become links: no javascript:, data: or relative URLs.
    try {
      var url = new URL(String(value || ""));
      return url.protocol === "http:" || url.protocol === "https:" ? url.href : null;
    } catch (e) {
      return null;
    }
  }

  function citationCards(m) {
    // One card per article: a knowledge answer cites one, an intent linked to
    // articles may cite several (`citations`); `citation` is the first.
    if (m.sender !== "bot" || m.source !== "article") return null;
    var list = Array.isArray(m.citations) && m.citations.length ? m.citations : [m.citation];
    var cards = list.filter(function (c) { return c && typeof c === "object"; }).map(citationCard);
    if (!cards.length) return null;
    var box = document.createDocumentFragment();
    cards.forEach(function (card) { box.append(card); });
    return box;
  }

  function citationCard(citation) {
    var url = safeArticleUrl(citation.url);
    var title = String(citation.title || "");
    return h(
      "div",
      { class: "kb-card", "data-citation": "" },
      h("div", { class: "kb-source", text: t("fromHelpCenter") }),
      h("div", { class: "kb-title", text: title }),
      url ? h("a", { class: "kb-link", href: url, target: "_blank", rel: "noopener noreferrer nofollow", text: t("readArticle") }) : null
    );
  }

  function helpfulQuestion(m) {
    if (m.sender !== "bot" || m.source !== "article" || !m.message_id) return null;
    if (!S.articleFeedback) S.articleFeedback = {};
    var row = h("div", { class: "kb-helpful", role: "group", "aria-label": t("wasHelpful") }, h("span", { text: t("wasHelpful") }));
    [true, false].forEach(function (helpful) {
      row.append(
        h("button", {
          type: "button",
          "data-helpful": helpful ? "yes" : "no",
          "aria-pressed": S.articleFeedback[m.message_id] === helpful ? "true" : "false",
          text: t(helpful ? "yes" : "no"),
          onclick: function () { voteHelpful(m.message_id, helpful, row); },
        })
      );
    });
    return row;
  }

  function voteHelpful(messageId, helpful, row) {
    S.articleFeedback[messageId] = helpful;
    save();
    sendOrQueue({ type: "article_feedback", message_id: messageId, helpful: helpful });
    Array.prototype.forEach.call(row.querySelectorAll("button"), function (b) {
      b.setAttribute("aria-pressed", (b.getAttribute("data-helpful") === "yes") === helpful ? "true" : "false");
    });
  }

  function thumbButton(messageId, value) {
    var pressed = S.feedback[messageId] === value;
    return h(
      "button",
      {
        class: "thumb " + value,
        type: "button",
        "aria-label": t(value === "up" ? "helpful" : "notHelpful"),
        title: t(value === "up" ? "helpful" : "notHelpful"),
        "aria-pressed": pressed ? "true" : "false",
        "data-feedback": value,
        onclick: function (e) { giveFeedback(messageId, value, e.currentTarget.parentNode); },
      },
      icon("thumb")
    );
  }

  function groupMessages() {
    // Hide the repeated sender name in a run of messages from the same sender.
    var previous = null;
    Array.prototype.forEach.call(els.log.children, function (el) {
      var who = el.getAttribute("data-sender");
      el.classList.toggle("same", !!who && who === previous);
      previous = who;
    });
  }

  function insertMessageElement(el, seq) {
    if (seq) {
      var after = Array.prototype.find.call(els.log.children, function (c) {
        var s = Number(c.getAttribute("data-seq"));
        return !s || s > seq; // pending (no seq) elements stay last
      });
      els.log.insertBefore(el, after || null);
    } else {
      els.log.appendChild(el);
    }
  }

  function findByKey(key) {
    return Array.prototype.find.call(els.log.children, function (c) { return c.getAttribute("data-key") === key; });
  }

  function renderAll() {
    els.log.textContent = "";
    S.messages.forEach(function (m) { els.log.appendChild(messageElement(m)); });
    S.queue.forEach(function (q) { els.log.appendChild(messageElement(pendingMessage(q), "queued")); });
    groupMessages();
    renderChrome();
  }

  function pendingMessage(q) {
    return { sender: "visitor", text: q.text, client_msg_id: q.client_msg_id, created_at: q.at };
  }

  function isValidMessage(m) {
    return m && typeof m === "object" && typeof m.seq === "number" && typeof m.text === "string" && typeof m.sender === "string";
  }

  function storedMessage(m) {
    var keep = { message_id: m.message_id, seq: m.seq, sender: m.sender, text: m.text, created_at: m.created_at };
    if (m.client_msg_id) keep.client_msg_id = m.client_msg_id;
    if (m.agent_name) keep.agent_name = String(m.agent_name);
    if (m.answer === true) keep.answer = true;
    if (m.source === "article" && m.citation && typeof m.citation === "object") {
      keep.source = "article";
      keep.citation = { title: String(m.citation.title || ""), url: String(m.citation.url || "") };
    }
    if (Array.isArray(m.quick_replies)) keep.quick_replies = m.quick_replies.filter(function (q) { return typeof q === "string"; });
    return keep;
  }

  /** Add one server message; returns false when it was shown already (dedupe by seq and id). */
  function addMessage(m, fromServerStream) {
    if (!isValidMessage(m)) return false;
    if (fromServerStream) noteSeq(m.seq);
    var known = S.messages.some(function (x) { return x.seq === m.seq || (m.message_id && x.message_id === m.message_id); });
    var queued = m.client_msg_id && takeFromQueue(m.client_msg_id);
    var old = queued && findByKey("c" + m.client_msg_id);
    if (old) old.remove(); // our own pending message, stored before its ack reached us
    if (known) return false;
    var stored = storedMessage(m);
    var index = S.messages.findIndex(function (x) { return x.seq > m.seq; });
    if (index < 0) S.messages.push(stored);
    else S.messages.splice(index, 0, stored);
    var el = messageElement(stored);
    insertMessageElement(el, m.seq);
    groupMessages();
    return true;
  }

  /**
   * S.lastSeq is the seq up to which this client has every message (shown, or
   * known from a history frame not to be for visitors). A live message or ack
   * further ahead means a push was lost: ask for what follows (a `resume`
   * frame, docs/protocol.md), instead of skipping it for good.
   */
  function noteSeq(seq) {
    S.lastSeq = S.lastSeq || 0;
    if (seq === S.lastSeq + 1) {
      S.lastSeq = seq;
      var known = function (x) { return x.seq === S.lastSeq + 1; };
      while (S.messages.some(known)) S.lastSeq++;
    } else if (seq > S.lastSeq + 1) {
      requestResume();
    }
  }

  var resumeAsked = 0;
  function requestResume() {
    if (!ws || !authed || Date.now() - resumeAsked < RESUME_RETRY_MS) return;
    resumeAsked = Date.now();
    try {
      ws.send(JSON.stringify({ type: "resume", after_seq: S.lastSeq || 0 }));
    } catch (e) {
      resumeAsked = 0;
    }
  }

  function takeFromQueue(clientMsgId) {
    var i = S.queue.findIndex(function (q) { return q.client_msg_id === clientMsgId; });
    if (i < 0) return null;
    return S.queue.splice(i, 1)[0];
  }

  // --- Chrome: status line, chips, rating card, connection banner -----------

  function agentName() {
    for (var i = S.messages.length - 1; i >= 0; i--) if (S.messages[i].sender === "agent") return S.messages[i].agent_name;
    return "";
  }

  // A rating is asked for only once an agent replied or the bot answered.
  function wasAnswered() {
    return S.messages.some(function (m) { return m.sender === "agent" || (m.sender === "bot" && m.answer); });
  }

  function renderChrome() {
    var status = S.status || "bot";
    var line = status === "waiting_for_agent" ? t("statusWaiting")
      : status === "with_agent" ? (agentName() ? t("statusAgent", { name: agentName() }) : t("statusAgentAnon"))
      : status === "closed" ? t("statusClosed")
      : t("statusBot");
    els.statusLine.textContent = line;
    // The team's reply time, and before the visitor asks, whether they are away.
    var support = S.support;
    els.hours.hidden = !support || !support.replies_in || status === "with_agent" || status === "closed";
    if (support && support.replies_in) els.hours.textContent = t(support.open ? "repliesIn" : "closedNow", { time: support.replies_in });

    var ended = !!S.ended || status === "closed";
    els.composer.hidden = ended;
    els.card.hidden = !ended;
    var rateable = wasAnswered();
    els.rateAsk.hidden = !!S.rated || !rateable;
    els.rateDone.hidden = !S.rated;
    els.notNow.hidden = status === "closed" || !!S.rated;
    els.newChat.hidden = !(S.rated || status === "closed" || !rateable);
    els.endButton.hidden = ended;
    // An offline request: a small email field until the visitor leaves one.
    els.emailForm.hidden = ended || status !== "waiting_for_agent" || !S.offline || !!S.emailLeft;

    els.chips.textContent = "";
    if (!ended) {
      var last = S.messages[S.messages.length - 1];
      if (last && last.sender === "bot" && last.quick_replies && !S.queue.length) {
        last.quick_replies.forEach(function (text) {
          // The bot offers "Talk to a human" as a reply too; the button below does it already.
          // Waiting or with an agent, it is never offered again.
          if (text.trim().toLowerCase() === t("human").toLowerCase()) return;
          els.chips.append(h("button", { class: "chip", type: "button", text: text, onclick: function () { sendText(text); } }));
        });
      }
      if (status === "bot") {
        els.chips.append(h("button", { class: "chip human", type: "button", onclick: requestHuman }, icon("person"), t("human")));
      }
    }
    var unread = S.unread || 0;
    els.badge.hidden = !unread;
    els.badge.textContent = unread > 9 ? "9+" : String(unread);
    els.launcher.setAttribute("aria-label", isOpen() ? t("close") : unread ? t("openUnread", { n: unread }) : t("open"));
    els.launcher.replaceChildren(icon(isOpen() ? "close" : "chat"), els.badge);
    renderConnection();
  }

  var conn = "idle"; // idle | connecting | online | reconnecting | offline | unavailable
  function setConnection(state) {
    if (conn === state) return;
    conn = state;
    renderConnection();
    emit("connection", { state: state });
  }
  function renderConnection() {
    var text = conn === "connecting" ? t("connecting")
      : conn === "reconnecting" ? t("reconnecting")
      : conn === "offline" ? t("offline")
      : conn === "unavailable" ? t("unavailable")
      : "";
    els.conn.hidden = !text;
    els.conn.classList.toggle("bad", conn === "unavailable" || conn === "offline");
    els.connSpin.hidden = conn === "unavailable" || conn === "offline";
    els.retry.hidden = conn !== "unavailable";
    els.conn.setAttribute("data-state", conn);
    els.root.setAttribute("data-connection", conn);
    if (els.connText.textContent !== text) els.connText.textContent = text;
  }

  function scrollToEnd() {
    els.body.scrollTop = els.body.scrollHeight;
  }

  // --- The connection --------------------------------------------------------

  var ws = null;
  var authed = false;
  var attempt = 0;
  var retryTimer = null;
  var pingTimer = null;
  var pongTimer = null;
  var sessionFailures = 0;
  var freshSessionTried = false;
  var sessionPending = false;

  function start() {
    if (ws || sessionPending) return;
    if (!S.token) openSession();
    else connect();
  }

  function openSession() {
    clearTimeout(retryTimer);
    sessionPending = true;
    setConnection("connecting");
    fetch(server + "/api/widget/sessions", {
      method: "POST",
      mode: "cors",
      credentials: "omit",
      headers: { "Content-Type": "application/json" },
      // The page without its query string: queries often carry personal data.
      body: JSON.stringify({ page_url: location.origin + location.pathname }),
    })
      .then(function (response) {
        if (response.status !== 201) throw new Error("session refused with HTTP " + response.status);
        return response.json();
      })
      .then(function (body) {
        sessionPending = false;
        sessionFailures = 0;
        S.token = body.token;
        resetConversation();
        S.conversationId = body.conversation_id;
        if (S.identity) S.outbox.push(Object.assign({ type: "identify" }, S.identity));
        save();
        renderAll();
        connect();
      })
      .catch(function (error) {
        // A CORS refusal and an unreachable server look the same from here: both are errors.
        sessionPending = false;
        sessionFailures++;
        setConnection(navigator.onLine === false ? "offline" : "unavailable");
        emit("error", { code: "session_failed", message: String(error && error.message) });
        if (sessionFailures <= SESSION_AUTO_RETRIES) retryTimer = setTimeout(openSession, backoff());
      });
  }

  function backoff() {
    // Exponential with jitter, so a server restart is not met by every visitor at once.
    var ceiling = Math.min(RECONNECT_MAX_MS, RECONNECT_BASE_MS * Math.pow(2, attempt));
    attempt++;
    return ceiling / 2 + Math.random() * (ceiling / 2);
  }

  function connect() {
    clearTimeout(retryTimer);
    if (ws) return;
    if (!S.token) return openSession();
    if (conn !== "reconnecting" && conn !== "unavailable") setConnection("connecting");
    var socket;
    try {
      socket = new WebSocket(wsUrl);
    } catch (e) {
      return scheduleReconnect();
    }
    ws = socket;
    socket.onopen = function () {
      var auth = { type: "auth", token: S.token, last_seq: S.lastSeq || 0 };
      if (S.conversationId) auth.conversation_id = S.conversationId;
      socket.send(JSON.stringify(auth));
    };
    socket.onmessage = function (event) {
      if (socket !== ws) return;
      var frame;
      try {
        frame = JSON.parse(event.data);
      } catch (e) {
        return;
      }
      if (frame && typeof frame.type === "string") onFrame(frame);
    };
    socket.onclose = function (event) {
      if (socket !== ws) return;
      dropSocket();
      if (event.code === 4401) onUnauthorized();
      else scheduleReconnect();
    };
  }

  function dropSocket() {
    var socket = ws;
    ws = null;
    authed = false;
    clearInterval(pingTimer);
    clearTimeout(pongTimer);
    hideTyping();
    if (socket) {
      socket.onclose = socket.onmessage = socket.onopen = null;
      try { socket.close(); } catch (e) { /* already closed */ }
    }
    markQueue("queued");
  }

  function scheduleReconnect() {
    clearTimeout(retryTimer);
    if (navigator.onLine === false) {
      setConnection("offline"); // the "online" event reconnects at once
      return;
    }
    // Many failed tries in a row without one success: say so instead of spinning forever.
    setConnection(attempt >= 6 ? "unavailable" : "reconnecting");
    retryTimer = setTimeout(connect, backoff());
  }

  function retryNow() {
    attempt = 0;
    sessionFailures = 0;
    clearTimeout(retryTimer);
    if (conn === "unavailable") setConnection("connecting");
    if (!ws) start();
  }

  function onUnauthorized() {
    // The token is not (or no longer) valid: forget it and open a new session once.
    S.token = null;
    resetConversation();
    save();
    renderAll();
    if (freshSessionTried) {
      setConnection("unavailable");
      return;
    }
    freshSessionTried = true;
    openSession();
  }

  function sendFrame(frame) {
    if (!ws || !authed || ws.readyState !== 1) return false;
    ws.send(JSON.stringify(frame));
    return true;
  }

  function flush() {
    if (!authed) return;
    S.queue.forEach(function (q) {
      // Un-acked messages go again with the same client_msg_id; the server stores each once.
      sendFrame({ type: "user_message", text: q.text, client_msg_id: q.client_msg_id });
    });
    markQueue("sending");
    var outbox = S.outbox;
    S.outbox = [];
    outbox.forEach(function (frame) {
      if (!sendFrame(frame)) S.outbox.push(frame);
    });
    save();
  }

  function markQueue(state) {
    S.queue.forEach(function (q) {
      var el = findByKey("c" + q.client_msg_id);
      var label = el && el.querySelector(".state");
      if (label) label.textContent = t(state === "sending" ? "sending" : "queued");
    });
  }

  function heartbeat() {
    clearInterval(pingTimer);
    pingTimer = setInterval(function () {
      if (!sendFrame({ type: "ping" })) return;
      clearTimeout(pongTimer);
      // No answer at all: the connection is half-open; drop it and reconnect.
      pongTimer = setTimeout(function () {
        dropSocket();
        scheduleReconnect();
      }, PONG_WITHIN_MS);
    }, PING_EVERY_MS);
  }

  // --- Frames from the server ------------------------------------------------

  function onFrame(frame) {
    clearTimeout(pongTimer); // any frame proves the connection is alive
    switch (frame.type) {
      case "history": return onHistory(frame);
      case "ack": return onAck(frame);
      case "message": return onMessage(frame);
      case "typing": return onTyping(frame);
      case "status":
        if (typeof frame.offline === "boolean") S.offline = frame.offline;
        return setStatus(frame.status);
      case "rating_ack": return;
      case "feedback_ack": return;
      case "article_feedback_ack": return;
      case "error": return onError(frame);
    }
  }

  function onHistory(frame) {
    authed = true;
    attempt = 0;
    freshSessionTried = false;
    if (frame.conversation_id !== S.conversationId) {
      var keep = { token: S.token };
      resetConversation();
      S.token = keep.token;
      S.conversationId = frame.conversation_id;
      renderAll();
    }
    var added = 0;
    var through = S.lastSeq || 0;
    (frame.messages || []).forEach(function (m) {
      if (addMessage(m, false) && m.sender !== "visitor" && m.sender !== "system") added++;
      if (isValidMessage(m)) through = Math.max(through, m.seq);
    });
    // A history holds every visitor-visible message after the seq asked for.
    S.lastSeq = through;
    resumeAsked = 0;
    if (added && !isOpen()) S.unread = (S.unread || 0) + added;
    S.status = frame.status || S.status;
    if (typeof frame.offline === "boolean") S.offline = frame.offline;
    if (frame.support && typeof frame.support === "object") S.support = { open: !!frame.support.open, replies_in: String(frame.support.replies_in || "") };
    save();
    setConnection("online");
    heartbeat();
    flush();
    renderChrome();
    scrollToEnd();
  }

  function onAck(frame) {
    var q = takeFromQueue(frame.client_msg_id);
    if (!q) return;
    var m = { message_id: frame.message_id, seq: frame.seq, sender: "visitor", text: q.text, client_msg_id: q.client_msg_id, created_at: new Date().toISOString() };
    if (typeof frame.seq === "number") noteSeq(frame.seq);
    var el = findByKey("c" + q.client_msg_id);
    var known = S.messages.some(function (x) { return x.seq === m.seq; });
    if (!known) {
      S.messages.push(storedMessage(m));
      S.messages.sort(function (a, b) { return a.seq - b.seq; });
      var fresh = messageElement(m);
      if (el) el.replaceWith(fresh);
      else insertMessageElement(fresh, m.seq);
    } else if (el) {
      el.remove();
    }
    groupMessages();
    save();
    renderChrome();
    emit("sent", { client_msg_id: q.client_msg_id, message_id: frame.message_id, seq: frame.seq });
  }

  function onMessage(frame) {
    var m = Object.assign({}, frame);
    delete m.type;
    if (!addMessage(m, true)) return;
    if (m.sender === "bot" || m.sender === "agent") {
      hideTyping();
      if (!isOpen()) S.unread = (S.unread || 0) + 1;
    }
    save();
    renderChrome();
    scrollToEnd();
    emit("message", storedMessage(m));
  }

  var typingTimer = null;
  function onTyping(frame) {
    if (!frame.on) return hideTyping();
    var name = frame.sender === "agent" ? agentName() || t("statusAgentAnon").replace(/^.* /, "") : botName;
    els.typingText.textContent = t("typing", { name: name });
    els.typing.hidden = false;
    scrollToEnd();
    clearTimeout(typingTimer);
    typingTimer = setTimeout(hideTyping, TYPING_TIMEOUT_MS);
  }
  function hideTyping() {
    clearTimeout(typingTimer);
    if (els.typing) els.typing.hidden = true;
  }

  function setStatus(status) {
    if (typeof status !== "string" || status === S.status) return;
    S.status = status;
    if (status === "closed") hideTyping();
    save();
    renderChrome();
    emit("status", { status: status });
  }

  var ERROR_TEXT = { rate_limited: "errRateLimited", text_too_long: "errTooLong", empty_text: "errEmpty" };

  function onError(frame) {
    emit("error", { code: frame.code, message: frame.message });
    if (frame.code === "unauthorized") return; // the close that follows starts a new session
    // A refused typing indicator or heartbeat is nothing the visitor did wrong: no message (docs/protocol.md).
    if (frame.code === "rate_limited" && (frame.frame === "typing" || frame.frame === "ping")) return;
    if (frame.code === "unavailable") {
      // A server fault, not a refusal: keep the message queued and resend it with
      // the same client_msg_id after reconnecting with backoff (docs/protocol.md).
      dropSocket();
      scheduleReconnect();
      return;
    }
    var q = frame.client_msg_id && takeFromQueue(frame.client_msg_id);
    if (q) {
      // Refused: the message is not stored. Give the visitor their text back.
      var el = findByKey("c" + q.client_msg_id);
      if (el) el.remove();
      var current = els.input.value;
      els.input.value = current && current.indexOf(q.text) < 0 ? q.text + "\n" + current : current || q.text;
      onInput();
      save();
      renderChrome();
    }
    if (frame.code === "invalid_identity") return; // the host page's mistake, not the visitor's: an event only
    showError(ERROR_TEXT[frame.code] ? t(ERROR_TEXT[frame.code]) : t("errOther", { message: frame.message || frame.code }));
  }

  function showError(text, kind) {
    els.error.textContent = text;
    els.error.setAttribute("data-kind", kind || "");
  }

  // --- What the visitor does -------------------------------------------------

  function charCount(text) {
    return Array.from(text).length; // code points, as the server counts
  }

  var typingSentAt = 0;
  var typingOffTimer = null;
  function sendTyping(on) {
    clearTimeout(typingOffTimer);
    if (on) {
      if (Date.now() - typingSentAt > TYPING_SEND_EVERY_MS) {
        typingSentAt = Date.now();
        sendFrame({ type: "typing", on: true });
      }
      typingOffTimer = setTimeout(function () { sendTyping(false); }, TYPING_IDLE_MS);
    } else if (typingSentAt) {
      typingSentAt = 0;
      sendFrame({ type: "typing", on: false });
    }
  }

  function onInput() {
    var input = els.input;
    if (authed && input.value.trim()) sendTyping(true);
    input.style.height = "auto";
    input.style.height = Math.min(input.scrollHeight, 132) + "px";
    var n = charCount(input.value.trim());
    var over = n > MAX_CHARS;
    els.count.textContent = n >= MAX_CHARS - 200 ? t("counter", { n: n, max: MAX_CHARS }) : "";
    els.count.classList.toggle("over", over);
    els.send.setAttribute("aria-disabled", n === 0 || over ? "true" : "false");
    if (over) showError(t("tooLong", { n: n - MAX_CHARS }), "length");
    else if (els.error.getAttribute("data-kind") === "length") showError("");
  }

  function onInputKey(event) {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing && event.keyCode !== 229) {
      event.preventDefault();
      submit();
    }
  }

  function onPanelKey(event) {
    if (event.key === "Escape") {
      event.stopPropagation();
      close(true);
    }
  }

  function submit() {
    var text = els.input.value.trim();
    if (!text) return;
    if (charCount(text) > MAX_CHARS) {
      showError(t("tooLong", { n: charCount(text) - MAX_CHARS }));
      return;
    }
    els.input.value = "";
    onInput();
    sendTyping(false);
    sendText(text);
    els.input.focus();
  }

  function sendText(text) {
    showError("");
    var q = { client_msg_id: newId(), text: text, at: new Date().toISOString() };
    S.queue.push(q);
    save();
    var el = messageElement(pendingMessage(q), authed ? "sending" : "queued");
    els.log.appendChild(el);
    groupMessages();
    renderChrome();
    scrollToEnd();
    if (sendFrame({ type: "user_message", text: q.text, client_msg_id: q.client_msg_id })) return;
    start();
  }

  function sendOrQueue(frame) {
    if (!sendFrame(frame)) {
      S.outbox.push(frame);
      save();
      start();
    }
  }

  function giveFeedback(messageId, value, footer) {
    S.feedback[messageId] = value;
    save();
    sendOrQueue({ type: "feedback", message_id: messageId, value: value });
    Array.prototype.forEach.call(footer.querySelectorAll(".thumb"), function (b) {
      b.setAttribute("aria-pressed", b.getAttribute("data-feedback") === value ? "true" : "false");
    });
  }

  function leaveEmail() {
    var email = els.emailInput.value.trim();
    if (!email || !els.emailInput.checkValidity()) return els.emailInput.focus();
    sendOrQueue({ type: "identify", email: email });
    S.emailLeft = true;
    save();
    renderChrome();
    els.input.focus();
  }

  function requestHuman() {
    sendOrQueue({ type: "handoff_request" });
  }

  function endChat() {
    S.ended = true;
    save();
    renderChrome();
    var first = els.stars.querySelector("button");
    if (first) first.focus();
  }

  function resumeChat() {
    S.ended = false;
    save();
    renderChrome();
    els.input.focus();
  }

  function rate(score) {
    sendOrQueue({ type: "rating", score: score });
    S.rated = true;
    save();
    renderChrome();
    els.newChat.focus();
  }

  function newChat() {
    if (S.status === "closed") {
      // Same visitor: auth without a conversation id opens a new conversation.
      var token = S.token;
      resetConversation();
      S.token = token;
      save();
      dropSocket();
      renderAll();
      connect();
    } else {
      // The server has no "close" for visitors: a new chat is a new session.
      S.token = null;
      resetConversation();
      save();
      dropSocket();
      renderAll();
      openSession();
    }
    els.input.focus();
  }

  // --- Open and close --------------------------------------------------------

  function isOpen() {
    return !!(els.panel && !els.panel.hidden);
  }

  function open(focus) {
    if (!els.panel) return;
    var was = isOpen();
    els.panel.hidden = false;
    els.root.classList.add("open");
    els.launcher.setAttribute("aria-expanded", "true");
    S.open = true;
    S.unread = 0;
    save();
    renderChrome();
    scrollToEnd();
    start();
    if (focus !== false) (S.ended || S.status === "closed" ? els.card.querySelector("button:not([hidden])") || els.input : els.input).focus();
    if (!was) emit("open", {});
  }

  function close(returnFocus) {
    if (!els.panel || !isOpen()) return;
    els.panel.hidden = true;
    els.root.classList.remove("open");
    els.launcher.setAttribute("aria-expanded", "false");
    S.open = false;
    save();
    renderChrome();
    if (returnFocus) els.launcher.focus();
    emit("close", {});
  }

  function toggle() {
    if (isOpen()) close(true);
    else open(true);
  }

  // --- The host page's API ---------------------------------------------------

  var api = {
    version: VERSION,
    open: function () { open(true); },
    close: function () { close(false); },
    toggle: toggle,
    isOpen: isOpen,
    identify: function (identity) {
      identity = identity || {};
      var frame = { type: "identify" };
      if (identity.name !== undefined) frame.name = String(identity.name);
      if (identity.email !== undefined) frame.email = String(identity.email);
      // Signed identity (docs/widget.md): the site's server computes user_hash.
      if (identity.user_id !== undefined) frame.user_id = String(identity.user_id);
      if (identity.user_hash !== undefined) frame.user_hash = String(identity.user_hash);
      S.identity = { name: frame.name, email: frame.email, user_id: frame.user_id, user_hash: frame.user_hash };
      sendOrQueue(frame);
    },
    send: function (text) {
      text = String(text || "").trim();
      if (text && charCount(text) <= MAX_CHARS) sendText(text);
    },
    reset: function () {
      // Forget this visitor on this device (for example at logout).
      dropSocket();
      clearTimeout(retryTimer);
      S = { messages: [], queue: [], outbox: [], feedback: {}, lastSeq: 0 };
      save();
      renderAll();
      setConnection("idle");
    },
    on: function (name, fn) {
      (listeners[name] = listeners[name] || []).push(fn);
      return api;
    },
    off: function (name, fn) {
      listeners[name] = (listeners[name] || []).filter(function (f) { return f !== fn; });
      return api;
    },
  };
  window.ChatWidget = api;

  function boot() {
    build();
    renderAll();
    onInput();
    window.addEventListener("online", function () {
      attempt = 0;
      if (!ws && (S.token || isOpen())) start();
    });
    window.addEventListener("offline", function () {
      if (ws) dropSocket();
      setConnection("offline");
    });
    document.addEventListener("visibilitychange", function () {
      if (document.visibilityState === "visible" && !ws && S.token && !sessionPending) {
        attempt = 0;
        connect();
      }
    });
    // A returning visitor reconnects at once (to get replies that came meanwhile);
    // a new one opens a session only when they open the chat.
    if (S.token || S.queue.length) start();
    if (S.open || option("open", "") === true || option("open", "") === "true") open(false);
    emit("ready", { version: VERSION });
    if (typeof jsConfig.onReady === "function") jsConfig.onReady(api);
  }

  if (document.body) boot();
  else document.addEventListener("DOMContentLoaded", boot);
})();
