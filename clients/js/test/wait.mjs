// Helpers with no dependencies, shared by this package's tests and by the
// conformance suite in tests/js (which imports this file by path): unique
// document ids, sleeps, condition waits, a close-code-tracking WebSocket,
// and a reader of a document's op log. What needs a package (the `ws`
// WebSocket class) is passed in.

/** The shared text every test edits. */
export const TEXT = 'content'

let docCounter = 0
/** A document id unique within the run (1–128 of A–Z a–z 0–9 . _ -). */
export function uniqueDocId (prefix) {
  return `${prefix}-${process.pid}-${++docCounter}-${Date.now().toString(36)}`
}

export function sleep (ms) {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

/**
 * Polls `condition` until it returns a truthy value (which is returned) or
 * `timeout` ms pass. `describe()` explains the state in the failure message.
 */
export async function waitFor (condition, { timeout = 10000, what = 'condition', describe } = {}) {
  const deadline = Date.now() + timeout
  for (;;) {
    const value = await condition()
    if (value) return value
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeout} ms waiting for ${what}${describe ? `: ${describe()}` : ''}`)
    }
    await sleep(10)
  }
}

/**
 * A subclass of the WebSocket class `Base` (of the `ws` package) that
 * remembers its instances and the close codes they saw.
 */
export function trackingWebSocket (Base) {
  const sockets = []
  const closeCodes = []
  class TrackedWebSocket extends Base {
    constructor (...args) {
      super(...args)
      sockets.push(this)
      this.on('close', (code) => closeCodes.push(code))
    }
  }
  return { WebSocket: TrackedWebSocket, sockets, closeCodes }
}

/** How many times `needle` occurs in `haystack` (overlaps included). */
export function occurrences (haystack, needle) {
  let n = 0
  for (let i = haystack.indexOf(needle); i !== -1; i = haystack.indexOf(needle, i + 1)) n++
  return n
}

/**
 * Reads a document's whole op log through the native protocol: a hello
 * with `last_seen_server_seq: 0` gets every op replayed. `WebSocket` is the
 * class of the `ws` package, `url` the server's ws:// base URL, `token` (a
 * server in token mode) an access token granting at least `read` on the
 * document, sent as `?token=`. Awareness messages (presence of other
 * sessions) are ignored; anything else but the welcome and `op` messages
 * fails the read. Returns `{ welcome, ops }`.
 */
export function readOpLog ({ WebSocket, url, documentId, timeout = 10000, token = null }) {
  return new Promise((resolve, reject) => {
    const query = token === null ? '' : `?token=${encodeURIComponent(token)}`
    const ws = new WebSocket(`${url}/ws/${documentId}${query}`)
    const ops = []
    let welcome = null
    const timer = setTimeout(() => { ws.terminate(); reject(new Error('op log read timed out')) }, timeout)
    const done = (result, error) => {
      clearTimeout(timer)
      ws.close()
      if (error) reject(error)
      else resolve(result)
    }
    ws.on('open', () => ws.send(JSON.stringify({ type: 'hello', protocol: 1, client_id: `audit-${Math.random().toString(36).slice(2)}`, last_seen_server_seq: 0 })))
    ws.on('message', (data) => {
      const msg = JSON.parse(data.toString())
      if (msg.type === 'welcome') {
        welcome = msg
        if (msg.recovery !== 'replay') return done(null, new Error(`expected a replay, got ${data}`))
      } else if (msg.type === 'op') {
        ops.push(msg)
      } else if (msg.type !== 'awareness') {
        return done(null, new Error(`unexpected ${data}`))
      }
      if (welcome && ops.length === welcome.server_seq) done({ welcome, ops })
    })
    ws.on('error', (e) => done(null, e))
  })
}
