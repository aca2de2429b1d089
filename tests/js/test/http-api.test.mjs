// The HTTP API with real Yjs clients: the content the server reports is
// what Yjs itself reports (toJSON) for text, map, array and an XML
// fragment as ProseMirror writes it; an update POSTed over HTTP reaches
// open y-websocket providers and native clients; the SSE feed carries it.

import assert from 'node:assert/strict'
import { test } from 'node:test'
import * as Y from 'yjs'
import { TEXT, uniqueDocId, useServer, waitConverged, waitFor, waitSynced } from '../lib/peers.mjs'

const { server, peers } = useServer()

const api = (id, resource = '') =>
  `${server.httpUrl}/api/documents/${encodeURIComponent(id)}${resource}`

test('content over HTTP is what Yjs reports for text, map, array and XML', { timeout: 20000 }, async () => {
  const id = uniqueDocId('content/kinds')
  const a = peers.provider(server, id)
  await waitSynced([a])
  const doc = a.doc
  doc.transact(() => {
    doc.getText('title').insert(0, 'Launch plan')
    const meta = doc.getMap('meta')
    meta.set('owner', 'ada')
    meta.set('version', 3)
    meta.set('tags', ['a', 'b'])
    const nested = new Y.Map()
    nested.set('x', 1.5)
    meta.set('nested', nested)
    const list = doc.getArray('list')
    list.push([1, 'two', { three: 3 }, null, true])
    // As y-prosemirror writes a paragraph with bold text and a heading.
    const xml = doc.getXmlFragment('prosemirror')
    const heading = new Y.XmlElement('heading')
    heading.setAttribute('level', '1')
    heading.insert(0, [new Y.XmlText('Title')])
    const paragraph = new Y.XmlElement('paragraph')
    const text = new Y.XmlText()
    paragraph.insert(0, [text])
    xml.insert(0, [heading, paragraph])
    text.insert(0, 'Hello ')
    text.insert(6, 'world', { bold: {} })
  })
  const expected = {
    title: doc.getText('title').toJSON(),
    meta: doc.getMap('meta').toJSON(),
    list: doc.getArray('list').toJSON(),
    prosemirror: doc.getXmlFragment('prosemirror').toJSON()
  }
  // Every op is committed once the server's head reaches the 1 op (one transaction).
  const answer = await waitFor(async () => {
    const res = await fetch(api(id, '/content'))
    const body = res.ok && await res.json()
    return body && body.server_seq >= 1 && body
  }, { what: 'the content of the document' })
  assert.deepEqual(answer.content, expected)

  // Roots the document alone cannot tell: named in `types`.
  doc.getText('emptied').insert(0, 'gone')
  doc.getText('emptied').delete(0, 4)
  await waitFor(async () => (await (await fetch(api(id))).json()).server_seq >= 3, { what: 'the emptying ops' })
  const typed = await (await fetch(api(id, '/content?types=emptied:text'))).json()
  assert.equal(typed.content.emptied, '')
  const bad = await fetch(api(id, '/content?types=emptied:tree'))
  assert.equal(bad.status, 400)
  assert.equal((await bad.json()).error, 'bad_request')
})

test('an update POSTed over HTTP reaches providers and native clients, and the feed', { timeout: 20000 }, async () => {
  const id = uniqueDocId('content/posted')
  const a = peers.provider(server, id)
  const n = peers.native(server, id, { clientId: 'native-reader' })
  await waitSynced([a, n])
  a.text.insert(0, 'typed ')
  await waitConverged([a, n], (t) => t === 'typed ')

  // The server side of an import: a Y.Doc that knows the current state.
  const importer = new Y.Doc()
  const state = await fetch(api(id, '/state'))
  assert.equal(state.status, 200)
  Y.applyUpdate(importer, new Uint8Array(await state.arrayBuffer()))
  const before = Y.encodeStateVector(importer)
  importer.getText(TEXT).insert(importer.getText(TEXT).length, 'imported')
  const update = Y.encodeStateAsUpdate(importer, before)
  const posted = await fetch(api(id, '/updates'), {
    method: 'POST',
    headers: { 'Content-Type': 'application/octet-stream', 'Idempotency-Key': `import-${id}` },
    body: update
  })
  assert.equal(posted.status, 200)
  const { server_seq: seq, duplicate } = await posted.json()
  assert.equal(duplicate, false)
  await waitConverged([a, n], (t) => t === 'typed imported')

  // The feed has it at that seq, as an SSE event too.
  const page = await (await fetch(api(id, `/ops?since=${seq - 1}`))).json()
  assert.equal(page.ops.length, 1)
  assert.equal(page.ops[0].server_seq, seq)
  assert.deepEqual(new Uint8Array(Buffer.from(page.ops[0].update, 'base64')), update)
  const controller = new AbortController()
  const events = await fetch(api(id, `/ops?since=${seq - 1}`), {
    headers: { Accept: 'text/event-stream' },
    signal: controller.signal
  })
  assert.equal(events.headers.get('content-type'), 'text/event-stream')
  const reader = events.body.getReader()
  let text = ''
  while (!text.includes(`id: ${seq}\n`)) {
    const { value, done } = await reader.read()
    assert.ok(!done, 'the stream stays open')
    text += Buffer.from(value).toString('utf8')
  }
  controller.abort()
  assert.match(text, new RegExp(`id: ${seq}\nevent: op\ndata: \\{`))

  // A resend with the same key is answered as a duplicate, and changes nothing.
  const again = await fetch(api(id, '/updates'), {
    method: 'POST',
    headers: { 'Content-Type': 'application/octet-stream', 'Idempotency-Key': `import-${id}` },
    body: update
  })
  assert.deepEqual(await again.json(), { server_seq: seq, duplicate: true })
  assert.equal(a.str, 'typed imported')
})
