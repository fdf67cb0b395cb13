// The API client: the session cookie, the SPA marker header, JSON errors as ApiError,
// and a 401 anywhere sends the user to the login page (app.js listens for the event).

/** Fired on window when a request answers 401; app.js routes to /login?next=... */
export const UNAUTHORIZED_EVENT = "kanade:unauthorized";

/**
 * An API error: status (0 = network), message and parameter from the JSON body, the body,
 * and retryAfter (the Retry-After header of a 429, else null).
 */
export class ApiError extends Error {
  constructor(status, message, parameter = null, body = null) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.parameter = parameter;
    this.body = body;
    this.retryAfter = null;
  }
}

/** "/api/x" plus the query of params without null/undefined/"" values. */
export function apiUrl(path, params = {}) {
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(params ?? {})) {
    if (value === null || value === undefined || value === "") continue;
    query.set(key, String(value));
  }
  const qs = query.toString();
  return qs ? `${path}?${qs}` : path;
}

async function send(url, init) {
  let response;
  try {
    response = await fetch(url, {
      credentials: "same-origin",
      ...init,
      headers: {"X-Kanade-Source": "spa", Accept: "application/json", ...init.headers},
    });
  } catch (err) {
    throw new ApiError(0, `network error: ${err.message}`);
  }
  let data = null;
  const type = response.headers.get("Content-Type") ?? "";
  if (type.includes("json")) {
    try {
      data = await response.json();
    } catch {
      data = null;
    }
  }
  return {response, data};
}

function failure(response, data) {
  const message = data?.error ?? `${response.status} ${response.statusText}`.trim();
  const error = new ApiError(response.status, message, data?.parameter ?? null, data);
  error.retryAfter = response.headers.get("Retry-After");
  return error;
}

/**
 * GET an API path: resolves {data, headers}; throws ApiError.
 * params: query values (null/"" dropped). options.accept: extra statuses whose JSON body
 * is data, e.g. [503] for /api/health/fleet's degraded answer. A 401 also fires
 * UNAUTHORIZED_EVENT.
 */
export async function apiGet(path, params = {}, {accept = []} = {}) {
  const {response, data} = await send(apiUrl(path, params), {method: "GET", headers: {}});
  if (response.ok || accept.includes(response.status)) {
    return {data, headers: response.headers, status: response.status};
  }
  if (response.status === 401) window.dispatchEvent(new CustomEvent(UNAUTHORIZED_EVENT));
  throw failure(response, data);
}

/** POST a JSON body (login, logout): resolves {data, headers}; throws ApiError, never redirects. */
export async function apiPost(path, body = {}) {
  const {response, data} = await send(path, {
    method: "POST",
    headers: {"Content-Type": "application/json"},
    body: JSON.stringify(body),
  });
  if (response.ok) return {data, headers: response.headers, status: response.status};
  throw failure(response, data);
}
