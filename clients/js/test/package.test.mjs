// The package as a user gets it: `npm pack` of this folder, installed with
// the pinned yjs and ws into a fresh temporary project, then a user's script
// there (importing `@collab-engine/client` and `yjs` by name) syncs two
// clients through the real server. Also: a Y.Doc of another copy of yjs is
// refused with an error saying so, as in a symlinked `npm install <folder>`
// (the client's folder has its own node_modules/yjs), while
// `--install-links` installs one copy and syncs.
//
// npm runs offline-friendly (`--prefer-offline`: `npm ci` of this folder
// already put these versions in the npm cache).

import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { existsSync, lstatSync, readdirSync, readFileSync, realpathSync } from 'node:fs'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { after, before, test } from 'node:test'
import WebSocket from 'ws'
import * as Y from 'yjs'
import { CollabClient } from '../src/index.js'
import { serverForTests } from './server.mjs'
import { uniqueDocId } from './wait.mjs'

const PACKAGE_DIR = path.resolve(fileURLToPath(new URL('..', import.meta.url)))
const PACKAGE = JSON.parse(readFileSync(path.join(PACKAGE_DIR, 'package.json'), 'utf8'))
// The exact versions this package's tests pin.
const YJS_VERSION = PACKAGE.devDependencies.yjs
const WS_VERSION = PACKAGE.devDependencies.ws
const NPM_TIMEOUT_MS = 180000
const SCRIPT_TIMEOUT_MS = 30000

const server = serverForTests()

/** A user's script: two clients on one document, text typed in each arrives at the other. */
const SYNC_SCRIPT = `
import * as Y from 'yjs'
import WebSocket from 'ws'
import { CollabClient } from '@collab-engine/client'

const url = process.env.COLLAB_ENGINE_URL
const documentId = process.env.COLLAB_DOCUMENT_ID
const docA = new Y.Doc()
const docB = new Y.Doc()
const a = new CollabClient({ url, documentId, doc: docA, WebSocket })
const b = new CollabClient({ url, documentId, doc: docB, WebSocket })
const errors = []
a.on('error', (e) => errors.push('a: ' + e.code + ' ' + e.message))
b.on('error', (e) => errors.push('b: ' + e.code + ' ' + e.message))
const textA = docA.getText('content')
const textB = docB.getText('content')
const state = () => ({ a: textA.toString(), b: textB.toString(), aSynced: a.synced, bSynced: b.synced, errors })
const timer = setTimeout(() => {
  console.error('timed out: ' + JSON.stringify(state()))
  process.exit(2)
}, ${SCRIPT_TIMEOUT_MS - 5000})
const until = async (condition) => { while (!condition()) await new Promise((resolve) => setTimeout(resolve, 10)) }

await until(() => a.synced && b.synced)
textA.insert(0, 'typed in a')
await until(() => textB.toString() === 'typed in a')
textB.insert(textB.length, ', answered in b')
await until(() => textA.toString() === 'typed in a, answered in b')
await until(() => a.pendingCount === 0 && b.pendingCount === 0)
clearTimeout(timer)
a.destroy()
b.destroy()
console.log(JSON.stringify({
  ...state(),
  client: import.meta.resolve('@collab-engine/client'),
  yjs: import.meta.resolve('yjs')
}))
process.exit(0)
`

/**
 * The environment for a nested npm: without the `npm_*` variables of the
 * `npm test` running this file (`npm_config_local_prefix` would point the
 * install at this folder), keeping where the cache and registry are.
 */
function npmEnv () {
  const keep = /^npm_config_(cache|registry|userconfig|globalconfig|cafile|ca|proxy|https_proxy|noproxy|strict_ssl|offline|prefer_offline)$/i
  const env = {}
  for (const [key, value] of Object.entries(process.env)) {
    if (!/^npm_/i.test(key) || keep.test(key)) env[key] = value
  }
  return env
}

/** Runs `file args` in `cwd`; resolves with `{ code, stdout, stderr }` whatever the exit code. */
function run (file, args, { cwd, env = process.env, timeout }) {
  return new Promise((resolve) => {
    execFile(file, args, { cwd, env, timeout, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
      const code = error ? (error.code ?? error.signal ?? 'failed') : 0
      resolve({ code, stdout, stderr })
    })
  })
}

/** npm, the same one as `npm test` when run by it. */
function npm (args, cwd) {
  const cli = process.env.npm_execpath
  const [file, prefix] = cli && /npm-cli\.[cm]?js$/.test(cli) ? [process.execPath, [cli]] : ['npm', []]
  return run(file, [...prefix, ...args], { cwd, env: npmEnv(), timeout: NPM_TIMEOUT_MS })
}

function describe (what, result) {
  return `${what}: exit ${result.code}\n--- stdout ---\n${result.stdout}\n--- stderr ---\n${result.stderr}`
}

let work
let packed
/** Folders of fresh projects, by how the client was installed. */
const apps = {}

/** A fresh project in `work/name` with `npm install ...installArgs yjs@pinned ws@pinned`. */
async function installApp (name, installArgs) {
  const dir = path.join(work, name)
  await mkdir(dir)
  await writeFile(path.join(dir, 'package.json'), JSON.stringify({ name: `app-${name}`, version: '1.0.0', private: true, type: 'module' }, null, 2))
  const result = await npm(['install', ...installArgs, `yjs@${YJS_VERSION}`, `ws@${WS_VERSION}`, '--prefer-offline', '--no-audit', '--no-fund'], dir)
  assert.equal(result.code, 0, describe(`npm install in ${dir}`, result))
  await writeFile(path.join(dir, 'sync.mjs'), SYNC_SCRIPT)
  return dir
}

/** Runs the user's script in `dir` against the test server on a fresh document. */
function runSyncScript (dir) {
  const env = { ...process.env, COLLAB_ENGINE_URL: server.url, COLLAB_DOCUMENT_ID: uniqueDocId('installed') }
  return run(process.execPath, ['sync.mjs'], { cwd: dir, env, timeout: SCRIPT_TIMEOUT_MS })
}

/** The copies of yjs (folders holding its package.json) under `dir/node_modules`. */
function yjsCopies (dir) {
  const copies = []
  const walk = (modules) => {
    if (!existsSync(modules)) return
    for (const entry of readdirSync(modules, { withFileTypes: true })) {
      const at = path.join(modules, entry.name)
      if (entry.name.startsWith('@')) {
        walk(at)
        continue
      }
      if (entry.name === 'yjs') copies.push(realpathSync(at))
      walk(path.join(at, 'node_modules'))
    }
  }
  walk(path.join(dir, 'node_modules'))
  return copies
}

before(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'collab-js-pack-'))
  const result = await npm(['pack', '--json', '--pack-destination', work], PACKAGE_DIR)
  assert.equal(result.code, 0, describe('npm pack', result))
  packed = JSON.parse(result.stdout)[0]
  apps.tarball = await installApp('tarball', [path.join(work, packed.filename)])
})

after(async () => {
  if (work) await rm(work, { recursive: true, force: true })
})

test('npm pack ships package.json, README.md, src/ (and a license file if there is one), nothing else', () => {
  const shipped = packed.files.map((f) => f.path).sort()
  const expected = [
    'package.json',
    'README.md',
    ...readdirSync(path.join(PACKAGE_DIR, 'src')).map((f) => `src/${f}`),
    ...readdirSync(PACKAGE_DIR).filter((f) => /^(licen[cs]e|copying)/i.test(f))
  ].sort()
  assert.deepEqual(shipped, expected)
  // What `main` and `exports` point at is in the tarball.
  const targets = [PACKAGE.main, ...Object.values(PACKAGE.exports)].map((t) => path.posix.normalize(t))
  for (const target of targets) assert.ok(shipped.includes(target), `${target} (main/exports) is not in the tarball`)
  assert.equal(PACKAGE.exports['.'], './src/index.js')
  // yjs is the application's: a peer dependency, never a dependency of its own.
  assert.equal(PACKAGE.dependencies?.yjs, undefined)
  assert.match(PACKAGE.peerDependencies.yjs, /^\^13\./)
})

test('installed from the tarball: a user\'s script imports the package by name and syncs two clients through the real server', async () => {
  const dir = apps.tarball
  const installed = path.join(dir, 'node_modules', '@collab-engine', 'client')
  assert.ok(lstatSync(installed).isDirectory(), 'a copy, not a symlink')
  assert.deepEqual(yjsCopies(dir), [path.join(realpathSync(dir), 'node_modules', 'yjs')], 'one copy of yjs, the project\'s')

  const result = await runSyncScript(dir)
  assert.equal(result.code, 0, describe('node sync.mjs', result))
  const outcome = JSON.parse(result.stdout.trim().split('\n').pop())
  assert.equal(outcome.a, 'typed in a, answered in b')
  assert.equal(outcome.b, 'typed in a, answered in b')
  assert.deepEqual(outcome.errors, [])
  // The script used the installed copy, and one yjs.
  assert.equal(fileURLToPath(outcome.client), path.join(installed, 'src', 'index.js'))
  assert.ok(fileURLToPath(outcome.yjs).startsWith(path.join(dir, 'node_modules', 'yjs') + path.sep), outcome.yjs)
  assert.doesNotMatch(result.stderr, /already imported/)
})

test('a Y.Doc of another copy of yjs is refused with a TypeError naming the problem; a Y.Doc of the client\'s yjs is accepted', async () => {
  // The temporary project's yjs is a second copy next to this folder's
  // node_modules/yjs, which ../src/index.js imports.
  const reexport = path.join(apps.tarball, 'yjs-of-this-project.mjs')
  await writeFile(reexport, "export * from 'yjs'\n")
  const warnings = []
  const consoleError = console.error
  console.error = (...args) => warnings.push(args.join(' '))
  let Foreign
  try {
    Foreign = await import(pathToFileURL(reexport).href)
  } finally {
    console.error = consoleError
  }
  // Yjs itself notices a second copy (only with a console message).
  assert.ok(warnings.some((w) => /Yjs was already imported/.test(w)), `a second copy of yjs was loaded: ${warnings}`)
  assert.notEqual(Foreign.Doc, Y.Doc)

  const options = { url: server.url, documentId: uniqueDocId('copies'), WebSocket, connect: false }
  const foreignDoc = new Foreign.Doc()
  assert.throws(() => new CollabClient({ ...options, doc: foreignDoc }), (e) => {
    assert.ok(e instanceof TypeError)
    assert.match(e.message, /^CollabClient: `doc` is a Y\.Doc from another copy of yjs than the one @collab-engine\/client imports/)
    assert.match(e.message, /npm dedupe/)
    assert.match(e.message, /--install-links/)
    return true
  })
  foreignDoc.destroy()

  const doc = new Y.Doc()
  const client = new CollabClient({ ...options, doc })
  assert.equal(client.doc, doc)
  client.destroy()
})

test('something that is not a Y.Doc at all gets its own error, not the one about copies', () => {
  const options = { url: 'ws://127.0.0.1:1', documentId: 'd', WebSocket, connect: false }
  const notDocs = [undefined, null, 42, 'doc', {}, new Map(), { on () {}, off () {} }, new Y.Text(), new Y.Map()]
  for (const [i, doc] of notDocs.entries()) {
    assert.throws(() => new CollabClient({ ...options, doc }), (e) => {
      assert.ok(e instanceof TypeError)
      assert.match(e.message, /^CollabClient: `doc` must be a Y\.Doc/)
      assert.doesNotMatch(e.message, /another copy/)
      return true
    }, `notDocs[${i}]`)
  }
  assert.throws(() => new CollabClient({ url: 'ws://127.0.0.1:1', documentId: 'd', WebSocket }), /`doc` must be a Y\.Doc \(new Y\.Doc\(\) of yjs\); got undefined/)
})

test('`npm install <folder>` (a symlink to a folder with its own node_modules/yjs): two copies, and the client says so instead of syncing nothing', {
  skip: existsSync(path.join(PACKAGE_DIR, 'node_modules', 'yjs')) ? false : 'no node_modules/yjs here (run npm ci): the symlink would find no yjs at all'
}, async () => {
  const dir = await installApp('symlink', [PACKAGE_DIR])
  const installed = path.join(dir, 'node_modules', '@collab-engine', 'client')
  assert.ok(lstatSync(installed).isSymbolicLink())
  assert.equal(yjsCopies(dir).length, 2, `two copies of yjs: ${yjsCopies(dir)}`)

  const result = await runSyncScript(dir)
  assert.notEqual(result.code, 0, describe('node sync.mjs', result))
  assert.match(result.stderr, /TypeError: CollabClient: `doc` is a Y\.Doc from another copy of yjs/, describe('node sync.mjs', result))
})

test('`npm install --install-links <folder>`: a copy of the folder, one yjs, and the user\'s script syncs', async () => {
  const dir = await installApp('install-links', ['--install-links', PACKAGE_DIR])
  const installed = path.join(dir, 'node_modules', '@collab-engine', 'client')
  assert.ok(lstatSync(installed).isDirectory(), 'a copy, not a symlink')
  assert.ok(!existsSync(path.join(installed, 'test')), 'installed as packed: no test/')
  assert.deepEqual(yjsCopies(dir), [path.join(realpathSync(dir), 'node_modules', 'yjs')])

  const result = await runSyncScript(dir)
  assert.equal(result.code, 0, describe('node sync.mjs', result))
  const outcome = JSON.parse(result.stdout.trim().split('\n').pop())
  assert.equal(outcome.b, 'typed in a, answered in b')
  assert.equal(fileURLToPath(outcome.client), path.join(installed, 'src', 'index.js'))
})
