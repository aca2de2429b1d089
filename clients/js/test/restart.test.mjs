// CollabClient across server restarts of the real collab-engine binary.

import assert from 'node:assert/strict'
import { test } from 'node:test'
import {
  occurrences, opKeys, readOpLog, sleep, textFromLog, trackingWebSocket,
  uniqueDocId, useServer, waitConverged, waitFor, waitSynced
} from './helpers.mjs'

// useServer starts the server again after a test that stopped it.
const { server, clients } = useServer()

test('clients reconnect by themselves after a server restart and converge with outage edits', { timeout: 30000 }, async () => {
  const id = uniqueDocId('restart')
  const tracked = trackingWebSocket()
  const { a, b } = await clients.pair(server.url, id, { a: { WebSocket: tracked.WebSocket }, first: 'before;' })
  const epoch = a.client.epoch
  const seqBefore = a.client.lastSeenServerSeq
  assert.equal(seqBefore, 1)

  await server.stop() // SIGTERM: graceful shutdown closes sessions with 1001
  await waitFor(() => a.client.status !== 'connected' && b.client.status !== 'connected', { what: 'clients to notice the shutdown' })
  assert.equal(tracked.closeCodes[0], 1001, `first close code ${tracked.closeCodes}`)
  assert.equal(a.client.synced, false)

  a.insert('[a during outage]')
  b.insert('[b during outage]', 0)
  assert.equal(a.client.pendingCount, 1)
  assert.equal(b.client.pendingCount, 1)
  // The clients keep trying while the server is down.
  await waitFor(() => tracked.sockets.length >= 3, { what: 'reconnection attempts' })
  const eventsBeforeRestart = a.events.length

  await server.start() // same port, same database
  const text = await waitConverged([a, b], (t) => t.includes('[a during outage]') && t.includes('[b during outage]'))
  assert.equal(text, '[b during outage]before;[a during outage]')
  assert.equal(a.client.epoch, epoch, 'same document incarnation after the restart')
  assert.equal(a.client.lastSeenServerSeq, seqBefore + 2)
  assert.equal(b.client.lastSeenServerSeq, seqBefore + 2)
  assert.deepEqual(a.events.slice(eventsBeforeRestart).slice(-2), ['status:connected', 'synced:true'])
  assert.deepEqual([...a.errors, ...b.errors], [])

  // Everything was persisted: a newcomer sees it, and the log has each op once.
  const c = clients.open(server.url, id)
  await waitSynced(c)
  assert.equal(c.str, text)
  const log = await readOpLog(server.url, id)
  assert.equal(log.ops.length, 3)
  assert.equal(textFromLog(log), text)
})

test('edits racing a shutdown are not lost', { timeout: 30000 }, async () => {
  const id = uniqueDocId('shutdown-race')
  const { a, b } = await clients.pair(server.url, id, { a: { clientId: 'racer' } })

  const stopping = server.stop()
  let stopped = false
  stopping.then(() => { stopped = true })
  const pieces = []
  for (let i = 0; !stopped && i < 200; i++) {
    const piece = `(${i})`
    a.insert(piece)
    pieces.push(piece)
    await sleep(2)
  }
  await stopping
  a.insert('(after)')
  pieces.push('(after)')
  await server.start()

  const text = await waitConverged([a, b], (t) => t.includes('(after)'), 15000)
  for (const piece of pieces) assert.equal(occurrences(text, piece), 1, `${piece} once`)
  assert.equal(text, pieces.join(''))
  const log = await readOpLog(server.url, id)
  const keys = opKeys(log)
  assert.equal(new Set(keys).size, keys.length, 'no op logged twice')
  assert.equal(textFromLog(log), text)
})

test('after the database is lost (new epoch) the clients upload their state again', { timeout: 30000 }, async () => {
  const id = uniqueDocId('new-epoch')
  const { a, b } = await clients.pair(server.url, id)
  a.insert('kept by a;')
  b.insert('kept by b;')
  const text = await waitConverged([a, b], (t) => t.includes('a;') && t.includes('b;'))
  const oldEpoch = a.client.epoch
  assert.equal(a.client.lastSeenServerSeq, 2)

  await server.stop()
  await server.wipeDatabase()
  await server.start()

  await waitFor(() => a.client.epoch !== oldEpoch && b.client.epoch !== oldEpoch && a.client.synced && b.client.synced, { what: 'the new epoch' })
  await waitConverged([a, b])
  assert.equal(a.str, text)

  // The server has the content again: a newcomer gets it.
  const c = clients.open(server.url, id)
  await waitSynced(c)
  assert.equal(c.str, text)
  const log = await readOpLog(server.url, id)
  assert.equal(textFromLog(log), text)
})
