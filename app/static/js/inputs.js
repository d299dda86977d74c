// The input section: an image (upload, drop or a shipped example), a text, or a row of features.

import { ApiError, authedFetch, getJson } from "./api.js";
import { $, el } from "./dom.js";

const state = { image: null, imageName: null, examples: [], texts: [] };

export async function loadExamples() {
  try {
    state.examples = (await getJson("/examples")).examples;
  } catch {
    state.examples = [];
  }
  const texts = state.examples.filter((e) => e.kind === "text");
  state.texts = [];
  for (const t of texts) {
    const lines = (await (await authedFetch(t.url)).text()).split("\n").map((l) => l.trim()).filter(Boolean);
    state.texts.push(...lines);
  }
}

function setImage(blob, name) {
  state.image = blob;
  state.imageName = name;
  const preview = $("#image-preview");
  const url = URL.createObjectURL(blob);
  const img = el("img", { src: url, alt: name });
  const caption = el("figcaption", { class: "muted small" }, name);
  img.addEventListener("load", () => { caption.textContent = `${name} · ${img.naturalWidth} × ${img.naturalHeight} px`; });
  img.addEventListener("error", () => {
    img.remove();
    caption.textContent = `${name} · the browser cannot show this file (is it an image?)`;
  });
  preview.replaceChildren(img, caption);
  preview.hidden = false;
  for (const b of document.querySelectorAll("#example-images .example")) b.classList.toggle("selected", b.dataset.name === name);
}

export function setupImageInput() {
  const drop = $("#drop-zone");
  const file = $("#file-input");
  drop.addEventListener("click", () => file.click());
  drop.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); file.click(); } });
  file.addEventListener("change", () => { if (file.files[0]) setImage(file.files[0], file.files[0].name); });
  for (const type of ["dragenter", "dragover"]) {
    drop.addEventListener(type, (e) => { e.preventDefault(); drop.classList.add("over"); });
  }
  for (const type of ["dragleave", "drop"]) drop.addEventListener(type, () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    const f = e.dataTransfer.files[0];
    if (f) setImage(f, f.name);
  });
  const strip = $("#example-images");
  strip.replaceChildren(...state.examples.filter((e) => e.kind === "image").map((ex) => el("button", {
    type: "button", class: "example", "data-name": ex.name, title: ex.name,
    onclick: async () => setImage(await (await authedFetch(ex.url)).blob(), ex.name),
  }, el("img", { src: ex.url, alt: ex.name, loading: "lazy" }))));
}

export function setupTextInput() {
  const select = $("#text-examples");
  select.replaceChildren(el("option", { value: "" }, "Pick an example review..."),
    ...state.texts.map((t, i) => el("option", { value: String(i) }, t.length > 70 ? `${t.slice(0, 70)}...` : t)));
  select.addEventListener("change", () => {
    if (select.value !== "") $("#text-input").value = state.texts[Number(select.value)];
  });
  if (!$("#text-input").value && state.texts.length) $("#text-input").value = state.texts[0];
}

/** Fill the feature form from row `index` of the model's background sample. */
export async function loadSample(model, index) {
  const grid = $("#feature-form");
  const names = (model.input.features || []).map((f) => f.name);
  let values = {};
  let note = "";
  try {
    const sample = await getJson(`/models/${encodeURIComponent(model.id)}/sample?index=${index}`);
    values = sample.input.features;
    note = `Row ${sample.index + 1} of ${sample.count} from the model's background sample.`;
  } catch (err) {
    note = err instanceof ApiError ? err.message : String(err);
  }
  $("#sample-note").textContent = note;
  grid.replaceChildren(...names.map((name) => el("label", { class: "feature" }, [
    el("span", { title: name }, name),
    el("input", { type: "number", step: "any", required: true, name, value: values[name] ?? "" }),
  ])));
}

/** The contract's input for the model's modality, or `{error}` saying what is missing. */
export function readInput(model) {
  if (model.modality === "image") {
    if (!state.image) return { error: "Choose an image first: upload one, drop one, or pick an example." };
    return { input: { image: state.image, imageName: state.imageName } };
  }
  if (model.modality === "text") {
    const text = $("#text-input").value;
    if (!text.trim()) return { error: "Type a text to explain." };
    return { input: { text } };
  }
  const features = {};
  for (const input of document.querySelectorAll("#feature-form input")) {
    if (!input.checkValidity() || input.value === "") return { error: `Feature "${input.name}" needs a number.` };
    features[input.name] = Number(input.value);
  }
  return { input: { features } };
}

export function showInputFor(modality) {
  for (const kind of ["image", "text", "tabular"]) $(`#input-${kind}`).hidden = kind !== modality;
}
