// Access tokens for tests of a server in token mode (`auth.mode = "token"`),
// shared by this package's tests and by the conformance suite in tests/js
// (which imports this file by path). Only Node's built-in modules.
//
//   const { server } = useServer({ env: tokenEnv() })
//   const token = signToken({ sub: 'ada', docs: { 'notes-*': 'write' }, ttlSecs: 3 })
//   await revokeSubject(server, 'ada')
//
// (`node --test test/` also loads this file; it defines no test.)

import { createHmac } from 'node:crypto'

/** The HS256 key of the test server (`auth.secret`, at least 32 bytes). */
export const SECRET = 'collab-js-tests-secret-0123456789abcdef'
/** The admin key of the test server (`auth.admin_key`, at least 16 bytes). */
export const ADMIN_KEY = 'collab-js-tests-admin-key-0123'

/** `COLLAB__*` overrides for `TestServer` / `useServer`: token mode with the keys above. */
export function tokenEnv (extra = {}) {
  return {
    COLLAB__AUTH__MODE: 'token',
    COLLAB__AUTH__SECRET: SECRET,
    COLLAB__AUTH__ADMIN_KEY: ADMIN_KEY,
    ...extra
  }
}

/** Now in Unix seconds, as JWT claims count. */
export function nowSecs () {
  return Math.floor(Date.now() / 1000)
}

function base64url (text) {
  return Buffer.from(text, 'utf8').toString('base64url')
}

/** A JWT (HS256) of exactly `claims`, signed with `secret`. */
export function signClaims (claims, secret = SECRET) {
  const head = `${base64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }))}.${base64url(JSON.stringify(claims))}`
  const signature = createHmac('sha256', secret).update(head).digest('base64url')
  return `${head}.${signature}`
}

/**
 * A token for `sub` granting `docs` (`{ "<id or prefix*>": "read" | "write" }`),
 * issued now and expiring `ttlSecs` later: the `exp` is in whole seconds, so
 * it lives between `ttlSecs - 1` and `ttlSecs` seconds.
 */
export function signToken ({ sub, docs = {}, ttlSecs = 3600, iat = nowSecs() }) {
  return signClaims({ sub, iat, exp: iat + ttlSecs, docs })
}

/**
 * A `getToken` for CollabClient that signs a fresh token on every call
 * (`options` as for `signToken`), and records the calls: `calls` holds the
 * context each call got, `tokens` what it returned.
 */
export function tokenSource (options) {
  const calls = []
  const tokens = []
  const getToken = async (context) => {
    calls.push(context)
    const token = signToken(options)
    tokens.push(token)
    return token
  }
  return { getToken, calls, tokens }
}

async function admin (server, route, body) {
  const response = await fetch(`${server.httpUrl}${route}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/json' },
    body: JSON.stringify(body)
  })
  const text = await response.text()
  return { status: response.status, body: text ? JSON.parse(text) : null }
}

/** `POST /api/tokens`: a token minted by the server. Returns `{ token, expires_at }`. */
export async function mintToken (server, { sub, docs = {}, ttlSecs = 3600 }) {
  const { status, body } = await admin(server, '/api/tokens', { sub, docs, ttl_secs: ttlSecs })
  if (status !== 200) throw new Error(`POST /api/tokens: ${status} ${JSON.stringify(body)}`)
  return body
}

/** `POST /api/revocations {"sub"}`: closes `sub`'s sessions (4403) and refuses its tokens issued so far. */
export async function revokeSubject (server, sub) {
  const { status, body } = await admin(server, '/api/revocations', { sub })
  if (status !== 204) throw new Error(`POST /api/revocations: ${status} ${JSON.stringify(body)}`)
}
