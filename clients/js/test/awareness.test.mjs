// Presence: the awareness encoding of src/awareness.js against y-protocols'
// own, CollabClient's awareness messages against a scripted fake server, and
// two clients exchanging presence through the real server.

import assert from 'node:assert/strict'
import { afterEach, test } from 'node:test'
import WebSocket, { WebSocketServer } from 'ws'
import * as Y from 'yjs'
import * as awarenessProtocol from 'y-protocols/awareness'
import { CollabClient, fromBase64, toBase64 } from '../src/index.js'
import { applyAwarenessUpdate, encodeAwarenessUpdate } from '../src/awareness.js'
import { uniqueDocId, useServer, waitFor, waitSynced } from './helpers.mjs'

const { Awareness } = awarenessProtocol

const cleanup = []
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn()
})

/** An Awareness on a fresh doc with a fixed client id, destroyed after the test. */
function newAwareness (clientID) {
  const doc = new Y.Doc()
  if (clientID !== undefined) doc.clientID = clientID
  const awareness = new Awareness(doc)
  cleanup.push(() => awareness.destroy())
  return awareness
}

/** Records the `change` and `update` events of `awareness`. */
function recordEvents (awareness) {
  const events = []
  awareness.on('change', (c, origin) => events.push(['change', c, origin]))
  awareness.on('update', (c, origin) => events.push(['update', c, origin]))
  return events
}

function snapshot (awareness) {
  const meta = [...awareness.meta].map(([id, m]) => [id, m.clock]).sort((a, b) => a[0] - b[0])
  const states = [...awareness.states].sort((a, b) => a[0] - b[0])
  return { meta, states }
}

test('encodeAwarenessUpdate matches y-protocols byte for byte', () => {
  const a = newAwareness(2 ** 32 - 1)
  a.setLocalState({ user: { name: 'ä 😀', color: '#ff0' }, cursor: { anchor: 3, head: [1, 2] } })
  a.setLocalStateField('n', 12345678)
  const b = newAwareness(300)
  b.setLocalState({ x: null })
  awarenessProtocol.applyAwarenessUpdate(a, awarenessProtocol.encodeAwarenessUpdate(b, [300]), 'test')
  const clients = [a.clientID, 300]
  assert.deepEqual(encodeAwarenessUpdate(a, clients), awarenessProtocol.encodeAwarenessUpdate(a, clients))
  assert.deepEqual(encodeAwarenessUpdate(a, clients, new Map()), awarenessProtocol.encodeAwarenessUpdate(a, clients, new Map()))
  // Clients without a clock are left out instead of throwing.
  assert.deepEqual(encodeAwarenessUpdate(a, [a.clientID, 999]), awarenessProtocol.encodeAwarenessUpdate(a, [a.clientID]))
})

test('applyAwarenessUpdate follows the rules of y-protocols (states, clocks, events)', () => {
  const source = newAwareness(10)
  const other = newAwareness(20)
  const mine = newAwareness(30)
  const theirs = newAwareness(30)
  for (const aw of [mine, theirs]) aw.setLocalState({ me: true })
  const ours = recordEvents(mine)
  const ref = recordEvents(theirs)

  const updates = []
  source.setLocalState({ v: 1 })
  updates.push(awarenessProtocol.encodeAwarenessUpdate(source, [10]))
  other.setLocalState({ w: 1 })
  updates.push(awarenessProtocol.encodeAwarenessUpdate(source, [10]), awarenessProtocol.encodeAwarenessUpdate(other, [20]))
  source.setLocalState({ v: 1 }) // same state, new clock: `update` only
  updates.push(awarenessProtocol.encodeAwarenessUpdate(source, [10]))
  source.setLocalState({ v: 2 })
  updates.push(awarenessProtocol.encodeAwarenessUpdate(source, [10]))
  // null at the same clock removes; an older clock is ignored
  updates.push(awarenessProtocol.encodeAwarenessUpdate(other, [20], new Map()))
  updates.push(awarenessProtocol.encodeAwarenessUpdate(other, [20]))
  // someone removes this client's own state: it is kept, the clock raised
  const meta = mine.meta.get(30)
  const removal = new Awareness(new Y.Doc())
  removal.meta.set(30, { clock: meta.clock + 1, lastUpdated: 0 })
  updates.push(awarenessProtocol.encodeAwarenessUpdate(removal, [30], new Map()))
  removal.destroy()

  const reasserted = []
  for (const update of updates) {
    reasserted.push(applyAwarenessUpdate(mine, update, 'origin'))
    awarenessProtocol.applyAwarenessUpdate(theirs, update, 'origin')
    assert.deepEqual(snapshot(mine), snapshot(theirs))
  }
  assert.deepEqual(ours, ref)
  assert.deepEqual(reasserted, [false, false, false, false, false, false, false, true])
  assert.deepEqual(mine.getLocalState(), { me: true })
  assert.deepEqual(mine.getStates().get(10), { v: 2 })
  assert.equal(mine.getStates().has(20), false)
})

test('a malformed awareness update throws and changes nothing', () => {
  const aw = newAwareness(1)
  const events = recordEvents(aw)
  const good = new Awareness(new Y.Doc())
  good.clientID = 5
  good.setLocalState({ ok: 1 })
  const valid = awarenessProtocol.encodeAwarenessUpdate(good, [5])
  good.destroy()
  // count 2: a valid entry followed by one whose JSON is broken
  const badJson = Uint8Array.from([2, ...valid.subarray(1), 7, 1, 2, 0x7b, 0x7b])
  const truncated = valid.subarray(0, valid.length - 2)
  for (const bytes of [badJson, truncated, Uint8Array.from([0xff])]) {
    assert.throws(() => applyAwarenessUpdate(aw, bytes, 'x'))
  }
  assert.deepEqual([...aw.getStates().keys()], [1])
  assert.deepEqual(events, [])
})

test('the awareness option must look like a y-protocols Awareness of the same doc', () => {
  const doc = new Y.Doc()
  const options = { url: 'ws://127.0.0.1:1', documentId: 'd', doc, WebSocket, connect: false }
  assert.throws(() => new CollabClient({ ...options, awareness: {} }), /missing clientID/)
  const elsewhere = newAwareness()
  assert.throws(() => new CollabClient({ ...options, awareness: elsewhere }), /another Y.Doc/)
  const fine = new Awareness(doc)
  cleanup.push(() => fine.destroy())
  new CollabClient({ ...options, awareness: fine }).destroy()
})

// ---------------------------------------------------------------------------
// Against a scripted server

/** A one-connection-at-a-time fake server collecting the client's messages. */
async function fakeServer (onConnection) {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 })
  await new Promise((resolve) => wss.once('listening', resolve))
  const connections = []
  wss.on('connection', (ws) => {
    const conn = { ws, received: [], send: (m) => ws.send(JSON.stringify(m)) }
    connections.push(conn)
    ws.on('message', (data) => {
      const msg = JSON.parse(data.toString())
      conn.received.push(msg)
      if (msg.type === 'hello') {
        conn.send({ type: 'welcome', document_id: 'doc', epoch: 'e', server_seq: 0, recovery: 'snapshot', last_client_op_id: null })
        conn.send({ type: 'snapshot', server_seq: 0, state: 'AAA=' })
        onConnection?.(conn, connections.length - 1)
      }
    })
  })
  cleanup.push(async () => {
    for (const ws of wss.clients) ws.terminate()
    await new Promise((resolve) => wss.close(resolve))
  })
  return { url: `ws://127.0.0.1:${wss.address().port}`, connections }
}

function decoded (msg) {
  const peer = newAwareness(777)
  peer.setLocalState(null)
  awarenessProtocol.applyAwarenessUpdate(peer, fromBase64(msg.update), 'test')
  return [...peer.meta].filter(([id]) => id !== 777).map(([id, m]) => [id, m.clock, peer.getStates().get(id) ?? null])
}

test('awareness messages: the local state after each welcome, changes, removal on disconnect, remote states applied', async () => {
  const peer = newAwareness(4242)
  peer.setLocalState({ user: 'peer' })
  const server = await fakeServer((conn) => {
    conn.send({ type: 'awareness', update: toBase64(awarenessProtocol.encodeAwarenessUpdate(peer, [4242])) })
  })
  const doc = new Y.Doc()
  doc.clientID = 99
  const awareness = new Awareness(doc)
  cleanup.push(() => awareness.destroy())
  awareness.setLocalState({ user: 'me' })
  const client = new CollabClient({ url: server.url, documentId: 'doc', doc, WebSocket, awareness, backoff: { initialMs: 20, maxMs: 100 } })
  cleanup.push(() => client.destroy())
  const errors = []
  client.on('error', (e) => errors.push(e))
  const events = recordEvents(awareness)

  await waitFor(() => client.synced && awareness.getStates().has(4242))
  assert.deepEqual(awareness.getStates().get(4242), { user: 'peer' })
  assert.ok(events.some(([name, c, origin]) => name === 'change' && c.added.includes(4242) && origin === client))
  const sent = () => server.connections.flatMap((c) => c.received.filter((m) => m.type === 'awareness'))
  await waitFor(() => sent().length === 1)
  const first = decoded(sent()[0])
  assert.equal(first.length, 1)
  assert.equal(first[0][0], 99)
  assert.deepEqual(first[0][2], { user: 'me' })

  // A local change is sent; what came from the server is not sent back.
  awareness.setLocalStateField('cursor', 5)
  await waitFor(() => sent().length === 2)
  assert.deepEqual(decoded(sent()[1]), [[99, first[0][1] + 1, { user: 'me', cursor: 5 }]])

  // disconnect(): the state is withdrawn (null under a raised clock), the
  // local Awareness keeps it, the peer's state is removed locally.
  client.disconnect()
  await waitFor(() => sent().length === 3)
  assert.deepEqual(decoded(sent()[2]), [[99, first[0][1] + 2, null]])
  assert.deepEqual(awareness.getLocalState(), { user: 'me', cursor: 5 })
  assert.equal(awareness.getStates().has(4242), false)

  // connect(): sent again, under a clock above the removal; the peer's state
  // (same clock as before) is taken again.
  client.connect()
  await waitFor(() => sent().length === 4 && awareness.getStates().has(4242))
  const again = decoded(sent()[3])
  assert.equal(again[0][0], 99)
  assert.ok(again[0][1] > first[0][1] + 2, `clock ${again[0][1]}`)
  assert.deepEqual(again[0][2], { user: 'me', cursor: 5 })
  assert.deepEqual(errors, [])

  // A malformed awareness update from the server is reported, not thrown.
  const conn = server.connections[1]
  conn.send({ type: 'awareness', update: toBase64(Uint8Array.from([1, 7, 1, 2, 0x7b, 0x7b])) })
  await waitFor(() => errors.length === 1)
  assert.equal(errors[0].code, 'apply_failed')
  assert.equal(client.status, 'connected')

  // destroy(): withdrawn once more, then nothing is sent anymore.
  client.destroy()
  await waitFor(() => sent().length === 5)
  assert.equal(decoded(sent()[4])[0][2], null)
  awareness.setLocalStateField('cursor', 6)
  await new Promise((resolve) => setTimeout(resolve, 50))
  assert.equal(sent().length, 5)
})

// ---------------------------------------------------------------------------
// Through the real server

const { server, clients, proxy: startProxy } = useServer()

/** A client with an Awareness on its doc. */
function openWithAwareness (url, id, state) {
  const doc = new Y.Doc()
  const awareness = new Awareness(doc)
  cleanup.push(() => awareness.destroy())
  if (state !== undefined) awareness.setLocalState(state)
  const handle = clients.open(url, id, { doc, awareness })
  handle.awareness = awareness
  return handle
}

const stateOf = (handle, other) => handle.awareness.getStates().get(other.awareness.clientID)

test('two clients see each other\'s presence through the server, also after a reconnect and a lost connection', { timeout: 20000 }, async () => {
  const id = uniqueDocId('awareness')
  const proxy = await startProxy()
  const a = openWithAwareness(proxy.url, id, { user: 'a' })
  const b = openWithAwareness(server.url, id, { user: 'b' })
  await waitSynced(a, b)
  await waitFor(() => stateOf(b, a)?.user === 'a' && stateOf(a, b)?.user === 'b', { what: 'both states on both sides' })

  a.awareness.setLocalStateField('cursor', 1)
  await waitFor(() => stateOf(b, a)?.cursor === 1, { what: 'the cursor of a at b' })

  // disconnect() / connect()
  a.client.disconnect()
  await waitFor(() => stateOf(b, a) === undefined, { what: 'a removed at b' })
  assert.equal(stateOf(a, b), undefined)
  a.client.connect()
  await waitFor(() => stateOf(b, a)?.cursor === 1 && stateOf(a, b)?.user === 'b', { what: 'a back at b, b back at a' })

  // A lost connection: the server removes a's state for b; a comes back by
  // itself and is seen again right away, and so are its changes.
  proxy.cut()
  await waitFor(() => stateOf(b, a) === undefined, { what: 'the server to remove a at b' })
  await waitFor(() => stateOf(b, a)?.cursor === 1, { what: 'a back at b after the lost connection', timeout: 5000 })
  a.awareness.setLocalStateField('cursor', 2)
  await waitFor(() => stateOf(b, a)?.cursor === 2, { what: 'a\'s next change at b', timeout: 5000 })

  // destroy(): gone for b.
  a.client.destroy()
  await waitFor(() => stateOf(b, a) === undefined, { what: 'a removed at b after destroy' })
  assert.equal(b.errors.length, 0, JSON.stringify(b.errors))
})
