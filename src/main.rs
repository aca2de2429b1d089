//! `collab-engine [--config PATH] [serve | migrate | check-config]`: the
//! stand-alone server and its operator commands. Settings come from the
//! built-in defaults, then `settings.toml` (or PATH), then
//! `COLLAB__SECTION__KEY` variables.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use collab_engine::configuration::{DEFAULT_FILE, LoadedSettings, Origin};
use collab_engine::vocabulary::Permission;
use collab_engine::{Application, Settings, Store};

/// Exit code for unusable settings or arguments (clap uses it too).
const EXIT_CONFIG: u8 = 2;

/// Collab-Engine: an authoritative real-time collaboration server for Yjs
/// documents.
#[derive(Debug, Parser)]
#[command(name = "collab-engine", version, about, long_about = None)]
#[command(
    after_help = "Settings: built-in defaults, then the settings file, then environment \
variables COLLAB__SECTION__KEY (e.g. COLLAB__SERVER__PORT=9000). RUST_LOG overrides \
logging.level. Exit code 2: unusable settings or arguments."
)]
struct Cli {
    /// The settings file [default: settings.toml in the working directory, if there is one]
    #[arg(short, long, global = true, value_name = "PATH")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Clone, Subcommand)]
enum Command {
    /// Run the server (the default).
    Serve,
    /// Apply the database schema migrations and exit.
    Migrate,
    /// Print the effective settings, secrets masked, each with where it came from; exit 0, or 2 if unusable.
    CheckConfig,
    /// Print an access token signed with auth.secret, for operators.
    Token(TokenArgs),
}

#[derive(Debug, Clone, clap::Args)]
struct TokenArgs {
    /// Who the token is for (its `sub`).
    #[arg(long)]
    sub: String,
    /// A document id, or a prefix ending in `*`, the token grants (repeatable).
    #[arg(long = "doc", required = true, value_name = "ID or PREFIX*")]
    docs: Vec<String>,
    /// What it grants on them.
    #[arg(long, value_enum, default_value = "read")]
    perm: Perm,
    /// Lifetime in seconds.
    #[arg(long, default_value_t = 3600)]
    ttl: u64,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Perm {
    Read,
    Write,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let loaded = match load_settings(cli.config.as_deref()) {
        Ok(loaded) => loaded,
        Err(e) => {
            init_logging("error");
            log::error!("{e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    match cli.command.unwrap_or(Command::Serve) {
        Command::Token(args) => mint_token(&loaded.settings, &args),
        Command::CheckConfig => {
            print!("{}", effective_settings(&loaded));
            ExitCode::SUCCESS
        }
        Command::Migrate => {
            init_logging(&loaded.settings.logging.level);
            run(migrate(loaded.settings))
        }
        Command::Serve => {
            init_logging(&loaded.settings.logging.level);
            match &cli.config {
                Some(path) => log::info!("settings read from {}", path.display()),
                None if Path::new(DEFAULT_FILE).is_file() => {
                    log::info!("settings read from {DEFAULT_FILE}")
                }
                None => log::info!("no {DEFAULT_FILE}: built-in defaults and COLLAB__ variables"),
            }
            run(serve(loaded.settings))
        }
    }
}

/// The settings of `--config PATH` (which must exist), or of
/// `settings.toml` if there is one.
fn load_settings(
    path: Option<&Path>,
) -> Result<LoadedSettings, collab_engine::configuration::SettingsError> {
    match path {
        Some(path) => Settings::load_layers(Some(path), true, std::env::vars()),
        None => Settings::load_layers(Some(Path::new(DEFAULT_FILE)), false, std::env::vars()),
    }
}

/// Runs `work` on an actix system.
fn run(work: impl std::future::Future<Output = ExitCode>) -> ExitCode {
    actix_web::rt::System::new().block_on(work)
}

async fn serve(settings: Settings) -> ExitCode {
    let app = match Application::build(settings).await {
        Ok(app) => app,
        Err(e) => {
            log::error!("cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    match app.run_until_stopped().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log::error!("server failed: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn migrate(settings: Settings) -> ExitCode {
    let url = collab_engine::configuration::redact_url(&settings.database.url);
    let store = match Store::connect(&settings.database, settings.persistence.durability).await {
        Ok(store) => store,
        Err(e) => {
            log::error!("cannot connect to the database {url}: {e}");
            return ExitCode::FAILURE;
        }
    };
    match store.migrate().await {
        Ok(()) => {
            log::info!(
                "database migrations applied to {url} ({})",
                store.backend_name()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            log::error!("database migrations failed on {url}: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Prints a token for `args`, signed with `auth.secret`.
fn mint_token(settings: &Settings, args: &TokenArgs) -> ExitCode {
    init_logging("error");
    let auth = &settings.auth;
    let keys = match collab_engine::auth::TokenKeys::new(
        &auth.secret,
        &auth.audience,
        auth.leeway_secs,
    ) {
        Ok(keys) if auth.secret.len() >= 32 => keys,
        _ => {
            log::error!(
                "auth.secret must be at least 32 bytes to sign tokens (set COLLAB__AUTH__SECRET)"
            );
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let permission = match args.perm {
        Perm::Read => Permission::Read,
        Perm::Write => Permission::Write,
    };
    let docs = args.docs.iter().map(|d| (d.clone(), permission)).collect();
    let minted = keys.mint(&args.sub, docs, args.ttl, collab_engine::auth::unix_now());
    println!("{}", minted.token);
    ExitCode::SUCCESS
}

/// The effective settings as TOML, secrets masked, each key followed by
/// where its value came from.
fn effective_settings(loaded: &LoadedSettings) -> String {
    let mut out = String::from(
        "# Effective settings of collab-engine (secrets masked): built-in defaults,\n\
         # then the settings file, then COLLAB__SECTION__KEY variables.\n",
    );
    let table = toml::Table::try_from(loaded.settings.redacted()).unwrap_or_default();
    for (section, keys) in table {
        let toml::Value::Table(keys) = keys else {
            continue;
        };
        out.push_str(&format!("\n[{section}]\n"));
        for (key, value) in keys {
            let origin = loaded
                .origins
                .get(&format!("{section}.{key}"))
                .unwrap_or(&Origin::Default);
            out.push_str(&format!("{key} = {value}  # {origin}\n"));
        }
    }
    out
}

fn init_logging(default_level: &str) {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(default_level))
        .format_timestamp_millis()
        .init();
}
