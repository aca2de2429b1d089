// CollabClient against the real server with fault injection enabled
// (`debug.fault_injection`): failed commits and document panics.

import assert from 'node:assert/strict'
import { test } from 'node:test'
import {
  occurrences, opKeys, readOpLog, textFromLog, trackingWebSocket,
  uniqueDocId, useServer, waitConverged, waitFor, waitSynced
} from './helpers.mjs'

const { server, clients, proxy: startProxy } = useServer({ env: { COLLAB__DEBUG__FAULT_INJECTION: 'true' } })

test('ops whose commit failed are resent under their own numbers and nothing is lost', { timeout: 20000 }, async () => {
  const id = uniqueDocId('failed-commit')
  const tracked = trackingWebSocket()
  const { a, b } = await clients.pair(server.url, id, { a: { clientId: 'writer-fail', WebSocket: tracked.WebSocket }, first: 'start;' })

  await server.inject(id, 'fail-commits?count=1')
  // The first of these commits fails; the server refuses every later op of
  // the session and closes it; the client resends them on a new connection.
  const pieces = ['<1>', '<2>', '<3>', '<4>']
  for (const p of pieces) a.insert(p)

  await waitFor(() => a.errors.some((e) => e.code === 'unavailable'), { what: 'the unavailable error' })
  const text = await waitConverged([a, b], (t) => pieces.every((p) => t.includes(p)))
  assert.equal(text, `start;${pieces.join('')}`)
  for (const p of pieces) assert.equal(occurrences(text, p), 1)
  assert.ok(a.errors.every((e) => e.code === 'unavailable' && typeof e.client_op_id === 'number'), JSON.stringify(a.errors))
  assert.ok(tracked.sockets.length >= 2, 'the client reconnected')

  // Every op logged once, under the number it was first sent with.
  const log = await readOpLog(server.url, id)
  assert.deepEqual(opKeys(log), ['writer-fail#1', 'writer-fail#2', 'writer-fail#3', 'writer-fail#4', 'writer-fail#5'])
  assert.equal(textFromLog(log), text)
  // A newcomer sees the same.
  const c = clients.open(server.url, id)
  await waitSynced(c)
  assert.equal(c.str, text)
})

test('after a refused op the server refuses the later ops of the session and closes it with 1013; the client resends them in order', { timeout: 20000 }, async () => {
  // The errors are held back by a proxy, so the client keeps sending after
  // the refused op: the later op must be refused too (if it were accepted,
  // the refused op, resent under its lower number, would be taken for a
  // duplicate and lost).
  const id = uniqueDocId('refused-then-later')
  const proxy = await startProxy()
  const tracked = trackingWebSocket()
  const { a, b } = await clients.pair(server.url, id, {
    a: { url: proxy.url, clientId: 'writer-late-error', WebSocket: tracked.WebSocket },
    first: 'start;'
  })

  const held = []
  proxy.toClient = (msg) => {
    if (msg.type === 'error') { held.push(msg); return [] }
    return [msg]
  }
  await server.inject(id, 'fail-commits?count=1')
  a.insert('<refused>') // op 2: its commit fails; the error is held back
  await waitFor(() => held.length === 1, { what: 'the unavailable error' })
  a.insert('<later>') // op 3: refused as well, the connection closes
  await waitFor(() => tracked.closeCodes.length >= 1, { what: 'the server to close the connection' })
  assert.deepEqual(tracked.closeCodes.slice(0, 1), [1013])
  assert.deepEqual(held.map((m) => [m.code, m.client_op_id]).slice(0, 1), [['unavailable', 2]])
  assert.ok(held.every((m) => m.code === 'unavailable'), JSON.stringify(held))
  proxy.toClient = (msg) => [msg]

  const text = await waitConverged([a, b], (t) => t.includes('<refused>') && t.includes('<later>'))
  assert.equal(text, 'start;<refused><later>')
  const log = await readOpLog(server.url, id)
  assert.equal(textFromLog(log), text)
  // Resent under their own numbers, in order.
  assert.deepEqual(opKeys(log), ['writer-late-error#1', 'writer-late-error#2', 'writer-late-error#3'])
})

test('ops of a commit that landed but was reported failed are not logged twice', { timeout: 20000 }, async () => {
  // when=after: the commit reaches the database, the server answers
  // `unavailable` anyway (as when the connection drops during COMMIT).
  // Renumbered and resent, those ops would be logged a second time.
  const id = uniqueDocId('ambiguous-commit')
  const { a, b } = await clients.pair(server.url, id, { a: { clientId: 'writer-ambiguous' }, first: 'start;' })

  await server.inject(id, 'fail-commits?count=1&when=after')
  const pieces = ['<1>', '<2>', '<3>']
  for (const p of pieces) a.insert(p)
  await waitFor(() => a.errors.some((e) => e.code === 'unavailable'), { what: 'the unavailable error' })
  const text = await waitConverged([a, b], (t) => pieces.every((p) => t.includes(p)))
  assert.equal(text, `start;${pieces.join('')}`)

  const log = await readOpLog(server.url, id)
  const keys = opKeys(log)
  assert.deepEqual(keys, ['writer-ambiguous#1', 'writer-ambiguous#2', 'writer-ambiguous#3', 'writer-ambiguous#4'])
  assert.equal(textFromLog(log), text)
})

test('a document panic does not lose edits', { timeout: 20000 }, async () => {
  const id = uniqueDocId('panic')
  const tracked = trackingWebSocket()
  const { a, b } = await clients.pair(server.url, id, { a: { WebSocket: tracked.WebSocket }, first: 'before;' })

  await server.inject(id, 'panic')
  a.insert('[a after panic]')
  b.insert('[b after panic]', 0)
  const text = await waitConverged([a, b], (t) => t.includes('[a after panic]') && t.includes('[b after panic]'))
  assert.equal(text, '[b after panic]before;[a after panic]')
  // If the server restarted the document, it closed the sessions with 1012
  // (document restarted) and the client came back by itself.
  for (const code of tracked.closeCodes) assert.ok([1011, 1012, 1013].includes(code), `close code ${code}`)
  const log = await readOpLog(server.url, id)
  assert.equal(textFromLog(log), text)
})
