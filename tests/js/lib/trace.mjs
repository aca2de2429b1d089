// The automerge-paper editing trace (character-by-character edits of a
// LaTeX paper): `{startContent, endContent, txns: [{patches: [[pos,
// numDeleted, inserted]]}]}`, positions in UTF-16 code units.

import { readFileSync } from 'node:fs'
import { gunzipSync } from 'node:zlib'

export const TRACE_PATH = process.env.AUTOMERGE_PAPER_TRACE ?? '/work/shared/data/automerge-paper.json.gz'

/** The first `count` patches and the text they build from `startContent`. */
export function loadTrace (count) {
  const data = JSON.parse(gunzipSync(readFileSync(TRACE_PATH)).toString('utf8'))
  const patches = []
  for (const txn of data.txns) {
    for (const patch of txn.patches) {
      if (patches.length === count) break
      patches.push(patch)
    }
    if (patches.length === count) break
  }
  if (patches.length !== count) throw new Error(`the trace has only ${patches.length} patches`)
  let text = data.startContent
  for (const [pos, del, ins] of patches) text = text.slice(0, pos) + ins + text.slice(pos + del)
  return { startContent: data.startContent, patches, expected: text }
}

/** Applies `patches` to `ytext`, one Yjs transaction per patch. */
export function replay (ytext, patches) {
  const doc = ytext.doc
  for (const [pos, del, ins] of patches) {
    doc.transact(() => {
      if (del > 0) ytext.delete(pos, del)
      if (ins.length > 0) ytext.insert(pos, ins)
    })
  }
}
