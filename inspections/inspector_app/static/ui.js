// Small pieces the screens share: the words (from one catalogue), building elements,
// dates in words, the checklist's rules. One module, so the first load asks for few files.

let words = {};

export async function load(lang = "en") {
  const r = await fetch(`/app/text/${lang}.json`);
  words = await r.json();
}

// t("visits.count", {n: 3}): "{n}" in the text is replaced by the value.
export function t(key, vars = {}) {
  const text = words[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => String(vars[name] ?? ""));
}

// A choice by count: key.one / key.other.
export function tn(key, n, vars = {}) {
  return t(`${key}.${n === 1 ? "one" : "other"}`, { n, ...vars });
}

// h("p", {class: "x"}, "text", child): an element. Text is always text (never parsed as
// HTML), so nothing from the server or a person can inject markup.
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === false || value === null || value === undefined) continue;
    if (name === "checked" || name === "value" || name === "disabled" || name === "open" || name === "hidden") el[name] = value;
    else el.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

const day = new Intl.DateTimeFormat("en-GB", { weekday: "long", day: "numeric", month: "long" });
const clock = new Intl.DateTimeFormat("en-GB", { hour: "2-digit", minute: "2-digit" });

export function time(ms) {
  return clock.format(new Date(ms));
}

export function range(starts, ends) {
  const a = new Date(starts);
  const b = new Date(ends);
  return t("visit.when", { day: day.format(a), from: clock.format(a), to: clock.format(b) });
}

export function questionsOf(bundle) {
  return bundle.checklist.content.sections.flatMap((s) => s.questions);
}

export function isAnswered(a) {
  if (!a) return false;
  if (a.na) return true;
  return a.value !== null && a.value !== undefined && a.value !== "" && !(Array.isArray(a.value) && !a.value.length);
}

const PASS_FAIL = { pass: 2, qualified_pass: 1, fail: 0 };

// The checklist's evidence rule, as the server applies it when the answers go final.
function points(q, value) {
  if (q.type === "rating") return Number(value);
  if (q.type === "pass_fail") return PASS_FAIL[value];
  if (q.type === "yes_no") return value === (q.good_answer ?? true) ? 2 : 0;
  return null;
}

export function needsPhoto(q, a) {
  const rule = q.evidence;
  if (!rule || !a || a.na || a.value === null || a.value === undefined) return false;
  if ((rule.when ?? "always") === "always") return true;
  const earned = points(q, a.value);
  return earned !== null && earned !== undefined && rule.points !== null && earned <= rule.points;
}

// What happened to a photo, in words.
export function photoWords(p) {
  if (!p.sent) return [{ kind: "hint", text: t("photos.waiting") }];
  const e = p.evidence;
  if (!e || e.status === "processing" || e.status === "uploading") return [{ kind: "hint", text: t("photos.checking") }];
  if (e.status === "rejected") return [{ kind: "warn", text: t("photos.rejected", { reason: e.rejected_reason ?? "" }) }];
  const out = [];
  const check = e.location?.check;
  if (check === "on_site") out.push({ kind: "ready", text: t("photos.on_site") });
  else if (check === "off_site") out.push({ kind: "warn", text: t("photos.off_site", { m: Math.round(e.location.distance_m ?? 0) }) });
  else out.push({ kind: "hint", text: t("photos.unverified") });
  if (e.time_check === "in_window") out.push({ kind: "ready", text: t("photos.in_window") });
  else if (e.time_check === "outside_window") out.push({ kind: "warn", text: t("photos.outside_window") });
  else out.push({ kind: "hint", text: t("photos.time_unknown") });
  return out;
}
