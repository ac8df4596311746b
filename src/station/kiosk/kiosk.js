// The kiosk page: station key set up once (kept in localStorage), sign-in by card or user + PIN,
// the signed-in user's held jobs with per-job options, release / delete / release all, and automatic
// sign-out after inactivity (shown as a countdown). Plain JavaScript, no external resources: the page
// must work on a closed network.
//
// Time: the server says how many seconds of inactivity end a session (idleSeconds) and how long the
// session may last at most (lifetimeSeconds); both are measured here with the page's own monotonic
// clock (performance.now), never by comparing the server's timestamps with this machine's clock,
// which may be wrong. The station key is forgotten only when the daemon answers 401 to it; when the
// daemon is unreachable or a proxy answers 502/503/504 (a restart), the page keeps its key and retries.
"use strict";

const KEY_STORAGE = "pullprintd.stationKey";
const WORDS = {
  oneSided: "One-sided", flipOnLongEdge: "Two-sided (long edge)", flipOnShortEdge: "Two-sided (short edge)",
  color: "Colour", grayscale: "Grayscale", blackAndWhite: "Black and white", auto: "Automatic",
};
const $ = (id) => document.getElementById(id);

const RETRY_MS = 3000;
let session = null;       // {token, idleMs, endsAt (performance.now() ms), deadline}
let tick = null;

function show(section) {
  for (const id of ["setup", "signin", "jobs"]) $(id).hidden = id !== section;
  if (section === "signin") $("card").focus();
  if (section === "setup") $("station-key").focus();
}

function say(text, kind) {
  const status = $("status");
  status.textContent = text;
  status.className = kind || "";
}

// One API call; status 0 when the daemon could not be reached at all. Session calls also carry the
// station key: a session token is accepted only together with the key of the station that made it.
async function call(method, path, bearer, body) {
  const init = { method, headers: { Authorization: "Bearer " + bearer } };
  if (session && bearer === session.token) {
    init.headers["X-Station-Key"] = localStorage.getItem(KEY_STORAGE) || "";
  }
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try { response = await fetch(path, init); } catch (_) { return { status: 0, data: null }; }
  let data = null;
  try { data = await response.json(); } catch (_) { data = null; }
  return { status: response.status, data };
}

function unreachable(status) {
  return status === 0 || status === 502 || status === 503 || status === 504;
}

function errorText(result) {
  const error = result.data && result.data.error;
  if (error) return error.message;
  if (unreachable(result.status)) return "The print server cannot be reached right now; try again in a moment.";
  return "Something went wrong (HTTP " + result.status + ")";
}

async function checkStation() {
  const key = localStorage.getItem(KEY_STORAGE);
  if (!key) { show("setup"); return; }
  const result = await call("GET", "/api/v1/station", key);
  if (result.status === 200) {
    $("station-name").textContent = "Station " + result.data.id + " — prints on " + result.data.printerName;
    if ($("status").dataset.waiting) { delete $("status").dataset.waiting; say("", ""); }
    show("signin");
  } else if (result.status === 401) {
    localStorage.removeItem(KEY_STORAGE);
    say("The station key was not accepted: " + errorText(result), "error");
    show("setup");
  } else {
    // A restart, a proxy, a network hiccup: keep the key and try again.
    $("status").dataset.waiting = "1";
    say("Waiting for the print server… (" + errorText(result) + ")", "error");
    setTimeout(checkStation, RETRY_MS);
  }
}

async function signIn(body) {
  const key = localStorage.getItem(KEY_STORAGE);
  const result = await call("POST", "/api/v1/sessions", key, body);
  if (result.status === 201) {
    const idleMs = Math.max(10, result.data.idleSeconds || 60) * 1000;
    const lifetimeMs = Math.max(10, result.data.lifetimeSeconds || 900) * 1000;
    session = { token: result.data.token, idleMs, endsAt: performance.now() + lifetimeMs, deadline: 0 };
    $("user-name").textContent = "Signed in as " + result.data.user.displayName;
    say("", "");
    show("jobs");
    touch();
    await loadJobs();
  } else if (result.status === 429) {
    say("Too many attempts. " + errorText(result), "error");
  } else {
    say("Sign-in failed: " + errorText(result), "error");
  }
}

// Activity starts the idle time again (never past the session's end); the countdown shows what is left.
function touch() {
  if (!session) return;
  session.deadline = Math.min(performance.now() + session.idleMs, session.endsAt);
  showCountdown();
  if (!tick) tick = setInterval(showCountdown, 1000);
}

function showCountdown() {
  if (!session) return;
  const left = Math.max(0, Math.ceil((session.deadline - performance.now()) / 1000));
  $("countdown").textContent = "Signing out in " + left + " s";
  if (left <= 0) signOut("Signed out after inactivity.");
}

async function signOut(message) {
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
  say(message || "Signed out.", "");
  show("signin");
}

function fillSelect(select, values, current) {
  select.replaceChildren();
  for (const value of values) {
    const option = document.createElement("option");
    option.value = value;
    option.textContent = WORDS[value] || value;
    option.selected = value === current;
    select.appendChild(option);
  }
}

async function loadJobs() {
  const result = await call("GET", "/api/v1/jobs", session.token);
  if (result.status === 401) { await signOut("Your session ended; please sign in again."); return; }
  if (result.status !== 200) { say(errorText(result), "error"); return; }
  const list = $("job-list");
  list.replaceChildren();
  $("no-jobs").hidden = result.data.jobs.length > 0;
  $("release-all").hidden = result.data.jobs.length === 0;
  if (result.data.jobs.length === 0) say("Nothing to print.", "");
  for (const job of result.data.jobs) {
    const item = $("job-template").content.firstElementChild.cloneNode(true);
    item.dataset.id = job.id;
    item.querySelector(".job-name").textContent = job.name;
    const when = new Date(job.submittedAt).toLocaleString();
    item.querySelector(".job-meta").textContent = "Printer " + (job.printerName || job.printerId) + " · sent " + when;
    const config = job.configuration || {};
    const choices = await call("GET", "/api/v1/jobs/" + encodeURIComponent(job.id) + "/options", session.token);
    const offered = choices.status === 200 ? choices.data : null;
    const copies = item.querySelector(".copies");
    copies.value = config.copies || 1;
    if (offered) { copies.min = offered.minCopies; copies.max = offered.maxCopies; }
    fillSelect(item.querySelector(".duplex"), offered ? offered.duplexModes : [], config.duplexMode);
    fillSelect(item.querySelector(".color"), offered ? offered.colorModes : [], config.colorMode);
    item.querySelector(".copies").setAttribute("aria-label", "Copies of " + job.name);
    item.querySelector(".duplex").setAttribute("aria-label", "Sides for " + job.name);
    item.querySelector(".color").setAttribute("aria-label", "Colour for " + job.name);
    item.querySelector(".release").setAttribute("aria-label", "Print " + job.name);
    item.querySelector(".delete").setAttribute("aria-label", "Delete " + job.name);
    item.querySelector(".release").addEventListener("click", () => release(item, job, config));
    item.querySelector(".delete").addEventListener("click", () => remove(item, job));
    list.appendChild(item);
  }
}

function chosenOptions(item, config) {
  const options = {};
  const copies = parseInt(item.querySelector(".copies").value, 10);
  if (!Number.isNaN(copies) && copies !== (config.copies || 1)) options.copies = copies;
  const duplex = item.querySelector(".duplex").value;
  if (duplex && duplex !== config.duplexMode) options.duplexMode = duplex;
  const color = item.querySelector(".color").value;
  if (color && color !== config.colorMode) options.colorMode = color;
  return options;
}

async function release(item, job, config) {
  touch();
  const result = await call("POST", "/api/v1/jobs/" + encodeURIComponent(job.id) + "/release", session.token, chosenOptions(item, config));
  if (result.status === 200) { say("Released: " + job.name, "ok"); item.remove(); }
  else if (result.status === 202) { say("Queued — will print shortly: " + job.name, "ok"); item.remove(); }
  else if (result.status === 401) { await signOut("Your session ended; please sign in again."); return; }
  else { say("Not printed: " + errorText(result), "error"); return; }
  afterChange();
}

async function remove(item, job) {
  touch();
  const result = await call("DELETE", "/api/v1/jobs/" + encodeURIComponent(job.id), session.token);
  if (result.status === 200 || result.status === 202) { say("Deleted: " + job.name, "ok"); item.remove(); }
  else if (result.status === 401) { await signOut("Your session ended; please sign in again."); return; }
  else { say("Not deleted: " + errorText(result), "error"); return; }
  afterChange();
}

async function releaseAll() {
  touch();
  const result = await call("POST", "/api/v1/jobs/release-all", session.token, {});
  if (result.status === 401) { await signOut("Your session ended; please sign in again."); return; }
  if (result.status !== 200) { say("Not printed: " + errorText(result), "error"); return; }
  const results = result.data.results;
  if (results.length === 0) { await signOut("Nothing to print. Signed out."); return; }
  const released = results.filter((r) => r.status === "released").length;
  const queued = results.filter((r) => r.status === "queued").length;
  const failed = results.length - released - queued;
  let text = "Released " + released + (queued ? ", queued — will print shortly: " + queued : "");
  if (failed) {
    // Stay signed in so the person can see what failed and try again.
    text += ", not printed: " + failed + " (" + results.filter((r) => r.message).map((r) => r.message).join("; ") + ")";
    say(text, "error");
    await loadJobs();
    say(text, "error");
    return;
  }
  // Done: the next person must not find this person's session open.
  await signOut(text + ". Signed out.");
  $("status").className = "ok";
}

function afterChange() {
  const left = $("job-list").children.length;
  $("no-jobs").hidden = left > 0;
  $("release-all").hidden = left === 0;
}

$("setup-form").addEventListener("submit", (event) => {
  event.preventDefault();
  localStorage.setItem(KEY_STORAGE, $("station-key").value.trim());
  $("station-key").value = "";
  say("", "");
  checkStation();
});
$("card-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const card = $("card").value.trim();
  $("card").value = "";
  if (card) signIn({ card });
});
$("pin-form").addEventListener("submit", (event) => {
  event.preventDefault();
  signIn({ user: $("upn").value.trim(), pin: $("pin").value });
  $("pin").value = "";
});
$("release-all").addEventListener("click", releaseAll);
$("signout").addEventListener("click", () => signOut());
for (const kind of ["pointerdown", "keydown", "input"]) document.addEventListener(kind, touch, true);

checkStation();
