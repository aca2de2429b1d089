// Test helpers: the real server of a test file with its clients and
// proxies, clients bound to fresh Y.Docs, condition waits, a raw protocol
// audit of a document's op log, and a frame-rewriting WebSocket proxy.
// (`node --test test/` also loads this file; it defines no test.)

import WebSocket, { WebSocketServer } from 'ws'
import * as Y from 'yjs'
import { CollabClient } from '../src/index.js'
import { serverForTests } from './server.mjs'
import {
  TEXT, occurrences, readOpLog as readOpLogWith, sleep, trackingWebSocket as trackingSubclass, uniqueDocId, waitFor
} from './wait.mjs'

export { TEXT, occurrences, sleep, uniqueDocId, waitFor }

/** A WebSocket class (of `ws`) that remembers its instances and their close codes. */
export function trackingWebSocket () {
  return trackingSubclass(WebSocket)
}

/**
 * The real server of a test file (`options` as for `TestServer.start`),
 * started before its tests, with a `Clients` and the proxies of `proxy()`
 * closed after each test. Call it at the top of the file.
 */
export function useServer (options) {
  const clients = new Clients()
  const proxies = []
  const server = serverForTests(options, {
    afterEachTest: async () => {
      clients.closeAll()
      await Promise.all(proxies.splice(0).map((p) => p.close()))
    }
  })
  /** A `WsProxy` in front of the server, closed after the test. */
  async function proxy () {
    const started = await WsProxy.start(server.url)
    proxies.push(started)
    return started
  }
  return { server, clients, proxy }
}

/**
 * Opens clients and destroys them all in `closeAll()`. Each client records
 * its events in `events`.
 */
export class Clients {
  constructor () {
    this.all = []
  }

  /** A client with its own Y.Doc on `documentId` of the server at `url`. */
  open (url, documentId, options = {}) {
    const doc = options.doc ?? new Y.Doc()
    const text = doc.getText(TEXT)
    const events = []
    const errors = []
    const client = new CollabClient({
      url,
      documentId,
      doc,
      WebSocket,
      backoff: { initialMs: 20, maxMs: 200 },
      ...options
    })
    client.on('status', (e) => events.push(`status:${e.status}`))
    client.on('synced', (v) => events.push(`synced:${v}`))
    client.on('error', (e) => errors.push(e))
    const handle = {
      doc,
      text,
      client,
      events,
      errors,
      get str () { return text.toString() },
      insert (s, at = text.length) { text.insert(at, s) }
    }
    this.all.push(handle)
    return handle
  }

  /**
   * Opens `a` (at `a.url` if given, e.g. a proxy, with the other `a`
   * options) and then `b` on `documentId` of the server at `url`, and waits
   * until both are synced; with `first`, `a` then writes it and both are
   * waited for to have exactly that text. Returns `{ a, b }`.
   */
  async pair (url, documentId, { a: { url: aUrl = url, ...aOptions } = {}, first } = {}) {
    const a = this.open(aUrl, documentId, aOptions)
    const b = this.open(url, documentId)
    await waitSynced(a, b)
    if (first !== undefined) {
      a.insert(first)
      await waitConverged([a, b], (t) => t === first)
    }
    return { a, b }
  }

  closeAll () {
    for (const h of this.all) h.client.destroy()
    this.all = []
  }
}

export async function waitSynced (...handles) {
  await Promise.all(handles.map((h) => waitFor(() => h.client.synced, {
    what: `client ${h.client.clientId} to be synced`,
    describe: () => `status ${h.client.status}, events ${h.events.join(',')}, errors ${JSON.stringify(h.errors)}`
  })))
}

/** Waits until every handle has the same text, nothing pending, and `check(text)` holds. */
export async function waitConverged (handles, check = () => true, timeout = 10000) {
  await waitFor(() => {
    const first = handles[0].str
    return handles.every((h) => h.str === first && h.client.pendingCount === 0 && h.client.synced) && check(first)
  }, {
    timeout,
    what: 'convergence',
    describe: () => handles.map((h) => `${JSON.stringify(h.str)} (pending ${h.client.pendingCount}, ${h.client.status}, synced ${h.client.synced}, errors ${JSON.stringify(h.errors)})`).join(' / ')
  })
  return handles[0].str
}

/**
 * Reads a document's whole op log through the protocol (every op replayed
 * to a fresh session). Returns the `op` messages and the welcome. The third
 * argument is the timeout (ms) or `{ timeout, token }`; a server in token
 * mode needs a `token` that may read the document.
 */
export function readOpLog (url, documentId, options = {}) {
  const { timeout = 5000, token = null } = typeof options === 'number' ? { timeout: options } : options
  return readOpLogWith({ WebSocket, url, documentId, timeout, token })
}

/** Asserts-friendly summary: `client_id#client_op_id` of every logged op. */
export function opKeys (log) {
  return log.ops.map((op) => `${op.client_id}#${op.client_op_id}`)
}

/** Rebuilds the document text from a logged op list. */
export function textFromLog (log) {
  const doc = new Y.Doc()
  for (const op of log.ops) Y.applyUpdate(doc, Uint8Array.from(atob(op.update), (c) => c.charCodeAt(0)))
  return doc.getText(TEXT).toString()
}

/**
 * A WebSocket proxy in front of `target` (a ws:// base URL). `toServer` and
 * `toClient` may be replaced to rewrite frames: each gets the parsed message
 * and returns the list of messages to forward. `cut()` kills every open
 * connection abruptly (both sides).
 */
export class WsProxy {
  static async start (target) {
    const proxy = new WsProxy(target)
    await new Promise((resolve) => proxy.wss.once('listening', resolve))
    return proxy
  }

  constructor (target) {
    this.target = target
    this.toServer = (msg) => [msg]
    this.toClient = (msg) => [msg]
    /** Every message the client sent through the proxy, before rewriting. */
    this.fromClient = []
    this.pairs = new Set()
    this.wss = new WebSocketServer({ host: '127.0.0.1', port: 0 })
    this.wss.on('connection', (down, req) => this._pair(down, req.url))
  }

  get url () { return `ws://127.0.0.1:${this.wss.address().port}` }

  _pair (down, path) {
    const up = new WebSocket(this.target + path)
    const pair = { down, up }
    this.pairs.add(pair)
    const queued = []
    const safeClose = (ws, code, reason) => {
      const sendable = code === 1000 || (code >= 1001 && code <= 1014 && code !== 1005 && code !== 1006) || (code >= 3000 && code <= 4999)
      if (ws.readyState === WebSocket.OPEN) ws.close(sendable ? code : 1011, reason)
      else if (ws.readyState === WebSocket.CONNECTING) ws.terminate()
    }
    down.on('message', (data) => {
      const msg = JSON.parse(data.toString())
      this.fromClient.push(msg)
      for (const out of this.toServer(msg)) {
        const text = JSON.stringify(out)
        if (up.readyState === WebSocket.OPEN) up.send(text)
        else queued.push(text)
      }
    })
    up.on('open', () => { for (const text of queued.splice(0)) up.send(text) })
    up.on('message', (data) => {
      for (const out of this.toClient(JSON.parse(data.toString()))) {
        if (down.readyState === WebSocket.OPEN) down.send(JSON.stringify(out))
      }
    })
    up.on('close', (code, reason) => { this.pairs.delete(pair); safeClose(down, code, reason.toString()) })
    down.on('close', (code, reason) => { this.pairs.delete(pair); safeClose(up, code, reason.toString()) })
    up.on('error', () => down.terminate())
    down.on('error', () => up.terminate())
  }

  /** Sends `msg` to every connected client. */
  sendToClients (msg) {
    for (const { down } of this.pairs) {
      if (down.readyState === WebSocket.OPEN) down.send(JSON.stringify(msg))
    }
  }

  cut () {
    for (const { down, up } of this.pairs) {
      down.terminate()
      up.terminate()
    }
    this.pairs.clear()
  }

  async close () {
    this.cut()
    await new Promise((resolve) => this.wss.close(resolve))
  }
}
