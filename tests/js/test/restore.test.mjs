// Restore over HTTP with real Yjs clients: after POST /restore, every
// connected client (a y-websocket provider, a native client) and one that
// was offline during the restore hold exactly the content of the old seq,
// for a text with formatting, a map, an array and a ProseMirror-style XML
// fragment; the op log keeps everything (history is not rewritten).

import assert from 'node:assert/strict'
import { test } from 'node:test'
import * as Y from 'yjs'
import { TEXT, readOpLog, uniqueDocId, useServer, waitFor, waitSynced } from '../lib/peers.mjs'

const { server, peers } = useServer()

const api = (id, resource = '') =>
  `${server.httpUrl}/api/documents/${encodeURIComponent(id)}${resource}`

function contentOf (doc) {
  return {
    text: doc.getText(TEXT).toDelta(),
    meta: doc.getMap('meta').toJSON(),
    list: doc.getArray('list').toJSON(),
    prosemirror: doc.getXmlFragment('prosemirror').toString()
  }
}

async function head (id) {
  const res = await fetch(api(id))
  return res.ok ? (await res.json()).server_seq : 0
}

test('restore makes every client, connected or offline, hold the old content', { timeout: 30000 }, async () => {
  const id = uniqueDocId('restore')
  const a = peers.provider(server, id)
  const n = peers.native(server, id, { clientId: 'native-editor' })
  const offline = peers.native(server, id, { clientId: 'offline-editor' })
  await waitSynced([a, n, offline])
  const doc = a.doc
  doc.transact(() => {
    doc.getText(TEXT).insert(0, 'Plan: ship it')
    doc.getText(TEXT).format(0, 4, { bold: true })
    doc.getMap('meta').set('owner', 'ada')
    doc.getMap('meta').set('draft', true)
    doc.getArray('list').push(['one', 2])
    const p = new Y.XmlElement('paragraph')
    p.setAttribute('align', 'left')
    p.insert(0, [new Y.XmlText('first')])
    doc.getXmlFragment('prosemirror').insert(0, [p])
  })
  const expected = contentOf(doc)
  const pinned = await waitFor(async () => (await head(id)) >= 1 && head(id), { what: 'the first op committed' })
  const seq = await pinned
  await waitFor(() => JSON.stringify(contentOf(offline.doc)) === JSON.stringify(expected), { what: 'the offline client to have the old content first' })
  offline.destroy()

  // Later edits, from both connected clients.
  doc.getText(TEXT).insert(13, ' tomorrow')
  doc.getMap('meta').delete('draft')
  n.doc.getMap('meta').set('reviewer', 'bob')
  n.doc.getArray('list').push([3])
  const heading = new Y.XmlElement('heading')
  heading.insert(0, [new Y.XmlText('new')])
  doc.getXmlFragment('prosemirror').insert(0, [heading])
  await waitFor(async () => (await head(id)) >= seq + 5, { what: 'the later edits committed' })

  const restored = await fetch(api(id, '/restore'), {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ server_seq: seq })
  })
  assert.equal(restored.status, 200)
  const { server_seq: restoreSeq } = await restored.json()
  assert.ok(restoreSeq > seq + 4, `a new op after the edits: ${restoreSeq}`)

  const back = peers.native(server, id, { clientId: 'offline-editor', doc: offline.doc })
  for (const peer of [a, n, back]) {
    await waitFor(() => JSON.stringify(contentOf(peer.doc)) === JSON.stringify(expected), {
      what: `${peer.kind} to hold the restored content`,
      describe: () => JSON.stringify(contentOf(peer.doc))
    })
  }
  // The server agrees, and history is intact: the old seq reads the same.
  const content = await (await fetch(api(id, '/content'))).json()
  assert.equal(content.server_seq, restoreSeq)
  assert.deepEqual(content.content.meta, expected.meta)
  assert.deepEqual(content.content.list, expected.list)
  assert.equal(content.content.prosemirror, expected.prosemirror)
  const log = await readOpLog(server, encodeURIComponent(id))
  assert.equal(log.ops.at(-1).client_id, 'restore')
  assert.equal(log.ops.length, restoreSeq)
})
