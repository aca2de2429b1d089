// CollabClient against the real server in token mode (`auth.mode =
// "token"`): tokens from `getToken` on every connection, refreshed across
// close 4401 (token expired) without losing or doubling an op, a failing
// getToken, refused upgrades, read-only sessions, revocation (4403).

import assert from 'node:assert/strict'
import { test } from 'node:test'
import {
  occurrences, readOpLog, sleep, textFromLog, trackingWebSocket, uniqueDocId, useServer, waitConverged, waitFor, waitSynced
} from './helpers.mjs'
import { mintToken, nowSecs, revokeSubject, signToken, tokenEnv, tokenSource } from './tokens.mjs'

const { server, clients } = useServer({ env: tokenEnv() })

/** A token that may read every document: for the op log reader. */
function auditToken () {
  return signToken({ sub: 'auditor', docs: { '*': 'read' } })
}

function logOf (id) {
  return readOpLog(server.url, id, { token: auditToken() })
}

/**
 * A tracking WebSocket class (close codes, instances) whose sockets also
 * record when they were created and closed, and every message sent and
 * received, each with the index of its socket (`conn`).
 */
function recordingWebSocket () {
  const tracked = trackingWebSocket()
  const received = []
  const sent = []
  class Recording extends tracked.WebSocket {
    constructor (...args) {
      super(...args)
      const conn = tracked.sockets.length - 1
      this.createdAt = Date.now()
      this.closedAt = null
      this.on('message', (data) => received.push({ ...JSON.parse(data.toString()), conn }))
      this.on('close', () => { this.closedAt = Date.now() })
      const send = this.send.bind(this)
      this.send = (data, ...rest) => {
        sent.push({ ...JSON.parse(data), conn })
        return send(data, ...rest)
      }
    }
  }
  return { ...tracked, WebSocket: Recording, received, sent }
}

function tokenOfUrl (url) {
  return new URL(url).searchParams.get('token')
}

test('a client types across several token expiries (close 4401): getToken is called for each connection, every op is logged and acked once, a refreshing peer converges', { timeout: 60000 }, async () => {
  const id = uniqueDocId('refresh')
  // Tokens live 2 to 3 seconds: `exp` is a whole second 3 s ahead.
  const tokensA = tokenSource({ sub: 'alice', docs: { [id]: 'write' }, ttlSecs: 3 })
  const tokensB = tokenSource({ sub: 'bob', docs: { [id]: 'write' }, ttlSecs: 3 })
  const wsA = recordingWebSocket()
  const wsB = recordingWebSocket()
  // A back-off long enough to be seen: a refresh must not wait for it.
  const a = clients.open(server.url, id, { getToken: tokensA.getToken, WebSocket: wsA.WebSocket, backoff: { initialMs: 1500, maxMs: 3000 } })
  const b = clients.open(server.url, id, { getToken: tokensB.getToken, WebSocket: wsB.WebSocket })
  await waitSynced(a, b)

  const piecesA = []
  const piecesB = []
  const expiries = () => wsA.closeCodes.filter((c) => c === 4401).length
  const deadline = Date.now() + 30000
  for (let i = 0; expiries() < 3 || wsB.closeCodes.filter((c) => c === 4401).length < 2; i++) {
    assert.ok(Date.now() < deadline, `expiries: a ${wsA.closeCodes}, b ${wsB.closeCodes}`)
    const p = `[a${i}]`
    piecesA.push(p)
    a.insert(p)
    if (i % 4 === 0) {
      const q = `{b${i}}`
      piecesB.push(q)
      b.insert(q, 0)
    }
    await sleep(25)
  }
  const last = '[a-last]'
  piecesA.push(last)
  a.insert(last)
  const text = await waitConverged([a, b], (t) => t.includes(last) && t.includes(piecesB.at(-1)), 15000)
  // Both connected and caught up: stop here, before the next expiry, and
  // check what happened until now.
  // (The closes of disconnect() come later, after these checks.)
  a.client.disconnect()
  b.client.disconnect()
  const closesA = [...wsA.closeCodes]
  const closesB = [...wsB.closeCodes]
  for (const p of [...piecesA, ...piecesB]) assert.equal(occurrences(text, p), 1, `${p} in ${text}`)

  // Every connection ended by the token's expiry, nothing else.
  assert.ok(closesA.length >= 3 && closesA.every((c) => c === 4401), `close codes ${closesA}`)
  assert.ok(closesB.length >= 2 && closesB.every((c) => c === 4401), `close codes ${closesB}`)
  assert.deepEqual([...a.errors, ...b.errors], [])
  // getToken was called before each connection, and each used the token of its call.
  for (const [tokens, ws, closes] of [[tokensA, wsA, closesA], [tokensB, wsB, closesB]]) {
    assert.equal(tokens.calls.length, ws.sockets.length)
    assert.equal(ws.sockets.length, closes.length + 1)
    assert.deepEqual(ws.sockets.map((s) => tokenOfUrl(s.url)), tokens.tokens)
    assert.equal(new Set(tokens.tokens).size, tokens.tokens.length, 'a fresh token each time')
    assert.deepEqual(tokens.calls.map((c) => c.reason), ['connect', ...closes.map(() => 'expired')])
    assert.ok(tokens.calls.every((c) => c.documentId === id))
  }
  // Reconnected at once after each expiry, not after the back-off (1.5 s).
  for (let i = 1; i < wsA.sockets.length; i++) {
    const gap = wsA.sockets[i].createdAt - wsA.sockets[i - 1].closedAt
    assert.ok(gap < 1000, `reconnect ${i} took ${gap} ms`)
  }

  // Each op of A was sent at most once per connection, and acked once as
  // committed: by one ack with its server_seq, or (its ack lost with the
  // expired connection) counted by a later welcome's last_client_op_id.
  // A duplicate ack answers only a resend, after a reconnect, of an op
  // still being committed when the welcome was written.
  const sends = new Map()
  for (const m of wsA.sent.filter((m) => m.type === 'op')) {
    const conns = sends.get(m.client_op_id) ?? []
    assert.ok(!conns.includes(m.conn), `op ${m.client_op_id} sent twice on connection ${m.conn}`)
    sends.set(m.client_op_id, [...conns, m.conn])
  }
  const acks = new Map()
  for (const m of wsA.received.filter((m) => m.type === 'ack')) {
    const entry = acks.get(m.client_op_id) ?? { fresh: 0, duplicate: 0 }
    if (m.duplicate) {
      entry.duplicate++
      assert.ok((sends.get(m.client_op_id) ?? []).some((conn) => conn < m.conn), `duplicate ack of op ${m.client_op_id} not sent on an earlier connection`)
    } else {
      entry.fresh++
    }
    acks.set(m.client_op_id, entry)
  }
  const welcomes = wsA.received.filter((m) => m.type === 'welcome')
  const accepted = Math.max(0, ...welcomes.map((m) => m.last_client_op_id ?? 0))
  for (let opId = 1; opId <= piecesA.length; opId++) {
    const { fresh, duplicate } = acks.get(opId) ?? { fresh: 0, duplicate: 0 }
    assert.ok(sends.has(opId), `op ${opId} never sent`)
    assert.ok(fresh + duplicate <= 1, `op ${opId}: ${fresh} acks, ${duplicate} duplicate acks`)
    assert.ok(fresh === 1 || duplicate === 1 || opId <= accepted, `op ${opId} never acknowledged (accepted up to ${accepted})`)
  }
  assert.equal(welcomes.length, wsA.sockets.length)

  // The log holds each op once, in the order typed.
  const log = await waitFor(async () => {
    const l = await logOf(id)
    return textFromLog(l) === text && l
  }, { what: 'the op log to hold the text' })
  const opIds = (clientId) => log.ops.filter((op) => op.client_id === clientId).map((op) => op.client_op_id)
  assert.deepEqual(opIds(a.client.clientId), piecesA.map((_, i) => i + 1))
  assert.deepEqual(opIds(b.client.clientId), piecesB.map((_, i) => i + 1))
  assert.equal(log.ops.length, piecesA.length + piecesB.length)
})

test('getToken rejecting once: error token_failed, then the retry connects and syncs', { timeout: 20000 }, async () => {
  const id = uniqueDocId('token-failed')
  const calls = []
  const getToken = (context) => {
    calls.push(context.reason)
    if (calls.length === 1) return Promise.reject(new Error('the token backend is down'))
    return Promise.resolve(signToken({ sub: 'carol', docs: { [id]: 'write' } }))
  }
  const tracked = trackingWebSocket()
  const a = clients.open(server.url, id, { getToken, WebSocket: tracked.WebSocket })
  a.insert('queued;')
  await waitSynced(a)
  assert.deepEqual(a.errors, [{ code: 'token_failed', message: 'getToken() failed: the token backend is down' }])
  assert.deepEqual(calls, ['connect', 'connect'])
  assert.equal(tracked.sockets.length, 1, 'no socket without a token')
  assert.deepEqual(a.events.slice(0, 3), ['status:connecting', 'status:disconnected', 'status:connecting'])
  await waitFor(() => a.client.pendingCount === 0)
  const log = await logOf(id)
  assert.equal(textFromLog(log), 'queued;')
})

test('refused upgrades: connect_failed with the HTTP status (401 bad token, 403 no grant), retried with a new token from getToken', { timeout: 20000 }, async () => {
  const id = uniqueDocId('refused')
  const given = [
    'not-a-jwt',
    signToken({ sub: 'dave', docs: { 'elsewhere-*': 'write' } }),
    signToken({ sub: 'dave', docs: { [id]: 'write' } })
  ]
  const calls = []
  const getToken = async (context) => {
    calls.push(context.reason)
    return given[Math.min(calls.length - 1, given.length - 1)]
  }
  const tracked = trackingWebSocket()
  const a = clients.open(server.url, id, { getToken, WebSocket: tracked.WebSocket })
  await waitSynced(a)
  assert.deepEqual(a.errors.map((e) => [e.code, e.status, e.error]), [
    ['connect_failed', 401, 'unauthorized'],
    ['connect_failed', 403, 'forbidden']
  ])
  for (const e of a.errors) assert.match(e.message, /^the server refused the connection with HTTP 40[13] (unauthorized|forbidden): ./)
  assert.deepEqual(calls, ['connect', 'reconnect', 'reconnect'])
  assert.deepEqual(tracked.closeCodes, [1006, 1006])
})

test('a token that is already expired (accepted within the leeway, closed with 4401 at once) does not make the client spin', { timeout: 20000 }, async () => {
  const id = uniqueDocId('stale-token')
  const calls = []
  // The server accepts `exp` up to auth.leeway_secs (5) in the past at the
  // upgrade, then closes the session at once: exp is its deadline.
  const getToken = async () => {
    calls.push(Date.now())
    return signToken({ sub: 'erin', docs: { [id]: 'write' }, iat: nowSecs() - 10, ttlSecs: 8 })
  }
  const tracked = trackingWebSocket()
  const a = clients.open(server.url, id, { getToken, WebSocket: tracked.WebSocket, backoff: { initialMs: 50, maxMs: 400 } })
  await waitFor(() => tracked.closeCodes.length >= 3, { what: 'three closes' })
  await sleep(2000)
  assert.ok(tracked.closeCodes.every((c) => c === 4401), `close codes ${tracked.closeCodes}`)
  // At once after the first 4401, then 100, 200, 400, 400… ms.
  assert.ok(tracked.sockets.length <= 12, `${tracked.sockets.length} connections in about 2 s`)
  // One getToken() call per connection (plus, maybe, the one in progress).
  assert.ok([0, 1].includes(calls.length - tracked.sockets.length), `${calls.length} calls, ${tracked.sockets.length} connections`)
  assert.ok(a.errors.length >= 1 && a.errors.every((e) => e.code === 'token_expired' && e.closeCode === 4401), JSON.stringify(a.errors))
})

test('a read-only token: the client gets forbidden for each local edit, nothing reaches the log or the others, and it keeps receiving', { timeout: 20000 }, async () => {
  const id = uniqueDocId('read-only')
  const writer = clients.open(server.url, id, { getToken: () => signToken({ sub: 'writer', docs: { [id]: 'write' } }) })
  const tracked = trackingWebSocket()
  const reader = clients.open(server.url, id, {
    WebSocket: tracked.WebSocket,
    // The exact id is more specific than the prefix: read. (A plain string: getToken may be synchronous.)
    getToken: () => signToken({ sub: 'reader', docs: { [id.slice(0, 6) + '*']: 'write', [id]: 'read' } })
  })
  await waitSynced(writer, reader)
  writer.insert('w1;')
  await waitFor(() => reader.str === 'w1;')

  reader.insert('[r1]')
  reader.insert('[r2]', 0)
  await waitFor(() => reader.errors.length === 2, { what: 'two forbidden errors', describe: () => JSON.stringify(reader.errors) })
  assert.deepEqual(reader.errors.map((e) => [e.code, e.client_op_id]), [['forbidden', 1], ['forbidden', 2]])
  assert.equal(reader.client.pendingCount, 0, 'refused ops are not kept for a resend')

  writer.insert('w2;')
  await waitFor(() => reader.str.includes('w2;'), { what: 'the reader to get w2', describe: () => reader.str })
  assert.equal(writer.str, 'w1;w2;')
  assert.equal(reader.client.status, 'connected')
  assert.equal(tracked.sockets.length, 1, 'the connection stayed open')
  assert.deepEqual(tracked.closeCodes, [])

  const log = await logOf(id)
  assert.equal(textFromLog(log), 'w1;w2;')
  assert.ok(log.ops.every((op) => op.client_id === writer.client.clientId), JSON.stringify(log.ops.map((op) => op.client_id)))
  // A newcomer (a fixed token, minted by the server) gets the writer's text only.
  const { token } = await mintToken(server, { sub: 'late', docs: { [id]: 'read' }, ttlSecs: 60 })
  const late = clients.open(server.url, id, { token })
  await waitSynced(late)
  assert.equal(late.str, 'w1;w2;')
})

test('revocation: the session is closed with 4403, the client reports access_revoked and comes back with a token issued later', { timeout: 20000 }, async () => {
  const id = uniqueDocId('revoked')
  const sub = `revoked-${process.pid}-${Date.now()}`
  const tokens = tokenSource({ sub, docs: { [id]: 'write' } })
  // tokenSource signs `iat` when called: the one of the revocation's second is refused.
  const getToken = (context) => tokens.getToken(context)
  const trackedA = trackingWebSocket()
  const a = clients.open(server.url, id, { getToken, WebSocket: trackedA.WebSocket })
  const trackedB = trackingWebSocket()
  const b = clients.open(server.url, id, { WebSocket: trackedB.WebSocket, getToken: () => signToken({ sub: 'bystander', docs: { [id]: 'write' } }) })
  await waitSynced(a, b)
  a.insert('before;')
  await waitConverged([a, b], (t) => t === 'before;')

  await revokeSubject(server, sub)
  await waitFor(() => a.errors.some((e) => e.code === 'access_revoked'), { what: 'access_revoked', describe: () => JSON.stringify(a.errors) })
  assert.deepEqual(a.errors[0], { code: 'access_revoked', closeCode: 4403, message: 'access revoked' })
  assert.equal(trackedA.closeCodes[0], 4403)
  a.insert('after;')

  // Tokens issued in the second of the revocation are refused (401); one
  // from a later second works, and the edit made meanwhile goes through.
  const text = await waitConverged([a, b], (t) => t === 'before;after;')
  assert.equal(text, 'before;after;')
  assert.ok(a.errors.slice(1).every((e) => e.code === 'connect_failed' && e.status === 401), JSON.stringify(a.errors))
  assert.equal(tokens.calls[1].reason, 'revoked')
  assert.deepEqual(trackedB.closeCodes, [], 'other subjects are not touched')
  assert.deepEqual(b.errors, [])
  const log = await logOf(id)
  assert.equal(textFromLog(log), 'before;after;')
  assert.equal(log.ops.length, 2)
})
