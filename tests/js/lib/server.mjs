// The real collab-engine binary as a child process over a SQLite database
// in a temporary directory: the helper of the native client's own tests
// (clients/js/test/server.mjs), shared so that both suites start, stop and
// restart the server the same way. It uses only Node's built-in modules.
//
// The binary is ../../target/debug/collab-engine (run `cargo build` at the
// repository root) or $COLLAB_ENGINE_BIN.

export { SERVER_BIN, SETTINGS, TestServer, serverForTests } from '../../../clients/js/test/server.mjs'
