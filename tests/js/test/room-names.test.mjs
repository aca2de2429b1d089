// Room names as y-websocket apps use them (slashes, colons, dates, spaces,
// accents): real providers connect, sync and share the document with a
// native client, which percent-encodes the name (`encodeURIComponent`).

import assert from 'node:assert/strict'
import { test } from 'node:test'
import { readOpLog, textFromLog, uniqueDocId, useServer, waitConverged, waitFor, waitSynced } from '../lib/peers.mjs'

const { server, peers } = useServer()

for (const [label, name] of [
  ['a slash and a colon', (prefix) => `${prefix}/doc:1`],
  ['a date path', (prefix) => `notes/${prefix}/2026-12-01`],
  ['a space and an accent', (prefix) => `Café menu ${prefix}`]
]) {
  test(`providers and a native client share a room named with ${label}`, { timeout: 20000 }, async () => {
    const id = name(uniqueDocId('room'))
    const a = peers.provider(server, id)
    const b = peers.provider(server, id)
    const n = peers.native(server, id, { clientId: 'native' })
    await waitSynced([a, b, n])
    a.text.insert(0, '<a>')
    n.text.insert(0, '{n}')
    b.text.insert(0, '[b]')
    const text = await waitConverged([a, b, n], (t) => t.includes('<a>') && t.includes('{n}') && t.includes('[b]'))
    for (const peer of [a, b]) {
      assert.deepEqual(peer.closeCodes, [], `${peer.describe()} never had its connection refused`)
    }
    assert.deepEqual(n.errors, [])
    // One document, under exactly that name: its op log holds the three ops.
    const log = await waitFor(async () => {
      const l = await readOpLog(server, encodeURIComponent(id))
      return textFromLog(l) === text && l
    }, { what: 'the op log of the room' })
    assert.equal(log.welcome.document_id, id)
    assert.equal(log.ops.length, 3)
  })
}
