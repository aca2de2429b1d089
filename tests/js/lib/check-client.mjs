// Run before the tests (npm `pretest`): the suite uses a copy of
// ../../clients/js installed by npm (`install-links=true` in .npmrc, so the
// client resolves `yjs` from this project, one Yjs for all). A copy older
// than the sources would test stale code: refuse to run with it.

import { readFileSync, readdirSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const here = path.dirname(fileURLToPath(import.meta.url))
const source = path.resolve(here, '../../../clients/js')
const installed = path.resolve(here, '../node_modules/@collab-engine/client')

const stale = []
for (const rel of ['package.json', ...readdirSync(path.join(source, 'src')).map((f) => `src/${f}`)]) {
  let copy = null
  try {
    copy = readFileSync(path.join(installed, rel))
  } catch (_) {}
  if (copy === null || !copy.equals(readFileSync(path.join(source, rel)))) stale.push(rel)
}
if (stale.length > 0) {
  console.error(`node_modules/@collab-engine/client differs from clients/js (${stale.join(', ')}): run \`npm ci\` in tests/js`)
  process.exit(1)
}
