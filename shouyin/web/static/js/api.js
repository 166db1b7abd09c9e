// The API client of the pages: JSON over fetch with the session cookie and the CSRF header.
// Every error comes back as ApiError carrying the server's code and both languages' messages.

let csrfToken = "";

/** Remember the session's CSRF token (from sign-in or GET /api/session). */
export function setCsrf(token) {
  csrfToken = token || "";
}

export class ApiError extends Error {
  constructor(status, body) {
    super((body && (body.message_en || body.message)) || `HTTP ${status}`);
    this.status = status;
    this.code = (body && body.error) || "http_error";
    this.zh = (body && body.message) || "";
    this.en = (body && body.message_en) || "";
    this.detail = (body && body.detail) || "";
  }
}

/**
 * Call the API. `body` is sent as JSON; the answer is parsed JSON (null for 204).
 * Throws ApiError for any non-2xx answer, and for a network failure (code "network").
 */
export async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET" && csrfToken) headers["X-CSRF-Token"] = csrfToken;
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      credentials: "same-origin",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (error) {
    throw new ApiError(0, {
      error: "network",
      message: "连接不上收银服务，请检查网络后重试",
      message_en: "Cannot reach the checkout server; check the network and retry",
    });
  }
  if (response.status === 204) return null;
  let data = null;
  try {
    data = await response.json();
  } catch (error) {
    data = null;
  }
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

/**
 * Parse a typed amount in yuan ("12", "12.5", "12.50") into integer fen, without floats.
 * Returns null for anything else.
 */
export function parseYuan(text) {
  const match = /^\s*(\d{1,10})(?:[.,](\d{0,2}))?\s*$/.exec(text || "");
  if (!match) return null;
  const fen = (match[2] || "").padEnd(2, "0");
  return Number(match[1]) * 100 + Number(fen);
}

/** Format integer fen as "¥12.30" (for amounts computed in the page, e.g. a typed tender). */
export function formatFen(fen) {
  const sign = fen < 0 ? "-" : "";
  const abs = Math.abs(fen);
  return `${sign}¥${Math.floor(abs / 100)}.${String(abs % 100).padStart(2, "0")}`;
}
