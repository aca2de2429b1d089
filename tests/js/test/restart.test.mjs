// y-websocket providers across a server restart: they reconnect by
// themselves to the same URL, edits made while the server was down merge,
// and nothing is lost.

import assert from 'node:assert/strict'
import { test } from 'node:test'
import {
  occurrences, readOpLog, seedText, textFromLog, uniqueDocId, useServer, waitConverged, waitFor
} from '../lib/peers.mjs'

// useServer starts the server again after a test that stopped it.
const { server, peers } = useServer()

async function waitDisconnected (list) {
  await waitFor(() => list.every((p) => !p.provider.wsconnected), {
    what: 'the providers to notice the server is gone',
    describe: () => list.map((p) => p.describe()).join(' / ')
  })
}

for (const signal of ['SIGTERM', 'SIGKILL']) {
  test(`providers survive a server restart (${signal}) with offline edits on both; nothing is lost`, { timeout: 40000 }, async () => {
    const id = uniqueDocId(`restart-${signal.toLowerCase()}`)
    const a = peers.provider(server, id)
    const b = peers.provider(server, id)
    await seedText([a, b], 'A0;')
    b.text.insert(b.text.length, 'B0;')
    await waitConverged([a, b], (t) => t === 'A0;B0;')
    // A last edit right before the stop, not waited for.
    a.text.insert(a.text.length, 'A1;')

    const port = server.port
    const code = await server.stop(signal)
    if (signal === 'SIGTERM') assert.equal(code, 0, 'graceful shutdown exits with 0')
    await waitDisconnected([a, b])
    if (signal === 'SIGTERM') {
      for (const p of [a, b]) assert.ok(p.closeCodes.includes(1001), `close codes ${p.closeCodes}`)
    }

    // Offline edits on both, several transactions each, deletions included.
    a.text.insert(0, '<a-off-1>')
    a.text.insert(a.text.length, '<a-off-2>')
    b.text.insert(b.text.length, '[b-off-1]')
    b.text.delete(b.str.indexOf('B0;'), 3)
    b.text.insert(0, '[b-off-2]')
    assert.notEqual(a.str, b.str)

    await server.start()
    assert.equal(server.port, port)
    const offline = ['<a-off-1>', '<a-off-2>', '[b-off-1]', '[b-off-2]', 'A0;', 'A1;']
    const text = await waitConverged([a, b], (t) => offline.every((p) => t.includes(p)) && !t.includes('B0;'), 15000)
    for (const p of offline) assert.equal(occurrences(text, p), 1, `${p} in ${text}`)
    assert.ok(a.connectionCount >= 2 && b.connectionCount >= 2, 'both reconnected')

    // The server has all of it: the op log, a fresh provider, a fresh native client.
    await waitFor(async () => textFromLog(await readOpLog(server, id)) === text, { what: 'the op log to hold the merged text' })
    const c = peers.provider(server, id)
    const n = peers.native(server, id)
    await waitConverged([c, n], (t) => t === text)

    // And it survives one more restart.
    await server.restart()
    const d = peers.provider(server, id)
    await waitConverged([a, b, d], (t) => t === text, 15000)
  })
}
