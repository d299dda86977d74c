// Running one explanation into a card: sync methods answer at once, async ones become a job with a
// progress bar, an ETA and a cancel button.

import { ApiError, getJson, postExplain, postGlobal, request } from "./api.js";
import { el } from "./dom.js";
import { errorView, showGlobalResult, showResult } from "./result.js";

const POLL_MS = 250;

export function etaSeconds(progress, elapsedS) {
  if (!(progress > 0) || !(elapsedS > 0)) return null;
  return Math.max(0, (elapsedS * (1 - progress)) / progress);
}

function progressView(jobId, onCancel) {
  const fill = el("div", { class: "fill" });
  const bar = el("div", { class: "progress", role: "progressbar", "aria-valuemin": 0, "aria-valuemax": 100,
                          "aria-valuenow": 0, "data-status": "queued", "data-job": jobId }, fill);
  const pct = el("span", { class: "pct" }, "0 %");
  const status = el("span", { class: "job-status" }, "queued");
  const eta = el("span", { class: "eta" }, "");
  const cancel = el("button", { type: "button", class: "button small danger cancel", onclick: onCancel }, "Cancel");
  const view = el("div", { class: "job" }, [bar, el("div", { class: "job-line" }, [pct, status, eta, cancel]),
    el("p", { class: "muted small" }, `job ${jobId}`)]);
  let started = null;
  return {
    view,
    update(job) {
      const p = Math.max(0, Math.min(1, job.progress || 0));
      fill.style.width = `${(p * 100).toFixed(1)}%`;
      bar.setAttribute("aria-valuenow", (p * 100).toFixed(1));
      bar.dataset.status = job.status;
      pct.textContent = `${Math.round(p * 100)} %`;
      status.textContent = job.status;
      if (job.status === "started" && started === null) started = performance.now();
      const left = started === null ? null : etaSeconds(p, (performance.now() - started) / 1000);
      eta.textContent = job.status === "started" && left !== null ? `ETA ${left < 1 ? "<1" : Math.round(left)} s` : "";
      if (["finished", "failed", "canceled"].includes(job.status)) cancel.disabled = true;
    },
  };
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function follow(card, jobId, show = showResult) {
  let canceling = false;
  const progress = progressView(jobId, async () => {
    canceling = true;
    try {
      progress.update((await request("DELETE", `/jobs/${jobId}`)).body);
    } catch (err) {
      card.querySelector(".result-body").append(errorView(err));
    }
  });
  card.dataset.job = jobId;
  card.querySelector(".result-body").replaceChildren(progress.view);
  for (;;) {
    const job = await getJson(`/jobs/${jobId}`);
    progress.update(job);
    if (job.status === "finished") {
      const keep = progress.view;
      show(card, job.result);
      card.querySelector(".result-body").prepend(keep);
      return;
    }
    if (job.status === "failed" || job.status === "canceled") {
      const error = job.error || { code: job.status, message: canceling ? "canceled on request" : `the job ${job.status}` };
      card.querySelector(".result-body").append(errorView(error));
      card.dataset.state = job.status;
      return;
    }
    await sleep(POLL_MS);
  }
}

/** Run one request into `card`; errors are shown in the card, never thrown. */
export async function runInto(card, method, req) {
  try {
    const { status, body } = await postExplain(method, req);
    if (status === 202) await follow(card, body.job_id);
    else showResult(card, body);
  } catch (err) {
    const error = err instanceof ApiError ? err : { code: "client_error", message: String(err), details: null };
    card.querySelector(".result-body").replaceChildren(errorView(error));
    card.dataset.state = "error";
  }
}

/** Run a global method's job on a model into `card` (always a job); errors are shown in the card. */
export async function runGlobalInto(card, modelId, method, body) {
  try {
    const { body: accepted } = await postGlobal(modelId, method, body);
    await follow(card, accepted.job_id, showGlobalResult);
  } catch (err) {
    const error = err instanceof ApiError ? err : { code: "client_error", message: String(err), details: null };
    card.querySelector(".result-body").replaceChildren(errorView(error));
    card.dataset.state = "error";
  }
}
