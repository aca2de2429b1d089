// Clients of the conformance suite: y-websocket providers, native
// CollabClients and raw sockets, each on its own Y.Doc, plus condition
// waits and the server of a test file. Everything opened through a `Peers`
// is closed by `closeAll()`.

import WebSocket from 'ws'
import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'
import { Awareness } from 'y-protocols/awareness'
import { CollabClient } from '@collab-engine/client'
import { serverForTests } from './server.mjs'
// Dependency-free helpers shared with the native client's own tests.
import {
  TEXT, occurrences, readOpLog as readOpLogWith, sleep, trackingWebSocket as trackingSubclass, uniqueDocId, waitFor
} from '../../../clients/js/test/wait.mjs'

export { TEXT, occurrences, sleep, uniqueDocId, waitFor }

/** A `ws` WebSocket class that remembers the close codes its instances saw. */
export function trackingWebSocket () {
  return trackingSubclass(WebSocket)
}

function short (text, max = 120) {
  return text.length > max ? `${JSON.stringify(text.slice(0, max))}… (${text.length} chars)` : JSON.stringify(text)
}

/**
 * The real server of a test file (`options` as for `TestServer.start`),
 * started before its tests, and a `Peers` closed after each test (the
 * server is started again if the test stopped it). Call it at the top of
 * the file.
 */
export function useServer (options) {
  const peers = new Peers()
  const server = serverForTests(options, { afterEachTest: () => peers.closeAll() })
  return { server, peers }
}

export class Peers {
  constructor () {
    this.all = []
  }

  /**
   * A y-websocket provider on `documentId` of `server` (its own Y.Doc).
   * BroadcastChannel is off: providers of one process would otherwise sync
   * with each other without the server.
   */
  provider (server, documentId, options = {}) {
    const doc = options.doc ?? new Y.Doc()
    const tracked = trackingWebSocket()
    const provider = new WebsocketProvider(server.yjsUrl, documentId, doc, {
      WebSocketPolyfill: tracked.WebSocket,
      disableBc: true,
      maxBackoffTime: 200,
      ...options.providerOptions
    })
    const statuses = []
    provider.on('status', (e) => statuses.push(e.status))
    const peer = {
      kind: 'y-websocket',
      doc,
      text: doc.getText(TEXT),
      provider,
      awareness: provider.awareness,
      statuses,
      closeCodes: tracked.closeCodes,
      sockets: tracked.sockets,
      get str () { return this.text.toString() },
      get synced () { return provider.synced && provider.wsconnected },
      get pending () { return 0 },
      get connectionCount () { return tracked.sockets.length },
      describe () { return `y-websocket ${short(this.str)} (synced ${provider.synced}, connected ${provider.wsconnected}, closes ${tracked.closeCodes.join(',')})` },
      destroy () {
        provider.destroy()
        // The provider does not stop its Awareness (whose timer would keep
        // the process alive).
        provider.awareness.destroy()
      }
    }
    this.all.push(peer)
    return peer
  }

  /**
   * A native CollabClient on `documentId` of `server`; `awareness: true`
   * binds a new Awareness; `token` / `getToken` are passed on (a server in
   * token mode).
   */
  native (server, documentId, options = {}) {
    const doc = options.doc ?? new Y.Doc()
    const awareness = options.awareness === true ? new Awareness(doc) : (options.awareness ?? null)
    const tracked = trackingWebSocket()
    const errors = []
    const client = new CollabClient({
      url: options.url ?? server.url,
      documentId,
      doc,
      WebSocket: tracked.WebSocket,
      backoff: { initialMs: 20, maxMs: 200 },
      awareness,
      ...(options.clientId ? { clientId: options.clientId } : {}),
      ...(options.token ? { token: options.token } : {}),
      ...(options.getToken ? { getToken: options.getToken } : {}),
      ...(options.backoff ? { backoff: options.backoff } : {})
    })
    client.on('error', (e) => errors.push(e))
    const peer = {
      kind: 'native',
      doc,
      text: doc.getText(TEXT),
      client,
      awareness,
      errors,
      closeCodes: tracked.closeCodes,
      sockets: tracked.sockets,
      get str () { return this.text.toString() },
      get synced () { return client.synced },
      get pending () { return client.pendingCount },
      describe () { return `native ${short(this.str)} (${client.status}, synced ${client.synced}, pending ${client.pendingCount}, errors ${JSON.stringify(errors.slice(-3))})` },
      destroy () {
        client.destroy()
        if (awareness && options.awareness === true) awareness.destroy()
      }
    }
    this.all.push(peer)
    return peer
  }

  /** Registers something with a `destroy()` (or `close()`) to be closed by `closeAll()`. */
  track (thing) {
    this.all.push(thing)
    return thing
  }

  closeAll () {
    for (const peer of this.all.splice(0)) {
      try {
        if (typeof peer.destroy === 'function') peer.destroy()
        else if (typeof peer.terminate === 'function') peer.terminate()
      } catch (_) {}
    }
  }
}

/** Waits until every peer is connected and caught up. */
export async function waitSynced (peers, timeout = 10000) {
  await waitFor(() => peers.every((p) => p.synced), {
    timeout,
    what: 'every peer to be synced',
    describe: () => peers.map((p) => p.describe()).join(' / ')
  })
}

/**
 * Waits until `peers` are synced, then has the first of them write `text`
 * into the (empty) document and waits until all of them have just that.
 */
export async function seedText (peers, text) {
  await waitSynced(peers)
  peers[0].text.insert(0, text)
  await waitConverged(peers, (t) => t === text)
}

/** Waits until every peer is synced, has nothing pending and the same text, and `check(text)` holds. */
export async function waitConverged (peers, check = () => true, timeout = 10000) {
  await waitFor(() => {
    const first = peers[0].str
    return peers.every((p) => p.synced && p.pending === 0 && p.str === first) && check(first)
  }, {
    timeout,
    what: 'convergence',
    describe: () => peers.map((p) => p.describe()).join(' / ')
  })
  return peers[0].str
}

/**
 * Reads a document's whole op log through the native protocol (every op
 * replayed to a fresh session; awareness messages ignored). Returns the ops
 * and the welcome. The third argument is the timeout (ms) or `{ timeout,
 * token }`; a server in token mode needs a `token` that may read the
 * document.
 */
export function readOpLog (server, documentId, options = {}) {
  const { timeout = 10000, token = null } = typeof options === 'number' ? { timeout: options } : options
  return readOpLogWith({ WebSocket, url: server.url, documentId, timeout, token })
}

/** The text a list of logged ops builds. */
export function textFromLog (log) {
  const doc = new Y.Doc()
  for (const op of log.ops) Y.applyUpdate(doc, Buffer.from(op.update, 'base64'))
  return doc.getText(TEXT).toString()
}
