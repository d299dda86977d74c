// A result card: the picture with its legend, or the highlighted text; predictions, timing, downloads.

import { detailLines, errorTitle } from "./api.js";
import { el, fmtMs, fmtScore } from "./dom.js";

/** The bytes of a NumPy .npy file (format 1.0) for the contract's float32 attribution. */
export function npyBytes(attribution) {
  const raw = atob(attribution.data);
  const data = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i++) data[i] = raw.charCodeAt(i);
  const shape = attribution.shape.length === 1 ? `(${attribution.shape[0]},)` : `(${attribution.shape.join(", ")})`;
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': ${shape}, }`;
  const total = 10 + header.length + 1;
  header += " ".repeat((64 - (total % 64)) % 64) + "\n";
  const out = new Uint8Array(10 + header.length + data.length);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0, header.length & 0xff, header.length >> 8]);
  for (let i = 0; i < header.length; i++) out[10 + i] = header.charCodeAt(i);
  out.set(data, 10 + header.length);
  return out;
}

const SKIP_DETAILS = new Set(["html", "html_page", "tokens", "features", "unknown_tokens", "signed", "explained"]);

function detailRows(details) {
  return Object.entries(details)
    .filter(([key]) => !SKIP_DETAILS.has(key))
    .map(([key, value]) => {
      let text = value;
      if (typeof value === "number") text = Number.isInteger(value) ? value : value.toPrecision(4);
      else if (Array.isArray(value)) text = value.length > 12 ? `${value.slice(0, 12).join(", ")}, ...` : value.join(", ");
      else if (value && typeof value === "object") text = Object.entries(value).map(([k, v]) => `${k}: ${v}`).join(", ");
      return el("div", { class: "kv" }, [el("dt", {}, key), el("dd", {}, String(text))]);
    });
}

function predictions(list, target) {
  return el("ol", { class: "predictions" }, list.map((p) => el("li", { class: p.index === target.index ? "is-target" : "" }, [
    el("span", { class: "pred-label" }, p.label),
    el("span", { class: "pred-bar" }, el("span", { style: `width:${Math.max(1, p.score * 100).toFixed(1)}%` })),
    el("span", { class: "pred-score" }, fmtScore(p.score)),
  ])));
}

function downloads(result, base) {
  const links = [];
  if (result.attribution && result.attribution.encoding === "base64") {
    const url = URL.createObjectURL(new Blob([npyBytes(result.attribution)], { type: "application/octet-stream" }));
    links.push(el("a", { class: "button small", href: url, download: `${base}.npy`, "data-download": "npy" },
      "Attribution (.npy)"));
  }
  if (result.overlay_png) {
    links.push(el("a", { class: "button small", href: `data:image/png;base64,${result.overlay_png}`,
                         download: `${base}.png`, "data-download": "png" }, "Picture (.png)"));
  }
  if (result.details && result.details.html_page) {
    const url = URL.createObjectURL(new Blob([result.details.html_page], { type: "text/html" }));
    links.push(el("a", { class: "button small", href: url, download: `${base}.html`, "data-download": "html" },
      "Page (.html)"));
  }
  return el("div", { class: "downloads" }, links);
}

/** Fill a card's body with a finished explanation. */
export function showResult(card, result) {
  const body = card.querySelector(".result-body");
  const t = result.target;
  card.querySelector(".result-target").replaceChildren(
    el("span", { class: "label" }, t.label), ` p = ${fmtScore(t.score)}`);
  const parts = [];
  const side = [];
  if (result.overlay_png) {
    parts.push(el("figure", { class: "picture" }, el("img", {
      class: "overlay", alt: `${result.method} on ${result.model_id}: ${t.label}`,
      src: `data:image/png;base64,${result.overlay_png}` })));
  }
  if (result.details && result.details.html) {
    const text = el("div", { class: "text-html" });
    text.innerHTML = result.details.html; // rendered by the service, every token escaped there
    parts.push(text);
    const unknown = result.details.unknown_tokens || [];
    if (unknown.length) {
      parts.push(el("p", { class: "note warn" }, `Outside the vocabulary (the model sees <unk>): ${
        unknown.map((u) => u.token).join(", ")}. A bundle with a larger vocabulary sees them.`));
    }
  }
  if (result.details && result.details.features) {
    const rows = result.details.features.slice(0, 8).map((f) => el("tr", {}, [
      el("td", {}, f.name), el("td", { class: "num" }, Number(f.value).toPrecision(4)),
      el("td", { class: `num ${f.score < 0 ? "neg" : "pos"}` }, f.score.toPrecision(3))]));
    parts.push(el("table", { class: "features" }, [
      el("thead", {}, el("tr", {}, [el("th", {}, "feature"), el("th", {}, "value"), el("th", {}, "attribution")])),
      el("tbody", {}, rows)]));
  }
  side.push(el("h4", {}, "Predictions"), predictions(result.predictions, t));
  const timing = result.timing_ms || {};
  side.push(el("h4", {}, "Time"), el("div", { class: "timing" }, ["total", "explain", "render"]
    .filter((k) => timing[k] !== undefined)
    .map((k) => el("span", { class: "chip", "data-timing": k }, `${k} ${fmtMs(timing[k])}`))));
  const rows = detailRows(result.details || {});
  if (rows.length) side.push(el("details", { class: "more" }, [el("summary", {}, "Details"), el("dl", {}, rows)]));
  side.push(downloads(result, `${result.method}-${result.model_id}`));
  body.replaceChildren(el("div", { class: "result-main" }, parts), el("div", { class: "result-side" }, side));
  body.classList.toggle("has-picture", Boolean(result.overlay_png) && !(result.details && result.details.features));
  card.dataset.state = "done";
}

/** Fill a card's body with a finished global explanation: its chart, images, rankings or rules. */
export function showGlobalResult(card, result) {
  const body = card.querySelector(".result-body");
  card.querySelector(".result-target").replaceChildren(el("span", { class: "label" }, "the model"));
  const parts = [];
  if (result.chart_png) {
    parts.push(el("figure", { class: "picture chart" }, el("img", {
      class: "overlay", alt: `${result.method} on ${result.model_id}`, src: `data:image/png;base64,${result.chart_png}` })));
  }
  if (result.rankings && result.rankings.length) {
    const all = result.rankings[0];
    parts.push(el("table", { class: "features ranking" }, [
      el("thead", {}, el("tr", {}, [el("th", {}, `feature (${all.label})`), el("th", {}, "importance"),
        el("th", {}, "direction"), el("th", {}, "kept in")])),
      el("tbody", {}, all.features.slice(0, 10).map((f) => el("tr", {}, [
        el("td", {}, f.name), el("td", { class: "num" }, f.importance.toPrecision(3)),
        el("td", { class: `num ${f.direction < 0 ? "neg" : "pos"}` }, f.direction.toPrecision(3)),
        el("td", { class: "num" }, String(f.count))])))]));
  }
  if (result.rules && result.rules.length) {
    parts.push(el("ol", { class: "rules" }, result.rules.map((r) => el("li", {}, r.text))));
  }
  const side = [];
  if (result.images && result.images.length && result.rankings) {  // normlime's concepts (others: in the chart)
    side.push(el("h4", {}, "Concepts"), el("div", { class: "generated" }, result.images.map((g) => el("figure", {}, [
      el("img", { src: `data:image/png;base64,${g.png}`, alt: g.label }),
      el("figcaption", { class: "muted small" }, g.objective === null ? g.label : `${g.label} · ${g.objective.toPrecision(4)}`),
    ]))));
  }
  const timing = result.timing_ms || {};
  side.push(el("h4", {}, "Time"), el("div", { class: "timing" }, ["total", "explain"]
    .filter((k) => timing[k] !== undefined)
    .map((k) => el("span", { class: "chip", "data-timing": k }, `${k} ${fmtMs(timing[k])}`))));
  const rows = detailRows(result.details || {});
  if (rows.length) side.push(el("details", { class: "more" }, [el("summary", {}, "Details"), el("dl", {}, rows)]));
  if (result.chart_png) {
    side.push(el("div", { class: "downloads" }, el("a", { class: "button small", "data-download": "png",
      href: `data:image/png;base64,${result.chart_png}`, download: `${result.method}-${result.model_id}.png` },
    "Chart (.png)")));
  }
  body.replaceChildren(el("div", { class: "result-main" }, parts), el("div", { class: "result-side" }, side));
  card.dataset.state = "done";
}

/** A readable error inside a card or in the page's error box. */
export function errorView(error) {
  const lines = detailLines(error.details);
  return el("div", { class: "error", role: "alert", "data-code": error.code || "" }, [
    el("strong", {}, errorTitle(error.code)),
    el("p", {}, error.message),
    lines.length ? el("ul", {}, lines.slice(0, 8).map((l) => el("li", {}, l))) : null,
    el("p", { class: "muted small" }, `code: ${error.code}${error.status ? ` · HTTP ${error.status}` : ""}`),
  ]);
}

/** What a card explains: "on shapes-cnn · n_masks 1500" (the params that differ from the defaults). */
function subtitle(modelId, params) {
  const set = Object.entries(params || {}).map(([k, v]) => `${k} ${v}`);
  return `on ${modelId}${set.length ? ` · ${set.join(", ")}` : " · default params"}`;
}

export function newCard(method, execution, modelId, params) {
  return el("article", { class: "result", "data-method": method, "data-state": "running" }, [
    el("header", { class: "result-head" }, [
      el("h3", {}, method),
      el("span", { class: `chip ${execution}` }, execution === "async" ? "job" : "instant"),
      el("span", { class: "result-target" }),
      el("p", { class: "result-sub muted small" }, subtitle(modelId, params)),
    ]),
    el("div", { class: "result-body" }, el("p", { class: "muted" }, "Working...")),
  ]);
}
