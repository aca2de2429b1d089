// Minimal Hocuspocus 4.x server for bench/compare.sh: no extensions, no
// storage, no authentication hook (any token is accepted), documents held in
// memory and unloaded when their last connection closes.
//
//   HOST=127.0.0.1 PORT=1235 node hocuspocus-server.mjs
import { Server } from '@hocuspocus/server'

const port = Number(process.env.PORT || 1235)
const address = process.env.HOST || '127.0.0.1'

const server = new Server({ port, address, quiet: true })
await server.listen()
console.log(`hocuspocus listening on ${address}:${port}`)
