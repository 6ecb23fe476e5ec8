// Sign-in for the console: OAuth 2.0 authorization code with PKCE (RFC 7636, S256) against Parley's /oauth/authorize.
// The access token lives in sessionStorage: it dies with the tab, and no other tab or site can read it.
import { sha256 } from './sha256.js';

export const CLIENT_ID = 'parley-console';
const TOKEN_KEY = 'parley.console.token';
const PENDING_KEY = 'parley.console.pkce';

/** The redirect URI the console registers: the console's own page on this server. */
export const redirectUri = () => `${location.origin}/console/`;

function base64Url(bytes) {
  let s = '';
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

const randomString = (n) => base64Url(crypto.getRandomValues(new Uint8Array(n)));

/** The S256 challenge: base64url(SHA-256(verifier)); WebCrypto where the page is a secure context, our own SHA-256 otherwise (plain http on a LAN). */
export async function challengeOf(verifier) {
  const data = new TextEncoder().encode(verifier);
  const digest = crypto.subtle ? new Uint8Array(await crypto.subtle.digest('SHA-256', data)) : sha256(data);
  return base64Url(digest);
}

/** The token, or null when there is none or it has expired. */
export function currentToken() {
  try {
    const saved = JSON.parse(sessionStorage.getItem(TOKEN_KEY) || 'null');
    if (saved && typeof saved.token === 'string' && saved.expiresAt > Date.now()) return saved.token;
  } catch { /* a damaged entry is no token */ }
  sessionStorage.removeItem(TOKEN_KEY);
  return null;
}

export function forgetToken() { sessionStorage.removeItem(TOKEN_KEY); }

/** Leaves for the authorization page; comes back to redirectUri() with ?code=…&state=…. */
export async function startLogin() {
  const verifier = randomString(48);   // 64 characters, within RFC 7636's 43…128
  const state = randomString(24);
  sessionStorage.setItem(PENDING_KEY, JSON.stringify({ verifier, state, view: location.hash }));
  const query = new URLSearchParams({
    response_type: 'code', client_id: CLIENT_ID, redirect_uri: redirectUri(),
    code_challenge: await challengeOf(verifier), code_challenge_method: 'S256', state,
  });
  location.assign(`/oauth/authorize?${query}`);
}

export class LoginError extends Error {}

/**
 * On the way back from /oauth/authorize: checks state, exchanges the code with its verifier, keeps the token.
 * Returns false when this page load is not a callback; throws LoginError with a readable message on any failure.
 */
export async function completeLogin() {
  const params = new URLSearchParams(location.search);
  if (!params.has('code') && !params.has('error')) return false;
  const pending = JSON.parse(sessionStorage.getItem(PENDING_KEY) || 'null');
  sessionStorage.removeItem(PENDING_KEY);   // one use, whatever happens
  history.replaceState(null, '', `${location.pathname}${pending?.view ?? ''}`);
  if (params.has('error'))
    throw new LoginError(`Sign-in refused: ${clip(params.get('error_description') || params.get('error'))}`);
  if (!pending || params.get('state') !== pending.state)
    throw new LoginError('Sign-in answer did not match this tab\'s request (state mismatch); nothing was exchanged. Sign in again.');
  let response;
  try {
    response = await fetch('/oauth/token', {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: 'authorization_code', code: params.get('code'), redirect_uri: redirectUri(),
        client_id: CLIENT_ID, code_verifier: pending.verifier,
      }),
    });
  } catch {
    throw new LoginError('Could not reach the server to finish signing in (network error).');
  }
  const body = await response.json().catch(() => ({}));
  if (!response.ok || typeof body.access_token !== 'string')
    throw new LoginError(`Sign-in failed: ${clip(body.error_description || body.error || `HTTP ${response.status}`)}`);
  const lifetime = Number(body.expires_in) > 0 ? Number(body.expires_in) : 3600;
  sessionStorage.setItem(TOKEN_KEY, JSON.stringify({ token: body.access_token, expiresAt: Date.now() + lifetime * 1000 }));
  return true;
}

export const clip = (text, n = 200) => { const s = String(text ?? ''); return s.length > n ? `${s.slice(0, n)}…` : s; };
