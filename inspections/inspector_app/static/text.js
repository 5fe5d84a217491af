// All the words the app shows come from one catalogue (text/en.json), so a Welsh or an
// easy-read catalogue is a new file, not a code change.
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
