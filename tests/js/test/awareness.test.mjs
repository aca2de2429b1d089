// Presence (y-protocols awareness) across both routes: y-websocket
// providers, native CollabClients with an Awareness, and raw sockets that
// check the exact messages.

import assert from 'node:assert/strict'
import { test } from 'node:test'
import { sleep, uniqueDocId, useServer, waitFor, waitSynced } from '../lib/peers.mjs'
import {
  RawSocket, awarenessMessage, awarenessUpdate, decodeAwareness, nativeSession
} from '../lib/wire.mjs'

const { server, peers } = useServer()

/** Every awareness entry a raw native session received: [{ client, clock, json }]. */
function nativeAwareness (raw) {
  return raw.json().filter((m) => m.type === 'awareness').flatMap((m) => decodeAwareness(Buffer.from(m.update, 'base64')))
}

/** Every awareness entry a raw /yjs/ socket received. */
function yjsAwareness (raw) {
  return raw.messages().filter((m) => m.type === 'awareness').flatMap((m) => decodeAwareness(m.update))
}

const stateAt = (peer, clientID) => peer.awareness.getStates().get(clientID)

test('a provider\'s presence reaches providers, native clients and raw native sessions; removed when it leaves', { timeout: 30000 }, async () => {
  const id = uniqueDocId('awareness')
  const a = peers.provider(server, id)
  const b = peers.provider(server, id)
  const n = peers.native(server, id, { awareness: true })
  const raw = peers.track(await nativeSession(server, id))
  await waitSynced([a, b, n])
  await waitFor(() => raw.json().some((m) => m.type === 'welcome'))
  const aId = a.awareness.clientID
  // (A provider's initial state `{}` has clock 0, which y-protocols never
  // takes from a remote peer: b announces itself with a real state.)
  b.awareness.setLocalStateField('user', { name: 'b' })

  a.awareness.setLocalStateField('user', { name: 'a' })
  await waitFor(() => stateAt(b, aId)?.user?.name === 'a', { what: 'b to see a' })
  await waitFor(() => stateAt(n, aId)?.user?.name === 'a', { what: 'the native client to see a' })
  await waitFor(() => nativeAwareness(raw).some((e) => e.client === aId && JSON.parse(e.json)?.user?.name === 'a'), {
    what: 'an awareness message with a\'s state at the raw native session',
    describe: () => JSON.stringify(raw.json().slice(-5))
  })
  const entry = nativeAwareness(raw).find((e) => e.client === aId && JSON.parse(e.json)?.user)
  assert.deepEqual(JSON.parse(entry.json), { user: { name: 'a' } })
  assert.equal(entry.clock, a.awareness.meta.get(aId).clock)

  // a leaves: everybody sees its state removed.
  a.destroy()
  await waitFor(() => !b.awareness.getStates().has(aId), { what: 'b to see a removed' })
  await waitFor(() => !n.awareness.getStates().has(aId), { what: 'the native client to see a removed' })
  await waitFor(() => nativeAwareness(raw).some((e) => e.client === aId && e.json === 'null'), { what: 'a null state for a at the raw session' })
  // b and the native client are still there for each other.
  assert.ok(b.awareness.getStates().has(n.awareness.clientID))
  assert.deepEqual(stateAt(n, b.awareness.clientID), { user: { name: 'b' } })
})

test('a native client\'s presence reaches providers; removed on destroy() and on a lost connection', { timeout: 30000 }, async () => {
  const id = uniqueDocId('awareness-native')
  const b = peers.provider(server, id)
  const n = peers.native(server, id, { awareness: true })
  await waitSynced([b, n])
  const nId = n.awareness.clientID
  n.awareness.setLocalStateField('user', { name: 'native' })
  await waitFor(() => stateAt(b, nId)?.user?.name === 'native', { what: 'b to see the native client' })
  n.awareness.setLocalStateField('cursor', 7)
  await waitFor(() => stateAt(b, nId)?.cursor === 7, { what: 'b to see the cursor' })

  // A lost connection (no close frame): the server removes the state for
  // the others; the client reconnects and announces it again.
  n.sockets.at(-1).terminate()
  await waitFor(() => !b.awareness.getStates().has(nId), { what: 'b to see the native client removed' })
  await waitFor(() => stateAt(b, nId)?.cursor === 7, { what: 'b to see the native client again', timeout: 5000 })

  n.client.destroy()
  await waitFor(() => !b.awareness.getStates().has(nId), { what: 'b to see the native client removed after destroy' })
})

test('a joining session gets the current states after its welcome and catch-up', { timeout: 30000 }, async () => {
  const id = uniqueDocId('awareness-join')
  const a = peers.provider(server, id)
  await waitSynced([a])
  a.text.insert(0, 'text')
  a.awareness.setLocalStateField('user', { name: 'a' })
  const aId = a.awareness.clientID
  const probe = peers.track(await nativeSession(server, id))
  await waitFor(() => nativeAwareness(probe).some((e) => e.client === aId), { what: 'a\'s state at the probe' })
  await waitFor(() => probe.json().some((m) => m.type === 'op' || (m.type === 'snapshot' && m.state !== 'AAA=')), { what: 'a\'s text committed' })

  // Native: welcome, snapshot, then awareness.
  const late = peers.track(await nativeSession(server, id))
  await waitFor(() => nativeAwareness(late).some((e) => e.client === aId))
  assert.deepEqual(late.json().map((m) => m.type).slice(0, 3), ['welcome', 'snapshot', 'awareness'])
  assert.deepEqual(JSON.parse(nativeAwareness(late).find((e) => e.client === aId).json), { user: { name: 'a' } })

  // y-websocket: a provider joining later sees a right away.
  const c = peers.provider(server, id)
  await waitFor(() => stateAt(c, aId)?.user?.name === 'a', { what: 'the late provider to see a' })
  // y-websocket's query message is answered with every state.
  const rawYjs = peers.track(await RawSocket.open(`${server.yjsUrl}/${id}`))
  await waitFor(() => yjsAwareness(rawYjs).some((e) => e.client === aId))
  const before = yjsAwareness(rawYjs).length
  rawYjs.send(Uint8Array.from([3]))
  await waitFor(() => yjsAwareness(rawYjs).length > before, { what: 'the answer to a query-awareness message' })
  assert.ok(yjsAwareness(rawYjs).slice(before).some((e) => e.client === aId && JSON.parse(e.json).user.name === 'a'))
})

test('a provider\'s next presence change after a reconnect reaches the others', { timeout: 30000 }, async () => {
  const id = uniqueDocId('awareness-reconnect')
  const a = peers.provider(server, id)
  const b = peers.provider(server, id)
  await waitSynced([a, b])
  const aId = a.awareness.clientID
  a.awareness.setLocalStateField('user', { name: 'a' })
  await waitFor(() => stateAt(b, aId)?.user?.name === 'a')

  // a's connection drops; the provider reconnects by itself.
  a.provider.ws.close()
  await waitFor(() => !b.awareness.getStates().has(aId), { what: 'b to see a removed' })
  await waitFor(() => a.connectionCount === 2 && a.synced, { what: 'a to reconnect' })
  a.awareness.setLocalStateField('user', { name: 'a again' })
  await waitFor(() => stateAt(b, aId)?.user?.name === 'a again', {
    timeout: 3000,
    what: 'b to see a\'s new state',
    describe: () => `b knows a at clock ${b.awareness.meta.get(aId)?.clock}, a is at ${a.awareness.meta.get(aId).clock}`
  })
})

test('a session\'s own awareness updates are echoed to it (y-websocket\'s 30 s watchdog counts on them)', { timeout: 30000 }, async () => {
  const id = uniqueDocId('awareness-echo')
  const raw = peers.track(await RawSocket.open(`${server.yjsUrl}/${id}`))
  await waitFor(() => raw.frames.length > 0, { what: 'the sync step 1 of the server' })
  raw.send(awarenessMessage(awarenessUpdate([[4242, 1, { user: 'me' }]])))
  await waitFor(() => yjsAwareness(raw).some((e) => e.client === 4242), { timeout: 3000, what: 'the echo of the own awareness update' })
})

test('an awareness update whose state is not JSON is not relayed', { timeout: 30000 }, async () => {
  const id = uniqueDocId('awareness-bad-json')
  const observer = peers.track(await RawSocket.open(`${server.yjsUrl}/${id}`))
  const nativeObserver = peers.track(await nativeSession(server, id))
  const sender = peers.track(await RawSocket.open(`${server.yjsUrl}/${id}`))
  await waitFor(() => sender.frames.length > 0 && nativeObserver.json().length > 0)
  // One entry, client 42, clock 1, state `{{`.
  const bad = Uint8Array.from([1, 42, 1, 2, 0x7b, 0x7b])
  sender.send(awarenessMessage(bad))
  // Either the sender is closed (1007) or the update is dropped; in no case
  // does it reach anyone.
  await Promise.race([sender.closed, sleep(500)])
  if (sender.closeInfo) assert.equal(sender.closeInfo.code, 1007, JSON.stringify(sender.closeInfo))
  assert.deepEqual(yjsAwareness(observer).filter((e) => e.client === 42), [])
  assert.deepEqual(nativeAwareness(nativeObserver).filter((e) => e.client === 42), [])
})
