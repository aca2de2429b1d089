// Test helper: runs the real collab-engine binary as a child process over a
// SQLite database in a temporary directory.
//
//   const server = await TestServer.start()
//   server.url            // ws://127.0.0.1:PORT      (native: `${url}/ws/{id}`)
//   server.yjsUrl         // ws://127.0.0.1:PORT/yjs  (WebsocketProvider's serverUrl)
//   server.httpUrl        // http://127.0.0.1:PORT
//   await server.stop()   // SIGTERM, waits for the exit (graceful shutdown)
//   await server.start()  // again, same port, same database
//   await server.dispose()
//   await server.inject(id, 'panic')  // fault injection (debug.fault_injection)
//
// At the top of a test file, `serverForTests(options, { afterEachTest })`
// gives the file's server with its before/afterEach/after hooks registered.
//
// The conformance suite in tests/js uses this helper too. (`node --test
// test/` also loads this file as a test file; it defines no test, so that
// run is empty and passes.)

import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { after, afterEach, before } from 'node:test'

const REPO_ROOT = path.resolve(fileURLToPath(new URL('../../../', import.meta.url)))
export const SERVER_BIN = process.env.COLLAB_ENGINE_BIN ?? path.join(REPO_ROOT, 'target', 'debug', 'collab-engine')
export const SETTINGS = process.env.COLLAB_ENGINE_SETTINGS ?? path.join(REPO_ROOT, 'settings.toml')

/** `[limits]` raised out of the way of the suites (see `_spawn`). */
export const UNLIMITED = {
  COLLAB__LIMITS__MAX_CONNECTIONS: '1000000',
  COLLAB__LIMITS__MAX_CONNECTIONS_PER_IP: '1000000',
  COLLAB__LIMITS__UPGRADES_PER_IP_PER_SEC: '1000000',
  COLLAB__LIMITS__OPS_PER_SEC_PER_SESSION: '1000000',
  COLLAB__LIMITS__BYTES_PER_SEC_PER_SESSION: '1099511627776',
  COLLAB__LIMITS__AWARENESS_PER_SEC_PER_SESSION: '1000000',
  COLLAB__LIMITS__DOCUMENTS_CREATED_PER_IP_PER_MIN: '1000000'
}

const LISTENING = /collab-engine listening on ([0-9.]+):(\d+)/
const START_TIMEOUT_MS = 15000
const STOP_TIMEOUT_MS = 15000

export class TestServer {
  /** Creates the temp directory and starts the server on a free port. */
  static async start (options = {}) {
    const server = new TestServer(options)
    await server.open()
    return server
  }

  /** @param {{env?: Record<string,string>}} options extra COLLAB__* overrides */
  constructor ({ env = {} } = {}) {
    this.extraEnv = env
    this.dir = null
    this.host = null
    this.port = 0
    this.child = null
    /** Every stderr line of every run, for failure messages. */
    this.log = []
  }

  /** Creates the temp directory and starts the server on a free port (once). */
  async open () {
    if (this.dir) throw new Error('server already opened')
    this.dir = await mkdtemp(path.join(tmpdir(), 'collab-js-test-'))
    try {
      await this.start()
    } catch (e) {
      await rm(this.dir, { recursive: true, force: true })
      this.dir = null
      throw e
    }
  }

  get dbPath () { return path.join(this.dir, 'collab.db') }
  get url () { return `ws://${this.host}:${this.port}` }
  get yjsUrl () { return `${this.url}/yjs` }
  get httpUrl () { return `http://${this.host}:${this.port}` }
  get running () { return this.child !== null }

  /** Starts the binary; on a restart it reuses the previous port. */
  async start () {
    if (this.child) throw new Error('server already running')
    if (!existsSync(SERVER_BIN)) {
      throw new Error(`${SERVER_BIN} not found: run \`cargo build\` in ${REPO_ROOT} (or set COLLAB_ENGINE_BIN)`)
    }
    // The previous run's port may still be held for a moment after a restart.
    const deadline = Date.now() + START_TIMEOUT_MS
    for (;;) {
      try {
        return await this._spawn()
      } catch (e) {
        if (this.port === 0 || Date.now() > deadline || !/in use/i.test(e.message)) throw e
        await new Promise((resolve) => setTimeout(resolve, 100))
      }
    }
  }

  _spawn () {
    const env = { ...process.env }
    delete env.RUST_LOG
    Object.assign(env, {
      COLLAB__SERVER__HOST: '127.0.0.1',
      COLLAB__SERVER__PORT: String(this.port),
      COLLAB__SERVER__WORKERS: '2',
      COLLAB__SERVER__SHUTDOWN_TIMEOUT_SECS: '5',
      COLLAB__DATABASE__URL: `sqlite://${this.dbPath}`,
      COLLAB__LOGGING__LEVEL: 'info',
      // Limits out of the way of suites that open many connections and
      // documents from 127.0.0.1 at once and type fast; the tests of a
      // limit set small values through `env`.
      ...UNLIMITED,
      ...this.extraEnv
    })
    const child = spawn(SERVER_BIN, ['--config', SETTINGS], { env, stdio: ['ignore', 'ignore', 'pipe'] })
    const run = []
    return new Promise((resolve, reject) => {
      let settled = false
      const fail = (message) => {
        if (settled) return
        settled = true
        clearTimeout(timer)
        child.kill('SIGKILL')
        reject(new Error(`${message}\n--- server log ---\n${run.join('\n')}`))
      }
      const timer = setTimeout(() => fail('server did not start listening in time'), START_TIMEOUT_MS)
      let buffered = ''
      child.stderr.setEncoding('utf8')
      child.stderr.on('data', (chunk) => {
        buffered += chunk
        let newline
        while ((newline = buffered.indexOf('\n')) !== -1) {
          const line = buffered.slice(0, newline)
          buffered = buffered.slice(newline + 1)
          run.push(line)
          this.log.push(line)
          const match = !settled && LISTENING.exec(line)
          if (match) {
            settled = true
            clearTimeout(timer)
            this.host = match[1]
            this.port = Number(match[2])
            this.child = child
            resolve(this)
          }
        }
      })
      child.once('error', (e) => fail(`cannot run ${SERVER_BIN}: ${e.message}`))
      child.once('exit', (code, signal) => {
        if (this.child === child) this.child = null
        fail(`server exited before listening (code ${code}, signal ${signal})`)
      })
    })
  }

  /** Sends `signal` (SIGTERM: graceful shutdown) and waits for the exit. */
  async stop (signal = 'SIGTERM') {
    const child = this.child
    if (!child) return null
    this.child = null
    if (child.exitCode !== null || child.signalCode !== null) return child.exitCode
    const exited = new Promise((resolve) => child.once('exit', (code, sig) => resolve(code ?? sig)))
    child.kill(signal)
    const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS)
    try {
      return await exited
    } finally {
      clearTimeout(timer)
    }
  }

  /**
   * `POST /debug/documents/{documentId}/{fault}` (needs
   * `debug.fault_injection`); throws unless the server answers 200.
   */
  async inject (documentId, fault) {
    const url = `${this.httpUrl}/debug/documents/${documentId}/${fault}`
    const response = await fetch(url, { method: 'POST' })
    const body = await response.text()
    if (response.status !== 200) throw new Error(`POST ${url}: ${response.status} ${body}`)
  }

  /** Stops, then starts again on the same port and database. */
  async restart () {
    await this.stop()
    await this.start()
  }

  /** Deletes the database files (server stopped): the next start creates documents anew. */
  async wipeDatabase () {
    if (this.child) throw new Error('stop the server first')
    for (const suffix of ['', '-wal', '-shm', '-journal']) {
      await rm(this.dbPath + suffix, { force: true })
    }
  }

  /** Stops the server and removes the temporary directory. */
  async dispose () {
    await this.stop()
    if (this.dir) await rm(this.dir, { recursive: true, force: true })
  }
}

/**
 * The server of one test file, with its hooks registered: started before
 * the first test (`options` as for `TestServer.start`); after each test
 * `afterEachTest()` runs (closing the test's clients) and the server is
 * started again if the test stopped it; disposed of after the last test.
 */
export function serverForTests (options = {}, { afterEachTest } = {}) {
  const server = new TestServer(options)
  before(() => server.open())
  afterEach(async () => {
    await afterEachTest?.()
    if (server.dir && !server.running) await server.start()
  })
  after(() => server.dispose())
  return server
}
