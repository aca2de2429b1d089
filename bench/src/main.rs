//! `collab-bench`: load generator for Collab-Engine and the servers it is
//! compared with (y-websocket, Hocuspocus, a bare relay).
//!
//! Everything runs on one thread (a tokio current-thread runtime): the
//! generator is meant to be pinned to one core with `taskset`, next to the
//! server under test on the other. Results go to stdout (a table, or JSON
//! lines with `--json`); diagnostics go to stderr through `log`
//! (`RUST_LOG=info` by default).

mod conn;
mod hocuspocus;
mod hostile;
mod native;
mod ops;
mod procfs;
mod protocol;
mod relay;
mod report;
mod trace;
mod varint;
mod w1;
mod w2;
mod w3;
mod w4;
mod ws;
mod yupdate;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::procfs::Pid;
use crate::protocol::Protocol;
use crate::report::Row;
use crate::ws::WsUrl;

#[derive(Parser)]
#[command(
    version,
    about = "Load generator for Collab-Engine and the servers it is compared with"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Bare relay: forwards every message to every other connection on the
    /// same path (the upper bound a server can reach on this machine).
    Relay {
        #[arg(long, default_value_t = 9001)]
        port: u16,
        #[arg(long, default_value = "127.0.0.1")]
        host: String,
    },
    /// W1 hot document: N clients on one document, offered rate ramped.
    W1(W1Args),
    /// W2 many documents: idle memory per loaded and per unloaded document.
    W2(W2Args),
    /// W3 reconnect storm (native): D x K clients miss M ops, then all
    /// reconnect at once with last_seen_server_seq and epoch.
    W3(W3Args),
    /// W4 cold load (native): `--phase build` writes a trace into a fresh
    /// document; `--phase load` (against a restarted server) times connect
    /// to synced and checks the text.
    W4(W4Args),
    /// Hostile load: one attack (a probe) while a watcher client types on
    /// another document; watcher latency, server RSS, the attacker's rate.
    Hostile(HostileArgs),
    /// Prints the tables of JSON-lines results files.
    Table {
        /// Files written with `--json`.
        files: Vec<PathBuf>,
    },
}

#[derive(Args)]
struct Target {
    /// Server URL. native: ws://HOST:PORT (then /ws/DOC); yjs: the prefix
    /// before /DOC (Collab-Engine: ws://HOST:PORT/yjs, y-websocket server:
    /// ws://HOST:PORT); hocuspocus: the URL as is; raw: prefix before /DOC.
    #[arg(long)]
    url: String,
    #[arg(long, value_enum)]
    protocol: Protocol,
    /// Server process to measure (CPU seconds, RSS) from /proc.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Name of the server in the report (default: the protocol).
    #[arg(long)]
    label: Option<String>,
    /// Print one JSON object per line instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct W1Args {
    #[command(flatten)]
    target: Target,
    #[arg(long, default_value_t = 50)]
    clients: usize,
    /// Offered total rates in ops/s, one step each.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "1000,2000,5000,10000,20000"
    )]
    rates: Vec<u64>,
    /// Length of the send phase of each step.
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Document name prefix (a fresh `PREFIX-RATE-RANDOM` per step).
    #[arg(long, default_value = "w1")]
    doc: String,
    /// Receivers that decode and measure latency (default: all up to
    /// 5,000 ops/s, 5 above).
    #[arg(long)]
    sample_receivers: Option<usize>,
    /// How long to wait for in-flight deliveries after sending.
    #[arg(long, default_value_t = 5.0)]
    drain_secs: f64,
    /// Name of the workload in the results (`w1`, `w5`, `overload`).
    #[arg(long, default_value = "w1")]
    workload: String,
    /// Native: after each step, reconnect the clients the server closed
    /// (with their last_seen_server_seq) and check they catch up.
    #[arg(long)]
    resync_closed: bool,
}

#[derive(Args)]
struct W3Args {
    /// Server URL (ws://HOST:PORT; native protocol).
    #[arg(long)]
    url: String,
    #[arg(long)]
    server_pid: Option<u32>,
    #[arg(long, default_value = "collab-engine")]
    label: String,
    #[arg(long)]
    json: bool,
    #[arg(long, default_value_t = 100)]
    documents: usize,
    #[arg(long, default_value_t = 10)]
    clients_per_doc: usize,
    /// Ops each client misses while disconnected.
    #[arg(long, default_value_t = 100)]
    missed_ops: usize,
    /// Ops every client sees live before disconnecting.
    #[arg(long, default_value_t = 10)]
    warm_ops: usize,
    /// Documents set up concurrently.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Longest wait for any one step (setup, acks, a reconnect).
    #[arg(long, default_value_t = 30.0)]
    timeout_secs: f64,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum W4Phase {
    Build,
    Load,
}

#[derive(Args)]
struct W4Args {
    /// Server URL (ws://HOST:PORT; native protocol).
    #[arg(long)]
    url: String,
    #[arg(long, value_enum)]
    phase: W4Phase,
    /// Editing trace (JSON, or .json.gz read through gzip -dc).
    #[arg(long, default_value = "/work/shared/data/automerge-paper.json.gz")]
    trace: PathBuf,
    /// Patches of the trace to use (one op each).
    #[arg(long, default_value_t = 100_000)]
    ops: usize,
    /// Document name.
    #[arg(long, default_value = "w4-trace")]
    doc: String,
    /// Name of the variant in the report.
    #[arg(long, default_value = "collab-engine")]
    label: String,
    /// build: patches already in the document (the build continues there).
    #[arg(long, default_value_t = 0)]
    from: usize,
    /// build: most unacknowledged ops in flight.
    #[arg(long, default_value_t = 2000)]
    window: usize,
    /// load: number of this run (for the report).
    #[arg(long, default_value_t = 1)]
    run: usize,
    /// load: the server's log, for its `document … loaded … (N ms)` line.
    #[arg(long)]
    server_log: Option<PathBuf>,
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct W2Args {
    #[command(flatten)]
    target: Target,
    #[arg(long, default_value_t = 1000)]
    documents: usize,
    #[arg(long, default_value_t = 2)]
    clients_per_doc: usize,
    /// Documents set up concurrently.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Wait after all documents are synced before reading the loaded RSS.
    #[arg(long, default_value_t = 2.0)]
    settle_secs: f64,
    /// Longest wait for the server to unload the documents after the clients left.
    #[arg(long, default_value_t = 20.0)]
    unload_wait_secs: f64,
    /// Shortest wait after the clients left (at least the server's idle delay).
    #[arg(long, default_value_t = 5.0)]
    unload_min_secs: f64,
    /// The server never unloads documents: report n/a, do not wait.
    #[arg(long)]
    no_unload: bool,
    #[arg(long, default_value_t = 30.0)]
    sync_timeout_secs: f64,
}

#[derive(Args)]
struct HostileArgs {
    /// Server URL: ws://HOST:PORT (native on /ws/DOC, y-websocket on /yjs/DOC).
    #[arg(long)]
    url: String,
    /// Server process to measure (RSS every 100 ms, CPU) from /proc.
    #[arg(long)]
    server_pid: Option<u32>,
    #[arg(long, value_enum)]
    probe: hostile::Probe,
    /// Length of the attack; the whole run ends within this plus 10 s.
    #[arg(long, default_value_t = 10.0)]
    secs: f64,
    /// Name of the server in the report.
    #[arg(long, default_value = "collab-engine")]
    label: String,
    /// Stop the attack when the server's RSS passes this (MiB): a safety
    /// limit for a shared machine.
    #[arg(long, default_value_t = 8192)]
    rss_limit_mib: u64,
    /// idle-connections: the most connections to open (also capped by
    /// this process's open-file limit).
    #[arg(long, default_value_t = 20_000)]
    max_connections: usize,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("collab-bench: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let local = tokio::task::LocalSet::new();
    match local.block_on(&runtime, run(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("collab-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> Result<(), String> {
    match command {
        Command::Relay { port, host } => relay::serve(&host, port)
            .await
            .map_err(|e| format!("relay: {e}")),
        Command::W1(args) => run_w1(args).await,
        Command::W2(args) => run_w2(args).await,
        Command::W3(args) => run_w3(args).await,
        Command::W4(args) => run_w4(args).await,
        Command::Hostile(args) => run_hostile(args).await,
        Command::Table { files } => print_files(&files),
    }
}

async fn run_w1(args: W1Args) -> Result<(), String> {
    let t = &args.target;
    let opts = w1::W1Options {
        url: WsUrl::parse(&t.url)?,
        protocol: t.protocol,
        clients: args.clients,
        seconds: args.seconds,
        doc_prefix: args.doc.clone(),
        server: t.server_pid.map(Pid::Other),
        sample_receivers: args.sample_receivers,
        drain_secs: args.drain_secs,
        label: label(t),
        workload: args.workload.clone(),
        resync_closed: args.resync_closed,
    };
    let json = t.json;
    let mut rows = Vec::new();
    let result = w1::run(&opts, &args.rates, |row| {
        let row = Row::W1(Box::new(row));
        if json {
            emit_json(&row);
        } else {
            // Progress while the steps run; the full table comes at the end.
            log::info!(
                "step done: {}",
                serde_json::to_string(&row).unwrap_or_default()
            );
        }
        rows.push(row);
    })
    .await;
    if !json {
        emit_tables(&rows);
    }
    result
}

async fn run_w2(args: W2Args) -> Result<(), String> {
    let t = &args.target;
    let pid = t
        .server_pid
        .ok_or("w2 needs --server-pid (it measures the server's memory)")?;
    let opts = w2::W2Options {
        url: WsUrl::parse(&t.url)?,
        protocol: t.protocol,
        documents: args.documents,
        clients_per_doc: args.clients_per_doc,
        server: Pid::Other(pid),
        concurrency: args.concurrency,
        settle_secs: args.settle_secs,
        unload_wait_secs: (!args.no_unload).then_some(args.unload_wait_secs),
        unload_min_secs: args.unload_min_secs,
        sync_timeout_secs: args.sync_timeout_secs,
        label: label(t),
    };
    emit(&Row::W2(Box::new(w2::run(&opts).await?)), t.json);
    Ok(())
}

async fn run_w3(args: W3Args) -> Result<(), String> {
    let opts = w3::W3Options {
        url: WsUrl::parse(&args.url)?,
        documents: args.documents,
        clients_per_doc: args.clients_per_doc,
        missed_ops: args.missed_ops,
        warm_ops: args.warm_ops,
        concurrency: args.concurrency,
        server: args.server_pid.map(Pid::Other),
        timeout_secs: args.timeout_secs,
        label: args.label.clone(),
    };
    emit(&Row::W3(Box::new(w3::run(&opts).await?)), args.json);
    Ok(())
}

async fn run_w4(args: W4Args) -> Result<(), String> {
    let opts = w4::W4Options {
        url: WsUrl::parse(&args.url)?,
        trace: args.trace.clone(),
        ops: args.ops,
        doc: args.doc.clone(),
        label: args.label.clone(),
    };
    let row = match args.phase {
        W4Phase::Build => Row::W4Build(Box::new(w4::build(&opts, args.window, args.from).await?)),
        W4Phase::Load => Row::W4Load(Box::new(
            w4::load(&opts, args.run, args.server_log.as_ref()).await?,
        )),
    };
    emit(&row, args.json);
    Ok(())
}

async fn run_hostile(args: HostileArgs) -> Result<(), String> {
    let opts = hostile::HostileOptions {
        url: WsUrl::parse(&args.url)?,
        server: args.server_pid.map(Pid::Other),
        probe: args.probe,
        secs: args.secs,
        label: args.label.clone(),
        rss_limit_mib: args.rss_limit_mib,
        max_connections: args.max_connections,
    };
    let row = hostile::run(&opts).await?;
    emit(&Row::Hostile(Box::new(row)), args.json);
    Ok(())
}

fn emit(row: &Row, json: bool) {
    if json {
        emit_json(row);
    } else {
        emit_tables(std::slice::from_ref(row));
    }
}

fn label(t: &Target) -> String {
    t.label
        .clone()
        .unwrap_or_else(|| format!("{:?}", t.protocol).to_lowercase())
}

fn emit_json(row: &Row) {
    let mut out = std::io::stdout().lock();
    if let Err(e) = report::print_json(&mut out, row).and_then(|()| out.flush()) {
        log::error!("cannot write to stdout: {e}");
    }
}

fn emit_tables(rows: &[Row]) {
    if let Err(e) = report::print_tables(&mut std::io::stdout().lock(), rows) {
        log::error!("cannot write to stdout: {e}");
    }
}

fn print_files(files: &[PathBuf]) -> Result<(), String> {
    let mut rows = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
        for (n, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let row: Row = serde_json::from_str(line)
                .map_err(|e| format!("{}:{}: {e}", file.display(), n + 1))?;
            rows.push(row);
        }
    }
    emit_tables(&rows);
    Ok(())
}
