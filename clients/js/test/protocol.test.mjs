// CollabClient against a scripted fake server: behaviour the real server
// only shows in failure cases (ordering violations, fatal closes, reused
// client ids, `unavailable` ops), plus the base64 helpers.

import assert from 'node:assert/strict'
import { afterEach, test } from 'node:test'
import WebSocket, { WebSocketServer } from 'ws'
import * as Y from 'yjs'
import { CollabClient, Emitter, fromBase64, toBase64 } from '../src/index.js'
import { sleep, waitFor, TEXT } from './helpers.mjs'

/**
 * A fake server: `script(conn)` runs for each connection; `conn.next()`
 * resolves with the next message the client sent.
 */
class FakeServer {
  static async start (script) {
    const server = new FakeServer(script)
    await new Promise((resolve) => server.wss.once('listening', resolve))
    return server
  }

  constructor (script) {
    this.connections = []
    this.failures = []
    this.wss = new WebSocketServer({ host: '127.0.0.1', port: 0 })
    this.wss.on('connection', (ws, req) => {
      const inbox = []
      const waiters = []
      const conn = {
        index: this.connections.length,
        path: req.url,
        ws,
        received: [],
        send: (msg) => ws.send(JSON.stringify(msg)),
        next: (timeout = 5000) => new Promise((resolve, reject) => {
          if (inbox.length) return resolve(inbox.shift())
          if (ws.readyState !== WebSocket.OPEN) return reject(closedError())
          const timer = setTimeout(() => reject(new Error(`connection ${conn.index}: no message in time`)), timeout)
          waiters.push({
            resolve: (msg) => { clearTimeout(timer); resolve(msg) },
            reject: (e) => { clearTimeout(timer); reject(e) }
          })
        }),
        closed: new Promise((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })))
      }
      // A script waiting for a message of a connection that closed just ends.
      ws.on('close', () => { for (const w of waiters.splice(0)) w.reject(closedError()) })
      ws.on('message', (data) => {
        const msg = JSON.parse(data.toString())
        conn.received.push(msg)
        const waiter = waiters.shift()
        if (waiter) waiter.resolve(msg)
        else inbox.push(msg)
      })
      this.connections.push(conn)
      Promise.resolve(script(conn)).catch((e) => { if (!e.connectionClosed) this.failures.push(e) })
    })
  }

  get url () { return `ws://127.0.0.1:${this.wss.address().port}` }

  async close () {
    for (const ws of this.wss.clients) ws.terminate()
    await new Promise((resolve) => this.wss.close(resolve))
  }
}

function closedError () {
  const e = new Error('connection closed')
  e.connectionClosed = true
  return e
}

/** Chained Yjs updates inserting each of `pieces` at the end of the text. */
function updatesFor (...pieces) {
  const doc = new Y.Doc()
  const updates = []
  doc.on('update', (u) => updates.push(toBase64(u)))
  for (const p of pieces) doc.getText(TEXT).insert(doc.getText(TEXT).length, p)
  return { updates, state: toBase64(Y.encodeStateAsUpdate(doc)) }
}

const cleanup = []
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn()
})

function openClient (url, options = {}) {
  const doc = new Y.Doc()
  const errors = []
  const client = new CollabClient({ url, documentId: 'doc-1', doc, WebSocket, backoff: { initialMs: 20, maxMs: 100 }, ...options })
  client.on('error', (e) => errors.push(e))
  cleanup.push(() => client.destroy())
  return { doc, client, errors, text: doc.getText(TEXT) }
}

async function fake (script) {
  const server = await FakeServer.start(script)
  cleanup.push(async () => {
    await server.close()
    assert.deepEqual(server.failures, [], 'fake server script failed')
  })
  return server
}

test('base64 helpers match the standard padded alphabet', () => {
  for (const length of [0, 1, 2, 3, 4, 5, 100, 70000]) {
    const bytes = Uint8Array.from({ length }, (_, i) => (i * 37 + 11) & 255)
    const encoded = toBase64(bytes)
    assert.equal(encoded, Buffer.from(bytes).toString('base64'))
    assert.deepEqual(fromBase64(encoded), bytes)
  }
  assert.equal(toBase64(new Uint8Array([0, 0])), 'AAA=')
  assert.throws(() => fromBase64('not base64!'))
})

test('the emitter survives throwing listeners and supports once/off', async () => {
  const e = new Emitter()
  const seen = []
  const uncaught = []
  const saved = globalThis.reportError
  globalThis.reportError = (err) => uncaught.push(err.message)
  try {
    e.on('x', () => { throw new Error('boom') })
    e.once('x', (v) => seen.push(`once ${v}`))
    const off = (v) => seen.push(`off ${v}`)
    e.on('x', off)
    e.emit('x', 1)
    e.off('x', off)
    e.emit('x', 2)
  } finally {
    if (saved === undefined) delete globalThis.reportError
    else globalThis.reportError = saved
  }
  assert.deepEqual(seen, ['once 1', 'off 1'])
  assert.deepEqual(uncaught, ['boom', 'boom'])
})

test('hello, url and first welcome', async () => {
  const { updates, state } = updatesFor('hi')
  const server = await fake(async (conn) => {
    await conn.next()
    conn.send({ type: 'welcome', document_id: 'doc 1', epoch: 'e1', server_seq: 1, recovery: 'snapshot', last_client_op_id: null })
    conn.send({ type: 'snapshot', server_seq: 1, state })
  })
  assert.equal(updates.length, 1)
  const { client, text } = openClient(`${server.url}/`, { documentId: 'doc 1', clientId: 'me' })
  await waitFor(() => client.synced)
  assert.equal(server.connections[0].path, '/ws/doc%201')
  assert.deepEqual(server.connections[0].received[0], { type: 'hello', protocol: 1, client_id: 'me' })
  assert.equal(text.toString(), 'hi')
  assert.equal(client.lastSeenServerSeq, 1)
  assert.equal(client.epoch, 'e1')
})

test('an out-of-order op is not applied: the client reconnects and gets a replay', async () => {
  const { updates } = updatesFor('a', 'b', 'c')
  const server = await fake(async (conn) => {
    const hello = await conn.next()
    if (conn.index === 0) {
      assert.equal(hello.last_seen_server_seq, undefined)
      conn.send({ type: 'welcome', document_id: 'doc-1', epoch: 'e1', server_seq: 1, recovery: 'snapshot', last_client_op_id: null })
      conn.send({ type: 'snapshot', server_seq: 1, state: updates[0] })
      // seq 2 is skipped
      conn.send({ type: 'op', server_seq: 3, client_id: 'other', client_op_id: 2, update: updates[2] })
      const closed = await conn.closed
      assert.equal(closed.code, 4000)
    } else {
      assert.deepEqual(hello, { type: 'hello', protocol: 1, client_id: hello.client_id, last_seen_server_seq: 1, epoch: 'e1' })
      conn.send({ type: 'welcome', document_id: 'doc-1', epoch: 'e1', server_seq: 3, recovery: 'replay', last_client_op_id: null })
      conn.send({ type: 'op', server_seq: 2, client_id: 'other', client_op_id: 1, update: updates[1] })
      conn.send({ type: 'op', server_seq: 3, client_id: 'other', client_op_id: 2, update: updates[2] })
    }
  })
  const { client, text, errors } = openClient(server.url)
  const syncedTexts = []
  client.on('synced', (v) => syncedTexts.push([v, text.toString()]))
  await waitFor(() => server.connections.length === 2 && client.synced && client.lastSeenServerSeq === 3)
  assert.equal(text.toString(), 'abc')
  // Synced after the snapshot ("a"), never with "c" applied before "b".
  assert.deepEqual(syncedTexts, [[true, 'a'], [false, 'a'], [true, 'abc']])
  assert.deepEqual(errors.map((e) => e.code), ['sequence_gap'])
})

test('close 1008 is reported and not retried until connect()', async () => {
  const server = await fake(async (conn) => {
    await conn.next()
    conn.send({ type: 'error', code: 'unsupported_protocol', message: 'protocol 1 is not supported' })
    conn.ws.close(1008, 'protocol 1 is not supported')
  })
  const { client, errors } = openClient(server.url)
  await waitFor(() => errors.length === 2)
  assert.deepEqual(errors, [
    { code: 'unsupported_protocol', message: 'protocol 1 is not supported' },
    { code: 'closed_policy_violation', closeCode: 1008, message: 'protocol 1 is not supported' }
  ])
  assert.equal(client.status, 'disconnected')
  await sleep(300) // back-off is 20 ms: a retry would have happened by now
  assert.equal(server.connections.length, 1)
  client.connect()
  await waitFor(() => server.connections.length === 2)
})

test('close 1009 is reported and not retried', async () => {
  const server = await fake(async (conn) => {
    await conn.next()
    conn.ws.close(1009, 'too large')
  })
  const { client, errors } = openClient(server.url)
  await waitFor(() => errors.length === 1)
  assert.deepEqual(errors, [{ code: 'closed_too_large', closeCode: 1009, message: 'too large' }])
  await sleep(300)
  assert.equal(server.connections.length, 1)
  assert.equal(client.status, 'disconnected')
})

test('close 4413 (document too large) is reported and not retried', async () => {
  const server = await fake(async (conn) => {
    await conn.next()
    conn.ws.close(4413, 'document too large; an op was refused')
  })
  const { client, errors } = openClient(server.url)
  await waitFor(() => errors.length === 1)
  assert.deepEqual(errors, [{ code: 'closed_document_too_large', closeCode: 4413, message: 'document too large; an op was refused' }])
  await sleep(300)
  assert.equal(server.connections.length, 1)
  assert.equal(client.status, 'disconnected')
})

test('closes other than 1008/1009/4413 are retried with back-off', async () => {
  const codes = [1001, 1011, 1012, 1013, 4999]
  const server = await fake(async (conn) => {
    await conn.next()
    if (conn.index < codes.length) conn.ws.close(codes[conn.index], 'bye')
    else if (conn.index === codes.length) conn.ws.terminate() // 1006
    else {
      conn.send({ type: 'welcome', document_id: 'doc-1', epoch: 'e', server_seq: 0, recovery: 'snapshot', last_client_op_id: null })
      conn.send({ type: 'snapshot', server_seq: 0, state: 'AAA=' })
    }
  })
  const { client, errors } = openClient(server.url)
  await waitFor(() => client.synced)
  assert.equal(server.connections.length, codes.length + 2)
  assert.deepEqual(errors, [])
})

test('pending ops: renumbered above an earlier instance\'s ops, dropped when accepted, resent otherwise', async () => {
  const sent = []
  const server = await fake(async (conn) => {
    const hello = await conn.next()
    if (conn.index === 0) {
      assert.equal(hello.client_id, 'reused-id')
      // An earlier instance with the same client id wrote ops up to 7.
      conn.send({ type: 'welcome', document_id: 'doc-1', epoch: 'e', server_seq: 0, recovery: 'replay', last_client_op_id: 7 })
      for (let i = 0; i < 3; i++) sent.push(await conn.next())
      conn.send({ type: 'ack', client_op_id: sent[0].client_op_id, server_seq: 1 })
      await waitFor(() => client.pendingCount === 2)
      conn.ws.close(1012, 'document restarted')
    } else {
      assert.equal(hello.last_seen_server_seq, 1)
      // Op 9 was committed too (its ack was lost): it comes back as an op.
      conn.send({ type: 'welcome', document_id: 'doc-1', epoch: 'e', server_seq: 2, recovery: 'replay', last_client_op_id: 9 })
      conn.send({ type: 'op', server_seq: 2, client_id: 'reused-id', client_op_id: 9, update: sent[1].update })
      const resent = await conn.next()
      sent.push(resent)
      conn.send({ type: 'ack', client_op_id: resent.client_op_id, server_seq: 3 })
    }
  })
  const { client, text } = openClient(server.url, { clientId: 'reused-id', connect: false })
  text.insert(0, 'x')
  text.insert(1, 'y')
  text.insert(2, 'z')
  assert.equal(client.pendingCount, 3)
  client.connect()
  await waitFor(() => sent.length === 4 && client.pendingCount === 0 && client.lastSeenServerSeq === 3)
  assert.deepEqual(sent.map((m) => m.client_op_id), [8, 9, 10, 10])
  assert.equal(sent[3].update, sent[2].update)
  assert.equal(text.toString(), 'xyz')
  // New local ops continue above everything used so far.
  text.insert(3, '!')
  await waitFor(() => server.connections[1].received.length === 3)
  assert.equal(server.connections[1].received[2].client_op_id, 11)
})

/**
 * A fake server whose first connection acks op 1, refuses op 2 (and so op
 * 3) and closes with 1013, and whose later connections welcome the client
 * with `lastClientOpId` and ack everything. Returns every op received.
 */
async function refusingServer (lastClientOpId) {
  const received = []
  const server = await fake(async (conn) => {
    const hello = await conn.next()
    if (conn.index === 0) {
      conn.send({ type: 'welcome', document_id: 'doc-1', epoch: 'e', server_seq: 0, recovery: 'snapshot', last_client_op_id: null })
      conn.send({ type: 'snapshot', server_seq: 0, state: 'AAA=' })
      received.push(await conn.next(), await conn.next(), await conn.next())
      conn.send({ type: 'ack', client_op_id: 1, server_seq: 1 })
      // Op 2 refused; the server refuses every later op of the session and
      // closes it.
      conn.send({ type: 'error', code: 'unavailable', message: 'commit failed', client_op_id: 2 })
      conn.send({ type: 'error', code: 'unavailable', message: 'an earlier op was refused', client_op_id: 3 })
      conn.ws.close(1013, 'an op was refused')
    } else {
      conn.send({ type: 'welcome', document_id: 'doc-1', epoch: 'e', server_seq: lastClientOpId, recovery: 'replay', last_client_op_id: lastClientOpId })
      // Accepted ops after the last one acked (seq 1) are replayed.
      for (let seq = 2; seq <= lastClientOpId; seq++) {
        conn.send({ type: 'op', server_seq: seq, client_id: hello.client_id, client_op_id: seq, update: received[seq - 1].update })
      }
      for (;;) {
        const msg = await conn.next()
        received.push(msg)
        conn.send({ type: 'ack', client_op_id: msg.client_op_id, server_seq: msg.client_op_id })
      }
    }
  })
  return { server, received }
}

test('an op refused as unavailable keeps its number: after the reconnect the ops above last_client_op_id are resent in order', async () => {
  // The refused op did not land: ops 2 and 3 come again, as 2 and 3.
  const { server, received } = await refusingServer(1)
  const { client, text, errors } = openClient(server.url)
  await waitFor(() => client.synced)
  text.insert(0, 'a')
  text.insert(1, 'b')
  text.insert(2, 'c')
  await waitFor(() => server.connections.length === 2 && client.pendingCount === 0 && client.synced, { describe: () => JSON.stringify(received) })
  // The client closes on the first `unavailable`; the second error may
  // come before that.
  assert.deepEqual(errors[0], { code: 'unavailable', message: 'commit failed', client_op_id: 2 })
  assert.ok(errors.length <= 2, JSON.stringify(errors))
  assert.deepEqual(received.map((m) => m.client_op_id), [1, 2, 3, 2, 3])
  assert.equal(received[3].update, received[1].update)
  assert.equal(received[4].update, received[2].update)
  // New ops continue above.
  text.insert(3, 'd')
  await waitFor(() => received.length === 6)
  assert.equal(received[5].client_op_id, 4)
  assert.equal(text.toString(), 'abcd')
})

test('an op refused as unavailable that did land (welcome.last_client_op_id covers it) is not resent', async () => {
  // A commit that reached the database but was reported failed: the
  // welcome after the reconnect says op 2 was accepted; only op 3 is resent.
  const { server, received } = await refusingServer(2)
  const { client, text } = openClient(server.url)
  await waitFor(() => client.synced)
  text.insert(0, 'x')
  text.insert(1, 'y')
  text.insert(2, 'z')
  await waitFor(() => server.connections.length === 2 && client.pendingCount === 0 && client.synced, { describe: () => JSON.stringify(received) })
  assert.deepEqual(received.map((m) => m.client_op_id), [1, 2, 3, 3])
  assert.equal(received[3].update, received[2].update)
  assert.equal(client.lastSeenServerSeq, 3)
  assert.equal(text.toString(), 'xyz')
})

// ---------------------------------------------------------------------------
// Access tokens: `token`, `getToken`, closes 4401 (token expired) and 4403
// (access revoked). The real server's side is in auth.test.mjs.

/** A welcome for an empty document (replay from 0). */
function emptyWelcome (conn, extra = {}) {
  conn.send({ type: 'welcome', document_id: 'doc-1', epoch: 'e1', server_seq: 0, recovery: 'replay', last_client_op_id: null, ...extra })
}

function tokenOf (path) {
  return new URL(path, 'ws://x').searchParams.get('token')
}

test('a fixed token goes URL-encoded as ?token=; getToken wins over it', async () => {
  const server = await fake(async (conn) => {
    await conn.next()
    emptyWelcome(conn)
  })
  const fixed = openClient(server.url, { token: 'a b+/=&c' })
  await waitFor(() => fixed.client.synced)
  assert.equal(server.connections[0].path, '/ws/doc-1?token=a%20b%2B%2F%3D%26c')
  assert.equal(fixed.client.url, `${server.url}/ws/doc-1`, 'the token is not part of `url`')

  const calls = []
  const both = openClient(server.url, { token: 'ignored', getToken: (context) => { calls.push(context); return 'from-getToken' } })
  await waitFor(() => both.client.synced)
  assert.equal(tokenOf(server.connections[1].path), 'from-getToken')
  assert.deepEqual(calls, [{ documentId: 'doc-1', reason: 'connect' }])
  assert.throws(() => openClient(server.url, { getToken: 'nope' }), /`getToken` must be a function/)
  assert.throws(() => openClient(server.url, { token: '' }), /`token` must be a non-empty string/)
})

test('close 4401: getToken is called again and the client reconnects at once, resuming with last_seen_server_seq, epoch and its pending ops', async () => {
  const { updates } = updatesFor('x')
  const server = await fake(async (conn) => {
    const hello = await conn.next()
    if (conn.index === 0) {
      assert.equal(tokenOf(conn.path), 'token-1')
      emptyWelcome(conn)
      conn.send({ type: 'op', server_seq: 1, client_id: 'other', client_op_id: 1, update: updates[0] })
      const op = await conn.next()
      assert.equal(op.client_op_id, 1)
      // Not acked: the token expires with the op in flight.
      conn.ws.close(4401, 'token expired')
    } else {
      assert.equal(tokenOf(conn.path), 'token-2')
      assert.deepEqual(hello, { type: 'hello', protocol: 1, client_id: hello.client_id, last_seen_server_seq: 1, epoch: 'e1' })
      emptyWelcome(conn, { server_seq: 1 })
      const op = await conn.next()
      assert.equal(op.client_op_id, 1)
      conn.send({ type: 'ack', client_op_id: 1, server_seq: 2 })
    }
  })
  const calls = []
  // A back-off of 5 s: the reconnect must not wait for it.
  const { client, text, errors } = openClient(server.url, {
    backoff: { initialMs: 5000, maxMs: 5000 },
    getToken: async ({ reason }) => { calls.push(reason); return `token-${calls.length}` }
  })
  await waitFor(() => client.synced)
  text.insert(1, 'y')
  const started = Date.now()
  await waitFor(() => server.connections.length === 2 && client.pendingCount === 0 && client.synced, { timeout: 3000 })
  assert.ok(Date.now() - started < 2000)
  assert.deepEqual(calls, ['connect', 'expired'])
  assert.deepEqual(errors, [])
  assert.equal(text.toString(), 'xy')
  assert.equal(client.lastSeenServerSeq, 2)
})

test('4401 again right after a refresh: error token_expired and back-off instead of a tight loop', async () => {
  const server = await fake(async (conn) => {
    await conn.next()
    emptyWelcome(conn)
    conn.ws.close(4401, 'token expired')
  })
  const calls = []
  const { client, errors } = openClient(server.url, {
    backoff: { initialMs: 100, maxMs: 400 },
    getToken: () => { calls.push(Date.now()); return 'stale' }
  })
  await waitFor(() => server.connections.length >= 2)
  await sleep(1000)
  // At once, then after 200, 400, 400 ms: about 5 in a second, not hundreds.
  assert.ok(server.connections.length >= 3 && server.connections.length <= 7, `${server.connections.length} connections`)
  assert.ok([0, 1].includes(calls.length - server.connections.length))
  assert.ok(errors.length >= 1)
  assert.ok(errors.every((e) => e.code === 'token_expired' && e.closeCode === 4401), JSON.stringify(errors))
  client.disconnect()
})

test('a refresh after a session that lasted is at once again', async () => {
  const server = await fake(async (conn) => {
    await conn.next()
    emptyWelcome(conn)
    if (conn.index < 3) {
      await sleep(1100)
      conn.ws.close(4401, 'token expired')
    }
  })
  const { client, errors } = openClient(server.url, { backoff: { initialMs: 5000, maxMs: 5000 }, getToken: async () => 't' })
  await waitFor(() => server.connections.length === 4 && client.synced, { timeout: 8000 })
  assert.deepEqual(errors, [])
})

test('with a fixed token, 4401 and 4403 are reported and not retried: it cannot be renewed', async () => {
  const codes = [4401, 4403]
  const server = await fake(async (conn) => {
    await conn.next()
    emptyWelcome(conn)
    conn.ws.close(codes[conn.index], conn.index === 0 ? 'token expired' : 'access revoked')
  })
  const { client, errors } = openClient(server.url, { token: 'fixed' })
  await waitFor(() => errors.length === 1)
  assert.deepEqual(errors, [{ code: 'token_expired', closeCode: 4401, message: 'token expired' }])
  await sleep(300) // back-off is 20 ms: a retry would have happened by now
  assert.equal(server.connections.length, 1)
  assert.equal(client.status, 'disconnected')
  client.connect()
  await waitFor(() => errors.length === 2)
  assert.deepEqual(errors[1], { code: 'access_revoked', closeCode: 4403, message: 'access revoked' })
  await sleep(300)
  assert.equal(server.connections.length, 2)
})

test('close 4403 with getToken: error access_revoked, getToken called again after a back-off; the app may stop there', async () => {
  const server = await fake(async (conn) => {
    await conn.next()
    emptyWelcome(conn)
    if (conn.index === 0) conn.ws.close(4403, 'access revoked')
  })
  const calls = []
  const { client, errors } = openClient(server.url, {
    getToken: async ({ reason }) => { calls.push(reason); return `t${calls.length}` }
  })
  await waitFor(() => server.connections.length === 2 && client.synced)
  assert.deepEqual(errors, [{ code: 'access_revoked', closeCode: 4403, message: 'access revoked' }])
  assert.deepEqual(calls, ['connect', 'revoked'])
  assert.equal(tokenOf(server.connections[1].path), 't2')

  // An app that stops on revocation: disconnect() inside getToken.
  const stopping = await fake(async (conn) => {
    await conn.next()
    emptyWelcome(conn)
    conn.ws.close(4403, 'access revoked')
  })
  const stopper = openClient(stopping.url, {
    getToken: async ({ reason }) => {
      if (reason === 'revoked') {
        stopper.client.disconnect()
        throw new Error('signed out')
      }
      return 't'
    }
  })
  await waitFor(() => stopper.errors.length === 1)
  await sleep(300)
  assert.equal(stopping.connections.length, 1)
  assert.deepEqual(stopper.errors.map((e) => e.code), ['access_revoked'], 'a getToken failing after disconnect() is not reported')
  assert.equal(stopper.client.status, 'disconnected')
})

test('getToken: a non-string is token_failed; disconnect() while it runs opens nothing; connect() asks again', async () => {
  const server = await fake(async (conn) => {
    await conn.next()
    emptyWelcome(conn)
  })
  let release
  const answers = [undefined, new Promise((resolve) => { release = resolve }), 'ok']
  const calls = []
  const { client, errors } = openClient(server.url, { getToken: (context) => { calls.push(context.reason); return answers[calls.length - 1] } })
  await waitFor(() => calls.length === 2)
  assert.deepEqual(errors, [{ code: 'token_failed', message: 'getToken() failed: getToken() gave undefined instead of a token string' }])
  assert.equal(client.status, 'connecting')
  client.disconnect()
  assert.equal(client.status, 'disconnected')
  release('late')
  await sleep(100)
  assert.equal(server.connections.length, 0, 'the token that came after disconnect() is not used')
  client.connect()
  await waitFor(() => client.synced)
  assert.deepEqual(calls, ['connect', 'connect', 'connect'])
  assert.equal(tokenOf(server.connections[0].path), 'ok')
})
