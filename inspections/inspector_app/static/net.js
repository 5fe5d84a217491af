// The network side of the app, in one module so the first load asks for few files:
// the JSON API with this phone's sign-in (first part) and the outbox (second part).
import * as db from "./db.js";

// The public JSON API with this phone's sign-in: a short access token, renewed before it
// expires and after a 401 (also when the phone comes back online after it expired), from
// a rotating refresh token kept in IndexedDB. One renewal at a time, across tabs too: a
// refresh token used twice signs the device out.

let session = null;
let renewing = null;

export class SignedOut extends Error {}
export class Offline extends Error {}

// Whether the last request reached the server: navigator.onLine can say "online" on a
// wifi with no way out, so what requests do is the better guide.
let reached = true;
export function noSignal() { return !navigator.onLine || !reached; }
function heard(ok) {
  if (reached !== ok) { reached = ok; dispatchEvent(new Event("coassess-signal")); }
}

export async function loadSession() {
  session = (await db.get("kv", "session")) ?? null;
  return session;
}

export function current() { return session; }
export function signedIn() { return Boolean(session?.refresh_token); }

// What a problem+json answer says, for the screens to show.
export async function problemOf(r) {
  let body = {};
  try { body = await r.json(); } catch { /* not JSON */ }
  return {
    status: r.status,
    type: String(body.type ?? "").split("/").pop(),
    title: body.title ?? "",
    detail: body.detail ?? "",
    errors: body.errors ?? [],
    retry_after: Number(r.headers.get("retry-after")) || 0,
  };
}

async function keep(pair) {
  session = {
    ...session,
    access_token: pair.access_token,
    refresh_token: pair.refresh_token,
    device_id: pair.device_id,
    ttl_ms: pair.expires_in * 1000,
    expires_at: Date.now() + pair.expires_in * 1000,
  };
  await db.put("kv", session, "session");
  plan();
}

async function post(path, body, headers = {}) {
  try {
    const r = await fetch(path, {
      method: "POST",
      headers: { "content-type": "application/json", ...headers },
      body: JSON.stringify(body),
    });
    heard(true);
    return r;
  } catch {
    heard(false);
    throw new Offline();
  }
}

export async function signIn(email, password, device) {
  const r = await post("/v1/auth/token", { email, password, device });
  if (!r.ok) return problemOf(r);
  session = { email, device };
  await keep(await r.json());
  try {
    const me = await request("/v1/me");
    if (me.ok) {
      session = { ...session, me: await me.json() };
      await db.put("kv", session, "session");
    }
  } catch { /* the name can wait */ }
  return null;
}

// Renew the pair unless someone (this tab or another) already did after `stale` was used.
async function renew(stale) {
  const run = async () => {
    const stored = await db.get("kv", "session");
    if (stored?.access_token && stored.access_token !== stale && stored.expires_at - margin(stored) > Date.now()) {
      session = stored;
      return;
    }
    session = stored ?? session;
    if (!session?.refresh_token) throw new SignedOut();
    const r = await post("/v1/auth/refresh", { refresh_token: session.refresh_token });
    if (r.status === 401 || r.status === 422) {
      session = { ...session, access_token: null, refresh_token: null };
      await db.put("kv", session, "session");
      throw new SignedOut();
    }
    if (!r.ok) throw new Offline();
    await keep(await r.json());
  };
  renewing ??= (navigator.locks ? navigator.locks.request("coassess-renew", run) : run())
    .finally(() => { renewing = null; });
  return renewing;
}

function margin(s) {
  return Math.min(60_000, (s.ttl_ms ?? 900_000) / 5);
}

let renewTimer;
function plan() {
  clearTimeout(renewTimer);
  if (!session?.refresh_token) return;
  const due = session.expires_at - margin(session) - Date.now();
  // Renewed ahead of time while online; offline, the next request renews instead.
  renewTimer = setTimeout(() => { if (navigator.onLine) renew(session.access_token).catch(() => {}); }, Math.max(due, 1000));
}

// fetch() with the access token; throws Offline (no network) or SignedOut.
export async function request(path, options = {}) {
  if (!session?.refresh_token) throw new SignedOut();
  if (!session.access_token || Date.now() > session.expires_at - margin(session)) {
    await renew(session.access_token);
  }
  const send = async () => {
    const used = session.access_token;
    try {
      const r = await fetch(path, {
        ...options,
        headers: { ...(options.headers ?? {}), authorization: `Bearer ${used}` },
      });
      heard(true);
      return [r, used];
    } catch {
      heard(false);
      throw new Offline();
    }
  };
  let [r, used] = await send();
  if (r.status === 401) {
    await renew(used);
    [r] = await send();
    if (r.status === 401) throw new SignedOut();
  }
  return r;
}

export async function signOut() {
  if (session?.refresh_token) {
    try {
      await request("/v1/auth/logout", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ refresh_token: session.refresh_token }),
      });
    } catch { /* offline: the coordinator can revoke the device; the data goes anyway */ }
  }
  clearTimeout(renewTimer);
  session = null;
  await db.clear();
}

export function start() {
  plan();
}

// ------------------------------------------------------------------ the outbox

// The outbox: everything made on the phone waits here until the server has it. Items go
// in the order they were made (per visit: a problem with one visit holds only that
// visit's later items), each exactly once: ids are made on the phone and the API's PUTs
// and uploads are idempotent, so a retry after a lost answer changes nothing.

const listeners = new Set();
export function onChange(fn) { listeners.add(fn); return () => listeners.delete(fn); }
function changed() { for (const fn of listeners) fn(); }

export async function items() {
  return (await db.all("outbox")).sort((a, b) => a.seq - b.seq);
}

export async function add(item) {
  await db.put("outbox", { status: "waiting", attempts: 0, next_at: 0, made_at: Date.now(), ...item });
  changed();
  kick();
}

// One waiting draft per visit: it sends the answers as they are when it goes.
export async function addDraft(visitId) {
  const waiting = (await items()).some((i) => i.visit_id === visitId && i.kind === "draft" && i.status === "waiting");
  if (!waiting) await add({ kind: "draft", visit_id: visitId });
}

export async function retry(seq) {
  await db.update("outbox", seq, (i) => ({ ...i, status: "waiting", next_at: 0, problem: null }));
  changed();
  kick();
}

// The phone is back online: what waited for a signal goes now.
export async function resume() {
  for (const item of await items()) {
    if (item.status === "waiting" && item.next_at) await db.update("outbox", item.seq, (i) => ({ ...i, next_at: 0 }));
  }
  kick();
}

export async function settle(seq) {
  await db.update("outbox", seq, (i) => ({ ...i, status: "sent", sent_at: Date.now(), problem: null }));
  changed();
}

let running = false;
let again = false;
let retryTimer;
let signedOut = false;
export function isSignedOut() { return signedOut; }

export function kick() {
  if (running) { again = true; return; }
  running = true;
  const pass = () => run();
  (navigator.locks ? navigator.locks.request("coassess-outbox", pass) : pass())
    .catch(() => {})
    .finally(() => {
      running = false;
      if (again) { again = false; kick(); }
    });
}

async function run() {
  for (;;) {
    const now = Date.now();
    const held = new Set();
    let next = null;
    let soonest = Infinity;
    for (const item of await items()) {
      if (item.status === "sent" || held.has(item.visit_id)) continue;
      if (item.status === "problem") { held.add(item.visit_id); continue; }
      if (item.next_at > now) { soonest = Math.min(soonest, item.next_at); held.add(item.visit_id); continue; }
      next = item;
      break;
    }
    if (!next) {
      clearTimeout(retryTimer);
      if (soonest < Infinity) retryTimer = setTimeout(kick, soonest - now);
      return;
    }
    if (!navigator.onLine) return; // the "online" event starts again (resume)
    let outcome;
    try {
      outcome = await send(next);
      signedOut = false;
    } catch (e) {
      if (e instanceof SignedOut) { signedOut = true; changed(); return; }
      outcome = { retry: 0, network: true };
    }
    await db.update("outbox", next.seq, (i) => {
      if (outcome.sent) return { ...i, status: "sent", sent_at: Date.now(), problem: null };
      if (outcome.problem) return { ...i, status: "problem", problem: outcome.problem };
      // Backoff: 1 s, 2 s, 4 s ... at most 5 min, with jitter; or what Retry-After says.
      // No signal: at most 30 s apart, and at once when the phone says it is back online.
      const cap = outcome.network ? 30_000 : 300_000;
      const backoff = Math.min(cap, 1000 * 2 ** i.attempts) * (0.5 + Math.random());
      return { ...i, attempts: i.attempts + 1, next_at: Date.now() + Math.max(backoff, outcome.retry * 1000) };
    });
    changed();
  }
}

function verdict(p, kind) {
  if (p.status === 408 || p.status === 425 || p.status === 429 || p.status >= 500) return { retry: p.retry_after };
  if (p.status === 412 || p.status === 428) return { problem: { ...p, why: "stale" } };
  if (p.status === 409 && p.type === "one-submission-per-inspector") return { problem: { ...p, why: "other-device" } };
  return { problem: { ...p, why: p.status === 409 ? "conflict" : "refused", kind } };
}

export function answerList(draft) {
  return Object.entries(draft.answers).map(([key, a]) => {
    const out = { question_key: key };
    if (a.na) out.na = true; else if (a.value !== undefined && a.value !== null && a.value !== "") out.value = a.value;
    if (a.comment) out.comment = a.comment;
    return out;
  }).filter((a) => a.na || a.value !== undefined || a.comment);
}

async function send(item) {
  if (item.kind === "draft" || item.kind === "final") return sendAnswers(item);
  if (item.kind === "photo") return sendPhoto(item);
  if (item.kind === "finding") return sendFinding(item);
  return { sent: true };
}

async function sendAnswers(item) {
  const d = await db.get("drafts", item.visit_id);
  const final = item.kind === "final";
  if (!final && d.finalised) return { sent: true }; // the final one carries these answers
  const body = {
    state: final ? "final" : "draft",
    answers: answerList(d),
    started_at: d.started_at,
    updated_at: d.updated_at,
    device: current()?.device ?? null,
  };
  const headers = { "content-type": "application/json" };
  if (d.etag) headers["if-match"] = d.etag;
  const r = await request(`/v1/visits/${item.visit_id}/submissions/${d.submission_id}`, {
    method: "PUT", headers, body: JSON.stringify(body),
  });
  if (r.ok) {
    const etag = r.headers.get("etag");
    const fresh = await db.update("drafts", item.visit_id, (x) => ({ ...x, etag, sent_state: body.state }));
    // Answers given while this was on its way go in another draft.
    if (!final && fresh.updated_at !== body.updated_at) {
      await db.put("outbox", { status: "waiting", attempts: 0, next_at: 0, made_at: Date.now(), kind: "draft", visit_id: item.visit_id });
    }
    return { sent: true };
  }
  return verdict(await problemOf(r), item.kind);
}

async function sendPhoto(item) {
  const p = await db.get("photos", item.ref);
  const d = await db.get("drafts", p.visit_id);
  const meta = { evidence_id: p.id, visit_id: p.visit_id, taken_at: p.taken_at };
  if (p.question_key) Object.assign(meta, { question_key: p.question_key, submission_id: d?.submission_id });
  if (p.caption) meta.caption = p.caption;
  if (p.lat != null) Object.assign(meta, { lat: p.lat, lon: p.lon, accuracy_m: p.accuracy_m });
  const form = new FormData();
  form.append("metadata", new Blob([JSON.stringify(meta)], { type: "application/json" }));
  form.append("file", p.blob, p.name || "photo.jpg");
  const r = await request("/v1/evidence", { method: "POST", body: form });
  if (r.ok) {
    const evidence = await r.json();
    await db.update("photos", p.id, (x) => ({ ...x, sent: true, evidence }));
    watch(p.id);
    return { sent: true };
  }
  return verdict(await problemOf(r), "photo");
}

async function sendFinding(item) {
  const f = await db.get("findings", item.ref);
  const r = await request(`/v1/visits/${f.visit_id}/findings/${f.id}`, {
    method: "PUT", headers: { "content-type": "application/json" }, body: JSON.stringify(f.body),
  });
  if (r.ok) {
    await db.update("findings", f.id, (x) => ({ ...x, sent: true }));
    return { sent: true };
  }
  return verdict(await problemOf(r), "finding");
}

// After an upload, ask how the photo was judged (on site? in the visit's time?) until it
// is processed; the answer is shown in words on the photos screen.
const watching = new Set();
export async function watch(id, wait = 1000) {
  if (watching.has(id)) return;
  watching.add(id);
  try {
    for (;;) {
      await new Promise((resolve) => setTimeout(resolve, wait)); // between polls of a condition
      wait = Math.min(wait * 2, 30_000);
      if (!navigator.onLine) continue;
      try {
        const r = await request(`/v1/evidence/${id}`);
        if (!r.ok) continue;
        const evidence = await r.json();
        await db.update("photos", id, (x) => ({ ...x, evidence }));
        changed();
        if (evidence.status !== "processing" && evidence.status !== "uploading") return;
      } catch (e) {
        if (e instanceof SignedOut) return;
      }
    }
  } finally {
    watching.delete(id);
  }
}

export async function watchAll() {
  for (const p of await db.all("photos")) {
    if (p.sent && (!p.evidence || p.evidence.status === "processing")) watch(p.id, 0);
  }
}
