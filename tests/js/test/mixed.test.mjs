// Native CollabClients (`/ws/{id}`) and y-websocket providers (`/yjs/{id}`)
// on the same document: every op of one route reaches the other.

import assert from 'node:assert/strict'
import { test } from 'node:test'
import {
  occurrences, readOpLog, seedText, textFromLog, uniqueDocId, useServer, waitConverged, waitFor, waitSynced
} from '../lib/peers.mjs'

const { server, peers } = useServer()

test('a native client and y-websocket providers converge on edits from both routes', { timeout: 30000 }, async () => {
  const id = uniqueDocId('mixed')
  const a = peers.provider(server, id)
  const b = peers.provider(server, id)
  const n = peers.native(server, id, { clientId: 'native-writer' })
  await waitSynced([a, b, n])

  const pieces = []
  for (let round = 0; round < 10; round++) {
    const pa = `<a${round}>`
    const pb = `[b${round}]`
    const pn = `{n${round}}`
    pieces.push(pa, pb, pn)
    // Same tick: three concurrent edits, one per client.
    a.text.insert(0, pa)
    b.text.insert(b.text.length, pb)
    n.text.insert(n.str.indexOf('>') + 1, pn) // after the first piece: never inside one
    await waitConverged([a, b, n], (t) => t.includes(pa) && t.includes(pb) && t.includes(pn))
  }
  // The native client deletes what a provider wrote and the other way round.
  n.text.delete(n.str.indexOf('<a0>'), 4)
  await waitConverged([a, b, n], (t) => !t.includes('<a0>'))
  a.text.delete(a.str.indexOf('{n0}'), 4)
  await waitConverged([a, b, n], (t) => !t.includes('{n0}'))
  // A burst of native ops (each its own op) reaches the providers.
  for (let i = 0; i < 30; i++) n.text.insert(n.text.length, `${i % 10}`)
  const text = await waitConverged([a, b, n], (t) => t.endsWith('012345678901234567890123456789'))
  for (const p of pieces.filter((p) => p !== '<a0>' && p !== '{n0}')) assert.equal(occurrences(text, p), 1, `${p} in ${text}`)

  // One op log for both routes.
  const log = await waitFor(async () => {
    const l = await readOpLog(server, id)
    return textFromLog(l) === text && l
  }, { what: 'the op log to hold the text' })
  const writers = new Set(log.ops.map((op) => op.client_id))
  assert.ok(writers.has('native-writer'), [...writers].join(','))
  assert.equal([...writers].filter((w) => /^yjs-/.test(w)).length, 2, [...writers].join(','))
  assert.equal(log.ops.filter((op) => op.client_id === 'native-writer').length, 10 + 1 + 30)
})

test('offline edits of a native client and a provider merge; late joiners of either kind get everything', { timeout: 30000 }, async () => {
  const id = uniqueDocId('mixed-offline')
  const a = peers.provider(server, id)
  const n = peers.native(server, id)
  await seedText([a, n], 'shared;')

  // The native client goes offline and edits; the provider edits meanwhile.
  n.client.disconnect()
  n.text.insert(0, '{offline-1}')
  n.text.insert(n.text.length, '{offline-2}')
  n.text.delete(n.str.indexOf('shared;'), 1)
  a.text.insert(a.text.length, '<online>')
  await waitFor(() => n.client.pendingCount === 3)
  n.client.connect()
  const text = await waitConverged([a, n], (t) => t.includes('{offline-2}') && t.includes('<online>'))
  // The two appends were concurrent: either order.
  assert.ok(['{offline-1}hared;<online>{offline-2}', '{offline-1}hared;{offline-2}<online>'].includes(text), text)

  // The provider goes offline and edits; the native client edits meanwhile.
  a.provider.disconnect()
  await waitFor(() => !a.provider.wsconnected)
  a.text.insert(0, '<offline>')
  n.text.insert(n.text.length, '{online}')
  await waitFor(() => n.client.pendingCount === 0)
  a.provider.connect()
  const text2 = await waitConverged([a, n], (t) => t.includes('<offline>') && t.includes('{online}'))
  assert.equal(text2, `<offline>${text}{online}`)

  const late = [peers.provider(server, id), peers.native(server, id)]
  await waitConverged([a, n, ...late], (t) => t === text2)
})
