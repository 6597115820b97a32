// The server's routes, same origin only. The API key (when the server needs one) is kept in
// sessionStorage for this tab and sent as "Authorization: Bearer KEY".

const KEY = "threadline.inspector.key";
const BASE = "/v1/inspect";

/** An error answered in OpenAI's envelope: status, message, code. */
export class ApiError extends Error {
  constructor(status, message, code) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

let onUnauthorized = null;

/** Call fn() when a request is refused for a missing or wrong key. */
export function whenUnauthorized(fn) {
  onUnauthorized = fn;
}

export function getKey() {
  return sessionStorage.getItem(KEY) || "";
}

export function setKey(key) {
  if (key) sessionStorage.setItem(KEY, key);
  else sessionStorage.removeItem(KEY);
}

function headers(extra = {}) {
  const key = getKey();
  return key ? { ...extra, authorization: `Bearer ${key}` } : extra;
}

async function fail(response) {
  let message = `${response.status} ${response.statusText}`;
  let code = null;
  try {
    const body = await response.json();
    if (body && body.error) {
      message = body.error.message || message;
      code = body.error.code || null;
    }
  } catch {
    // not JSON: keep the status line
  }
  if (response.status === 401 && onUnauthorized) onUnauthorized(message);
  throw new ApiError(response.status, message, code);
}

function url(path, params = {}) {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value === undefined || value === null || value === "") continue;
    search.append(name, String(value));
  }
  const query = search.toString();
  return `${BASE}${path}${query ? "?" + query : ""}`;
}

/** GET a JSON route. */
export async function get(path, params = {}, { signal } = {}) {
  const response = await fetch(url(path, params), { headers: headers(), signal });
  if (!response.ok) await fail(response);
  return response.json();
}

/** POST (or another method) a JSON body; `raw` sends text as it is. */
export async function send(method, path, params = {}, body = undefined, { raw = null, type = null } = {}) {
  const init = { method, headers: headers() };
  if (raw !== null) {
    init.body = raw;
    init.headers = headers({ "content-type": type || "text/plain" });
  } else if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers = headers({ "content-type": "application/json" });
  }
  const response = await fetch(url(path, params), init);
  if (!response.ok) await fail(response);
  return response.json();
}

/** Download a route's answer as a file (through fetch, so the key is sent). */
export async function download(path, params, fallbackName) {
  const response = await fetch(url(path, params), { headers: headers() });
  if (!response.ok) await fail(response);
  const disposition = response.headers.get("content-disposition") || "";
  const match = /filename="([^"]+)"/.exec(disposition);
  const blob = await response.blob();
  const link = document.createElement("a");
  link.href = URL.createObjectURL(blob);
  link.download = match ? match[1] : fallbackName;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 10000);
}
