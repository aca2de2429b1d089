// y-websocket providers when the server refuses their updates or restarts
// the document (fault injection, `debug.fault_injection = true`): the
// session closes (1013, 1012), the provider reconnects by itself and its
// sync step brings the refused updates back. Nothing is lost.

import assert from 'node:assert/strict'
import { test } from 'node:test'
import {
  occurrences, readOpLog, seedText, textFromLog, uniqueDocId, useServer, waitConverged, waitFor
} from '../lib/peers.mjs'

const { server, peers } = useServer({ env: { COLLAB__DEBUG__FAULT_INJECTION: 'true' } })

for (const [fault, what] of [
  ['fail-commits?count=1', 'a failed commit'],
  ['fail-commits?count=1&when=after', 'a commit that landed but was reported failed']
]) {
  test(`a provider's update refused by ${what} comes back after the reconnect`, { timeout: 30000 }, async () => {
    const id = uniqueDocId('yjs-refused')
    const a = peers.provider(server, id)
    const b = peers.provider(server, id)
    const n = peers.native(server, id)
    await seedText([a, b, n], 'start;')

    await server.inject(id, fault)
    a.text.insert(a.text.length, '<refused?>')
    await waitFor(() => a.closeCodes.length > 0, { what: 'the server to close a\'s session', describe: () => a.describe() })
    assert.deepEqual(a.closeCodes, [1013])
    const text = await waitConverged([a, b, n], (t) => t.includes('<refused?>'))
    assert.equal(text, 'start;<refused?>')
    assert.equal(occurrences(text, '<refused?>'), 1)
    await waitFor(async () => textFromLog(await readOpLog(server, id)) === text, { what: 'the op log' })
    // Later edits flow normally.
    a.text.insert(0, 'later;')
    await waitConverged([a, b, n], (t) => t === 'later;start;<refused?>')
  })
}

test('providers come back after a document panic (close 1012) and lose nothing', { timeout: 30000 }, async () => {
  const id = uniqueDocId('yjs-panic')
  const a = peers.provider(server, id)
  const n = peers.native(server, id)
  await seedText([a, n], 'before;')

  await server.inject(id, 'panic')
  await waitFor(() => a.closeCodes.length > 0, { what: 'the restart to close a\'s session' })
  assert.deepEqual(a.closeCodes, [1012])
  a.text.insert(a.text.length, '<a after panic>')
  n.text.insert(0, '{n after panic}')
  const text = await waitConverged([a, n], (t) => t.includes('<a after panic>') && t.includes('{n after panic}'))
  assert.equal(text, '{n after panic}before;<a after panic>')
  await waitFor(async () => textFromLog(await readOpLog(server, id)) === text, { what: 'the op log' })
  const late = peers.provider(server, id)
  await waitConverged([late], (t) => t === text)
})
