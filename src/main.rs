//! `collab-engine [--config PATH]`: runs the server configured by
//! `settings.toml` (or PATH), with `COLLAB__SECTION__KEY` overrides.

use std::path::PathBuf;
use std::process::ExitCode;

use collab_engine::{Application, Settings};

const USAGE: &str = "usage: collab-engine [--config PATH]\n\n\
Runs the Collab-Engine server. Settings come from PATH (default: settings.toml)\n\
and can be overridden with environment variables COLLAB__SECTION__KEY,\n\
e.g. COLLAB__SERVER__PORT=9000. RUST_LOG overrides logging.level.";

/// Exit code for unusable settings or arguments.
const EXIT_CONFIG: u8 = 2;

fn main() -> ExitCode {
    let config_path = match parse_args(std::env::args().skip(1)) {
        Ok(Some(path)) => path,
        Ok(None) => {
            init_logging("info");
            log::info!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(problem) => {
            init_logging("error");
            log::error!("{problem}\n{USAGE}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let settings = match Settings::load(&config_path) {
        Ok(settings) => settings,
        Err(e) => {
            init_logging("error");
            log::error!("{e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    init_logging(&settings.logging.level);
    log::info!("settings read from {}", config_path.display());

    let system = actix_web::rt::System::new();
    system.block_on(async move {
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
    })
}

/// What is wrong with the command line.
#[derive(Debug, thiserror::Error)]
enum ArgsError {
    #[error("--config needs a path")]
    MissingConfigPath,
    #[error("unknown argument `{0}`")]
    Unknown(String),
}

/// `Ok(None)` means `--help`.
fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Option<PathBuf>, ArgsError> {
    let mut config = PathBuf::from("settings.toml");
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--config" | "-c" => match args.next() {
                Some(path) => config = PathBuf::from(path),
                None => return Err(ArgsError::MissingConfigPath),
            },
            "--help" | "-h" => return Ok(None),
            other => return Err(ArgsError::Unknown(other.to_owned())),
        }
    }
    Ok(Some(config))
}

fn init_logging(default_level: &str) {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(default_level))
        .format_timestamp_millis()
        .init();
}
