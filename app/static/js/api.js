// Calls to the service and readable error messages (never raw JSON on the page).

export class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

const TITLES = {
  invalid_image: "The image could not be read",
  image_too_large: "The image is too large",
  payload_too_large: "The input is too large",
  invalid_params: "Some parameters are not valid",
  invalid_request: "The request is not valid",
  invalid_json: "The request is not valid JSON",
  invalid_input: "The input does not fit this model",
  invalid_features: "Some feature values are not valid",
  invalid_target: "The target class is not valid",
  wrong_input_kind: "This model takes another kind of input",
  empty_text: "The text is empty",
  missing_file: "No image was sent",
  method_not_supported_for_model: "This method cannot explain this model",
  unknown_model: "No such model",
  unknown_method: "No such method",
  model_unavailable: "The model could not be loaded",
  queue_unavailable: "The job queue is not reachable",
  job_not_found: "The job is unknown or expired",
  job_timeout: "The job ran out of time",
  worker_lost: "The worker running the job stopped",
  job_failed: "The job failed",
  canceled: "The job was canceled",
  global_method: "This method explains a model, not one input",
  local_method: "This method explains one input, not a model",
  input_not_accepted: "This method takes no input",
  samples_not_accepted: "This method takes no sample set",
  input_required: "This method needs an input",
  empty_samples: "The sample set is empty",
  too_many_samples: "The sample set is too large",
  no_samples: "The model ships no sample set",
  unreachable: "The service does not answer",
};

export function errorTitle(code) {
  return TITLES[code] || "Something went wrong";
}

/** Lines that explain an error's details: "n_steps: Input should be greater than or equal to 1". */
export function detailLines(details) {
  if (details === null || details === undefined) return [];
  if (Array.isArray(details)) {
    return details.map((d) => {
      if (d && typeof d === "object") {
        const where = d.param || (Array.isArray(d.loc) ? d.loc.filter((p) => p !== "body").join(".") : "");
        return where ? `${where}: ${d.message || ""}` : String(d.message || "");
      }
      return String(d);
    });
  }
  if (typeof details === "object") {
    return Object.entries(details).map(([key, value]) =>
      `${key}: ${Array.isArray(value) ? value.join(", ") : typeof value === "object" && value ? Object.keys(value).join(", ") : value}`);
  }
  return [String(details)];
}

async function parse(response) {
  const type = response.headers.get("content-type") || "";
  const body = type.includes("application/json") ? await response.json() : await response.text();
  if (!response.ok) {
    const error = body && body.error ? body.error : { code: "http_error", message: String(body).slice(0, 300) };
    throw new ApiError(response.status, error.code, error.message, error.details);
  }
  return { status: response.status, body };
}

const KEY_SLOT = "xai-api-key";

/** Headers that carry the API key the user gave (only when the service asked for one: keys on). */
export function authHeaders() {
  const key = window.sessionStorage.getItem(KEY_SLOT);
  return key ? { Authorization: `Bearer ${key}` } : {};
}

/** fetch() with the API key; on a 401 asks for a key once, keeps it for the tab, and tries again. */
export async function authedFetch(path, init = {}) {
  let response = await fetch(path, { ...init, headers: { ...(init.headers || {}), ...authHeaders() } });
  if (response.status === 401) {
    const key = window.prompt("This service needs an API key:");
    if (key) {
      window.sessionStorage.setItem(KEY_SLOT, key.trim());
      response = await fetch(path, { ...init, headers: { ...(init.headers || {}), ...authHeaders() } });
    }
  }
  return response;
}

export async function request(method, path, { json, form, signal } = {}) {
  const init = { method, signal, headers: {} };
  if (json !== undefined) {
    init.headers["content-type"] = "application/json";
    init.body = JSON.stringify(json);
  } else if (form !== undefined) {
    init.body = form;
  }
  let response;
  try {
    response = await authedFetch(path, init);
  } catch (err) {
    if (err.name === "AbortError") throw err;
    throw new ApiError(0, "unreachable", `no answer from the service (${err.message})`, null);
  }
  return parse(response);
}

export const getJson = async (path) => (await request("GET", path)).body;

/** POST /explain/{method}: an image goes as multipart (the file itself), other inputs as JSON. */
export async function postExplain(method, { modelId, input, params, output, target }) {
  const path = `/explain/${encodeURIComponent(method)}`;
  if (input.image) {
    const form = new FormData();
    form.append("model_id", modelId);
    form.append("file", input.image, input.imageName || "image");
    form.append("params", JSON.stringify(params));
    form.append("output", JSON.stringify(output));
    if (target !== null && target !== undefined) form.append("target", String(target));
    return request("POST", path, { form });
  }
  return request("POST", path, { json: { model_id: modelId, input, params, output, target } });
}

/** POST /models/{id}/global/{method}: a model-level job (JSON only: an image goes as base64). */
export async function postGlobal(modelId, method, body) {
  const path = `/models/${encodeURIComponent(modelId)}/global/${encodeURIComponent(method)}`;
  return request("POST", path, { json: body });
}

/** A Blob's bytes as base64 (for JSON bodies). */
export function blobBase64(blob) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(String(reader.result).split(",", 2)[1] || "");
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(blob);
  });
}
