// Access control with real clients, the server in token mode: y-websocket
// providers passing their token with the provider's `params` option, native
// CollabClients with `getToken`, read-only tokens on `/yjs/`, and a native
// client renewing its token across close 4401 while a provider writes.

import assert from 'node:assert/strict'
import { test } from 'node:test'
import WebSocket from 'ws'
import {
  occurrences, readOpLog, sleep, textFromLog, uniqueDocId, useServer, waitConverged, waitFor, waitSynced
} from '../lib/peers.mjs'
import { signToken, tokenEnv, tokenSource } from '../../../clients/js/test/tokens.mjs'

const { server, peers } = useServer({ env: tokenEnv() })

function logOf (id) {
  return readOpLog(server, id, { token: signToken({ sub: 'auditor', docs: { [id]: 'read' } }) })
}

/** The HTTP status of an upgrade of `path` (101 when it went through). */
function upgradeStatus (path) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${server.url}${path}`)
    ws.on('unexpected-response', (req, res) => {
      resolve(res.statusCode)
      ws.terminate()
    })
    ws.on('upgrade', () => { resolve(101); ws.terminate() })
    ws.on('error', (e) => { if (!/closed before/.test(e.message)) reject(e) })
  })
}

/** A y-websocket provider whose token (if any) goes as `?token=` through `params`. */
function provider (id, token) {
  return peers.provider(server, id, { providerOptions: token ? { params: { token } } : {} })
}

test('a provider with a token in `params` syncs with a native client; one without a token is refused and never syncs', { timeout: 30000 }, async () => {
  const id = uniqueDocId('access-yjs')
  const p = provider(id, signToken({ sub: 'ada', docs: { [id]: 'write' } }))
  const n = peers.native(server, id, { getToken: () => signToken({ sub: 'grace', docs: { [id]: 'write' } }) })
  const intruder = provider(id, null)
  await waitSynced([p, n])

  p.text.insert(0, '<p1>')
  await waitConverged([p, n], (t) => t === '<p1>')
  n.text.insert(n.text.length, '{n1}')
  await waitConverged([p, n], (t) => t === '<p1>{n1}')
  intruder.text.insert(0, '[intruder]')
  p.text.insert(0, '<p2>')
  const text = await waitConverged([p, n], (t) => t === '<p2><p1>{n1}')

  // The provider without a token tried again and again; every upgrade was
  // refused before it was one (the `ws` close code of a refused upgrade is 1006).
  await waitFor(() => intruder.closeCodes.length >= 3, { what: 'the intruder to retry', describe: () => intruder.describe() })
  assert.ok(intruder.closeCodes.every((c) => c === 1006), intruder.describe())
  assert.equal(intruder.provider.wsconnected, false)
  assert.equal(intruder.provider.synced, false)
  assert.equal(intruder.str, '[intruder]', 'it got nothing of the document')
  assert.ok(intruder.statuses.every((s) => s !== 'connected'), intruder.statuses.join(','))
  assert.equal(await upgradeStatus(`/yjs/${id}`), 401)
  assert.equal(await upgradeStatus(`/yjs/${id}?token=${signToken({ sub: 'ada', docs: { [id]: 'write' } })}`), 101)

  const log = await logOf(id)
  assert.equal(textFromLog(log), text)
  assert.equal(log.ops.length, 3)
  assert.ok(!textFromLog(log).includes('[intruder]'))
  assert.deepEqual(n.errors, [])
})

test('a read-only provider keeps receiving, stays connected, and its edits reach neither the op log nor the others', { timeout: 30000 }, async () => {
  const id = uniqueDocId('access-read-only')
  const writer = provider(id, signToken({ sub: 'writer', docs: { [id]: 'write' } }))
  const reader = provider(id, signToken({ sub: 'reader', docs: { [id]: 'read' } }))
  const observer = peers.native(server, id, { getToken: () => signToken({ sub: 'observer', docs: { [id]: 'read' } }) })
  await waitSynced([writer, reader, observer])
  writer.text.insert(0, 'w1;')
  await waitConverged([writer, reader, observer], (t) => t === 'w1;')

  // The reader edits, then announces itself: once the writer sees its
  // presence (awareness works read-only), the server has handled what the
  // reader sent before it.
  reader.text.insert(0, '[r1]')
  reader.text.insert(reader.text.length, '[r2]')
  reader.awareness.setLocalStateField('user', { name: 'reader' })
  const readerId = reader.awareness.clientID
  await waitFor(() => writer.awareness.getStates().get(readerId)?.user?.name === 'reader', { what: 'the writer to see the reader' })

  writer.text.insert(writer.text.length, 'w2;')
  await waitFor(() => reader.str.includes('w2;') && observer.str === 'w1;w2;', {
    what: 'the reader and the observer to get w2',
    describe: () => `${reader.describe()} / ${observer.describe()}`
  })
  assert.equal(writer.str, 'w1;w2;')
  assert.equal(observer.str, 'w1;w2;')
  assert.equal(occurrences(reader.str, '[r1]'), 1)
  assert.equal(occurrences(reader.str, 'w2;'), 1)
  // One connection, never closed.
  assert.equal(reader.connectionCount, 1)
  assert.deepEqual(reader.closeCodes, [])
  assert.equal(reader.provider.wsconnected, true)

  const log = await logOf(id)
  assert.equal(textFromLog(log), 'w1;w2;')
  assert.equal(log.ops.length, 2)
  // A newcomer gets the writer's text only.
  const late = provider(id, signToken({ sub: 'late', docs: { [id]: 'read' } }))
  await waitSynced([late])
  assert.equal(late.str, 'w1;w2;')
})

test('a native client renewing its token across close 4401 and a y-websocket writer with a long-lived token converge', { timeout: 60000 }, async () => {
  const id = uniqueDocId('access-refresh')
  const p = provider(id, signToken({ sub: 'provider', docs: { [id]: 'write' }, ttlSecs: 3600 }))
  // Tokens of 2 to 3 seconds.
  const tokens = tokenSource({ sub: 'native', docs: { [id]: 'write' }, ttlSecs: 3 })
  const n = peers.native(server, id, { getToken: tokens.getToken, backoff: { initialMs: 1500, maxMs: 3000 } })
  await waitSynced([p, n])

  const piecesN = []
  const piecesP = []
  const expiries = () => n.closeCodes.filter((c) => c === 4401).length
  const deadline = Date.now() + 30000
  for (let i = 0; expiries() < 2; i++) {
    assert.ok(Date.now() < deadline, `close codes ${n.closeCodes}`)
    const q = `{n${i}}`
    piecesN.push(q)
    n.text.insert(n.text.length, q)
    if (i % 3 === 0) {
      const r = `<p${i}>`
      piecesP.push(r)
      p.text.insert(0, r)
    }
    await sleep(30)
  }
  n.text.insert(n.text.length, '{n-last}')
  piecesN.push('{n-last}')
  p.text.insert(0, '<p-last>')
  piecesP.push('<p-last>')
  const text = await waitConverged([p, n], (t) => t.includes('{n-last}') && t.includes('<p-last>'), 15000)
  for (const piece of [...piecesN, ...piecesP]) assert.equal(occurrences(text, piece), 1, `${piece} in ${text}`)
  assert.ok(n.closeCodes.every((c) => c === 4401), `close codes ${n.closeCodes}`)
  assert.deepEqual(p.closeCodes, [], 'the provider was never disconnected')
  assert.deepEqual(n.errors, [])
  assert.ok(tokens.calls.length >= 3)
  assert.deepEqual(tokens.calls.slice(1, 3).map((c) => c.reason), ['expired', 'expired'])

  const log = await waitFor(async () => {
    const l = await logOf(id)
    return textFromLog(l) === text && l
  }, { what: 'the op log to hold the text' })
  const nativeOps = log.ops.filter((op) => op.client_id === n.client.clientId).map((op) => op.client_op_id)
  assert.deepEqual(nativeOps, piecesN.map((_, i) => i + 1), 'each native op once, in order')
})
