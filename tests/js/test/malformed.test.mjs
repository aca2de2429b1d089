// Malformed frames on `/yjs/{id}`: the sending connection is closed with
// 1003 (unsupported data: a text frame, an unknown message type) or 1007
// (invalid payload: truncated, undecodable), and nothing of the frame reaches
// the document, its op log or any other session.

import assert from 'node:assert/strict'
import { test } from 'node:test'
import * as Y from 'yjs'
import { readOpLog, sleep, textFromLog, uniqueDocId, useServer, waitConverged, waitFor, waitSynced, TEXT } from '../lib/peers.mjs'
import { RawSocket, SYNC_STEP_1, SYNC_STEP_2, SYNC_UPDATE, syncMessage } from '../lib/wire.mjs'

// This file checks the 1 MiB limit of earlier defaults (the default is now 32 MiB).
const { server, peers } = useServer({ env: { COLLAB__DOCUMENTS__MAX_MESSAGE_BYTES: '1048576' } })

/** A valid y-protocols update message inserting `text` (a client of its own). */
function validUpdateFrame (text) {
  const doc = new Y.Doc()
  doc.getText(TEXT).insert(0, text)
  return syncMessage(SYNC_UPDATE, Y.encodeStateAsUpdate(doc))
}

const concat = (...parts) => Uint8Array.from(parts.flatMap((p) => [...p]))

const valid = validUpdateFrame('GARBAGE-TEXT')
const CASES = [
  { name: 'a text frame', frame: 'hello', codes: [1003] },
  { name: 'an empty binary frame', frame: new Uint8Array(0), codes: [1007] },
  { name: 'bytes that are no y-protocols message', frame: new TextEncoder().encode('garbage'), codes: [1003, 1007] },
  { name: 'an unfinished varuint', frame: Uint8Array.from([0xff, 0xff, 0xff]), codes: [1007] },
  { name: 'an unknown message type', frame: Uint8Array.from([7, 1, 0]), codes: [1003] },
  { name: 'an unknown sync message type', frame: Uint8Array.from([0, 5, 1, 0]), codes: [1003, 1007] },
  { name: 'an auth message', frame: Uint8Array.from([2, 0, 1, 0x41]), codes: [1003] },
  { name: 'an update that is not a Yjs update', frame: syncMessage(SYNC_UPDATE, [0xff, 0xff, 0x01]), codes: [1007] },
  { name: 'a sync step 2 that is not a Yjs update', frame: syncMessage(1, [0x05, 0xff]), codes: [1007] },
  { name: 'a truncated update message', frame: valid.subarray(0, 6), codes: [1007] },
  { name: 'an awareness message that does not decode', frame: Uint8Array.from([1, 3, 0xff, 0xff, 0xff]), codes: [1007] },
  { name: 'a valid update followed by an unknown message type', frame: concat(valid, [7, 1, 0]), codes: [1003] },
  { name: 'a frame larger than documents.max_message_bytes (1 MiB)', frame: new Uint8Array(1100000), codes: [1009] }
]

// Frames whose valid first message the server currently accepts, while the
// rest of the frame is broken.
const TRAILING = [
  { name: 'a valid update followed by a stray byte', frame: concat(valid, [0xff]), codes: [1007] },
  { name: 'a valid update followed by a truncated message', frame: concat(valid, [0, 2, 10, 1, 2]), codes: [1007] }
]

/**
 * Sends each case on a fresh raw connection to a document where a provider
 * and a raw observer sit, and checks the close code and that nothing reached
 * the provider, the observer, the document or its op log.
 */
async function checkCases (cases) {
  const id = uniqueDocId('malformed')
  const a = peers.provider(server, id)
  await waitSynced([a])
  a.text.insert(0, 'before;')
  const observer = peers.track(await RawSocket.open(`${server.yjsUrl}/${id}`))
  await waitFor(async () => textFromLog(await readOpLog(server, id)) === 'before;')
  // The observer asks for everything (sync step 1 with an empty state vector).
  observer.send(syncMessage(SYNC_STEP_1, [0]))
  await waitFor(() => observer.messages().some((m) => m.type === 'sync' && m.subtype === SYNC_STEP_2))
  await sleep(50)
  const observed = observer.frames.length
  const aUpdates = []
  a.doc.on('update', (u, origin) => aUpdates.push(origin))

  const failures = []
  for (const c of cases) {
    const raw = peers.track(await RawSocket.open(`${server.yjsUrl}/${id}`))
    raw.send(c.frame)
    const closed = await Promise.race([raw.closed, sleep(2000).then(() => null)])
    if (!closed) failures.push(`${c.name}: connection still open after 2 s`)
    else if (!c.codes.includes(closed.code)) failures.push(`${c.name}: closed with ${closed.code} (${closed.reason}), expected ${c.codes.join(' or ')}`)
    raw.destroy()
  }

  // The provider keeps working: its next edit is the one and only thing
  // the observer gets after all that.
  a.text.insert(a.text.length, 'after;')
  await waitFor(() => observer.frames.length === observed + 1, { what: 'a\'s edit at the observer' })
  await sleep(100)
  assert.equal(observer.frames.length, observed + 1, 'the observer got nothing else')
  const [seen] = observer.messages().slice(-1)
  assert.equal(seen.type, 'sync')
  const replica = new Y.Doc()
  for (const m of observer.messages()) if (m.type === 'sync' && m.subtype !== 0) Y.applyUpdate(replica, m.payload)
  assert.equal(replica.getText(TEXT).toString(), 'before;after;')
  // …and with a new client.
  const b = peers.provider(server, id)
  await waitConverged([a, b], (t) => t === 'before;after;')
  // Nothing of the garbage anywhere: a received no update from the server,
  // the log holds the provider's ops only.
  assert.deepEqual(aUpdates.filter((origin) => origin !== null), [], 'updates a received from the server')
  const log = await waitFor(async () => {
    const l = await readOpLog(server, id)
    return textFromLog(l) === 'before;after;' && l
  }, { what: 'the op log', timeout: 3000 })
  assert.equal(new Set(log.ops.map((op) => op.client_id)).size, 1, JSON.stringify(log.ops.map((op) => op.client_id)))
  assert.deepEqual(failures, [])
}

test('malformed frames close the sender with 1003/1007; the document and the other sessions get nothing of them', { timeout: 60000 }, async () => {
  await checkCases(CASES)
})

test('a frame with a valid update and broken bytes after it contributes nothing and closes with 1007', { timeout: 60000 }, async () => {
  await checkCases(TRAILING)
})
