// The outbox: everything made on the phone waits here until the server has it. Items go
// in the order they were made (per visit: a problem with one visit holds only that
// visit's later items), each exactly once: ids are made on the phone and the API's PUTs
// and uploads are idempotent, so a retry after a lost answer changes nothing.
import * as api from "./api.js";
import * as db from "./db.js";

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
let timer;
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
      clearTimeout(timer);
      if (soonest < Infinity) timer = setTimeout(kick, soonest - now);
      return;
    }
    if (!navigator.onLine) return; // the "online" event starts again (resume)
    let outcome;
    try {
      outcome = await send(next);
      signedOut = false;
    } catch (e) {
      if (e instanceof api.SignedOut) { signedOut = true; changed(); return; }
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
    device: api.current()?.device ?? null,
  };
  const headers = { "content-type": "application/json" };
  if (d.etag) headers["if-match"] = d.etag;
  const r = await api.request(`/v1/visits/${item.visit_id}/submissions/${d.submission_id}`, {
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
  return verdict(await api.problemOf(r), item.kind);
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
  const r = await api.request("/v1/evidence", { method: "POST", body: form });
  if (r.ok) {
    const evidence = await r.json();
    await db.update("photos", p.id, (x) => ({ ...x, sent: true, evidence }));
    watch(p.id);
    return { sent: true };
  }
  return verdict(await api.problemOf(r), "photo");
}

async function sendFinding(item) {
  const f = await db.get("findings", item.ref);
  const r = await api.request(`/v1/visits/${f.visit_id}/findings/${f.id}`, {
    method: "PUT", headers: { "content-type": "application/json" }, body: JSON.stringify(f.body),
  });
  if (r.ok) {
    await db.update("findings", f.id, (x) => ({ ...x, sent: true }));
    return { sent: true };
  }
  return verdict(await api.problemOf(r), "finding");
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
        const r = await api.request(`/v1/evidence/${id}`);
        if (!r.ok) continue;
        const evidence = await r.json();
        await db.update("photos", id, (x) => ({ ...x, evidence }));
        changed();
        if (evidence.status !== "processing" && evidence.status !== "uploading") return;
      } catch (e) {
        if (e instanceof api.SignedOut) return;
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
