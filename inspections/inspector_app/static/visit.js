// The screens of one visit (inspect, photos, findings, review) and the Sending screen.
// Loaded when first needed, so the first load (sign-in, my visits) asks for less; the
// service worker has it cached for offline use like every other file.
import * as db from "./db.js";
import * as net from "./net.js";
import { h, time, range, questionsOf, isAnswered, needsPhoto, photoWords, t, tn } from "./ui.js";
import { back, fromServer, go, heading, notFoundScreen, render, state } from "./app.js";

const api = net;
const outbox = net;

// ------------------------------------------------------------------ one visit

async function loadVisit(id) {
  const kept = await db.get("bundles", id);
  const draft = await db.get("drafts", id);
  return kept && draft ? { bundle: kept.bundle, draft } : null;
}

function missing() {
  return [heading(t("visit.missing")), h("p", {}, h("a", { href: "/app/" }, t("visits.title")))];
}

function easyReadSwitch() {
  const box = h("input", { type: "checkbox", id: "easy-read", checked: state.settings.easy_read });
  box.addEventListener("change", async () => {
    state.settings = { ...state.settings, easy_read: box.checked };
    await db.put("kv", state.settings, "settings");
    render(false);
    document.getElementById("easy-read")?.focus();
  });
  return h("p", { class: "switch" }, box, h("label", { for: "easy-read" }, t("visit.easy_read")));
}

async function problemsFor(visitId) {
  return (await outbox.items()).filter((i) => i.visit_id === visitId && i.status === "problem");
}

export async function visitScreen(id) {
  const v = await loadVisit(id);
  if (!v) return missing();
  const { bundle, draft } = v;
  const sections = bundle.checklist.content.sections;
  const all = questionsOf(bundle);
  const done = all.filter((q) => isAnswered(draft.answers[q.key])).length;
  const photos = (await db.all("photos")).filter((p) => p.visit_id === id).sort((a, b) => a.made_at - b.made_at);
  const findings = (await db.all("findings")).filter((f) => f.visit_id === id);
  const problems = await problemsFor(id);
  return [
    back("/app/", t("visits.title")),
    heading(bundle.service.name),
    h("p", {}, range(bundle.visit.starts_at, bundle.visit.ends_at)),
    bundle.service.address ? h("p", {}, bundle.service.address) : null,
    h("p", {}, t("visits.team"), " ", bundle.team.map((m) => `${m.display_name} (${t("perspective." + m.perspective)})`).join(", ")),
    problems.length ? h("div", { class: "error-box", role: "alert" }, h("p", {}, tn("visit.problems", problems.length), " ", h("a", { href: "/app/outbox" }, t("visit.see_problems")))) : null,
    draft.finalised ? h("p", { class: "ready" }, draft.sent_state === "final" ? t("visit.final_sent") : t("visit.final_waiting")) : null,
    progress(done, all.length),
    easyReadSwitch(),
    h("h2", {}, bundle.checklist.title),
    h("ol", { class: "sections" }, ...sections.map((s, n) => {
      const qs = s.questions;
      const answered = qs.filter((q) => isAnswered(draft.answers[q.key])).length;
      return h("li", {}, h("a", { href: `/app/visits/${id}/sections/${n + 1}` }, s.title), " ",
        h("span", { class: answered === qs.length ? "ready" : "hint" }, t("visit.section_progress", { done: answered, total: qs.length })));
    })),
    h("h2", {}, t("visit.more")),
    h("ul", { class: "links" },
      h("li", {}, h("a", { href: `/app/visits/${id}/photos` }, t("photos.title")), " ", h("span", { class: "hint" }, tn("visit.photos", photos.length))),
      h("li", {}, h("a", { href: `/app/visits/${id}/findings` }, t("findings.title")), " ", h("span", { class: "hint" }, tn("visit.findings", findings.length))),
      h("li", {}, h("a", { href: `/app/visits/${id}/concern` }, t("concern.title"))),
      h("li", {}, h("a", { class: "button primary", href: `/app/visits/${id}/review` }, t("review.title"))),
    ),
  ];
}

function progress(done, total) {
  return h("div", { class: "progress" },
    h("label", { for: "progress" }, t("visit.progress", { done, total })),
    h("progress", { id: "progress", max: total, value: done }, `${done}/${total}`),
  );
}

// ------------------------------------------------------------------ inspect: one section

async function saveAnswer(visitId, key, change) {
  const now = new Date().toISOString();
  await db.update("drafts", visitId, (d) => {
    const answers = { ...d.answers, [key]: change({ value: null, na: false, comment: "", ...(d.answers[key] ?? {}) }) };
    return { ...d, answers, updated_at: now, started_at: d.started_at ?? now };
  });
  await outbox.addDraft(visitId);
}

export async function sectionScreen(id, number) {
  const v = await loadVisit(id);
  if (!v) return missing();
  const { bundle, draft } = v;
  const sections = bundle.checklist.content.sections;
  const n = Number(number);
  const section = sections[n - 1];
  if (!section) return notFoundScreen();
  const all = questionsOf(bundle);
  const photos = (await db.all("photos")).filter((p) => p.visit_id === id).sort((a, b) => a.made_at - b.made_at);
  const counter = h("label", { for: "progress" });
  const bar = h("progress", { id: "progress", max: all.length });
  const answers = { ...draft.answers };
  const refresh = () => {
    const done = all.filter((q) => isAnswered(answers[q.key])).length;
    counter.textContent = t("visit.progress", { done, total: all.length });
    bar.value = done;
    bar.textContent = `${done}/${all.length}`;
  };
  refresh();
  const locked = Boolean(draft.finalised);
  const questions = section.questions.map((q, i) => questionBlock(id, q, i, answers, photos, locked, refresh));
  const nav = h("nav", { class: "pager", "aria-label": t("section.pages") },
    n > 1 ? h("a", { class: "button", href: `/app/visits/${id}/sections/${n - 1}` }, t("section.previous")) : null,
    n < sections.length
      ? h("a", { class: "button primary", href: `/app/visits/${id}/sections/${n + 1}` }, t("section.next"))
      : h("a", { class: "button primary", href: `/app/visits/${id}/review` }, t("review.title")),
  );
  return [
    back(`/app/visits/${id}`, bundle.service.name),
    heading(section.title),
    h("p", { class: "hint" }, t("section.of", { n, total: sections.length })),
    h("div", { class: "progress" }, counter, bar),
    easyReadSwitch(),
    locked ? h("p", { class: "notice" }, t("section.locked")) : null,
    h("p", { class: "hint" }, t("section.saved")),
    ...questions,
    nav,
  ];
}

function questionBlock(visitId, q, index, answers, photos, locked, refresh) {
  const qid = `q-${q.key}`;
  const a = () => answers[q.key] ?? { value: null, na: false, comment: "" };
  const prompt = state.settings.easy_read && q.easy_read ? q.easy_read : q.prompt;
  const mine = photos.filter((p) => p.question_key === q.key);
  const photoNote = h("p", { class: "hint", "aria-live": "polite" });
  const showPhotoNeed = () => {
    const need = needsPhoto(q, a()) && !mine.length;
    photoNote.textContent = need ? t("question.photo_needed") : (mine.length ? tn("question.photos", mine.length) : "");
    photoNote.className = need ? "warn" : "hint";
  };
  const save = async (change) => {
    answers[q.key] = change(a());
    refresh();
    showPhotoNeed();
    await saveAnswer(visitId, q.key, change);
  };
  const na = q.allow_na ? h("input", { type: "checkbox", id: `${qid}-na`, checked: Boolean(a().na), disabled: locked }) : null;
  const control = answerControl(q, qid, a(), locked, async (value) => {
    if (na) na.checked = false;
    await save((x) => ({ ...x, value, na: false }));
  });
  na?.addEventListener("change", async () => {
    if (na.checked) clearControl(control);
    await save((x) => ({ ...x, na: na.checked, value: na.checked ? null : x.value }));
  });
  const comment = h("textarea", { id: `${qid}-comment`, rows: 2, maxlength: 4000, disabled: locked }, a().comment ?? "");
  comment.addEventListener("input", () => save((x) => ({ ...x, comment: comment.value })));
  const file = h("input", { type: "file", id: `${qid}-photo`, accept: "image/*", capture: "environment", disabled: locked });
  file.addEventListener("change", async () => {
    const f = file.files[0];
    if (!f) return;
    photoNote.textContent = t("photos.locating");
    const p = await addPhoto(visitId, f, { question_key: q.key });
    mine.push(p);
    file.value = "";
    showPhotoNeed();
  });
  showPhotoNeed();
  const help = q.help ? h("details", { class: "help" }, h("summary", {}, t("question.help")), h("p", {}, q.help)) : null;
  const required = q.required ? null : h("span", { class: "hint" }, " ", t("question.optional"));
  return h("section", { class: "question", id: qid, "aria-labelledby": `${qid}-title` },
    h("h2", { id: `${qid}-title` }, h("span", { class: "qn" }, `${index + 1}. `), prompt, required),
    help,
    control.node,
    na ? h("p", { class: "switch" }, na, h("label", { for: `${qid}-na` }, t("question.na"))) : null,
    h("details", { class: "comment", open: Boolean(a().comment) },
      h("summary", {}, t("question.comment")),
      h("label", { for: `${qid}-comment` }, t("question.comment_label")),
      comment),
    h("p", { class: "photo" }, h("label", { for: `${qid}-photo` }, t("question.photo")), file),
    photoNote,
  );
}

function clearControl(control) {
  for (const input of control.node.querySelectorAll("input")) {
    if (input.type === "radio" || input.type === "checkbox") input.checked = false; else input.value = "";
  }
  for (const input of control.node.querySelectorAll("textarea")) input.value = "";
}

// One control per question type of the contract.
function answerControl(q, qid, answer, locked, onValue) {
  const value = answer.value;
  const legend = t("question.answer");
  const radios = (options) => {
    const node = h("fieldset", { class: "options" }, h("legend", {}, legend),
      ...options.map(([v, label], i) => {
        const input = h("input", { type: "radio", name: qid, id: `${qid}-${i}`, checked: value === v, disabled: locked });
        input.addEventListener("change", () => input.checked && onValue(v));
        return h("div", { class: "option" }, input, h("label", { for: `${qid}-${i}` }, label));
      }));
    node.setAttribute("aria-describedby", `${qid}-title`);
    return { node };
  };
  switch (q.type) {
    case "rating":
      return radios(q.labels.map((label, i) => [i + 1, `${i + 1} · ${label}`]));
    case "pass_fail":
      return radios([["pass", t("answer.pass")], ["qualified_pass", t("answer.qualified_pass")], ["fail", t("answer.fail")]]);
    case "yes_no":
      return radios([[true, t("answer.yes")], [false, t("answer.no")]]);
    case "choice": {
      if (!q.multiple) return radios(q.options.map((o) => [o.value, o.label]));
      const chosen = new Set(Array.isArray(value) ? value : []);
      const node = h("fieldset", { class: "options" }, h("legend", {}, t("question.choose_any")),
        ...q.options.map((o, i) => {
          const input = h("input", { type: "checkbox", id: `${qid}-${i}`, checked: chosen.has(o.value), disabled: locked });
          input.addEventListener("change", () => {
            if (input.checked) chosen.add(o.value); else chosen.delete(o.value);
            onValue(chosen.size ? q.options.map((x) => x.value).filter((x) => chosen.has(x)) : null);
          });
          return h("div", { class: "option" }, input, h("label", { for: `${qid}-${i}` }, o.label));
        }));
      node.setAttribute("aria-describedby", `${qid}-title`);
      return { node };
    }
    case "number": {
      const input = h("input", { type: "number", id: `${qid}-value`, inputmode: "decimal", step: "any", disabled: locked, value: value ?? "" });
      if (q.min != null) input.min = q.min;
      if (q.max != null) input.max = q.max;
      const err = h("p", { class: "warn", id: `${qid}-err`, "aria-live": "polite" });
      input.addEventListener("input", () => {
        const n = input.value === "" ? null : Number(input.value);
        const bad = n !== null && (Number.isNaN(n) || (q.min != null && n < q.min) || (q.max != null && n > q.max));
        err.textContent = bad ? t("question.number_range", { min: q.min ?? "–", max: q.max ?? "–" }) : "";
        input.setAttribute("aria-invalid", String(bad));
        if (!bad) onValue(n);
      });
      input.setAttribute("aria-describedby", `${qid}-err`);
      const label = h("label", { for: `${qid}-value` }, q.unit ? t("question.number_unit", { unit: q.unit }) : t("question.number"));
      return { node: h("div", { class: "field" }, label, input, err) };
    }
    case "text": {
      const input = h("textarea", { id: `${qid}-value`, rows: 4, maxlength: q.max_length ?? 2000, disabled: locked }, value ?? "");
      input.addEventListener("input", () => onValue(input.value || null));
      return { node: h("div", { class: "field" }, h("label", { for: `${qid}-value` }, t("question.your_answer")), input) };
    }
    default:
      return { node: h("p", {}, t("question.unknown")) };
  }
}

// ------------------------------------------------------------------ photos

function where() {
  return new Promise((resolve) => {
    if (!navigator.geolocation) return resolve(null);
    navigator.geolocation.getCurrentPosition(
      (pos) => resolve({ lat: pos.coords.latitude, lon: pos.coords.longitude, accuracy_m: Math.round(pos.coords.accuracy) }),
      () => resolve(null),
      { enableHighAccuracy: true, timeout: 15_000, maximumAge: 60_000 },
    );
  });
}

async function addPhoto(visitId, file, extra = {}) {
  // The phone's own fix goes with the photo: phone browsers often strip GPS from photos.
  const fix = await where();
  const photo = {
    id: crypto.randomUUID(), visit_id: visitId, blob: file, name: file.name || "photo.jpg",
    taken_at: new Date(file.lastModified || Date.now()).toISOString(),
    lat: fix?.lat ?? null, lon: fix?.lon ?? null, accuracy_m: fix?.accuracy_m ?? null,
    made_at: Date.now(), sent: false, evidence: null, ...extra,
  };
  await db.put("photos", photo);
  await outbox.add({ kind: "photo", visit_id: visitId, ref: photo.id });
  return photo;
}

export async function photosScreen(id) {
  const v = await loadVisit(id);
  if (!v) return missing();
  const photos = (await db.all("photos")).filter((p) => p.visit_id === id).sort((a, b) => a.made_at - b.made_at);
  const questions = Object.fromEntries(questionsOf(v.bundle).map((q) => [q.key, q.prompt]));
  const caption = h("input", { id: "caption", maxlength: 1000 });
  const file = h("input", { type: "file", id: "photo", accept: "image/*", capture: "environment" });
  const said = h("p", { role: "status", class: "hint" });
  file.addEventListener("change", async () => {
    const f = file.files[0];
    if (!f) return;
    said.textContent = t("photos.locating");
    const p = await addPhoto(id, f, caption.value ? { caption: caption.value } : {});
    // Said on the redrawn screen, which lists the new photo.
    state.flash = p.lat == null ? t("photos.saved_no_location") : t("photos.saved", { m: p.accuracy_m });
    await render(false);
  });
  return [
    back(`/app/visits/${id}`, v.bundle.service.name),
    heading(t("photos.title")),
    h("p", {}, t("photos.intro")),
    h("p", {}, h("label", { for: "caption" }, t("photos.caption")), caption),
    h("p", { class: "photo" }, h("label", { for: "photo" }, t("photos.add")), file),
    said,
    photos.length ? h("ul", { class: "photos" }, ...photos.map((p, i) => photoItem(p, i, questions))) : h("p", {}, t("photos.none")),
  ];
}

function photoItem(p, i, questions) {
  const url = URL.createObjectURL(p.blob);
  const label = p.caption || (p.question_key ? t("photos.for_question", { q: questions[p.question_key] ?? p.question_key }) : t("photos.for_visit"));
  const words = photoWords(p);
  return h("li", { class: "card" },
    h("img", { src: url, alt: t("photos.alt", { n: i + 1 }), width: 96, height: 96 }),
    h("div", {},
      h("p", {}, h("strong", {}, label)),
      h("p", {}, p.lat == null ? t("photos.no_location") : t("photos.location", { m: p.accuracy_m })),
      ...words.map((w) => h("p", { class: w.kind }, w.text))),
  );
}

// ------------------------------------------------------------------ findings

export async function findingsScreen(id) {
  const v = await loadVisit(id);
  if (!v) return missing();
  const findings = (await db.all("findings")).filter((f) => f.visit_id === id).sort((a, b) => a.made_at - b.made_at);
  return [
    back(`/app/visits/${id}`, v.bundle.service.name),
    heading(t("findings.title")),
    h("p", {}, t("findings.intro")),
    h("ul", { class: "links" },
      h("li", {}, h("a", { class: "button", href: `/app/visits/${id}/findings/new/good` }, t("findings.new_good"))),
      h("li", {}, h("a", { class: "button", href: `/app/visits/${id}/findings/new/recommendation` }, t("findings.new_recommendation"))),
      h("li", {}, h("a", { class: "button danger", href: `/app/visits/${id}/concern` }, t("concern.title"))),
    ),
    h("h2", {}, t("findings.yours")),
    findings.length
      ? h("ul", { class: "cards" }, ...findings.map((f) => h("li", { class: "card" },
        h("p", {}, h("strong", {}, t("findings.kind." + f.kind)), " ", f.body.title),
        h("p", { class: f.sent ? "ready" : "hint" }, f.sent ? t("findings.sent") : t("findings.waiting")))))
      : h("p", {}, t("findings.none")),
  ];
}

function findingForm(id, bundle, photos, kind, onSaved) {
  const error = h("div", { class: "error-box", role: "alert", hidden: true, tabindex: "-1" });
  const title = h("input", { id: "f-title", required: true, maxlength: 200 });
  const description = h("textarea", { id: "f-description", rows: 4, maxlength: 5000 });
  const recommendation = h("textarea", { id: "f-recommendation", rows: 3, maxlength: 5000 });
  const serious = h("fieldset", { class: "options" }, h("legend", {}, t("findings.how_serious")),
    h("div", { class: "option" }, h("input", { type: "radio", name: "severity", id: "sev-minor", value: "minor", checked: true }), h("label", { for: "sev-minor" }, t("findings.minor"))),
    h("div", { class: "option" }, h("input", { type: "radio", name: "severity", id: "sev-major", value: "major" }), h("label", { for: "sev-major" }, t("findings.major"))));
  const question = h("select", { id: "f-question" }, h("option", { value: "" }, t("findings.no_question")),
    ...questionsOf(bundle).map((q) => h("option", { value: q.key }, q.prompt)));
  const chosen = photos.map((p, i) => ({ p, box: h("input", { type: "checkbox", id: `f-photo-${i}`, value: p.id }) }));
  const file = h("input", { type: "file", id: "f-new-photo", accept: "image/*", capture: "environment" });
  const fields = [
    h("p", {}, h("label", { for: "f-title" }, t(kind === "concern" ? "concern.what" : "findings.finding_title")), title),
    h("p", {}, h("label", { for: "f-description" }, t(kind === "concern" ? "concern.details" : "findings.description")), description),
  ];
  if (kind === "recommendation") {
    fields.push(h("p", {}, h("label", { for: "f-recommendation" }, t("findings.recommendation")), recommendation), serious);
  }
  if (kind !== "concern") fields.push(h("p", {}, h("label", { for: "f-question" }, t("findings.question")), question));
  if (chosen.length) {
    fields.push(h("fieldset", { class: "options" }, h("legend", {}, t("findings.photos")),
      ...chosen.map(({ p, box }, i) => h("div", { class: "option" }, box, h("label", { for: box.id }, p.caption || t("photos.alt", { n: i + 1 }))))));
  }
  fields.push(h("p", { class: "photo" }, h("label", { for: "f-new-photo" }, t("findings.add_photo")), file));
  const submit = h("button", { type: "submit", class: kind === "concern" ? "danger" : "primary" }, t(kind === "concern" ? "concern.button" : "findings.save"));
  const form = h("form", { class: "stack", novalidate: true }, error, ...fields, submit);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const problems = [];
    if (!title.value.trim()) problems.push(t(kind === "concern" ? "concern.what_missing" : "findings.title_missing"));
    if (kind === "recommendation" && !recommendation.value.trim()) problems.push(t("findings.recommendation_missing"));
    if (problems.length) {
      error.replaceChildren(h("p", {}, problems.join(" ")));
      error.hidden = false;
      error.focus();
      return;
    }
    submit.disabled = true;
    const evidence = chosen.filter((c) => c.box.checked).map((c) => c.p.id);
    if (file.files[0]) evidence.push((await addPhoto(id, file.files[0])).id);
    const q = questionsOf(bundle).find((x) => x.key === question.value);
    const body = {
      title: title.value.trim(),
      description: description.value.trim(),
      severity: kind === "good" ? "positive" : kind === "concern" ? "safeguarding" : form.querySelector("input[name=severity]:checked").value,
      question_keys: q ? [q.key] : [],
      evidence_ids: evidence,
    };
    if (q) body.domain = q.domain;
    if (kind === "recommendation") body.recommendation = recommendation.value.trim();
    const finding = { id: crypto.randomUUID(), visit_id: id, kind, body, made_at: Date.now(), sent: false };
    await db.put("findings", finding);
    await outbox.add({ kind: "finding", visit_id: id, ref: finding.id });
    onSaved(finding);
  });
  return form;
}

export async function findingFormScreen(id, kind) {
  const v = await loadVisit(id);
  if (!v) return missing();
  const photos = (await db.all("photos")).filter((p) => p.visit_id === id).sort((a, b) => a.made_at - b.made_at);
  return [
    back(`/app/visits/${id}/findings`, t("findings.title")),
    heading(t(`findings.new_${kind}`)),
    h("p", {}, t(`findings.about_${kind}`)),
    findingForm(id, v.bundle, photos, kind, () => {
      state.flash = t("findings.saved");
      go(`/app/visits/${id}/findings`);
    }),
  ];
}

export async function concernScreen(id) {
  const v = await loadVisit(id);
  if (!v) return missing();
  const photos = (await db.all("photos")).filter((p) => p.visit_id === id).sort((a, b) => a.made_at - b.made_at);
  const form = findingForm(id, v.bundle, photos, "concern", () => {
    state.flash = t("concern.saved");
    go(`/app/visits/${id}`);
  });
  return [
    back(`/app/visits/${id}`, v.bundle.service.name),
    heading(t("concern.title")),
    h("p", { class: "error-box" }, t("concern.danger")),
    h("h2", {}, t("concern.told_title")),
    h("p", {}, t("concern.told")),
    h("h2", {}, t("concern.not_see_title")),
    h("p", {}, t("concern.not_see")),
    h("p", {}, t("concern.offline")),
    form,
  ];
}

// ------------------------------------------------------------------ review and send

export async function reviewScreen(id) {
  const v = await loadVisit(id);
  if (!v) return missing();
  const { bundle, draft } = v;
  const photos = (await db.all("photos")).filter((p) => p.visit_id === id).sort((a, b) => a.made_at - b.made_at);
  const sections = bundle.checklist.content.sections;
  const link = (q) => {
    const n = sections.findIndex((s) => s.questions.includes(q)) + 1;
    return h("a", { href: `/app/visits/${id}/sections/${n}#q-${q.key}` }, q.prompt);
  };
  const all = questionsOf(bundle);
  const unanswered = all.filter((q) => q.required && !isAnswered(draft.answers[q.key]));
  const optional = all.filter((q) => !q.required && !isAnswered(draft.answers[q.key]));
  const needPhoto = all.filter((q) => needsPhoto(q, draft.answers[q.key] ?? {}) && !photos.some((p) => p.question_key === q.key));
  const ready = !unanswered.length && !needPhoto.length;
  const waiting = (await outbox.items()).filter((i) => i.visit_id === id && i.status !== "sent").length;
  const nodes = [
    back(`/app/visits/${id}`, bundle.service.name),
    heading(t("review.title")),
    progress(all.filter((q) => isAnswered(draft.answers[q.key])).length, all.length),
  ];
  if (draft.finalised) {
    nodes.push(h("p", { class: "ready", role: "status" }, draft.sent_state === "final" && !waiting ? t("review.all_sent") : tn("review.final_waiting", waiting)),
      h("p", {}, h("a", { href: "/app/outbox" }, t("outbox.title"))));
    return nodes;
  }
  nodes.push(h("h2", {}, t("review.unanswered")),
    unanswered.length ? h("ul", {}, ...unanswered.map((q) => h("li", {}, link(q)))) : h("p", { class: "ready" }, t("review.all_answered")));
  if (optional.length) nodes.push(h("p", { class: "hint" }, tn("review.optional", optional.length)));
  nodes.push(h("h2", {}, t("review.photos")),
    needPhoto.length ? h("ul", {}, ...needPhoto.map((q) => h("li", {}, link(q), " ", h("span", { class: "warn" }, t("question.photo_needed"))))) : h("p", { class: "ready" }, t("review.photos_ok")));
  const button = h("button", { type: "button", class: "primary", disabled: !ready }, t("review.finalise"));
  button.addEventListener("click", async () => {
    button.disabled = true;
    await db.update("drafts", id, (d) => ({ ...d, finalised: true, updated_at: d.updated_at ?? new Date().toISOString() }));
    await outbox.add({ kind: "final", visit_id: id });
    await render(true);
  });
  nodes.push(h("h2", {}, t("review.send")),
    h("p", {}, ready ? t("review.final_what") : t("review.not_ready")),
    h("p", {}, button),
    h("p", { class: "hint" }, t("review.offline")));
  return nodes;
}

// ------------------------------------------------------------------ outbox

function describe(item, names, drafts, photos, findings) {
  const visit = names[item.visit_id] ?? "";
  switch (item.kind) {
    case "draft": return t("outbox.draft", { visit });
    case "final": return t("outbox.final", { visit });
    case "photo": return t("outbox.photo", { visit, caption: photos[item.ref]?.caption ?? "" });
    case "finding": return t("outbox.finding", { visit, title: findings[item.ref]?.body.title ?? "" });
    default: return item.kind;
  }
}

async function resolve(item, choice) {
  const r = await api.request("/v1/me/visits?limit=100");
  const mine = r.ok ? (await r.json()).items.find((x) => x.id === item.visit_id) : null;
  const d = await db.get("drafts", item.visit_id);
  const subId = mine?.submission?.id ?? d.submission_id;
  const s = await api.request(`/v1/visits/${item.visit_id}/submissions/${subId}`);
  if (!s.ok) throw await api.problemOf(s);
  const sub = await s.json();
  const etag = s.headers.get("etag");
  if (choice === "mine") {
    // Send this phone's answers over theirs: an explicit choice, with their ETag.
    await db.update("drafts", item.visit_id, (x) => ({ ...x, submission_id: sub.id, etag }));
    await outbox.retry(item.seq);
  } else {
    await db.update("drafts", item.visit_id, (x) => fromServer({ ...x, finalised: false }, sub, etag));
    await outbox.settle(item.seq);
  }
}

function problemBlock(item) {
  const p = item.problem ?? {};
  const box = h("div", { class: "error-box" });
  const buttons = [];
  const say = (...lines) => box.append(...lines.map((l) => h("p", {}, l)));
  const button = (text, fn, cls = "") => {
    const b = h("button", { type: "button", class: cls }, text);
    b.addEventListener("click", async () => {
      b.disabled = true;
      try { await fn(); } catch (e) { box.append(h("p", { role: "alert" }, e?.detail || t("outbox.still_failing"))); b.disabled = false; return; }
      render(false);
    });
    buttons.push(b);
  };
  if (p.why === "stale" || p.why === "other-device") {
    say(t("conflict.what"), t("conflict.nothing_lost"), t("conflict.choose"));
    button(t("conflict.keep_mine"), () => resolve(item, "mine"), "primary");
    button(t("conflict.use_theirs"), () => resolve(item, "theirs"));
  } else {
    say(p.status === 409 ? t("outbox.conflict", { detail: p.detail }) : t("outbox.refused", { detail: p.detail || p.title }));
    if (item.kind === "final" && p.status === 422) say(h("a", { href: `/app/visits/${item.visit_id}/review` }, t("outbox.go_review")));
    else if (p.status === 409) say(t("outbox.ask_coordinator"));
    button(t("outbox.try_again"), () => outbox.retry(item.seq), "primary");
  }
  box.append(h("p", { class: "actions" }, ...buttons));
  return box;
}

export async function outboxScreen() {
  const list = await outbox.items();
  const names = {};
  for (const v of (await db.get("kv", "visits"))?.items ?? []) names[v.id] = v.service_name;
  const byId = (rows) => Object.fromEntries(rows.map((r) => [r.id, r]));
  const photos = byId(await db.all("photos"));
  const findings = byId(await db.all("findings"));
  const waiting = list.filter((i) => i.status !== "sent");
  const sent = list.filter((i) => i.status === "sent" && !(i.kind === "draft" && list.some((j) => j.kind === "final" && j.visit_id === i.visit_id))).reverse();
  const row = (i) => h("li", { class: "card" },
    h("p", {}, h("strong", {}, describe(i, names, {}, photos, findings))),
    i.status === "sent" ? h("p", { class: "ready" }, t("outbox.sent_at", { at: time(i.sent_at) }))
      : i.status === "problem" ? problemBlock(i)
        : h("p", { class: "hint" }, i.attempts ? t("outbox.retrying", { at: time(i.next_at) }) : api.noSignal() ? t("outbox.waiting") : t("outbox.sending")));
  return [
    back("/app/", t("visits.title")),
    heading(t("outbox.title")),
    outbox.isSignedOut() ? h("p", { class: "error-box" }, t("outbox.signed_out"), " ", h("a", { href: "/app/signin" }, t("signin.title"))) : null,
    h("p", {}, api.noSignal() ? t("outbox.offline") : t("outbox.online")),
    h("h2", {}, tn("outbox.waiting_count", waiting.length)),
    waiting.length ? h("ul", { class: "cards" }, ...waiting.map(row)) : h("p", { class: "ready" }, t("outbox.nothing_waiting")),
    h("h2", {}, t("outbox.gone")),
    sent.length ? h("ul", { class: "cards" }, ...sent.slice(0, 50).map(row)) : h("p", {}, t("outbox.nothing_gone")),
  ];
}
