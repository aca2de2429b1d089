// Raw sockets and hand-made frames, independent of the client libraries:
// y-protocols messages for `/yjs/{id}` and JSON messages for `/ws/{id}`.
//
// y-protocols framing (one message per frame here):
//   sync:      varuint 0, varuint subtype (0 step 1, 1 step 2, 2 update), varuint8array payload
//   awareness: varuint 1, varuint8array (varuint count, [varuint client, varuint clock, varstring json]*)
//   auth:      varuint 2, …
//   query awareness: varuint 3

import WebSocket from 'ws'

export const MESSAGE_SYNC = 0
export const MESSAGE_AWARENESS = 1
export const MESSAGE_QUERY_AWARENESS = 3
export const SYNC_STEP_1 = 0
export const SYNC_STEP_2 = 1
export const SYNC_UPDATE = 2

export function varUint (n) {
  const out = []
  while (n > 0x7f) {
    out.push(0x80 | (n % 0x80))
    n = Math.floor(n / 0x80)
  }
  out.push(n)
  return out
}

function varBytes (bytes) {
  return [...varUint(bytes.length), ...bytes]
}

/** A sync message (`subtype` SYNC_STEP_1/2 or SYNC_UPDATE) carrying `payload`. */
export function syncMessage (subtype, payload) {
  return Uint8Array.from([MESSAGE_SYNC, subtype, ...varBytes(payload)])
}

/** The awareness update bytes of `entries`: [clientID, clock, state (JSON value or null)]. */
export function awarenessUpdate (entries) {
  const out = [...varUint(entries.length)]
  for (const [client, clock, state] of entries) {
    out.push(...varUint(client), ...varUint(clock), ...varBytes(new TextEncoder().encode(state === undefined ? 'null' : JSON.stringify(state))))
  }
  return Uint8Array.from(out)
}

/** An awareness message around raw update bytes. */
export function awarenessMessage (updateBytes) {
  return Uint8Array.from([MESSAGE_AWARENESS, ...varBytes(updateBytes)])
}

class Reader {
  constructor (bytes) {
    this.bytes = bytes
    this.pos = 0
  }

  get done () { return this.pos >= this.bytes.length }

  varUint () {
    let num = 0
    let mult = 1
    for (;;) {
      if (this.pos >= this.bytes.length) throw new RangeError('unexpected end')
      const b = this.bytes[this.pos++]
      num += (b & 0x7f) * mult
      mult *= 0x80
      if (b < 0x80) return num
    }
  }

  varBytes () {
    const n = this.varUint()
    if (this.pos + n > this.bytes.length) throw new RangeError('unexpected end')
    const out = this.bytes.subarray(this.pos, this.pos + n)
    this.pos += n
    return out
  }
}

/** Decodes an awareness update: [{ client, clock, state }]. */
export function decodeAwareness (bytes) {
  const r = new Reader(bytes)
  const count = r.varUint()
  const entries = []
  for (let i = 0; i < count; i++) {
    const client = r.varUint()
    const clock = r.varUint()
    const json = new TextDecoder().decode(r.varBytes())
    entries.push({ client, clock, json })
  }
  return entries
}

/**
 * Decodes one y-protocols frame into its messages:
 * { type: 'sync', subtype, payload } | { type: 'awareness', update } | { type: 'other', tag }.
 */
export function decodeFrame (bytes) {
  const r = new Reader(bytes)
  const messages = []
  while (!r.done) {
    const tag = r.varUint()
    if (tag === MESSAGE_SYNC) messages.push({ type: 'sync', subtype: r.varUint(), payload: r.varBytes() })
    else if (tag === MESSAGE_AWARENESS) messages.push({ type: 'awareness', update: r.varBytes() })
    else { messages.push({ type: 'other', tag }); break }
  }
  return messages
}

/**
 * A raw WebSocket that records every frame it receives (`frames`: Uint8Array
 * for binary, string for text) and how it was closed (`closed`: promise of
 * `{ code, reason }`).
 */
export class RawSocket {
  static async open (url) {
    const raw = new RawSocket(url)
    await raw.opened
    return raw
  }

  constructor (url) {
    this.url = url
    this.ws = new WebSocket(url)
    this.ws.binaryType = 'nodebuffer'
    this.frames = []
    this.closeInfo = null
    this.opened = new Promise((resolve, reject) => {
      this.ws.once('open', resolve)
      this.ws.once('error', reject)
    })
    this.closed = new Promise((resolve) => {
      this.ws.on('close', (code, reason) => {
        this.closeInfo = { code, reason: reason.toString() }
        resolve(this.closeInfo)
      })
    })
    this.ws.on('error', () => {})
    this.ws.on('message', (data, isBinary) => {
      this.frames.push(isBinary ? new Uint8Array(data) : data.toString())
    })
  }

  send (data) { this.ws.send(data) }

  /** Every y-protocols message received so far. */
  messages () {
    return this.frames.filter((f) => typeof f !== 'string').flatMap((f) => decodeFrame(f))
  }

  /** Every JSON message received so far (native protocol). */
  json () {
    return this.frames.filter((f) => typeof f === 'string').map((f) => JSON.parse(f))
  }

  /** Closes with `code`, or drops the TCP connection without a close frame when `code` is 'terminate'. */
  destroy (code = 1000) {
    if (code === 'terminate') this.ws.terminate()
    else if (this.ws.readyState === WebSocket.OPEN) this.ws.close(code)
    else if (this.ws.readyState === WebSocket.CONNECTING) this.ws.terminate()
  }
}

/** A raw native-protocol session: opens `/ws/{id}` and sends `hello`. */
export async function nativeSession (server, documentId, hello = {}) {
  const raw = await RawSocket.open(`${server.url}/ws/${documentId}`)
  raw.send(JSON.stringify({ type: 'hello', protocol: 1, client_id: `raw-${Math.random().toString(36).slice(2)}`, ...hello }))
  return raw
}
