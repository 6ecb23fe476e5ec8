// Platform API calls with the console's token. Every failure becomes an ApiError whose message a person can act on:
// 401 sends the console back to sign-in, 403 says which permission the role lacks, a network failure says so.
import { clip, currentToken } from './auth.js';

export class ApiError extends Error {
  constructor(status, code, message) { super(message); this.status = status; this.code = code; }
}

/** Called on a 401 (set by main.js): the token is gone or no longer honoured. */
export const hooks = { unauthorized: () => {} };

/**
 * @param {string} path e.g. /api/v2/conversations/messages
 * @param {{method?: string, body?: unknown, action?: string}} options action: what the caller was doing, for messages ("terminate this conversation")
 */
export async function api(path, { method = 'GET', body, action = 'do this' } = {}) {
  const token = currentToken();
  if (!token) { hooks.unauthorized(); throw new ApiError(401, 'authentication.required', 'Your session has ended; sign in again.'); }
  const headers = { Authorization: `Bearer ${token}`, Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let response;
  try {
    response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch {
    throw new ApiError(0, 'network', `Could not reach the server to ${action} (network error); check the connection and try again.`);
  }
  const text = await response.text();
  let json = null;
  try { json = text ? JSON.parse(text) : null; } catch { /* not JSON: described below */ }
  if (response.ok) return { status: response.status, body: json, headers: response.headers };

  // The platform's error body: {message, code, status, …} (docs/compatibility.md §Platform errors).
  const code = json?.code ?? 'error';
  const detail = clip(json?.message ?? `HTTP ${response.status}`);
  if (response.status === 401) {
    if (currentToken() === token) hooks.unauthorized();   // a request made with a token since replaced or forgotten changes nothing
    throw new ApiError(401, code, `Your session has ended (${detail}); sign in again.`);
  }
  if (response.status === 403) throw new ApiError(403, code, `Your role may not ${action}: ${detail}`);
  throw new ApiError(response.status, code, `Could not ${action}: ${detail} (HTTP ${response.status}, ${clip(code, 60)})`);
}

/** Every page of a platform entity listing ({entities, pageCount}), up to maxPages. */
export async function listAll(path, { pageSize = 100, maxPages = 20, action } = {}) {
  const all = [];
  const joiner = path.includes('?') ? '&' : '?';
  for (let page = 1; page <= maxPages; page++) {
    const { body } = await api(`${path}${joiner}pageSize=${pageSize}&pageNumber=${page}`, { action });
    all.push(...(body?.entities ?? []));
    if (!body?.pageCount || page >= body.pageCount) break;
  }
  return all;
}
