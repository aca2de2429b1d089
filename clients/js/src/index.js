// @collab-engine/client: binds a Yjs document to a Collab-Engine server
// speaking the native protocol v1 (docs/protocol.md of the server).
//
// Runs in browsers and in Node >= 20: no Node-only imports, no Buffer.
// In Node (before 22) pass a WebSocket constructor, e.g. the `ws` package.

import * as Y from 'yjs'
import {
  applyAwarenessUpdate, checkAwareness, encodeAwarenessUpdate, removeRemoteStates
} from './awareness.js'

/** The only protocol version this client speaks. */
export const PROTOCOL_VERSION = 1

/** WebSocket close codes the server uses (docs/protocol.md). */
export const CloseCode = Object.freeze({
  NORMAL: 1000,
  GOING_AWAY: 1001,
  NO_STATUS: 1005,
  ABNORMAL: 1006,
  POLICY_VIOLATION: 1008,
  MESSAGE_TOO_BIG: 1009,
  INTERNAL_ERROR: 1011,
  SERVICE_RESTART: 1012,
  TRY_AGAIN_LATER: 1013,
  /** The token's `exp` passed: reconnect with a fresh token. */
  TOKEN_EXPIRED: 4401,
  /** The subject's (or the token's) access was revoked. */
  ACCESS_REVOKED: 4403,
  /** An op was refused: the document is too large (`limits.max_document_bytes`). */
  DOCUMENT_TOO_LARGE: 4413
})

// Close codes after which the client does not reconnect by itself: the
// server says the client broke the protocol (1008), sent a message larger
// than its limit (1009), or wrote to a document that is too large (4413).
// Reconnecting would just repeat the same failure (the refused op stays
// queued locally).
const FATAL_CLOSE_CODES = new Set([
  CloseCode.POLICY_VIOLATION,
  CloseCode.MESSAGE_TOO_BIG,
  CloseCode.DOCUMENT_TOO_LARGE
])
const FATAL_ERROR_CODES = new Map([
  [CloseCode.POLICY_VIOLATION, 'closed_policy_violation'],
  [CloseCode.MESSAGE_TOO_BIG, 'closed_too_large'],
  [CloseCode.DOCUMENT_TOO_LARGE, 'closed_document_too_large']
])

// The code this client uses when it closes a socket itself because the
// server broke the ordering promise or sent something unexpected.
const CLIENT_RESYNC_CLOSE = 4000

const WS_OPEN = 1

// After a close 4401 (token expired) the client fetches a new token and
// reconnects at once, but only once in a row: another 4401 (or a refused
// upgrade) before a session has lasted REFRESH_MIN_SESSION_MS after its
// welcome means the new token is no better (already expired, a clock off,
// a getToken() returning a cached token), and reconnecting at once would
// spin. From the second one on, the usual back-off applies, growing with
// the streak.
const QUICK_REFRESHES = 1
const REFRESH_MIN_SESSION_MS = 1000

// How long the body of a refused upgrade (`ws`'s 'unexpected-response') is
// read for its JSON error message, and how much of it.
const REFUSAL_BODY_TIMEOUT_MS = 2000
const REFUSAL_BODY_MAX_CHARS = 4096

function errorText (e) {
  return String(e && e.message ? e.message : e)
}

function describeValue (value) {
  if (value === null) return 'null'
  if (typeof value === 'string') return 'an empty string'
  return typeof value === 'object' ? 'an object' : typeof value
}

/**
 * A tiny event emitter that works everywhere. A listener that throws does
 * not disturb the emitter; the exception is reported asynchronously.
 */
export class Emitter {
  constructor () {
    /** @type {Map<string, Set<Function>>} */
    this._listeners = new Map()
  }

  /** Adds `fn` for `name`; returns `this`. */
  on (name, fn) {
    let set = this._listeners.get(name)
    if (!set) this._listeners.set(name, (set = new Set()))
    set.add(fn)
    return this
  }

  /** Removes `fn` for `name`; returns `this`. */
  off (name, fn) {
    const set = this._listeners.get(name)
    if (set) {
      set.delete(fn)
      if (set.size === 0) this._listeners.delete(name)
    }
    return this
  }

  /** Adds `fn` for the next `name` event only; returns `this`. */
  once (name, fn) {
    const wrapper = (...args) => {
      this.off(name, wrapper)
      fn(...args)
    }
    return this.on(name, wrapper)
  }

  /** Calls every listener of `name` with `args`. */
  emit (name, ...args) {
    const set = this._listeners.get(name)
    if (!set) return
    for (const fn of [...set]) {
      try {
        fn(...args)
      } catch (e) {
        reportAsync(e)
      }
    }
  }

  /** Removes every listener. */
  removeAllListeners () {
    this._listeners.clear()
  }
}

function reportAsync (e) {
  if (typeof globalThis.reportError === 'function') globalThis.reportError(e)
  else setTimeout(() => { throw e }, 0)
}

// ---------------------------------------------------------------------------
// base64 (standard alphabet, padded) without Buffer

const CHUNK = 0x8000

/** Base64 (standard, padded) of `bytes` (a Uint8Array). */
export function toBase64 (bytes) {
  let binary = ''
  for (let i = 0; i < bytes.length; i += CHUNK) {
    binary += String.fromCharCode.apply(null, bytes.subarray(i, i + CHUNK))
  }
  return btoa(binary)
}

/** The bytes of a base64 (standard alphabet) string. Throws on bad input. */
export function fromBase64 (text) {
  const binary = atob(text)
  const bytes = new Uint8Array(binary.length)
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i)
  return bytes
}

function randomClientId () {
  const c = globalThis.crypto
  if (c && typeof c.randomUUID === 'function') {
    try {
      return `js-${c.randomUUID()}`
    } catch (_) {
      // randomUUID needs a secure context in browsers; fall through.
    }
  }
  const bytes = new Uint8Array(16)
  if (c && typeof c.getRandomValues === 'function') c.getRandomValues(bytes)
  else for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(Math.random() * 256)
  return `js-${Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('')}`
}

/** Does `doc` (a Y.Doc) hold structs that a peer with state vector `sv` lacks? */
function hasStructsBeyond (doc, sv) {
  for (const [client, clock] of Y.decodeStateVector(Y.encodeStateVector(doc))) {
    if (clock > (sv.get(client) ?? 0)) return true
  }
  return false
}

/** Does `value` have the members of a `Y.Doc` (of any copy of yjs)? */
function looksLikeYDoc (value) {
  return value !== null && typeof value === 'object' &&
    typeof value.clientID === 'number' && typeof value.guid === 'string' &&
    value.share instanceof Map && typeof value.store === 'object' && value.store !== null &&
    ['getText', 'getMap', 'getArray', 'transact', 'on', 'off'].every((name) => typeof value[name] === 'function')
}

/**
 * Throws unless `doc` is a `Y.Doc` of the yjs this module imports. A doc of
 * another copy of yjs (two copies installed, e.g. by a symlinked
 * `npm install <path>`) would fail Yjs's own `instanceof` checks inside
 * `applyUpdate` and friends: nothing would sync and nothing would say why.
 */
function checkDoc (doc) {
  if (doc instanceof Y.Doc) return
  if (looksLikeYDoc(doc)) {
    throw new TypeError(
      'CollabClient: `doc` is a Y.Doc from another copy of yjs than the one @collab-engine/client imports, ' +
      'so Yjs\'s instanceof checks would fail and nothing would sync. Install yjs once (`npm ls yjs` lists the copies): ' +
      'the usual cause is `npm install <folder>`, a symlink to a folder with its own node_modules/yjs; install ' +
      '@collab-engine/client from the registry, from a tarball (`npm pack`) or with `--install-links` instead. ' +
      'Copies nested in node_modules are merged by `npm dedupe`'
    )
  }
  const got = doc === null ? 'null' : typeof doc === 'object' ? `an object (${doc.constructor?.name ?? 'no constructor'})` : typeof doc
  throw new TypeError(`CollabClient: \`doc\` must be a Y.Doc (new Y.Doc() of yjs); got ${got}`)
}

// ---------------------------------------------------------------------------

/**
 * Keeps a `Y.Doc` in sync with one document of a Collab-Engine server.
 *
 * Events (listen with `on`/`off`/`once`):
 * - `status`  `{ status: 'connecting' | 'connected' | 'disconnected' }`
 * - `synced`  `true` once the catch-up after a `welcome` is applied;
 *             `false` when a synced connection is lost
 * - `error`   `{ code, message, client_op_id?, closeCode?, status? }`: an
 *             `error` message of the server (e.g. `forbidden` for an op of a
 *             read-only session), a fatal close (1008, 1009), an access
 *             close (`token_expired` without `getToken`, `access_revoked`),
 *             or a problem the client detected (`sequence_gap`, `bad_frame`,
 *             `apply_failed`, `connect_failed`, `token_failed`)
 *
 * With an `awareness` (a y-protocols `Awareness` of the same doc), presence
 * is exchanged too: local changes go to the server as `awareness` messages,
 * those of the others are applied with this client as origin.
 */
export class CollabClient extends Emitter {
  /**
   * @param {object} options
   * @param {string} options.url server base, e.g. `ws://127.0.0.1:8080`
   * @param {string} options.documentId document id (1–128 of `A-Z a-z 0-9 . _ -`)
   * @param {Y.Doc} options.doc the document to bind
   * @param {string} [options.clientId] writer identity, 1–64 characters;
   *   default: a random id, stable for the life of this instance
   * @param {Function} [options.WebSocket] WebSocket constructor; default `globalThis.WebSocket`
   * @param {{initialMs?: number, maxMs?: number}} [options.backoff] reconnect delays
   * @param {boolean} [options.connect=true] connect right away (on the next
   *   microtask, so listeners added right after construction see every event)
   * @param {object} [options.awareness] a y-protocols `Awareness` bound to
   *   `doc` (or any object with its API): presence is synced through the server
   * @param {(context: {documentId: string, reason: 'connect'|'reconnect'|'expired'|'revoked'}) => (string|Promise<string>)} [options.getToken]
   *   called before every connection attempt; its token goes as
   *   `?token=` on the URL. After close 4401 (token expired) it is called
   *   again and the client reconnects at once. Wins over `token`
   * @param {string} [options.token] a fixed access token (ignored when
   *   `getToken` is given); a session that outlives it is not renewed
   */
  constructor (options) {
    super()
    const {
      url,
      documentId,
      doc,
      clientId = randomClientId(),
      WebSocket = globalThis.WebSocket,
      backoff = {},
      connect = true,
      awareness = null,
      token = null,
      getToken = null
    } = options ?? {}
    if (typeof url !== 'string' || url === '') throw new TypeError('CollabClient: `url` must be a non-empty string')
    if (typeof documentId !== 'string' || documentId === '') throw new TypeError('CollabClient: `documentId` must be a non-empty string')
    checkDoc(doc)
    if (typeof clientId !== 'string' || clientId.length === 0 || [...clientId].length > 64) {
      throw new TypeError('CollabClient: `clientId` must be a string of 1 to 64 characters')
    }
    if (typeof WebSocket !== 'function') {
      throw new TypeError('CollabClient: no WebSocket constructor; pass one as `WebSocket` (in Node < 22: `import WebSocket from "ws"`)')
    }
    if (awareness !== null) checkAwareness(awareness, doc)
    if (getToken !== null && typeof getToken !== 'function') {
      throw new TypeError('CollabClient: `getToken` must be a function returning a token (or a promise of one)')
    }
    if (token !== null && (typeof token !== 'string' || token === '')) {
      throw new TypeError('CollabClient: `token` must be a non-empty string')
    }
    this.doc = doc
    this.documentId = documentId
    this.clientId = clientId
    this.url = `${url.replace(/\/+$/, '')}/ws/${encodeURIComponent(documentId)}`
    this._WebSocket = WebSocket
    this._backoff = {
      initialMs: backoff.initialMs ?? 100,
      maxMs: backoff.maxMs ?? 5000
    }

    /** The y-protocols `Awareness` kept in sync, or `null`. */
    this.awareness = awareness

    // Access: `getToken` wins over a fixed `token`.
    this._getToken = getToken
    this._token = getToken === null ? token : null
    /** Why the next connection is made (passed to getToken). */
    this._tokenReason = 'connect'
    /** The getToken() call in progress (an object identifying it), or null. */
    this._opening = null
    /** 4401s in a row without a session that lasted (see QUICK_REFRESHES). */
    this._refreshStreak = 0

    // Persisted across reconnects within this instance.
    this._nextOpId = 1
    /** @type {{id: number, update: Uint8Array}[]} ops not yet acked, in order */
    this._pending = []
    this._welcomed = false
    this._lastSeenServerSeq = null
    this._epoch = null

    // Connection state.
    this._ws = null
    /** Per-connection state, `null` while no socket is open. */
    this._session = null
    this._status = 'disconnected'
    this._synced = false
    this._wantConnected = false
    this._destroyed = false
    this._attempt = 0
    this._timer = null

    this._onDocUpdate = (update, origin) => {
      if (origin === this || this._destroyed) return
      const op = { id: this._nextOpId++, update }
      this._pending.push(op)
      if (this._session && this._session.ready) this._sendOp(op)
    }
    doc.on('update', this._onDocUpdate)

    this._onAwarenessUpdate = ({ added, updated, removed }, origin) => {
      // What came from the server (origin this) is not sent back.
      if (origin === this || this._destroyed) return
      this._sendAwareness(added.concat(updated, removed))
    }
    if (awareness) awareness.on('update', this._onAwarenessUpdate)

    if (connect) {
      // Connect on the next microtask, so listeners attached right after
      // construction see the first `status` event.
      this._wantConnected = true
      queueMicrotask(() => {
        if (this._wantConnected && !this._destroyed && !this._busy()) this._open()
      })
    }
  }

  /** `'connecting'`, `'connected'` (welcome received) or `'disconnected'`. */
  get status () { return this._status }
  /** True while connected and caught up with the server. */
  get synced () { return this._synced }
  /** `server_seq` of the last `op`, `ack` or `snapshot` applied; `null` before the first. */
  get lastSeenServerSeq () { return this._lastSeenServerSeq }
  /** `epoch` of the last `welcome`; `null` before the first. */
  get epoch () { return this._epoch }
  /** Local ops not yet acknowledged by the server. */
  get pendingCount () { return this._pending.length }

  /** Connects (and keeps reconnecting) until `disconnect()` or `destroy()`. */
  connect () {
    if (this._destroyed) throw new Error('CollabClient: destroyed')
    this._wantConnected = true
    if (this._busy()) return
    this._attempt = 0
    this._refreshStreak = 0
    this._tokenReason = 'connect'
    this._open()
  }

  /**
   * Closes the connection and stops reconnecting; local edits keep queueing.
   * With an awareness, the local state is withdrawn for the others first
   * (it stays in the local Awareness and is sent again on `connect()`), and
   * the states of the others are removed locally.
   */
  disconnect () {
    this._wantConnected = false
    this._clearTimer()
    if (this._opening) {
      // A getToken() in progress: its token will be thrown away.
      this._opening = null
      this._setStatus('disconnected')
    }
    this._withdrawAwareness()
    this._detach(CloseCode.NORMAL, 'client disconnect')
  }

  /** Disconnects for good and unbinds the document (and the awareness). */
  destroy () {
    if (this._destroyed) return
    this.disconnect()
    this._destroyed = true
    this.doc.off('update', this._onDocUpdate)
    if (this.awareness) this.awareness.off('update', this._onAwarenessUpdate)
    this.removeAllListeners()
  }

  // -------------------------------------------------------------------------

  _setStatus (status) {
    if (this._status === status) return
    this._status = status
    this.emit('status', { status })
  }

  _setSynced (synced) {
    if (this._synced === synced) return
    this._synced = synced
    this.emit('synced', synced)
  }

  _clearTimer () {
    if (this._timer !== null) {
      clearTimeout(this._timer)
      this._timer = null
    }
  }

  /** A socket is open or opening, a token is being fetched, or a reconnect is scheduled. */
  _busy () {
    return this._ws !== null || this._timer !== null || this._opening !== null
  }

  /** Opens a connection: with `getToken`, after asking it for a token. */
  _open () {
    this._clearTimer()
    if (this._getToken === null) {
      this._openSocket(this._token)
      return
    }
    const opening = {}
    this._opening = opening
    this._setStatus('connecting')
    let result
    try {
      result = Promise.resolve(this._getToken({ documentId: this.documentId, reason: this._tokenReason }))
    } catch (e) {
      result = Promise.reject(e)
    }
    result.then((token) => {
      if (typeof token !== 'string' || token === '') {
        throw new TypeError(`getToken() gave ${describeValue(token)} instead of a token string`)
      }
      return token
    }).then((token) => {
      // Thrown away after disconnect() or destroy() (or a newer attempt).
      if (this._opening !== opening) return
      this._opening = null
      if (!this._wantConnected || this._destroyed) return this._setStatus('disconnected')
      this._tokenReason = 'reconnect'
      this._openSocket(token)
    }, (e) => {
      if (this._opening !== opening) return
      this._opening = null
      this._setStatus('disconnected')
      if (!this._wantConnected || this._destroyed) return
      this.emit('error', { code: 'token_failed', message: `getToken() failed: ${errorText(e)}` })
      this._scheduleReconnect()
    })
  }

  _openSocket (token) {
    const url = token === null ? this.url : `${this.url}?token=${encodeURIComponent(token)}`
    let ws
    try {
      ws = new this._WebSocket(url)
    } catch (e) {
      this.emit('error', { code: 'connect_failed', message: errorText(e) })
      this._scheduleReconnect()
      return
    }
    this._ws = ws
    const session = { welcome: null, welcomedAt: null, ready: false, awaitingSnapshot: false, refused: null }
    this._session = session
    this._setStatus('connecting')
    this._watchRefusal(ws, session)
    ws.addEventListener('open', () => {
      if (ws !== this._ws) return
      const hello = { type: 'hello', protocol: PROTOCOL_VERSION, client_id: this.clientId }
      if (this._lastSeenServerSeq !== null) hello.last_seen_server_seq = this._lastSeenServerSeq
      if (this._epoch !== null) hello.epoch = this._epoch
      ws.send(JSON.stringify(hello))
    })
    ws.addEventListener('message', (event) => {
      if (ws !== this._ws) return
      this._onMessage(event.data)
    })
    // Errors are always followed by `close`, which decides what happens.
    ws.addEventListener('error', () => {})
    ws.addEventListener('close', (event) => {
      if (ws !== this._ws) return
      this._ws = null
      this._session = null
      this._onClosed(event.code, event.reason, session)
    })
  }

  /**
   * With the `ws` package (Node), a refused upgrade (an HTTP answer instead
   * of 101) is seen as 'unexpected-response': its status and the server's
   * JSON error are kept for the `connect_failed` error, then the socket is
   * ended (its `close`, 1006, follows). Browsers do not expose the status:
   * there a refused upgrade is a close 1006 like a network failure.
   */
  _watchRefusal (ws, session) {
    if (typeof ws.on !== 'function' || typeof ws.terminate !== 'function') return
    ws.on('unexpected-response', (req, res) => {
      const status = res.statusCode
      const refused = { status, error: null, message: `the server refused the connection with HTTP ${status}` }
      session.refused = refused
      let body = ''
      let finished = false
      const finish = () => {
        if (finished) return
        finished = true
        clearTimeout(timer)
        try {
          const parsed = JSON.parse(body)
          if (parsed && typeof parsed.error === 'string') refused.error = parsed.error
          if (parsed && typeof parsed.message === 'string') {
            const what = refused.error ? `HTTP ${status} ${refused.error}` : `HTTP ${status}`
            refused.message = `the server refused the connection with ${what}: ${parsed.message}`
          }
        } catch (_) {
          // Not JSON: the status says enough.
        }
        try {
          ws.terminate()
        } catch (_) {}
      }
      const timer = setTimeout(finish, REFUSAL_BODY_TIMEOUT_MS)
      try {
        if (typeof res.setEncoding === 'function') res.setEncoding('utf8')
        res.on('data', (chunk) => { if (body.length < REFUSAL_BODY_MAX_CHARS) body += chunk })
        res.on('end', finish)
        res.on('error', finish)
        res.on('close', finish)
      } catch (_) {
        finish()
      }
    })
  }

  /** Drops the current socket (closing it) without waiting for its `close` event. */
  _detach (code, reason) {
    const ws = this._ws
    if (!ws) return
    this._ws = null
    this._session = null
    try {
      ws.close(code, reason)
    } catch (_) {
      // Already closing, or the implementation refuses the code: nothing to do.
    }
    this._connectionLost()
  }

  _onClosed (code, reason, session) {
    this._connectionLost()
    // Refused upgrades (known in Node with `ws`): 4xx only; a 5xx (e.g. 503
    // during a shutdown) is retried silently like a network failure.
    const refused = session.refused
    if (refused && refused.status >= 400 && refused.status < 500) {
      const error = { code: 'connect_failed', status: refused.status, message: refused.message }
      if (refused.error) error.error = refused.error
      this.emit('error', error)
    }
    if (!this._wantConnected || this._destroyed) return
    if (session.welcomedAt !== null && Date.now() - session.welcomedAt >= REFRESH_MIN_SESSION_MS) {
      this._refreshStreak = 0
    }
    if (FATAL_CLOSE_CODES.has(code)) {
      // Retrying would fail the same way; the application decides (connect()).
      this._wantConnected = false
      this.emit('error', {
        code: FATAL_ERROR_CODES.get(code),
        closeCode: code,
        message: reason || `connection closed with ${code}`
      })
      return
    }
    if (code === CloseCode.TOKEN_EXPIRED) return this._onTokenExpired(code, reason)
    if (code === CloseCode.ACCESS_REVOKED) return this._onAccessRevoked(code, reason)
    this._scheduleReconnect()
  }

  /** Close 4401: a new token from getToken(), at once (once in a row), and the usual resume. */
  _onTokenExpired (code, reason) {
    if (this._getToken === null) {
      // A fixed token cannot be renewed: retrying would be refused.
      this._wantConnected = false
      this.emit('error', { code: 'token_expired', closeCode: code, message: reason || 'token expired' })
      return
    }
    this._tokenReason = 'expired'
    this._refreshStreak++
    if (this._refreshStreak <= QUICK_REFRESHES) {
      this._timer = setTimeout(() => {
        this._timer = null
        if (this._wantConnected && !this._destroyed && !this._busy()) this._open()
      }, 0)
      return
    }
    // The fresh token did not last either (expired on arrival, clocks
    // apart, a cached token): say so, and back off, more with each one.
    this.emit('error', {
      code: 'token_expired',
      closeCode: code,
      message: 'the token from getToken() expired again less than a second after connecting; reconnecting with back-off'
    })
    this._attempt = Math.max(this._attempt, this._refreshStreak - QUICK_REFRESHES)
    this._scheduleReconnect()
  }

  /** Close 4403: reported; with getToken, retried with back-off (the app may hand a new token, or disconnect()). */
  _onAccessRevoked (code, reason) {
    this.emit('error', { code: 'access_revoked', closeCode: code, message: reason || 'access revoked' })
    if (this._getToken === null) {
      this._wantConnected = false
      return
    }
    this._tokenReason = 'revoked'
    // Not at once: a token issued in the second of the revocation is refused too.
    this._attempt = Math.max(this._attempt, 1)
    this._scheduleReconnect()
  }

  _connectionLost () {
    // Presence of the others is only known while connected; the server sends
    // the current states again after the next welcome.
    if (this.awareness) removeRemoteStates(this.awareness, this)
    this._setSynced(false)
    this._setStatus('disconnected')
  }

  _scheduleReconnect () {
    if (!this._wantConnected || this._destroyed || this._timer !== null) return
    const { initialMs, maxMs } = this._backoff
    const delay = Math.min(maxMs, initialMs * 2 ** Math.min(this._attempt, 30))
    this._attempt++
    this._timer = setTimeout(() => {
      this._timer = null
      if (this._wantConnected && !this._destroyed && !this._busy()) this._open()
    }, delay)
  }

  /** Gives up on the current connection and reconnects so the server replays. */
  _resync (code, message) {
    this.emit('error', { code, message })
    this._detach(CLIENT_RESYNC_CLOSE, code)
    this._scheduleReconnect()
  }

  _send (message) {
    const ws = this._ws
    if (!ws || ws.readyState !== WS_OPEN) return false
    ws.send(JSON.stringify(message))
    return true
  }

  _sendOp (op) {
    this._send({ type: 'op', client_op_id: op.id, update: toBase64(op.update) })
  }

  /** Sends the awareness states of `clients`, once the server welcomed this connection. */
  _sendAwareness (clients) {
    if (!this.awareness || clients.length === 0 || !this._session || !this._session.welcome) return
    this._send({ type: 'awareness', update: toBase64(encodeAwarenessUpdate(this.awareness, clients)) })
  }

  /**
   * Tells the others that this client's presence is gone: its state as
   * `null` under a raised clock. The local Awareness keeps its state.
   */
  _withdrawAwareness () {
    const awareness = this.awareness
    if (!awareness || !this._session || !this._session.welcome || awareness.getLocalState() === null) return
    const id = awareness.clientID
    const meta = awareness.meta.get(id)
    awareness.meta.set(id, { clock: meta.clock + 1, lastUpdated: Date.now() })
    this._send({ type: 'awareness', update: toBase64(encodeAwarenessUpdate(awareness, [id], new Map())) })
  }

  /** After a welcome: publishes the local state (under a new clock, so everyone takes it). */
  _announceAwareness () {
    const awareness = this.awareness
    if (!awareness) return
    const state = awareness.getLocalState()
    if (state === null) return
    // The others may have seen this state removed under the next clock (the
    // server announces the removal of a lost connection's states with
    // clock + 1), and take a state only under a higher clock than the one
    // they know: skip one. setLocalState raises the clock once more and
    // emits `update`, which sends the state.
    const id = awareness.clientID
    const meta = awareness.meta.get(id)
    if (meta) awareness.meta.set(id, { clock: meta.clock + 1, lastUpdated: meta.lastUpdated })
    awareness.setLocalState(state)
  }

  _onAwareness (msg) {
    if (!this.awareness || !this._session || !this._session.welcome) return
    if (typeof msg.update !== 'string') {
      this.emit('error', { code: 'bad_frame', message: 'awareness message without an update' })
      return
    }
    let reassert
    try {
      reassert = applyAwarenessUpdate(this.awareness, fromBase64(msg.update), this)
    } catch (e) {
      this.emit('error', { code: 'apply_failed', message: `cannot apply an awareness update: ${e && e.message ? e.message : e}` })
      return
    }
    // Someone removed this client's state while it still has one.
    if (reassert) this._sendAwareness([this.awareness.clientID])
  }

  _flushPending () {
    for (const op of this._pending) {
      if (!this._session || !this._session.ready) return
      this._sendOp(op)
    }
  }

  _removePending (id) {
    const i = this._pending.findIndex((op) => op.id === id)
    if (i === -1) return null
    return this._pending.splice(i, 1)[0]
  }

  _checkCaughtUp () {
    const s = this._session
    if (!s || !s.ready || s.awaitingSnapshot) return
    if (this._lastSeenServerSeq !== null && this._lastSeenServerSeq >= s.welcome.server_seq) {
      this._setSynced(true)
    }
  }

  _apply (base64, what) {
    let bytes
    try {
      bytes = fromBase64(base64)
      Y.applyUpdate(this.doc, bytes, this)
    } catch (e) {
      this.emit('error', { code: 'apply_failed', message: `cannot apply ${what}: ${e && e.message ? e.message : e}` })
    }
    return bytes
  }

  _onMessage (data) {
    if (typeof data !== 'string') {
      this.emit('error', { code: 'bad_frame', message: 'the server sent a binary frame' })
      return
    }
    let msg
    try {
      msg = JSON.parse(data)
    } catch (_) {
      this.emit('error', { code: 'bad_frame', message: `the server sent something that is not JSON: ${data.slice(0, 100)}` })
      return
    }
    if (!msg || typeof msg !== 'object') return
    switch (msg.type) {
      case 'welcome': return this._onWelcome(msg)
      case 'snapshot': return this._onSnapshot(msg)
      case 'op': return this._onOp(msg)
      case 'ack': return this._onAck(msg)
      case 'error': return this._onError(msg)
      case 'awareness': return this._onAwareness(msg)
      default: // unknown message types are ignored (forward compatibility)
    }
  }

  _onWelcome (msg) {
    const s = this._session
    if (s.welcome) return this._resync('bad_frame', 'second welcome on one connection')
    if (typeof msg.server_seq !== 'number' || typeof msg.epoch !== 'string') {
      return this._resync('bad_frame', 'malformed welcome')
    }
    s.welcome = msg
    s.welcomedAt = Date.now()
    this._epoch = msg.epoch
    this._attempt = 0

    const accepted = typeof msg.last_client_op_id === 'number' ? msg.last_client_op_id : null
    const first = !this._welcomed
    this._welcomed = true
    if (accepted !== null) {
      if (first) {
        // This instance has sent nothing yet (ops are sent only after a
        // welcome), so what the server knows of this client_id comes from an
        // earlier instance (a reused clientId): number the queue above it
        // instead of taking it as accepted.
        let id = Math.max(this._nextOpId, accepted + 1)
        if (this._pending.length > 0 && this._pending[0].id <= accepted) {
          id = accepted + 1
          for (const op of this._pending) op.id = id++
        }
        this._nextOpId = Math.max(this._nextOpId, id)
      } else {
        // The server accepted exactly the ops up to last_client_op_id (it
        // refuses every op after a refused one), so the others are resent
        // under their own numbers.
        this._pending = this._pending.filter((op) => op.id > accepted)
        this._nextOpId = Math.max(this._nextOpId, accepted + 1)
      }
    }

    this._setStatus('connected')
    this._announceAwareness()
    if (msg.recovery === 'snapshot') {
      s.awaitingSnapshot = true
      return
    }
    if (msg.recovery !== 'replay') return this._resync('bad_frame', `unknown recovery ${JSON.stringify(msg.recovery)}`)
    if (this._lastSeenServerSeq === null && msg.server_seq > 0) {
      return this._resync('bad_frame', 'replay offered to a client without last_seen_server_seq')
    }
    if (this._lastSeenServerSeq === null) this._lastSeenServerSeq = 0
    s.ready = true
    this._flushPending()
    this._checkCaughtUp()
  }

  _onSnapshot (msg) {
    const s = this._session
    if (!s.welcome || !s.awaitingSnapshot || typeof msg.server_seq !== 'number' || typeof msg.state !== 'string') {
      return this._resync('bad_frame', 'unexpected snapshot')
    }
    const bytes = this._apply(msg.state, `the snapshot at ${msg.server_seq}`)
    this._lastSeenServerSeq = msg.server_seq
    s.awaitingSnapshot = false
    if (bytes) {
      // Whatever the local document holds beyond the server's state (offline
      // edits; or, when the server lost data or the document was created
      // anew, edits it had acknowledged) goes back as one op. It includes
      // every pending op, so it replaces them.
      const serverSv = Y.encodeStateVectorFromUpdate(bytes)
      if (hasStructsBeyond(this.doc, Y.decodeStateVector(serverSv))) {
        this._pending = [{ id: this._nextOpId++, update: Y.encodeStateAsUpdate(this.doc, serverSv) }]
      }
    }
    s.ready = true
    this._flushPending()
    this._checkCaughtUp()
  }

  /** Checks the ordering promise; true when `seq` is the next one. */
  _inOrder (seq, what) {
    const s = this._session
    if (!s.ready || s.awaitingSnapshot || this._lastSeenServerSeq === null) {
      this._resync('bad_frame', `${what} before the catch-up started`)
      return false
    }
    if (seq !== this._lastSeenServerSeq + 1) {
      this._resync('sequence_gap', `${what} has server_seq ${seq}, expected ${this._lastSeenServerSeq + 1}; reconnecting`)
      return false
    }
    return true
  }

  _onOp (msg) {
    if (!this._inOrder(msg.server_seq, 'op')) return
    this._apply(msg.update, `op ${msg.server_seq}`)
    this._lastSeenServerSeq = msg.server_seq
    // Our own op, committed by an earlier connection, seen as a plain op.
    if (msg.client_id === this.clientId) this._removePending(msg.client_op_id)
    this._checkCaughtUp()
  }

  _onAck (msg) {
    if (msg.duplicate) {
      // Already in the log; not part of the seq stream.
      this._removePending(msg.client_op_id)
      return
    }
    if (!this._inOrder(msg.server_seq, 'ack')) return
    this._lastSeenServerSeq = msg.server_seq
    this._removePending(msg.client_op_id)
    this._checkCaughtUp()
  }

  _onError (msg) {
    const error = { code: msg.code, message: msg.message }
    if (msg.client_op_id !== undefined && msg.client_op_id !== null) error.client_op_id = msg.client_op_id
    this.emit('error', error)
    if (error.client_op_id === undefined) return
    if (msg.code === 'invalid_update' || msg.code === 'forbidden') {
      // The server will never accept these bytes (or this session may only
      // read): not sent again. The edit stays in the local Y.Doc.
      this._removePending(error.client_op_id)
    } else if (msg.code === 'unavailable') {
      // Not committed (or not known to be). The server refuses every later
      // op of this connection and closes it (1013), so no later op can be
      // accepted before this one. The ops keep their numbers: after the
      // reconnect, those up to welcome.last_client_op_id are exactly the
      // accepted ones, the others are resent in order. Closing right away
      // (instead of waiting for the server's close) sends nothing more into
      // a connection that refuses it.
      if (this._ws) {
        this._detach(CLIENT_RESYNC_CLOSE, 'op unavailable; reconnecting')
        this._attempt = Math.max(this._attempt, 1)
        this._scheduleReconnect()
      }
    }
  }
}

export default CollabClient
