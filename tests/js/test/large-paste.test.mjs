// A large paste through y-websocket: a provider inserts 5 MB of text in one
// transaction (one update of about 5 MB) and keeps editing; another
// provider gets all of it; after a server restart the document still holds
// it, for the old providers and for a new one. With the default
// `documents.max_message_bytes` (32 MiB), nothing is refused.

import assert from 'node:assert/strict'
import { test } from 'node:test'
import { readOpLog, textFromLog, uniqueDocId, useServer, waitConverged, waitFor, waitSynced } from '../lib/peers.mjs'

const { server, peers } = useServer()

const PASTE_BYTES = 5 * 1024 * 1024

/** 5 MB of varied text, as a paste of a long document would be. */
function paste () {
  const words = ['lorem', 'ipsum', 'dolor', 'sit', 'amet', 'café', 'naïve', '—', '42']
  let text = ''
  for (let i = 0; text.length < PASTE_BYTES; i++) text += words[(i * 7) % words.length] + (i % 12 === 0 ? '\n' : ' ')
  return text.slice(0, PASTE_BYTES)
}

test('a 5 MB paste reaches every provider, later edits too, and survives a restart', { timeout: 90000 }, async () => {
  const id = uniqueDocId('paste')
  const a = peers.provider(server, id)
  const b = peers.provider(server, id)
  await waitSynced([a, b])
  const big = paste()
  a.text.insert(0, big)
  await waitConverged([a, b], (t) => t.length === big.length, 30000)
  a.text.insert(a.text.length, '<after-paste>')
  b.text.insert(0, '[b-edit]')
  const text = await waitConverged([a, b], (t) => t.startsWith('[b-edit]') && t.endsWith('<after-paste>'), 30000)
  assert.equal(text, '[b-edit]' + big + '<after-paste>')
  for (const p of [a, b]) assert.ok(!p.closeCodes.includes(1009), `${p.describe()}`)

  await server.stop('SIGTERM')
  await server.start()
  a.text.insert(a.text.length, '<after-restart>')
  const c = peers.provider(server, id)
  const n = peers.native(server, id)
  const final = await waitConverged([a, b, c, n], (t) => t.endsWith('<after-restart>'), 45000)
  assert.equal(final, text + '<after-restart>')
  const log = await waitFor(async () => {
    const l = await readOpLog(server, id, 30000)
    return textFromLog(l) === final && l
  }, { what: 'the op log to hold the paste', timeout: 30000 })
  assert.ok(log.ops.some((op) => op.update.length > PASTE_BYTES), 'the paste is one op')
})
