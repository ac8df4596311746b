// The kiosk page: station key set up once (kept in localStorage), sign-in by card or by user name and
// PIN on on-screen keys, the signed-in user's held jobs with per-job options (a copies stepper and
// big toggles for what the printer supports), release / delete / release all with each job's
// progress, and automatic sign-out after inactivity (shown as a countdown). Plain JavaScript, no
// external resources: the page must work on a closed network.
//
// Words: every string is in /kiosk-strings.js (one JSON file per language, embedded in the daemon);
// the page follows the browser's language, a switch on screen changes it, and a missing key falls
// back to English. Dates and numbers go through the browser's Intl in the chosen language. Station
// API errors are shown by their stable `code` (error.<code>), with the server's English message only
// for a code this page does not know yet.
//
// Time: the server says how many seconds of inactivity end a session (idleSeconds) and how long the
// session may last at most (lifetimeSeconds); both are measured here with the page's own monotonic
// clock (performance.now, plus `kioskClock.offset`, which tests advance instead of waiting), never
// by comparing the server's timestamps with this machine's clock, which may be wrong. The station
// key is forgotten only when the daemon answers 401 to it; when the daemon is unreachable or a proxy
// answers 502/503/504 (a restart), the page keeps its key and retries.
"use strict";

const KEY_STORAGE = "pullprintd.stationKey";
// On a phone (`/phone`): no station set-up; the session came from the kiosk's QR code and an Entra ID
// sign-in, arrives in the address's fragment (never sent to a server), and is kept for this tab only.
const PHONE = document.body.dataset.mode === "phone";
const SESSION_STORAGE = "pullprintd.phoneSession";
const LANGUAGES = Object.keys(KIOSK_STRINGS);
const $ = (id) => document.getElementById(id);
const RETRY_MS = 3000;

// The page's clock: monotonic; tests move `offset` forward to stand for time passing.
const kioskClock = { offset: 0, now() { return performance.now() + this.offset; } };
window.kioskClock = kioskClock;

let lang = "en";
let session = null;       // {token, idleMs, endsAt, deadline, name}
let station = null;       // GET /api/v1/station
let tick = null;
let lastStatus = null;    // {key, params, kind} or {text, kind}: re-said when the language changes
let pendingUser = "";

// ---- Words -------------------------------------------------------------------------------------

function browserLanguage() {
  for (const wanted of navigator.languages || [navigator.language || "en"]) {
    const base = String(wanted).toLowerCase().split("-")[0];
    if (LANGUAGES.includes(base)) return base;
  }
  return "en";
}

function t(key, params) {
  const table = KIOSK_STRINGS[lang] || {};
  let said = key in table ? table[key] : (key in KIOSK_STRINGS.en ? KIOSK_STRINGS.en[key] : key);
  // A parameter may itself be a message ({key, params}): it is said in the same language.
  for (const [name, value] of Object.entries(params || {})) {
    said = said.split("{" + name + "}").join(typeof value === "object" && value ? text(value) : value);
  }
  return said;
}

function has(key) { return key in KIOSK_STRINGS.en || key in (KIOSK_STRINGS[lang] || {}); }

function number(n) { return new Intl.NumberFormat(lang).format(n); }

function dateTime(iso) {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return "";
  return new Intl.DateTimeFormat(lang, { dateStyle: "medium", timeStyle: "short" }).format(date);
}

function duration(seconds) {
  const [value, unit] = seconds >= 3600 ? [Math.ceil(seconds / 3600), "hour"]
    : seconds >= 60 ? [Math.ceil(seconds / 60), "minute"] : [Math.max(1, seconds), "second"];
  return new Intl.NumberFormat(lang, { style: "unit", unit, unitDisplay: "long" }).format(value);
}

function word(value) { return has("value." + value) ? t("value." + value) : value; }

function setLanguage(code) {
  lang = LANGUAGES.includes(code) ? code : "en";
  document.documentElement.lang = lang;
  for (const element of document.querySelectorAll("[data-i18n]")) element.textContent = t(element.dataset.i18n);
  for (const element of document.querySelectorAll("[data-i18n-label]")) element.setAttribute("aria-label", t(element.dataset.i18nLabel));
  for (const button of $("languages").children) button.setAttribute("aria-pressed", String(button.lang === lang));
  buildKeys();
  showStation();
  if (session) { $("user-name").textContent = t("jobs.signedInAs", { name: session.name }); showPolicy(); showCountdown(); }
  if (pendingUser) $("pin-for").textContent = t("pin.for", { user: pendingUser });
  for (const item of $("job-list").children) describeJob(item);
  if (lastStatus) say(lastStatus, lastStatus.kind);
}

function buildLanguageSwitch() {
  const nav = $("languages");
  for (const code of LANGUAGES) {
    const button = document.createElement("button");
    button.type = "button";
    button.lang = code;
    button.className = "language secondary";
    button.textContent = KIOSK_STRINGS[code]["language.name"];
    button.addEventListener("click", () => { setLanguage(code); touch(); });
    nav.appendChild(button);
  }
}

// ---- Screens and messages ----------------------------------------------------------------------

const SCREENS = ["setup", "signin", "signin-user", "signin-pin", "jobs", "phone-ended"];

function show(section) {
  for (const id of SCREENS) $(id).hidden = id !== section;
  $("actions").hidden = section !== "jobs";
  const first = { setup: "station-key", signin: "card", "signin-user": "upn", "signin-pin": "pin" }[section];
  if (first) $(first).focus();
}

// `message` is {key, params} (translated, and again when the language changes) or {text}.
function say(message, kind) {
  lastStatus = message ? { ...message, kind } : null;
  const status = $("status");
  status.textContent = text(message);
  status.className = kind || "";
}

function showStation() {
  $("station-name").textContent = station
    ? t("station.name", { id: station.id, printer: station.printerName }) : "";
}

// ---- API ---------------------------------------------------------------------------------------

// One API call; status 0 when the daemon could not be reached at all. Session calls also carry the
// station key: a session token is accepted only together with the key of the station that made it.
async function call(method, path, bearer, body) {
  const init = { method, headers: { Authorization: "Bearer " + bearer } };
  if (session && bearer === session.token && !PHONE) {
    init.headers["X-Station-Key"] = localStorage.getItem(KEY_STORAGE) || "";
  }
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try { response = await fetch(path, init); } catch (_) { return { status: 0, data: null, retryAfter: null }; }
  let data = null;
  try { data = await response.json(); } catch (_) { data = null; }
  return { status: response.status, data, retryAfter: response.headers.get("Retry-After") };
}

function unreachable(status) {
  return status === 0 || status === 502 || status === 503 || status === 504;
}

// An error answer in the person's language: by its code, with what the code needs filled in.
function errorMessage(result) {
  const error = result.data && result.data.error;
  if (error && error.code) return codeMessage(error.code, error, result.retryAfter);
  if (unreachable(result.status)) return { key: "error.unreachable" };
  return { key: "error.http", params: { status: result.status } };
}

// Any code, known or not, says its words; a code this page does not know yet (a newer daemon) says
// the server's message. Printers to try instead, when the answer names them, are added either way.
function codeMessage(code, error, retryAfter) {
  error = error || {};
  const key = "error." + code;
  const seconds = Number(error.retryAfterSeconds || retryAfter || 0);
  const message = !has(key) ? { text: error.message || t("error.http", { status: code }) } : {
    key,
    params: {
      wait: duration(seconds || 60),
      option: error.option ? word("option." + error.option) : "",
      allowed: (error.allowed || []).map(word).join(", "),
      field: error.field || "",
    },
  };
  const others = error.alternatives || error.printers || [];
  if (Array.isArray(others) && others.length) {
    const names = others.map((p) => (typeof p === "string" ? p : p.displayName || p.name || p.printerName || p.id));
    message.extra = t("error.alternatives", { printers: names.join(", ") });
  }
  return message;
}

function text(message) {
  if (!message) return "";
  const base = message.key ? t(message.key, message.params) : message.text;
  return message.extra ? base + " " + message.extra : base;
}

// ---- Set-up and sign-in ------------------------------------------------------------------------

async function checkStation() {
  const key = localStorage.getItem(KEY_STORAGE);
  if (!key) { show("setup"); return; }
  const result = await call("GET", "/api/v1/station", key);
  if (result.status === 200) {
    station = result.data;
    showStation();
    if ($("status").dataset.waiting) { delete $("status").dataset.waiting; say(null); }
    show("signin");
    refreshQr();
  } else if (result.status === 401) {
    localStorage.removeItem(KEY_STORAGE);
    say({ key: "setup.refused", params: { reason: errorMessage(result) } }, "error");
    show("setup");
  } else {
    // A restart, a proxy, a network hiccup: keep the key and try again.
    $("status").dataset.waiting = "1";
    say({ key: "setup.waiting" }, "error");
    setTimeout(checkStation, RETRY_MS);
  }
}

async function signIn(body) {
  const key = localStorage.getItem(KEY_STORAGE);
  const result = await call("POST", "/api/v1/sessions", key, body);
  if (result.status === 201) {
    await enterSession(result.data.token, result.data);
    return true;
  }
  const message = errorMessage(result);
  say({ key: "signin.failed", params: { reason: message } }, "error");
  if (result.data && result.data.error && result.data.error.code === "locked_out") $("status").classList.add("locked");
  return false;
}

// Signed in (`answer`: the sign-in's or GET /api/v1/sessions/current's idleSeconds, lifetimeSeconds
// and user): the person's jobs.
async function enterSession(token, answer) {
  const idleMs = Math.max(10, answer.idleSeconds || 60) * 1000;
  const lifetimeMs = Math.max(10, answer.lifetimeSeconds || 900) * 1000;
  session = { token, idleMs, endsAt: kioskClock.now() + lifetimeMs, deadline: 0, name: answer.user.displayName };
  $("user-name").textContent = t("jobs.signedInAs", { name: session.name });
  pendingUser = "";
  say(null);
  showPolicy();
  show("jobs");
  touch();
  await loadJobs();
  $("jobs-title").focus();
}

// A session made by an Entra ID sign-in comes back in the address's fragment (`#session=…`): taken
// out of the address at once (history, screenshots), then checked with the daemon.
function sessionFromAddress() {
  const match = /^#session=([A-Za-z0-9_-]+)$/.exec(location.hash);
  if (match) history.replaceState(null, "", location.pathname);
  return match ? match[1] : null;
}

async function adoptSession(token) {
  session = { token, idleMs: 60000, endsAt: Infinity, deadline: 0, name: "" };
  const result = await call("GET", "/api/v1/sessions/current", token);
  if (result.status !== 200) {
    session = null;
    if (PHONE) sessionStorage.removeItem(SESSION_STORAGE);
    say(result.status === 401 ? { key: "signout.ended" } : errorMessage(result), "error");
    return false;
  }
  if (PHONE) sessionStorage.setItem(SESSION_STORAGE, token);
  station = result.data.station;
  showStation();
  await enterSession(token, result.data);
  return true;
}

// The QR code on the sign-in screen, renewed every half of its lifetime; hidden when the daemon has
// no `[phone]` sign-in (404).
let qrTimer = null;
async function refreshQr() {
  clearTimeout(qrTimer);
  const key = localStorage.getItem(KEY_STORAGE);
  // Only while the sign-in screen shows: signing out shows it again and asks at once.
  if (!key || PHONE || $("signin").hidden) return;
  const result = await call("GET", "/api/v1/phone/code", key);
  if (result.status === 200) {
    // The daemon's own SVG drawing (rectangles only), parsed as SVG, not as HTML.
    const svg = document.importNode(new DOMParser().parseFromString(result.data.svg, "image/svg+xml").documentElement, true);
    svg.setAttribute("aria-hidden", "true");
    if (result.data.link) {
      // The address is on this machine (the demo): no phone can open it, so it opens in a new window.
      const link = document.createElement("a");
      link.href = result.data.url;
      link.target = "_blank";
      link.rel = "noopener noreferrer";
      link.setAttribute("aria-label", t("phone.qr"));
      link.appendChild(svg);
      $("qr").replaceChildren(link);
    } else {
      $("qr").replaceChildren(svg);
    }
    $("qr").dataset.url = result.data.url;
    $("phone-signin").hidden = false;
    qrTimer = setTimeout(refreshQr, Math.max(5, result.data.refreshInSeconds || 30) * 1000);
  } else if (result.status === 404) {
    $("phone-signin").hidden = true;
  } else {
    qrTimer = setTimeout(refreshQr, 10000);
  }
}

// "Sign in with Microsoft" on the kiosk itself: a fresh code, used by this browser.
async function signInWithMicrosoft() {
  const key = localStorage.getItem(KEY_STORAGE);
  const result = await call("GET", "/api/v1/phone/code", key);
  if (result.status !== 200) { say(errorMessage(result), "error"); return; }
  location.assign(result.data.url + "&at=kiosk");
}

// The on-screen keyboard for the user name: lower-case letters, digits and what addresses contain.
const KEY_ROWS = ["1234567890", "qwertyuiop", "asdfghjkl", "zxcvbnm", "@.-_"];

function key(id, label, name, action, extraClass) {
  const button = document.createElement("button");
  button.type = "button";
  button.dataset.key = id;
  button.className = "key" + (extraClass ? " " + extraClass : "");
  button.textContent = label;
  if (name) button.setAttribute("aria-label", name);
  button.addEventListener("click", action);
  return button;
}

function typeInto(input, change) {
  input.value = change(input.value);
  input.dispatchEvent(new Event("input", { bubbles: true }));
}

function buildKeys() {
  const keyboard = $("keyboard");
  keyboard.replaceChildren();
  for (const row of KEY_ROWS) {
    const line = document.createElement("div");
    line.className = "key-row";
    for (const ch of row) {
      const name = has("key." + ch) ? t("key." + ch) : null;
      line.appendChild(key(ch, ch, name, () => typeInto($("upn"), (v) => v + ch)));
    }
    if (row === KEY_ROWS[KEY_ROWS.length - 1]) {
      line.appendChild(key("backspace", "⌫", t("key.backspace"), () => typeInto($("upn"), (v) => v.slice(0, -1)), "wide-key"));
      line.appendChild(key("clear", t("key.clear"), null, () => typeInto($("upn"), () => ""), "wide-key"));
    }
    keyboard.appendChild(line);
  }
  const pad = $("pinpad");
  pad.replaceChildren();
  for (const digit of "123456789") pad.appendChild(key(digit, digit, null, () => typeInto($("pin"), (v) => v + digit), "digit"));
  pad.appendChild(key("backspace", "⌫", t("key.backspace"), () => typeInto($("pin"), (v) => v.slice(0, -1)), "digit"));
  pad.appendChild(key("0", "0", null, () => typeInto($("pin"), (v) => v + "0"), "digit"));
  pad.appendChild(key("clear", t("key.clear"), null, () => typeInto($("pin"), () => ""), "digit"));
}

// ---- Policy, jobs and their options ------------------------------------------------------------

function showPolicy() {
  const list = $("policy");
  list.replaceChildren();
  const policy = station && station.policy;
  if (!policy) return;
  const lines = [];
  const colour = (policy.colorModes || []).some((m) => m === "color" || m === "auto");
  if (policy.colorModes && policy.colorModes.length && !colour) lines.push(t("policy.blackAndWhite"));
  const sides = policy.duplexModes || [];
  if (sides.length === 1 && sides[0] === "oneSided") lines.push(t("policy.oneSided"));
  if (sides.length && sides.every((m) => m !== "oneSided")) lines.push(t("policy.twoSided"));
  lines.push(t("policy.maxCopies", { n: number(policy.maxCopies) }));
  if (policy.savingOnly) lines.push(t("policy.savingOnly"));
  for (const line of lines) {
    const item = document.createElement("li");
    item.textContent = line;
    list.appendChild(item);
  }
}

// The words of a job's row (again when the language changes): what was sent and where it is now.
function describeJob(item) {
  const job = item.job;
  if (!job) return;
  const config = job.configuration || {};
  item.querySelector(".job-meta").textContent = t("job.meta", {
    printer: job.printerName || job.printerId, time: dateTime(job.submittedAt),
  });
  const settings = [
    config.mediaSize ? t("job.paper", { size: config.mediaSize }) : null,
    config.colorMode ? word(config.colorMode) : null,
    config.duplexMode ? word(config.duplexMode) : null,
    t("job.copies", { n: number(config.copies || 1) }),
    config.pageRanges && config.pageRanges.length ? t("job.pages", { ranges: config.pageRanges.map((r) => r.start + "–" + r.end).join(", ") }) : null,
  ].filter(Boolean);
  item.querySelector(".job-settings").textContent = t("job.sent", { settings: settings.join(" · ") });
  const state = item.dataset.state;
  const stateText = item.querySelector(".job-state");
  stateText.textContent = state === "held" ? t("state.held")
    : state === "failed" ? t("state.failed", { reason: text(item.failure) })
      : t("state." + state);
  const toggle = item.querySelector(".options-toggle");
  toggle.textContent = t(toggle.getAttribute("aria-expanded") === "true" ? "job.hideOptions" : "job.options");
  item.querySelector(".copies-legend").textContent = t("option.copies");
  item.querySelector(".duplex-legend").textContent = t("option.duplexMode");
  item.querySelector(".color-legend").textContent = t("option.colorMode");
  item.querySelector(".copies").setAttribute("aria-label", t("job.copiesOf", { name: job.name }));
  item.querySelector(".fewer").setAttribute("aria-label", t("job.fewer"));
  item.querySelector(".more").setAttribute("aria-label", t("job.more"));
  for (const label of item.querySelectorAll(".toggle span")) label.textContent = word(label.dataset.value);
  item.querySelector(".release").textContent = t("job.print");
  for (const button of item.querySelectorAll(".print-at")) button.textContent = t("job.printAt", { printer: button.dataset.printer });
  item.querySelector(".delete").textContent = t("job.delete");
  if (job.fixedOptions) {
    // Waiting on a pull-print printer: Graph releases it as it was sent, and it is cancelled from the
    // computer that sent it, so there are no options to change and nothing to delete here.
    item.querySelector(".job-settings").textContent += " — " + t("job.fixed");
    toggle.hidden = true;
    item.querySelector(".options").hidden = true;
    item.querySelector(".delete").hidden = true;
  }
}

function fillToggles(fieldset, name, values, current) {
  for (const old of fieldset.querySelectorAll(".toggle")) old.remove();
  // Only what the printer (and the policy) allows; nothing to choose from hides the group.
  fieldset.hidden = values.length === 0;
  values.forEach((value, index) => {
    const label = document.createElement("label");
    label.className = "toggle";
    const input = document.createElement("input");
    input.type = "radio";
    input.name = name;
    input.value = value;
    input.checked = value === current || (!values.includes(current) && index === 0);
    const span = document.createElement("span");
    span.dataset.value = value;
    label.append(input, span);
    fieldset.appendChild(label);
  });
}

function setState(item, state, failure) {
  item.dataset.state = state;
  item.failure = failure || null;
  const busy = state === "printing" || state === "deleting";
  const done = state === "printed" || state === "queued" || state === "deleted";
  item.setAttribute("aria-busy", String(busy));
  for (const button of item.querySelectorAll(".actions button, .options-toggle")) {
    button.disabled = busy;
    button.hidden = done;
  }
  if (done) item.querySelector(".options").hidden = true;
  describeJob(item);
}

async function loadJobs() {
  const result = await call("GET", "/api/v1/jobs", session.token);
  if (result.status === 401) { await signOut({ key: "signout.ended" }); return; }
  if (result.status !== 200) { say(errorMessage(result), "error"); return; }
  const list = $("job-list");
  list.replaceChildren();
  for (const job of result.data.jobs) {
    const item = $("job-template").content.firstElementChild.cloneNode(true);
    item.dataset.id = job.id;
    item.job = job;
    item.querySelector(".job-name").textContent = job.name;
    // Each button is named by its own words and then the job's ("Print quarterly-report.pdf"), so
    // a screen reader tells the jobs apart and the visible words stay the start of the name.
    const n = list.children.length;
    item.querySelector(".job-name").id = "job-name-" + n;
    for (const [selector, id] of [[".release", "job-print-"], [".delete", "job-delete-"], [".options-toggle", "job-options-"]]) {
      const button = item.querySelector(selector);
      button.id = id + n;
      button.setAttribute("aria-labelledby", id + n + " job-name-" + n);
    }
    const config = job.configuration || {};
    const choices = await call("GET", "/api/v1/jobs/" + encodeURIComponent(job.id) + "/options", session.token);
    const offered = choices.status === 200 ? choices.data : null;
    const copies = item.querySelector(".copies");
    copies.value = config.copies || 1;
    copies.min = offered ? offered.minCopies : 1;
    if (offered) copies.max = offered.maxCopies;
    const step = (delta) => {
      const next = (parseInt(copies.value, 10) || 1) + delta;
      const max = copies.max ? parseInt(copies.max, 10) : Infinity;
      copies.value = Math.min(max, Math.max(parseInt(copies.min, 10) || 1, next));
    };
    item.querySelector(".fewer").addEventListener("click", () => step(-1));
    item.querySelector(".more").addEventListener("click", () => step(1));
    fillToggles(item.querySelector(".duplex"), "duplex-" + job.id, offered ? offered.duplexModes : [], config.duplexMode);
    fillToggles(item.querySelector(".color"), "color-" + job.id, offered ? offered.colorModes : [], config.colorMode);
    const toggle = item.querySelector(".options-toggle");
    const panel = item.querySelector(".options");
    panel.id = "options-" + n;
    toggle.setAttribute("aria-controls", panel.id);
    toggle.addEventListener("click", () => {
      const open = panel.hidden;
      panel.hidden = !open;
      toggle.setAttribute("aria-expanded", String(open));
      describeJob(item);
    });
    item.querySelector(".release").addEventListener("click", () => release(item, job, config));
    item.querySelector(".delete").addEventListener("click", () => remove(item, job));
    list.appendChild(item);
    setState(item, "held");
  }
  afterChange();
}

function chosenOptions(item, config) {
  const options = {};
  const copies = parseInt(item.querySelector(".copies").value, 10);
  if (!Number.isNaN(copies) && copies !== (config.copies || 1)) options.copies = copies;
  const duplex = item.querySelector(".duplex input:checked");
  if (duplex && duplex.value !== config.duplexMode) options.duplexMode = duplex.value;
  const color = item.querySelector(".color input:checked");
  if (color && color.value !== config.colorMode) options.colorMode = color.value;
  return options;
}

// `at`: another station of this station's group, offered when this printer cannot print.
async function release(item, job, config, at) {
  touch();
  setState(item, "printing");
  const path = "/api/v1/jobs/" + encodeURIComponent(job.id) + "/release" + (at ? "?at=" + encodeURIComponent(at) : "");
  const result = await call("POST", path, session.token, chosenOptions(item, config));
  if (result.status === 401) { await signOut({ key: "signout.ended" }); return; }
  offerAlternatives(item, job, config, result);
  if (result.status === 200) { setState(item, "printed"); say({ key: "result.printed", params: { name: job.name } }, "ok"); }
  else if (result.status === 202) { setState(item, "queued"); say({ key: "result.queued", params: { name: job.name } }, "ok"); }
  else {
    const failure = errorMessage(result);
    setState(item, "failed", failure);
    say({ key: "result.failed", params: { name: job.name, reason: failure } }, "error");
  }
  afterChange();
}

// When this station's printer cannot print, one button per printer of its group that can: the job
// prints there, for the person to walk to. Any other answer takes the buttons away.
function offerAlternatives(item, job, config, result) {
  for (const old of item.querySelectorAll(".print-at")) old.remove();
  const error = result.data && result.data.error;
  if (!error || error.code !== "printer_not_ready" || !Array.isArray(error.alternatives)) return;
  const actions = item.querySelector(".actions");
  for (const other of error.alternatives) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "print-at";
    button.dataset.station = other.stationId;
    button.dataset.printer = other.printerName || other.printerId;
    button.textContent = t("job.printAt", { printer: button.dataset.printer });
    button.addEventListener("click", () => release(item, job, config, other.stationId));
    actions.appendChild(button);
  }
}

async function remove(item, job) {
  touch();
  setState(item, "deleting");
  const result = await call("DELETE", "/api/v1/jobs/" + encodeURIComponent(job.id), session.token);
  if (result.status === 401) { await signOut({ key: "signout.ended" }); return; }
  if (result.status === 200 || result.status === 202) {
    setState(item, "deleted");
    say({ key: "result.deleted", params: { name: job.name } }, "ok");
  } else {
    const failure = errorMessage(result);
    setState(item, "held");
    say({ key: "result.notDeleted", params: { name: job.name, reason: failure } }, "error");
  }
  afterChange();
}

async function releaseAll() {
  touch();
  const rows = [...$("job-list").children].filter((item) => ["held", "failed"].includes(item.dataset.state));
  for (const item of rows) setState(item, "printing");
  const result = await call("POST", "/api/v1/jobs/release-all", session.token, {});
  if (result.status === 401) { await signOut({ key: "signout.ended" }); return; }
  if (result.status !== 200) {
    for (const item of rows) setState(item, "held");
    say(errorMessage(result), "error");
    return;
  }
  const results = result.data.results;
  if (results.length === 0) { await signOut({ key: "signout.nothing" }); return; }
  for (const r of results) {
    const item = rows.find((row) => row.dataset.id === r.id);
    if (!item) continue;
    if (r.status === "released") setState(item, "printed");
    else if (r.status === "queued") setState(item, "queued");
    else setState(item, "failed", r.code ? codeMessage(r.code, { message: r.message }) : { text: r.message || "" });
  }
  const printed = results.filter((r) => r.status === "released").length;
  const queued = results.filter((r) => r.status === "queued").length;
  const failed = results.length - printed - queued;
  const params = { printed: number(printed), queued: number(queued), failed: number(failed) };
  if (failed) {
    // Stay signed in so the person can see what failed (on each job) and try again.
    say({ key: "result.allSomeFailed", params }, "error");
    afterChange();
    return;
  }
  // Done: the next person must not find this person's session open.
  await signOut({ key: queued ? "result.allQueued" : "result.allPrinted", params }, "ok");
}

function afterChange() {
  const open = [...$("job-list").children].filter((item) => item.dataset.state !== "deleted"
    && item.dataset.state !== "printed" && item.dataset.state !== "queued").length;
  $("no-jobs").hidden = open > 0;
  $("release-all").disabled = open === 0;
}

// ---- Idle time and sign-out --------------------------------------------------------------------

// Activity starts the idle time again (never past the session's end); the countdown shows what is left.
function touch() {
  if (!session) return;
  session.deadline = Math.min(kioskClock.now() + session.idleMs, session.endsAt);
  showCountdown();
  if (!tick) tick = setInterval(showCountdown, 250);
}

function showCountdown() {
  if (!session) return;
  const left = Math.max(0, Math.ceil((session.deadline - kioskClock.now()) / 1000));
  $("countdown").textContent = t("jobs.countdown", { seconds: number(left) });
  $("countdown").classList.toggle("soon", left <= 10);
  if (left <= 0) signOut({ key: "signout.idle" });
}

async function signOut(message, kind) {
  clearInterval(tick);
  tick = null;
  $("countdown").textContent = "";
  if (session) {
    const token = session.token;
    session = null;
    await call("DELETE", "/api/v1/sessions/current", token).catch(() => {});
  }
  $("job-list").replaceChildren();
  $("card").value = ""; $("upn").value = ""; $("pin").value = "";
  pendingUser = "";
  // The next person starts in the browser's language.
  setLanguage(browserLanguage());
  say(message || { key: "signout.done" }, kind || "");
  if (PHONE) {
    sessionStorage.removeItem(SESSION_STORAGE);
    show("phone-ended");
    return;
  }
  show("signin");
  refreshQr();
}

// ---- Wiring ------------------------------------------------------------------------------------

$("setup-form").addEventListener("submit", (event) => {
  event.preventDefault();
  localStorage.setItem(KEY_STORAGE, $("station-key").value.trim());
  $("station-key").value = "";
  say(null);
  checkStation();
});
$("card-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const card = $("card").value.trim();
  $("card").value = "";
  if (card) signIn({ card });
});
$("use-pin").addEventListener("click", () => { say(null); show("signin-user"); });
$("user-back").addEventListener("click", () => { say(null); show("signin"); refreshQr(); });
$("user-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const user = $("upn").value.trim();
  if (!user) { say({ key: "user.empty" }, "error"); $("upn").focus(); return; }
  pendingUser = user;
  $("pin-for").textContent = t("pin.for", { user });
  say(null);
  show("signin-pin");
});
$("pin-back").addEventListener("click", () => { $("pin").value = ""; say(null); show("signin-user"); });
$("pin-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const pin = $("pin").value;
  $("pin").value = "";
  if (!pin) { say({ key: "pin.empty" }, "error"); $("pin").focus(); return; }
  if (!(await signIn({ user: pendingUser, pin }))) $("pin").focus();
});
$("release-all").addEventListener("click", releaseAll);
$("signout").addEventListener("click", () => signOut());
for (const kind of ["pointerdown", "keydown", "input"]) document.addEventListener(kind, touch, true);

$("use-microsoft").addEventListener("click", signInWithMicrosoft);

buildLanguageSwitch();
setLanguage(browserLanguage());
(async () => {
  const fromAddress = sessionFromAddress();
  if (PHONE) {
    const token = fromAddress || sessionStorage.getItem(SESSION_STORAGE);
    if (!token || !(await adoptSession(token))) show("phone-ended");
    return;
  }
  if (fromAddress && localStorage.getItem(KEY_STORAGE) && (await adoptSession(fromAddress))) return;
  checkStation();
})();
