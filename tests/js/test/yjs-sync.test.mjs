// y-websocket providers (the npm package) on `/yjs/{id}`: convergence of
// concurrent edits, late joiners, and every update committed to the op log.

import assert from 'node:assert/strict'
import { test } from 'node:test'
import {
  occurrences, readOpLog, textFromLog, uniqueDocId, useServer, waitConverged, waitFor, waitSynced
} from '../lib/peers.mjs'

const { server, peers } = useServer()

/** Waits until the op log alone builds `text`; returns the log. */
async function logHolds (id, text) {
  return await waitFor(async () => {
    const log = await readOpLog(server, id)
    return textFromLog(log) === text && log
  }, { what: 'the op log to hold the text' })
}

test('two y-websocket providers converge on concurrent edits of a Y.Text', { timeout: 30000 }, async () => {
  const id = uniqueDocId('yjs-two')
  const a = peers.provider(server, id)
  const b = peers.provider(server, id)
  await waitSynced([a, b])

  // Each round, both sides edit in the same tick, so neither has seen the
  // other's edit when making its own: inserts at the ends and in the
  // middle, and every fifth round concurrent deletions of shared text.
  const pieces = []
  for (let round = 0; round < 20; round++) {
    const pa = `<a${round}>`
    const pb = `[b${round}]`
    pieces.push(pa, pb)
    if (round % 5 === 4) {
      // Both delete the same shared range and insert next to it.
      const at = Math.floor(a.text.length / 3)
      a.doc.transact(() => { a.text.delete(at, 4); a.text.insert(at, pa) })
      b.doc.transact(() => { b.text.delete(at + 2, 4); b.text.insert(b.text.length, pb) })
    } else {
      a.text.insert(round % 2 ? 0 : a.text.length, pa)
      b.text.insert(Math.floor(b.text.length / 2), pb)
    }
    await waitConverged([a, b], (t) => t.includes(pa) && t.includes(pb))
  }
  const text = a.str
  for (const p of pieces) assert.ok(occurrences(text, p) <= 1, `${p} twice in ${text}`)
  assert.ok(text.includes('<a19>') && text.includes('[b19]'))

  // Every update became an op, in seq order, from y-websocket sessions: the
  // op log alone builds the same text.
  const log = await logHolds(id, text)
  assert.deepEqual(log.ops.map((op) => op.server_seq), log.ops.map((_, i) => i + 1))
  assert.ok(log.ops.length >= 40, `${log.ops.length} ops`)
  assert.ok(log.ops.every((op) => /^yjs-/.test(op.client_id)), log.ops.map((op) => op.client_id).join(','))
  assert.equal(new Set(log.ops.map((op) => op.client_id)).size, 2)
})

test('a burst of updates from one provider all reach the others and the op log', { timeout: 30000 }, async () => {
  const id = uniqueDocId('yjs-burst')
  const a = peers.provider(server, id)
  const b = peers.provider(server, id)
  await waitSynced([a, b])
  // Fifty transactions in one tick: fifty update messages in a row.
  for (let i = 0; i < 50; i++) a.text.insert(a.text.length, `${i % 10}`)
  const expected = '0123456789'.repeat(5)
  assert.equal(a.str, expected)
  await waitFor(() => b.str === expected, { timeout: 3000, what: 'b to get every update', describe: () => `${a.describe()} / ${b.describe()}` })
  // …and later edits of the same provider still arrive.
  a.text.insert(0, 'later;')
  await waitConverged([a, b], (t) => t === `later;${expected}`)
  await logHolds(id, `later;${expected}`)
})

test('a late joiner gets the full state, also when the writer is gone', { timeout: 30000 }, async () => {
  const id = uniqueDocId('yjs-late')
  const a = peers.provider(server, id)
  const observer = peers.provider(server, id)
  await waitSynced([a, observer])
  // Edits in batches (one transaction each), inserts and deletions, with
  // text outside the BMP.
  for (let batch = 0; batch < 10; batch++) {
    a.doc.transact(() => {
      for (let i = 0; i < 20; i++) a.text.insert(a.text.length, `${(batch + i) % 10}`)
      if (batch % 3 === 2) a.text.delete(5, 7)
    })
    const now = a.str
    await waitFor(() => observer.str === now, { what: `batch ${batch} at the observer`, describe: () => observer.describe() })
  }
  a.text.insert(0, 'héllo wörld 😀 ')
  const expected = a.str
  assert.equal(expected.length, 'héllo wörld 😀 '.length + 200 - 3 * 7)

  // Joins while the writer is still there.
  const c = peers.provider(server, id)
  await waitConverged([a, c], (t) => t === expected)

  // Joins after the writer left: the state can only come from the server.
  await logHolds(id, expected)
  a.destroy()
  observer.destroy()
  c.destroy()
  const d = peers.provider(server, id)
  await waitSynced([d])
  await waitFor(() => d.str === expected, { what: 'the late joiner\'s text', describe: () => d.describe() })
})
