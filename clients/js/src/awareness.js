// Presence for CollabClient: the y-protocols awareness update encoding
// (https://github.com/yjs/y-protocols, awareness.js) on any object with the
// API of y-protocols' `Awareness`, so that the client does not depend on
// y-protocols. These functions mirror `encodeAwarenessUpdate`,
// `applyAwarenessUpdate` and `removeAwarenessStates` of y-protocols 1.0.x;
// test/awareness.test.mjs checks them against the real ones.
//
// An update is: varuint count, then per client varuint clientID, varuint
// clock, varstring JSON state (`null` for a removed state).

const textEncoder = new TextEncoder()
const textDecoder = new TextDecoder('utf-8', { fatal: true })

/**
 * The members of a y-protocols `Awareness` this client uses. Throws a
 * TypeError naming the first one missing.
 */
export function checkAwareness (awareness, doc) {
  const missing = []
  if (!awareness || typeof awareness !== 'object') throw new TypeError('CollabClient: `awareness` must be a y-protocols Awareness')
  if (typeof awareness.clientID !== 'number') missing.push('clientID')
  if (!(awareness.states instanceof Map)) missing.push('states (Map)')
  if (!(awareness.meta instanceof Map)) missing.push('meta (Map)')
  for (const method of ['getLocalState', 'setLocalState', 'on', 'off', 'emit']) {
    if (typeof awareness[method] !== 'function') missing.push(`${method}()`)
  }
  if (missing.length > 0) {
    throw new TypeError(`CollabClient: \`awareness\` must be a y-protocols Awareness; missing ${missing.join(', ')}`)
  }
  if (awareness.doc !== undefined && awareness.doc !== doc) {
    throw new TypeError('CollabClient: `awareness` is bound to another Y.Doc than `doc`')
  }
}

function writeVarUint (out, num) {
  while (num > 0x7f) {
    out.push(0x80 | (num % 0x80))
    num = Math.floor(num / 0x80)
  }
  out.push(num)
}

function writeVarString (out, text) {
  const bytes = textEncoder.encode(text)
  writeVarUint(out, bytes.length)
  for (const b of bytes) out.push(b)
}

class Reader {
  constructor (bytes) {
    this.bytes = bytes
    this.pos = 0
  }

  varUint () {
    let num = 0
    let mult = 1
    while (this.pos < this.bytes.length) {
      const r = this.bytes[this.pos++]
      num += (r & 0x7f) * mult
      mult *= 0x80
      if (r < 0x80) return num
      if (num > Number.MAX_SAFE_INTEGER) throw new RangeError('varuint out of range')
    }
    throw new RangeError('unexpected end of the awareness update')
  }

  varString () {
    const length = this.varUint()
    if (this.pos + length > this.bytes.length) throw new RangeError('unexpected end of the awareness update')
    const text = textDecoder.decode(this.bytes.subarray(this.pos, this.pos + length))
    this.pos += length
    return text
  }
}

/**
 * The awareness update of `clients` (their current states, `null` for those
 * without one, and their clocks). Clients the awareness has never heard of
 * are left out.
 */
export function encodeAwarenessUpdate (awareness, clients, states = awareness.states) {
  const known = clients.filter((id) => awareness.meta.has(id))
  const out = []
  writeVarUint(out, known.length)
  for (const id of known) {
    writeVarUint(out, id)
    writeVarUint(out, awareness.meta.get(id).clock)
    writeVarString(out, JSON.stringify(states.get(id) || null))
  }
  return Uint8Array.from(out)
}

/** Decodes a whole update (throws on anything malformed) before anything is applied. */
export function decodeAwarenessUpdate (bytes) {
  const reader = new Reader(bytes)
  const count = reader.varUint()
  const entries = []
  for (let i = 0; i < count; i++) {
    const clientID = reader.varUint()
    const clock = reader.varUint()
    const state = JSON.parse(reader.varString())
    entries.push({ clientID, clock, state })
  }
  return entries
}

function deepEqual (a, b) {
  if (a === b) return true
  if (a === null || b === null || typeof a !== 'object' || typeof b !== 'object') return false
  if (Array.isArray(a) !== Array.isArray(b)) return false
  const keysA = Object.keys(a)
  const keysB = Object.keys(b)
  if (keysA.length !== keysB.length) return false
  return keysA.every((k) => Object.prototype.hasOwnProperty.call(b, k) && deepEqual(a[k], b[k]))
}

/**
 * Applies an update like y-protocols' `applyAwarenessUpdate` (same rules,
 * same `change`/`update` events with `origin`), except that the whole update
 * is decoded first: a malformed one throws and changes nothing.
 *
 * Returns true when a remote update tried to remove this client's own state
 * while it has one: y-protocols then raises the local clock, and the caller
 * must send the local state again so the others keep it.
 */
export function applyAwarenessUpdate (awareness, bytes, origin) {
  const entries = decodeAwarenessUpdate(bytes)
  const timestamp = Date.now()
  const added = []
  const updated = []
  const filteredUpdated = []
  const removed = []
  let reassert = false
  for (const entry of entries) {
    const { clientID, state } = entry
    let clock = entry.clock
    const clientMeta = awareness.meta.get(clientID)
    const prevState = awareness.states.get(clientID)
    const currClock = clientMeta === undefined ? 0 : clientMeta.clock
    if (currClock < clock || (currClock === clock && state === null && awareness.states.has(clientID))) {
      if (state === null) {
        if (clientID === awareness.clientID && awareness.getLocalState() != null) {
          // Never let a remote update remove the local state: raise the
          // clock so the state sent again wins.
          clock++
          reassert = true
        } else {
          awareness.states.delete(clientID)
        }
      } else {
        awareness.states.set(clientID, state)
      }
      awareness.meta.set(clientID, { clock, lastUpdated: timestamp })
      if (clientMeta === undefined && state !== null) {
        added.push(clientID)
      } else if (clientMeta !== undefined && state === null) {
        removed.push(clientID)
      } else if (state !== null) {
        if (!deepEqual(state, prevState)) filteredUpdated.push(clientID)
        updated.push(clientID)
      }
    }
  }
  if (added.length > 0 || filteredUpdated.length > 0 || removed.length > 0) {
    awareness.emit('change', [{ added, updated: filteredUpdated, removed }, origin])
  }
  if (added.length > 0 || updated.length > 0 || removed.length > 0) {
    awareness.emit('update', [{ added, updated, removed }, origin])
  }
  return reassert
}

/**
 * Removes the states of every client but the local one, as when the
 * connection that brought them is lost, and forgets their clocks: the
 * server sends the current states (with the same clocks) after the next
 * welcome, and they must be taken again.
 */
export function removeRemoteStates (awareness, origin) {
  const removed = []
  for (const clientID of [...awareness.states.keys()]) {
    if (clientID === awareness.clientID) continue
    awareness.states.delete(clientID)
    removed.push(clientID)
  }
  for (const clientID of [...awareness.meta.keys()]) {
    if (clientID !== awareness.clientID) awareness.meta.delete(clientID)
  }
  if (removed.length > 0) {
    awareness.emit('change', [{ added: [], updated: [], removed }, origin])
    awareness.emit('update', [{ added: [], updated: [], removed }, origin])
  }
}
