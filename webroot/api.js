// api.js — same-origin calls to /api/v1 with the session cookie; the CSRF
// token goes along on every mutation.
let csrf = "";

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message || code || ("HTTP " + status));
    this.status = status;
    this.code = code || "";
  }
}

export function setCsrf(token) { csrf = token || ""; }

export async function api(method, path, body, extraHeaders) {
  const headers = Object.assign({ "Accept": "application/json" }, extraHeaders || {});
  const opts = { method, headers, credentials: "same-origin", cache: "no-store" };
  if (method !== "GET" && method !== "HEAD") headers["X-CSRF-Token"] = csrf;
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(body);
  }
  const res = await fetch("/api/v1" + path, opts);
  const text = await res.text();
  let data = null;
  if (text) {
    // Not every answer is JSON (metrics are text; a proxy's error page is
    // HTML): such a body is kept as text, and a failed status still throws below.
    try { data = JSON.parse(text); } catch (e) { data = text; }
  }
  if (!res.ok) {
    const err = data && data.error ? data.error : {};
    throw new ApiError(res.status, err.code, err.message);
  }
  return data;
}

export const get = (p) => api("GET", p);
export const post = (p, b, h) => api("POST", p, b === undefined ? {} : b, h);
export const put = (p, b) => api("PUT", p, b);
export const patch = (p, b) => api("PATCH", p, b);
export const del = (p, h) => api("DELETE", p, undefined, h);
