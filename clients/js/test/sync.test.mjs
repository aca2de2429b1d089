// CollabClient against the real collab-engine binary: convergence, late
// joiners, offline edits, events, resends without duplicates.

import assert from 'node:assert/strict'
import { test } from 'node:test'
import {
  occurrences, opKeys, readOpLog, textFromLog, trackingWebSocket,
  uniqueDocId, useServer, waitConverged, waitFor, waitSynced
} from './helpers.mjs'

const { server, clients, proxy: startProxy } = useServer()

test('two clients converge on concurrent edits', { timeout: 20000 }, async () => {
  const id = uniqueDocId('converge')
  const { a, b } = await clients.pair(server.url, id)

  // Both edit before seeing each other's edits.
  a.insert('alpha ')
  b.insert('beta ')
  a.insert('[a-end]')
  b.insert('[b-end]', 0)

  const text = await waitConverged([a, b], (t) => t.includes('alpha') && t.includes('beta'))
  for (const piece of ['alpha ', 'beta ', '[a-end]', '[b-end]']) {
    assert.equal(occurrences(text, piece), 1, `${piece} once in ${JSON.stringify(text)}`)
  }
  assert.equal(text.length, 'alpha beta [a-end][b-end]'.length)
  // Four ops, each seen by both clients (as an ack or an op).
  assert.equal(a.client.lastSeenServerSeq, 4)
  assert.equal(b.client.lastSeenServerSeq, 4)
  assert.equal(a.client.epoch, b.client.epoch)
  assert.deepEqual([...a.errors, ...b.errors], [])
})

test('a late joiner gets the full state', { timeout: 20000 }, async () => {
  const id = uniqueDocId('late')
  const a = clients.open(server.url, id)
  await waitSynced(a)
  a.insert('Hello')
  a.insert(', world')
  a.text.delete(0, 1)
  a.insert('J', 0) // "Jello, world"
  a.text.format(0, 5, { bold: true })
  await waitFor(() => a.client.pendingCount === 0, { what: 'acks' })
  assert.equal(a.client.lastSeenServerSeq, 5)

  const c = clients.open(server.url, id)
  await waitSynced(c)
  assert.equal(c.str, 'Jello, world')
  assert.deepEqual(c.text.toDelta(), a.text.toDelta())
  assert.equal(c.client.lastSeenServerSeq, 5)

  // And the late joiner takes part afterwards.
  c.insert('!')
  await waitConverged([a, c], (t) => t === 'Jello, world!')
})

test('offline edits are merged after disconnect() / connect()', { timeout: 20000 }, async () => {
  const id = uniqueDocId('offline')
  const { a, b } = await clients.pair(server.url, id, { first: 'shared;' })

  b.client.disconnect()
  assert.equal(b.client.status, 'disconnected')
  assert.equal(b.client.synced, false)
  b.insert('[b offline 1]')
  b.insert('[b offline 2]', 0)
  assert.equal(b.client.pendingCount, 2)
  a.insert('[a online]')
  await waitFor(() => a.client.pendingCount === 0, { what: 'a acked' })
  assert.ok(!b.str.includes('[a online]'), 'b is really offline')
  assert.ok(!a.str.includes('[b offline'), 'b did not send while offline')

  b.client.connect()
  const text = await waitConverged([a, b], (t) => t.includes('[a online]') && t.includes('[b offline 1]'))
  for (const piece of ['shared;', '[a online]', '[b offline 1]', '[b offline 2]']) {
    assert.equal(occurrences(text, piece), 1, `${piece} once in ${JSON.stringify(text)}`)
  }
  // b resumed: it had seen seqs 1..1, so it got a replay of a's op, then its two ops were acked.
  assert.equal(b.client.lastSeenServerSeq, 4)
  const log = await readOpLog(server.url, id)
  assert.equal(log.ops.length, 4)
  assert.equal(textFromLog(log), text)
})

test('status and synced events follow the connection', { timeout: 20000 }, async () => {
  const id = uniqueDocId('events')
  const a = clients.open(server.url, id)
  assert.equal(a.client.status, 'disconnected') // connects on the next microtask
  await Promise.resolve()
  assert.equal(a.client.status, 'connecting')
  assert.equal(a.client.synced, false)
  assert.equal(a.client.lastSeenServerSeq, null)
  assert.equal(a.client.epoch, null)
  await waitSynced(a)
  assert.deepEqual(a.events, ['status:connecting', 'status:connected', 'synced:true'])
  assert.equal(a.client.status, 'connected')
  assert.equal(a.client.lastSeenServerSeq, 0)
  assert.match(a.client.epoch, /.+/)

  a.client.disconnect()
  assert.deepEqual(a.events.slice(3), ['synced:false', 'status:disconnected'])
  a.client.connect()
  await waitSynced(a)
  assert.deepEqual(a.events.slice(5), ['status:connecting', 'status:connected', 'synced:true'])

  // A new client joining an existing document is synced only once the
  // snapshot is applied.
  a.insert('abc')
  await waitFor(() => a.client.pendingCount === 0)
  const b = clients.open(server.url, id)
  let textWhenSynced = null
  b.client.on('synced', (v) => { if (v) textWhenSynced = b.str })
  await waitSynced(b)
  assert.equal(textWhenSynced, 'abc')
  assert.deepEqual([...a.errors, ...b.errors], [])

  // destroy(): no more events, no reconnection.
  b.client.destroy()
  assert.equal(b.client.status, 'disconnected')
  b.insert('after destroy')
  assert.equal(b.client.pendingCount, 0)
})

test('unacknowledged ops are resent after a reconnect, and only those', { timeout: 20000 }, async () => {
  const id = uniqueDocId('resend')
  const proxy = await startProxy()
  const { a, b } = await clients.pair(server.url, id, { a: { url: proxy.url, clientId: 'writer-a' } })

  // ops 1 and 2 reach the server, but their acks are lost…
  proxy.toClient = (msg) => (msg.type === 'ack' ? [] : [msg])
  a.insert('one;')
  a.insert('two;')
  await waitFor(() => b.str === 'one;two;', { what: 'b to see ops 1 and 2' })
  // …and op 3 never reaches the server.
  proxy.toServer = (msg) => (msg.type === 'op' ? [] : [msg])
  a.insert('three;')
  await waitFor(() => proxy.fromClient.some((m) => m.type === 'op' && m.client_op_id === 3))
  assert.equal(a.client.pendingCount, 3)
  assert.equal(b.str, 'one;two;')

  proxy.toClient = (msg) => [msg]
  proxy.toServer = (msg) => [msg]
  const before = proxy.fromClient.length
  proxy.cut() // connection lost: the client reconnects by itself
  const text = await waitConverged([a, b], (t) => t.includes('three;'))
  assert.equal(text, 'one;two;three;')

  const after = proxy.fromClient.slice(before)
  assert.equal(after[0].type, 'hello')
  assert.equal(after[0].client_id, 'writer-a')
  assert.equal(after[0].last_seen_server_seq, 0, 'no ack nor op reached a before the cut')
  assert.equal(after[0].epoch, a.client.epoch)
  // welcome.last_client_op_id was 2: only op 3 is sent again.
  assert.deepEqual(after.filter((m) => m.type === 'op').map((m) => m.client_op_id), [3])

  const log = await readOpLog(server.url, id)
  assert.deepEqual(opKeys(log).filter((k) => k.startsWith('writer-a#')), ['writer-a#1', 'writer-a#2', 'writer-a#3'])
  assert.equal(textFromLog(log), 'one;two;three;')
  assert.equal(a.client.lastSeenServerSeq, 3)
})

test('resent ops that the server already has get duplicate acks and are not logged twice', { timeout: 20000 }, async () => {
  const id = uniqueDocId('duplicates')
  const proxy = await startProxy()
  // Every op frame reaches the server twice.
  proxy.toServer = (msg) => (msg.type === 'op' ? [msg, msg] : [msg])
  const { a, b } = await clients.pair(server.url, id, { a: { url: proxy.url, clientId: 'writer-dup' } })
  const acks = []
  proxy.toClient = (msg) => { if (msg.type === 'ack') acks.push(msg); return [msg] }

  for (const piece of ['x1;', 'x2;', 'x3;']) a.insert(piece)
  const text = await waitConverged([a, b], (t) => t.includes('x3;'))
  assert.equal(text, 'x1;x2;x3;')
  await waitFor(() => acks.length === 6, { what: 'six acks', describe: () => JSON.stringify(acks) })
  assert.deepEqual(acks.filter((m) => !m.duplicate).map((m) => [m.client_op_id, m.server_seq]), [[1, 1], [2, 2], [3, 3]])
  assert.deepEqual(acks.filter((m) => m.duplicate).map((m) => m.client_op_id).sort(), [1, 2, 3])
  assert.equal(a.client.lastSeenServerSeq, 3)
  assert.deepEqual(a.errors, [], 'duplicate acks are not a sequence gap')

  const log = await readOpLog(server.url, id)
  assert.deepEqual(opKeys(log), ['writer-dup#1', 'writer-dup#2', 'writer-dup#3'])
})

test('ops sent just before a hard connection loss end up in the log exactly once', { timeout: 20000 }, async () => {
  const id = uniqueDocId('hard-drop')
  const tracked = trackingWebSocket()
  const { a, b } = await clients.pair(server.url, id, { a: { clientId: 'writer-drop', WebSocket: tracked.WebSocket } })

  for (let round = 0; round < 5; round++) {
    a.insert(`<${round}a>`)
    a.insert(`<${round}b>`)
    assert.ok(a.client.pendingCount >= 2)
    const sockets = tracked.sockets.length
    tracked.sockets.at(-1).terminate() // no close frame; the ops may or may not have left
    await waitFor(() => tracked.sockets.length > sockets && a.client.synced, { what: 'a to reconnect' })
  }
  const text = await waitConverged([a, b], (t) => t.includes('<4b>'))
  for (let round = 0; round < 5; round++) {
    assert.equal(occurrences(text, `<${round}a>`), 1)
    assert.equal(occurrences(text, `<${round}b>`), 1)
  }
  assert.equal(text.length, 5 * 2 * 4)
  assert.ok(tracked.sockets.length >= 6, 'the client reconnected after each drop')
  const log = await readOpLog(server.url, id)
  const keys = opKeys(log)
  assert.equal(new Set(keys).size, keys.length, `no op logged twice: ${keys}`)
  assert.equal(textFromLog(log), text)
})

test('edits made before the first connection are uploaded', { timeout: 20000 }, async () => {
  const id = uniqueDocId('preexisting')
  const a = clients.open(server.url, id, { connect: false })
  a.insert('written before connecting')
  assert.equal(a.client.status, 'disconnected')
  assert.equal(a.client.pendingCount, 1)
  a.client.connect()
  const b = clients.open(server.url, id)
  await waitConverged([a, b], (t) => t === 'written before connecting')
})
