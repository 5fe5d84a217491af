// The public JSON API with this phone's sign-in: a short access token, renewed before it
// expires and after a 401 (also when the phone comes back online after it expired), from
// a rotating refresh token kept in IndexedDB. One renewal at a time, across tabs too: a
// refresh token used twice signs the device out.
import * as db from "./db.js";

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

let timer;
function plan() {
  clearTimeout(timer);
  if (!session?.refresh_token) return;
  const due = session.expires_at - margin(session) - Date.now();
  // Renewed ahead of time while online; offline, the next request renews instead.
  timer = setTimeout(() => { if (navigator.onLine) renew(session.access_token).catch(() => {}); }, Math.max(due, 1000));
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
  clearTimeout(timer);
  session = null;
  await db.clear();
}

export function start() {
  plan();
}
