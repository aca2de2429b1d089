// CollabClient against the real server with fault injection enabled
// (`debug.fault_injection`): failed commits and document panics.

import assert from 'node:assert/strict'
import { after, afterEach, before, test } from 'node:test'
import { TestServer } from './server.mjs'
import {
  Clients, WsProxy, occurrences, opKeys, readOpLog, textFromLog, trackingWebSocket,
  uniqueDocId, waitConverged, waitFor, waitSynced
} from './helpers.mjs'

let server
const clients = new Clients()
const proxies = []

before(async () => { server = await TestServer.start({ env: { COLLAB__DEBUG__FAULT_INJECTION: 'true' } }) })
afterEach(async () => {
  clients.closeAll()
  await Promise.all(proxies.splice(0).map((p) => p.close()))
})
after(async () => { await server?.dispose() })

async function inject (documentId, fault) {
  const url = `${server.url.replace(/^ws:/, 'http:')}/debug/documents/${documentId}/${fault}`
  const response = await fetch(url, { method: 'POST' })
  const body = await response.text()
  assert.equal(response.status, 200, `POST ${url}: ${body}`)
}

test('ops whose commit failed are resent under new numbers and nothing is lost', { timeout: 20000 }, async () => {
  const id = uniqueDocId('failed-commit')
  const a = clients.open(server.url, id, { clientId: 'writer-fail' })
  const b = clients.open(server.url, id)
  await waitSynced(a, b)
  a.insert('start;')
  await waitConverged([a, b], (t) => t === 'start;')

  await inject(id, 'fail-commits?count=1')
  // The first of these commits fails; the others may be accepted on the
  // same connection right after it.
  const pieces = ['<1>', '<2>', '<3>', '<4>']
  for (const p of pieces) a.insert(p)

  await waitFor(() => a.errors.some((e) => e.code === 'unavailable'), { what: 'the unavailable error' })
  const text = await waitConverged([a, b], (t) => pieces.every((p) => t.includes(p)))
  assert.equal(text, `start;${pieces.join('')}`)
  for (const p of pieces) assert.equal(occurrences(text, p), 1)
  assert.ok(a.errors.every((e) => e.code === 'unavailable' && typeof e.client_op_id === 'number'), JSON.stringify(a.errors))

  // The log has the whole text; no (client_id, client_op_id) twice.
  const log = await readOpLog(server.url, id)
  const keys = opKeys(log)
  assert.equal(new Set(keys).size, keys.length, `${keys}`)
  assert.equal(textFromLog(log), text)
  // A newcomer sees the same.
  const c = clients.open(server.url, id)
  await waitSynced(c)
  assert.equal(c.str, text)
})

test('an op refused after a failed commit is not mistaken for a duplicate once a later op is accepted', { timeout: 20000 }, async () => {
  // The server keeps the session open after a failed commit, so an op sent
  // before the client heard of the failure can be accepted with a higher
  // client_op_id; resent under its old number, the failed op would then be
  // answered as a duplicate (or dropped as covered by last_client_op_id).
  const id = uniqueDocId('failed-then-accepted')
  const proxy = await WsProxy.start(server.url)
  proxies.push(proxy)
  const a = clients.open(proxy.url, id, { clientId: 'writer-late-error' })
  const b = clients.open(server.url, id)
  await waitSynced(a, b)
  a.insert('start;')
  await waitConverged([a, b], (t) => t === 'start;')

  const held = []
  proxy.toClient = (msg) => {
    if (msg.type === 'error') { held.push(msg); return [] }
    return [msg]
  }
  await inject(id, 'fail-commits?count=1')
  a.insert('<lost?>') // op 2: its commit fails; the error is held back
  await waitFor(() => held.length === 1, { what: 'the unavailable error' })
  assert.equal(held[0].code, 'unavailable')
  assert.equal(held[0].client_op_id, 2)
  a.insert('<later>') // op 3: accepted on the same connection
  await waitFor(() => a.client.pendingCount === 1 && a.client.lastSeenServerSeq === 2, { what: 'op 3 acked', describe: () => `pending ${a.client.pendingCount}, seq ${a.client.lastSeenServerSeq}` })

  proxy.toClient = (msg) => [msg]
  proxy.sendToClients(held[0])
  const text = await waitConverged([a, b], (t) => t.includes('<lost?>') && t.includes('<later>'))
  assert.equal(text, 'start;<lost?><later>')
  const log = await readOpLog(server.url, id)
  assert.equal(textFromLog(log), text)
  // Ops 1 and 3 as sent first, the refused op 2 again under a new number.
  assert.deepEqual(opKeys(log), ['writer-late-error#1', 'writer-late-error#3', 'writer-late-error#4'])
})

test('a document panic does not lose edits', { timeout: 20000 }, async () => {
  const id = uniqueDocId('panic')
  const tracked = trackingWebSocket()
  const a = clients.open(server.url, id, { WebSocket: tracked.WebSocket })
  const b = clients.open(server.url, id)
  await waitSynced(a, b)
  a.insert('before;')
  await waitConverged([a, b], (t) => t === 'before;')

  await inject(id, 'panic')
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
