// The inspector's app: screens drawn from IndexedDB, so they work the same with no signal.
// Every answer, photo and finding is written to the phone first; the outbox sends it.
import * as db from "./db.js";
import * as net from "./net.js";
import { h, load, time, range, t, tn } from "./ui.js";

// The API with this phone's sign-in, and the outbox: one module (net.js), two names here.
const api = net;
const outbox = net;

const main = document.getElementById("main");
const netLine = document.getElementById("net");
export const state = {
  settings: { easy_read: false },
  flash: null, // a message for the next drawing of a screen
};

// ------------------------------------------------------------------ navigation

// Screens named by a string are in visit.js, loaded when first needed.
const routes = [
  [/^\/app\/?$/, visitsScreen],
  [/^\/app\/signin$/, signInScreen],
  [/^\/app\/signout$/, signOutScreen],
  [/^\/app\/outbox$/, "outboxScreen"],
  [/^\/app\/visits\/([\w-]+)$/, "visitScreen"],
  [/^\/app\/visits\/([\w-]+)\/sections\/(\d+)$/, "sectionScreen"],
  [/^\/app\/visits\/([\w-]+)\/photos$/, "photosScreen"],
  [/^\/app\/visits\/([\w-]+)\/findings$/, "findingsScreen"],
  [/^\/app\/visits\/([\w-]+)\/findings\/new\/(good|recommendation)$/, "findingFormScreen"],
  [/^\/app\/visits\/([\w-]+)\/concern$/, "concernScreen"],
  [/^\/app\/visits\/([\w-]+)\/review$/, "reviewScreen"],
];

export function go(path, { replace = false } = {}) {
  if (replace) history.replaceState(null, "", path); else history.pushState(null, "", path);
  render(true);
}

document.addEventListener("click", (e) => {
  const a = e.target.closest("a[href^='/app']");
  if (!a || e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || a.target) return;
  e.preventDefault();
  go(a.getAttribute("href"));
});
addEventListener("popstate", () => render(true));

let drawing = 0;
// ``background``: a redraw nobody asked for (something was sent). Drawing a screen takes a
// moment on a slow phone; if the inspector started typing meanwhile, their field stays.
export async function render(moved = false, background = false) {
  const mine = ++drawing;
  const path = location.pathname;
  let screen = signInScreen;
  let args = [];
  if (api.signedIn() || path === "/app/signin") {
    for (const [re, fn] of routes) {
      const m = path.match(re);
      if (m) { screen = fn; args = m.slice(1); break; }
    }
    if (screen === signInScreen && path !== "/app/signin") screen = notFoundScreen;
  }
  if (typeof screen === "string") screen = (await import("./visit.js"))[screen];
  const nodes = await screen(...args);
  if (mine !== drawing) return; // a newer navigation won
  if (background && !idle()) { status(); return; }
  main.replaceChildren(...[nodes].flat().filter(Boolean));
  const h1 = main.querySelector("h1");
  if (state.flash && h1) {
    h1.after(h("p", { class: "ready", role: "status" }, state.flash));
    state.flash = null;
  }
  document.title = `${h1?.textContent ?? ""} – ${t("app.name")}`;
  if (moved) {
    // Say where we are: focus the heading (keyboard and screen reader users start there).
    h1?.setAttribute("tabindex", "-1");
    (main.querySelector("[data-focus]") ?? h1)?.focus();
    scrollTo(0, 0);
  }
  status();
}

// Something was sent: redraw the screens that show what was sent, unless the inspector is
// in a field (their place and what they typed stay put). A section of questions shows
// nothing that sending changes, so only the header's line is brought up to date there
// (phones often do not focus a tapped radio button, so focus alone cannot tell).
let redrawQueued = false;
function redraw() {
  if (redrawQueued) return;
  redrawQueued = true;
  queueMicrotask(() => {
    redrawQueued = false;
    if (idle() && !/\/sections\//.test(location.pathname)) render(false, true); else status();
  });
}

function idle() {
  const el = document.activeElement;
  return !main.contains(el) || el === main || el?.tagName === "H1";
}

async function status() {
  const waiting = (await outbox.items()).filter((i) => i.status !== "sent");
  const problems = waiting.filter((i) => i.status === "problem").length;
  const words = [api.noSignal() ? t("net.offline") : t("net.online")];
  if (outbox.isSignedOut()) words.push(t("net.signed_out"));
  else if (problems) words.push(tn("net.problems", problems));
  else if (waiting.length) words.push(tn("net.waiting", waiting.length));
  else words.push(t("net.all_sent"));
  const text = words.join(" · ");
  if (netLine.textContent !== text) netLine.textContent = text;
  netLine.classList.toggle("offline", api.noSignal());
}

export function heading(text, ...rest) {
  return h("h1", {}, text, ...rest);
}

export function back(href, text) {
  return h("p", { class: "back" }, h("a", { href }, "← ", text));
}

// ------------------------------------------------------------------ sign in / out

async function signInScreen() {
  const session = api.current();
  const error = h("div", { role: "alert", class: "error-box", hidden: true });
  const email = h("input", { id: "email", type: "email", name: "email", autocomplete: "username", required: true, value: session?.email ?? "" });
  const password = h("input", { id: "password", type: "password", name: "password", autocomplete: "current-password", required: true });
  const device = h("input", { id: "device", name: "device", required: true, maxlength: 100, value: session?.device ?? t("signin.device_default") });
  const form = h("form", { class: "stack", novalidate: true },
    h("p", {}, h("label", { for: "email" }, t("signin.email")), email),
    h("p", {}, h("label", { for: "password" }, t("signin.password")), password),
    h("p", {}, h("label", { for: "device" }, t("signin.device")), h("span", { class: "hint", id: "device-hint" }, t("signin.device_hint")), device),
    h("button", { type: "submit", class: "primary" }, t("signin.button")),
  );
  device.setAttribute("aria-describedby", "device-hint");
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    error.hidden = true;
    if (!email.value || !password.value || !device.value) {
      error.replaceChildren(h("p", {}, t("signin.missing")));
      error.hidden = false;
      error.focus();
      return;
    }
    let problem;
    try {
      if (session?.email && session.email.toLowerCase() !== email.value.toLowerCase()) await db.clear();
      problem = await api.signIn(email.value, password.value, device.value);
    } catch {
      problem = { detail: t("signin.offline") };
    }
    if (problem) {
      error.replaceChildren(h("p", {}, problem.detail || t("signin.failed")));
      error.hidden = false;
      error.setAttribute("tabindex", "-1");
      error.focus();
      return;
    }
    outbox.kick();
    go("/app/", { replace: true });
  });
  return [
    heading(t("signin.title")),
    session?.email && !session.refresh_token ? h("p", { class: "notice" }, t("signin.again")) : null,
    error,
    form,
    h("p", { class: "hint" }, t("signin.join")),
  ];
}

async function signOutScreen() {
  const waiting = (await outbox.items()).filter((i) => i.status !== "sent").length;
  const button = h("button", { type: "button", class: waiting ? "danger" : "primary" }, waiting ? t("signout.anyway") : t("signout.button"));
  button.addEventListener("click", async () => {
    await api.signOut();
    go("/app/signin", { replace: true });
  });
  return [
    back("/app/", t("visits.title")),
    heading(t("signout.title")),
    h("p", {}, t("signout.what")),
    waiting ? h("p", { class: "error-box" }, tn("signout.waiting", waiting)) : null,
    button,
  ];
}

export function notFoundScreen() {
  return [heading(t("notfound.title")), h("p", {}, h("a", { href: "/app/" }, t("visits.title")))];
}

// ------------------------------------------------------------------ my visits

async function fetchVisits() {
  const r = await api.request("/v1/me/visits?limit=100");
  if (!r.ok) throw new Error(String(r.status));
  const page = await r.json();
  await db.put("kv", { items: page.items, at: Date.now() }, "visits");
  return page.items;
}

async function makeReady(visit) {
  const kept = await db.get("bundles", visit.id);
  const headers = kept ? { "if-none-match": kept.etag } : {};
  const r = await api.request(`/v1/visits/${visit.id}/bundle`, { headers });
  if (r.status === 304) return false;
  if (!r.ok) throw await api.problemOf(r);
  const bundle = await r.json();
  await db.put("bundles", { bundle, etag: r.headers.get("etag"), saved_at: Date.now() }, visit.id);
  if (!(await db.get("drafts", visit.id))) {
    // Started on another of my devices? Carry on from what it sent.
    let draft = { submission_id: visit.submission?.id ?? crypto.randomUUID(), etag: null, answers: {}, started_at: null, updated_at: null };
    if (visit.submission) {
      const s = await api.request(`/v1/visits/${visit.id}/submissions/${visit.submission.id}`);
      if (s.ok) draft = fromServer(draft, await s.json(), s.headers.get("etag"));
    }
    await db.put("drafts", draft, visit.id);
  }
  return true;
}

export function fromServer(draft, sub, etag) {
  const answers = {};
  for (const a of sub.answers) answers[a.question_key] = { value: a.value, na: a.na, comment: a.comment ?? "" };
  return {
    ...draft, submission_id: sub.id, etag, answers,
    started_at: sub.started_at, updated_at: sub.updated_at,
    finalised: sub.state === "final", sent_state: sub.state,
  };
}

async function visitsScreen() {
  let list = (await db.get("kv", "visits"))?.items ?? [];
  let note = null;
  if (navigator.onLine) {
    try {
      list = await fetchVisits();
      // Keep ready visits current: a 304 costs nothing.
      for (const v of list) if (await db.get("bundles", v.id)) await makeReady(v).catch(() => {});
    } catch (e) {
      if (e instanceof api.SignedOut) return signInScreen();
      note = t("visits.stale");
    }
  } else if (list.length) {
    note = t("visits.offline");
  }
  const now = Date.now();
  const upcoming = list.filter((v) => Date.parse(v.ends_at) >= now);
  const recent = list.filter((v) => Date.parse(v.ends_at) < now).reverse();
  const cards = async (vs) => h("ul", { class: "cards" }, ...(await Promise.all(vs.map(visitCard))));
  return [
    heading(t("visits.title")),
    api.current()?.me ? h("p", { class: "hint" }, t("visits.signed_in_as", { name: api.current().me.display_name ?? api.current().email })) : null,
    note ? h("p", { class: "notice" }, note) : null,
    h("h2", {}, t("visits.upcoming")),
    upcoming.length ? await cards(upcoming) : h("p", {}, t("visits.none_upcoming")),
    h("h2", {}, t("visits.recent")),
    recent.length ? await cards(recent) : h("p", {}, t("visits.none_recent")),
    h("nav", { "aria-label": t("visits.more") }, h("ul", { class: "links" },
      h("li", {}, h("a", { href: "/app/outbox" }, t("outbox.title"))),
      h("li", {}, h("a", { href: "/app/signout" }, t("signout.title"))),
    )),
  ];
}

async function visitCard(v) {
  const kept = await db.get("bundles", v.id);
  const id = `visit-${v.id}`;
  const ready = h("p", { class: kept ? "ready" : "hint" }, kept ? t("visits.ready", { at: time(kept.saved_at) }) : t("visits.not_ready"));
  const team = (v.team ?? []).map((m) => `${m.display_name} (${t("perspective." + m.perspective)}${m.lead ? ", " + t("team.lead") : ""})`).join(", ");
  const card = h("li", { class: "card", "aria-labelledby": id },
    h("h3", { id }, v.service_name),
    h("p", {}, range(v.starts_at, v.ends_at)),
    v.address ? h("p", {}, v.address) : null,
    h("p", {}, t("visits.team"), " ", team),
    h("p", {}, t("visits.you_are", { perspective: t("perspective." + v.perspective) })),
    v.submission?.state === "final" ? h("p", { class: "ready" }, t("visits.final_sent")) : null,
    ready,
  );
  if (kept) {
    card.append(h("p", {}, h("a", { class: "button primary", href: `/app/visits/${v.id}`, "aria-describedby": id }, t("visits.open"))));
  } else {
    const button = h("button", { type: "button", class: "primary", "aria-describedby": id }, t("visits.make_ready"));
    button.addEventListener("click", async () => {
      button.disabled = true;
      button.textContent = t("visits.getting");
      try {
        await makeReady(v);
        go(`/app/visits/${v.id}`);
      } catch (e) {
        button.disabled = false;
        button.textContent = t("visits.make_ready");
        ready.textContent = e instanceof api.Offline ? t("visits.need_signal") : (e.detail || t("visits.failed"));
        ready.setAttribute("role", "alert");
      }
    });
    card.append(h("p", {}, button));
  }
  return card;
}

// ------------------------------------------------------------------ start

async function start() {
  performance.mark("app-start");
  // The words, the settings and the sign-in are read side by side, not one after another.
  const [, kept] = await Promise.all([load("en"), db.get("kv", "settings"), api.loadSession()]);
  state.settings = { ...state.settings, ...(kept ?? {}) };
  api.start();
  addEventListener("online", () => { outbox.resume(); outbox.watchAll(); status(); });
  addEventListener("offline", () => status());
  addEventListener("coassess-signal", () => status());
  outbox.onChange(redraw);
  await render(false);
  document.documentElement.dataset.ready = "true";
  performance.mark("app-ready"); // scripts/bench_app measures the first load to here
  // After the first screen: caching the shell must not compete with drawing it.
  if ("serviceWorker" in navigator) {
    navigator.serviceWorker.register("/app/sw.js", { scope: "/app/" }).catch(() => {});
  }
  outbox.kick();
  outbox.watchAll();
}

start();
