// The page: pick a model and a method, give an input, see the explanation; compare 2-4 methods.

import { ApiError, blobBase64, getJson } from "./api.js";
import { $, el } from "./dom.js";
import { loadExamples, loadSample, readInput, setupImageInput, setupTextInput, showInputFor } from "./inputs.js";
import { runGlobalInto, runInto } from "./jobs.js";
import { errorView, newCard } from "./result.js";
import { buildParamsForm } from "./schema-form.js";

const S = { models: [], methods: {}, model: null, method: null, form: null, sampleIndex: 0 };
// Only a preference for the first method shown; the list itself always comes from /models and /methods.
const FIRST_CHOICE = ["gradcam", "integrated_gradients", "saliency"];
const MAX_COMPARE = 4;

function showError(error) {
  const box = $("#error-box");
  if (!error) {
    box.hidden = true;
    box.replaceChildren();
    return;
  }
  box.replaceChildren(errorView(error));
  box.hidden = false;
}

async function checkReady() {
  const pill = $("#status");
  try {
    const response = await fetch("/readyz");
    const body = await response.json();
    pill.textContent = response.ok ? "ready" : `not ready: ${Object.keys(body.reasons || {}).join(", ")}`;
    pill.dataset.state = response.ok ? "ok" : "warn";
  } catch {
    pill.textContent = "unreachable";
    pill.dataset.state = "bad";
  }
}

function methodsOf(model) {
  return model.methods.filter((name) => S.methods[name]);
}

function globalMethodsOf(model) {
  return (model.global_methods || []).filter((name) => S.methods[name]);
}

const TAKES = { samples: "it uses the model's own sample set", input: "it uses the input above",
                nothing: "it needs no input" };

function selectMethod(name) {
  S.method = S.methods[name];
  $("#method-select").value = name;
  const m = S.method;
  const global = m.scope === "global";
  $("#method-info").replaceChildren(
    el("span", { class: `chip ${m.execution}` }, m.execution === "async" ? "runs as a job" : "instant"),
    el("span", { class: "chip" }, m.requires === "gradients" ? "white-box" : "black-box"),
    global ? el("span", { class: "chip global" }, "explains the model") : null,
    sanityChip(m, S.model),
    " ", m.description || "", global ? ` (${TAKES[m.takes] || ""})` : "");
  S.form = buildParamsForm($("#params-form"), m.params);
}

// The model randomisation test's verdict for this model (GET /methods `sanity`), where one was run.
function sanityChip(method, model) {
  const verdict = model && method.sanity ? method.sanity[model.id] : undefined;
  if (!verdict) return null;
  const passes = verdict === "passes";
  return el("span", { class: `chip sanity ${passes ? "sync" : "async"}`, "data-sanity": verdict,
                      title: passes ? "its maps change when the model's layers are randomised (Adebayo et al. 2018)"
                                    : "its maps barely change when the model's layers are randomised: they show "
                                      + "the input more than what the model learned" },
            passes ? "sanity check passed" : "fails the sanity check");
}

function fillCompare(names) {
  $("#compare-methods").replaceChildren(...names.map((name) => el("label", { class: "check" }, [
    el("input", { type: "checkbox", value: name, onchange: limitCompare }),
    el("span", {}, name),
    S.methods[name].execution === "async" ? el("span", { class: "chip async tiny" }, "job") : null,
    (S.methods[name].sanity || {})[S.model.id] === "fails"
      ? el("span", { class: "chip async tiny", title: "fails the sanity check on this model" }, "fails sanity") : null,
  ])));
  limitCompare();
}

function limitCompare() {
  const boxes = [...document.querySelectorAll("#compare-methods input")];
  const picked = boxes.filter((b) => b.checked).length;
  for (const b of boxes) b.disabled = !b.checked && picked >= MAX_COMPARE;
  $("#compare-btn").disabled = picked < 2;
  $("#compare-count").textContent = `${picked} of 2-${MAX_COMPARE} picked`;
}

async function selectModel(id) {
  const model = S.models.find((m) => m.id === id);
  S.model = model;
  $("#model-select").value = id;
  $("#model-info").replaceChildren(
    el("span", { class: "chip" }, model.modality), el("span", { class: "chip" }, model.source),
    " ", model.description || "", el("br"),
    el("span", { class: "muted small" }, `classes: ${model.labels.slice(0, 12).join(", ")}${model.labels.length > 12 ? ", ..." : ""}`));
  showInputFor(model.modality);
  $("#picture-options").hidden = model.modality !== "image";
  $("#target-select").replaceChildren(el("option", { value: "" }, "the top class"),
    ...model.labels.map((label, i) => el("option", { value: String(i) }, label)));
  const names = methodsOf(model);
  const group = (kind, title) => el("optgroup", { label: title },
    names.filter((n) => S.methods[n].execution === kind).map((n) => el("option", { value: n }, n)));
  const globals = globalMethodsOf(model);
  $("#method-select").replaceChildren(group("sync", "Instant (gradients)"), group("async", "Jobs (black-box, queued)"),
    globals.length ? el("optgroup", { label: "The model (global, jobs)" },
      globals.map((n) => el("option", { value: n }, n))) : null);
  selectMethod(FIRST_CHOICE.find((n) => names.includes(n)) || names[0]);
  fillCompare(names);
  if (model.modality === "tabular") {
    S.sampleIndex = 0;
    await loadSample(model, 0);
  }
}

function outputOptions() {
  const output = { caption: $("#caption").checked };
  if (S.model.modality === "image") {
    output.style = $("#style-select").value;
    if ($("#colormap-select").value) output.colormap = $("#colormap-select").value;
    output.alpha = Number($("#alpha").value);
    if ($("#size-input").value) output.size = Number($("#size-input").value);
  }
  return output;
}

function request(params) {
  const { input, error } = readInput(S.model);
  if (error) return { error };
  const target = $("#target-select").value === "" ? null : Number($("#target-select").value);
  return { req: { modelId: S.model.id, input, params, output: outputOptions(), target } };
}

function formParams() {
  const { params, errors } = S.form.read();
  if (errors.length) {
    showError({ code: "invalid_params", message: "Fix these parameters first:", details: errors.map((message) => ({ message })) });
    return null;
  }
  if (!$("#size-input").checkValidity()) {
    showError({ code: "invalid_request", message: `Picture size: ${$("#size-input").validationMessage}`, details: null });
    return null;
  }
  return params;
}

async function explainModel(params) {
  const body = { params };
  if (S.method.takes === "input") {
    const { input, error } = readInput(S.model);
    if (error) return showError({ code: "invalid_input", message: error, details: null });
    body.input = input.image ? { image: await blobBase64(input.image) } : input;
  }
  if (S.method.name === "activation_maximisation" && $("#target-select").value !== "") {
    body.target = Number($("#target-select").value);
  }
  const card = newCard(S.method.name, "async", S.model.id, params);
  $("#compare-grid").hidden = true;
  $("#empty-state").hidden = true;
  $("#single-result").replaceChildren(card);
  $("#single-result").hidden = false;
  await runGlobalInto(card, S.model.id, S.method.name, body);
}

async function explain() {
  showError(null);
  const params = formParams();
  if (params === null) return;
  if (S.method.scope === "global") return explainModel(params);
  const { req, error } = request(params);
  if (error) return showError({ code: "invalid_input", message: error, details: null });
  const card = newCard(S.method.name, S.method.execution, S.model.id, params);
  $("#compare-grid").hidden = true;
  $("#empty-state").hidden = true;
  $("#single-result").replaceChildren(card);
  $("#single-result").hidden = false;
  await runInto(card, S.method.name, req);
}

async function compare() {
  showError(null);
  const names = [...document.querySelectorAll("#compare-methods input:checked")].map((b) => b.value);
  if (names.length < 2 || names.length > MAX_COMPARE) {
    return showError({ code: "invalid_request", message: `Pick 2 to ${MAX_COMPARE} methods to compare.`, details: null });
  }
  const own = formParams();
  if (own === null) return;
  const { req, error } = request({});
  if (error) return showError({ code: "invalid_input", message: error, details: null });
  const grid = $("#compare-grid");
  const paramsOf = (n) => (n === S.method.name ? own : {});
  const cards = names.map((n) => newCard(n, S.methods[n].execution, S.model.id, paramsOf(n)));
  grid.style.setProperty("--columns", String(names.length));
  grid.replaceChildren(...cards);
  grid.hidden = false;
  $("#single-result").hidden = true;
  $("#empty-state").hidden = true;
  // each method with its defaults; the one in the form with the params set there
  await Promise.all(names.map((n, i) => runInto(cards[i], n, { ...req, params: paramsOf(n) })));
}

/** Styles and colormaps as the spec lists them (OutputSpec), so the page offers what the service takes. */
async function fillOutputChoices() {
  const spec = await getJson("/openapi.json");
  const props = spec.components.schemas.OutputSpec.properties;
  $("#style-select").replaceChildren(...props.style.enum.map((s) => el("option", { value: s }, s)));
  $("#style-select").value = props.style.default;
  $("#colormap-select").replaceChildren(el("option", { value: "" }, "default (by sign)"),
    ...props.colormap.enum.map((c) => el("option", { value: c }, c)));
}

async function init() {
  checkReady();
  setInterval(checkReady, 15000);
  try {
    const [models, methods] = await Promise.all([getJson("/models"), getJson("/methods")]);
    S.models = models.models;
    S.methods = Object.fromEntries(methods.methods.map((m) => [m.name, m]));
  } catch (err) {
    return showError(err instanceof ApiError ? err : { code: "unreachable", message: String(err) });
  }
  if (!S.models.length) return showError({ code: "unknown_model", message: "The service has no models.", details: null });
  await Promise.all([loadExamples(), fillOutputChoices()]);
  setupImageInput();
  setupTextInput();
  $("#model-select").replaceChildren(...S.models.map((m) => el("option", { value: m.id }, `${m.id} (${m.modality})`)));
  $("#model-select").addEventListener("change", (e) => selectModel(e.target.value));
  $("#method-select").addEventListener("change", (e) => selectMethod(e.target.value));
  $("#params-form").addEventListener("submit", (e) => { e.preventDefault(); explain(); });  // Enter in a field
  $("#explain-btn").addEventListener("click", explain);
  $("#compare-btn").addEventListener("click", compare);
  $("#sample-next").addEventListener("click", () => loadSample(S.model, ++S.sampleIndex));
  $("#alpha").addEventListener("input", () => { $("#alpha-value").textContent = Number($("#alpha").value).toFixed(2); });
  await selectModel((S.models.find((m) => m.modality === "image") || S.models[0]).id);
  document.body.dataset.ready = "true";
}

init();
