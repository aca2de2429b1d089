// The first 20,000 patches of the automerge-paper trace, replayed through
// one client (one Yjs transaction, so one update and one op, per patch),
// must arrive exactly at another client of the other route.

import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { before, test } from 'node:test'
import { uniqueDocId, useServer, waitFor, waitSynced } from '../lib/peers.mjs'
import { TRACE_PATH, loadTrace, replay } from '../lib/trace.mjs'

const PATCHES = 20000
const skip = existsSync(TRACE_PATH) ? false : `${TRACE_PATH} not found (set AUTOMERGE_PAPER_TRACE)`

const { server, peers } = useServer()
let trace
before(() => { if (!skip) trace = loadTrace(PATCHES) })

/**
 * Waits until `peer` has `expected`; fails early when its text stops
 * changing for `stallMs` (something was lost), or after `timeout`.
 */
async function waitForText (peer, expected, { timeout = 60000, stallMs = 5000 } = {}) {
  let last = null
  let lastChange = Date.now()
  await waitFor(() => {
    const now = peer.str
    if (now === expected) return true
    if (now !== last) {
      last = now
      lastChange = Date.now()
    } else if (Date.now() - lastChange > stallMs) {
      throw new Error(`${peer.kind} reader stalled for ${stallMs} ms at ${now.length} of ${expected.length} characters; first difference at ${firstDifference(now, expected)}`)
    }
    return false
  }, { timeout, what: `the ${peer.kind} reader to have the text`, describe: () => `${peer.str.length} of ${expected.length} characters` })
}

function firstDifference (a, b) {
  let i = 0
  while (i < a.length && i < b.length && a[i] === b[i]) i++
  return i
}

test('automerge-paper, 20,000 patches: native writer, y-websocket reader', { timeout: 90000, skip }, async () => {
  assert.equal(trace.expected.length, 14302)
  const id = uniqueDocId('trace-native')
  const reader = peers.provider(server, id)
  const writer = peers.native(server, id, { clientId: 'trace-writer' })
  await waitSynced([reader, writer])
  replay(writer.text, trace.patches)
  assert.equal(writer.str, trace.expected)
  await waitForText(reader, trace.expected)
  await waitFor(() => writer.client.pendingCount === 0, { timeout: 30000, what: 'every op acknowledged' })
  assert.equal(writer.client.lastSeenServerSeq, PATCHES)

  // Fresh readers of both kinds get the same from the server.
  const late = [peers.provider(server, id), peers.native(server, id)]
  await waitSynced(late, 30000)
  for (const p of late) await waitForText(p, trace.expected, { timeout: 30000 })
})

test('automerge-paper, 20,000 patches: y-websocket writer, native reader', { timeout: 90000, skip }, async () => {
  const id = uniqueDocId('trace-yjs')
  const writer = peers.provider(server, id)
  const reader = peers.native(server, id)
  await waitSynced([writer, reader])
  replay(writer.text, trace.patches)
  assert.equal(writer.str, trace.expected)
  await waitForText(reader, trace.expected)

  const late = [peers.provider(server, id), peers.native(server, id)]
  await waitSynced(late, 30000)
  for (const p of late) await waitForText(p, trace.expected, { timeout: 30000 })
})
