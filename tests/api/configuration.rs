//! The binary's command line and settings: defaults without any file, the
//! file and `COLLAB__…` variables on top, errors that say where a bad value
//! came from (exit code 2), `check-config`, `migrate`, `--help`.

use std::io::BufRead;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use entity::documents;
use sea_orm::{Database, EntityTrait};

/// What a run of the binary printed.
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn run_in(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut command = Command::new(env!("CARGO_BIN_EXE_collab-engine"));
    command.current_dir(dir).args(args).env_remove("RUST_LOG");
    for (key, value) in env {
        command.env(key, value);
    }
    let output = command.output().expect("run collab-engine");
    Run {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Runs in the repository, next to the shipped settings.toml.
fn run_with(args: &[&str], env: &[(&str, &str)]) -> Run {
    run_in(Path::new(env!("CARGO_MANIFEST_DIR")), args, env)
}

#[test]
fn an_invalid_environment_override_names_the_variable_and_the_key() {
    let run = run_with(&[], &[("COLLAB__SERVER__PORT", "not-a-port")]);
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(run.stderr.contains("server.port"), "{}", run.stderr);
    assert!(
        run.stderr.contains("COLLAB__SERVER__PORT"),
        "{}",
        run.stderr
    );
    let run = run_with(&[], &[("COLLAB__SERVER__PROT", "1")]);
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(
        run.stderr.contains("COLLAB__SERVER__PROT"),
        "{}",
        run.stderr
    );
    let run = run_with(&[], &[("COLLAB__PERSISTENCE__DURABILITY", "fast")]);
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(
        run.stderr.contains("full") && run.stderr.contains("normal"),
        "the allowed values: {}",
        run.stderr
    );
}

#[test]
fn an_out_of_range_value_names_the_key_and_where_it_was_set() {
    let run = run_with(&[], &[("COLLAB__DOCUMENTS__SNAPSHOT_EVERY_OPS", "0")]);
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(
        run.stderr.contains("documents.snapshot_every_ops"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("COLLAB__DOCUMENTS__SNAPSHOT_EVERY_OPS"),
        "{}",
        run.stderr
    );
}

#[test]
fn left_out_keys_get_their_defaults_and_an_unknown_key_names_file_and_line() {
    let dir = tempfile::tempdir().expect("temp dir");
    let shipped = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/settings.toml"))
        .expect("settings.toml");
    let short = dir.path().join("short.toml");
    std::fs::write(&short, shipped.replace("max_connections = 8", "")).expect("write");
    let path = short.to_string_lossy().into_owned();
    let run = run_in(dir.path(), &["--config", &path, "check-config"], &[]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(
        run.stdout
            .contains("max_connections = 8  # the built-in default"),
        "{}",
        run.stdout
    );

    let unknown = dir.path().join("unknown.toml");
    std::fs::write(&unknown, "[server]\nport = 8080\nprot = 1\n").expect("write");
    let path = unknown.to_string_lossy().into_owned();
    let run = run_in(dir.path(), &["--config", &path], &[]);
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    for needle in [path.as_str(), "line 3", "prot"] {
        assert!(run.stderr.contains(needle), "{needle}: {}", run.stderr);
    }
}

#[test]
fn a_missing_file_is_reported() {
    let run = run_with(&["--config", "/nonexistent/settings.toml"], &[]);
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(
        run.stderr.contains("/nonexistent/settings.toml"),
        "{}",
        run.stderr
    );
}

#[test]
fn the_shipped_settings_are_the_defaults() {
    let shipped = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/settings.toml"));
    let loaded = collab_engine::Settings::load_layers(Some(shipped), true, Vec::new())
        .expect("shipped settings.toml loads");
    let defaults = collab_engine::Settings::load_layers(None, false, Vec::new()).expect("defaults");
    assert_eq!(
        toml::to_string(&loaded.settings).expect("toml"),
        toml::to_string(&defaults.settings).expect("toml"),
        "settings.toml documents exactly the built-in defaults"
    );
    assert_eq!(loaded.settings.database.url, "sqlite://collab.db");
}

/// With no settings.toml anywhere the server starts on the defaults (and
/// the variables given).
#[test]
fn without_a_settings_file_the_server_starts_on_defaults() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = format!("sqlite://{}/collab.db", dir.path().display());
    let mut child = Command::new(env!("CARGO_BIN_EXE_collab-engine"))
        .current_dir(dir.path())
        .env_remove("RUST_LOG")
        .env("COLLAB__SERVER__PORT", "0")
        .env("COLLAB__DATABASE__URL", &db)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start collab-engine");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    let mut seen = Vec::new();
    let listening = loop {
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(line) => {
                let done = line.contains("collab-engine listening on 127.0.0.1:");
                seen.push(line);
                if done {
                    break true;
                }
            }
            Err(_) => break false,
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    assert!(listening, "{seen:#?}");
    assert!(
        seen.iter()
            .any(|l| l.contains("no settings.toml: built-in defaults")),
        "{seen:#?}"
    );
}

#[test]
fn check_config_prints_the_effective_settings_with_secrets_masked() {
    let run = run_with(
        &["check-config"],
        &[
            (
                "COLLAB__DATABASE__URL",
                "postgres://bob:s3cret@db:5432/collab",
            ),
            ("COLLAB__METRICS__BEARER_KEY", "scrape-s3cret-0123"),
        ],
    );
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(
        run.stdout.contains(
            "url = \"postgres://bob:***@db:5432/collab\"  # environment variable COLLAB__DATABASE__URL"
        ),
        "{}",
        run.stdout
    );
    assert!(!run.stdout.contains("s3cret"), "{}", run.stdout);
    assert!(
        run.stdout
            .contains("bearer_key = \"***\"  # environment variable COLLAB__METRICS__BEARER_KEY"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("port = 8080  # "), "{}", run.stdout);
    let parsed: toml::Table = toml::from_str(&run.stdout).expect("the output is TOML");
    assert_eq!(parsed["server"]["port"].as_integer(), Some(8080));
    let bad = run_with(&["check-config"], &[("COLLAB__SERVER__PORT", "x")]);
    assert_eq!(bad.code, Some(2), "{}", bad.stderr);
}

#[test]
fn help_and_version_are_printed_plainly_to_stdout() {
    let help = run_with(&["--help"], &[]);
    assert_eq!(help.code, Some(0));
    for needle in [
        "Usage: collab-engine",
        "serve",
        "migrate",
        "check-config",
        "--config",
    ] {
        assert!(help.stdout.contains(needle), "{needle}: {}", help.stdout);
    }
    assert!(
        !help.stdout.contains("INFO"),
        "no log prefix: {}",
        help.stdout
    );
    let version = run_with(&["--version"], &[]);
    assert_eq!(version.code, Some(0));
    assert_eq!(
        version.stdout.trim(),
        format!("collab-engine {}", env!("CARGO_PKG_VERSION"))
    );
    let unknown = run_with(&["--frobnicate"], &[]);
    assert_eq!(unknown.code, Some(2), "{}", unknown.stderr);
}

#[actix_web::test]
async fn migrate_applies_the_schema_and_exits() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}/fresh.db", dir.path().display());
    let run = run_with(&["migrate"], &[("COLLAB__DATABASE__URL", &url)]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(run.stderr.contains("migrations applied"), "{}", run.stderr);
    let db = Database::connect(format!("{url}?mode=ro").as_str())
        .await
        .expect("open the migrated file");
    let rows = documents::Entity::find()
        .all(&db)
        .await
        .expect("the documents table exists");
    assert!(rows.is_empty());
}

#[test]
fn an_open_server_on_a_public_address_refuses_to_start_unless_told_so() {
    let dir = tempfile::tempdir().expect("temp dir");
    let run = run_in(
        dir.path(),
        &["check-config"],
        &[("COLLAB__SERVER__HOST", "0.0.0.0")],
    );
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    for needle in ["auth.mode", "0.0.0.0", "allow_anonymous", "token"] {
        assert!(run.stderr.contains(needle), "{needle}: {}", run.stderr);
    }
    let on_purpose = run_in(
        dir.path(),
        &["check-config"],
        &[
            ("COLLAB__SERVER__HOST", "0.0.0.0"),
            ("COLLAB__AUTH__ALLOW_ANONYMOUS", "true"),
        ],
    );
    assert_eq!(on_purpose.code, Some(0), "{}", on_purpose.stderr);
    let short_secret = run_in(
        dir.path(),
        &["check-config"],
        &[("COLLAB__AUTH__MODE", "token")],
    );
    assert_eq!(short_secret.code, Some(2));
    assert!(
        short_secret.stderr.contains("auth.secret"),
        "{}",
        short_secret.stderr
    );
}

#[test]
fn the_token_command_prints_a_token_signed_with_the_secret() {
    const SECRET: &str = "an operator's secret of 32+ bytes";
    let run = run_with(
        &[
            "token", "--sub", "ops", "--doc", "notes-*", "--doc", "handbook", "--perm", "write",
            "--ttl", "600",
        ],
        &[("COLLAB__AUTH__SECRET", SECRET)],
    );
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let keys = collab_engine::auth::TokenKeys::new(SECRET, "", 5).expect("keys");
    let claims = keys.verify(run.stdout.trim()).expect("a valid token");
    assert_eq!(claims.sub, "ops");
    let now = chrono::Utc::now().timestamp();
    assert!((claims.exp - now - 600).abs() <= 2);
    let grants: Vec<(&str, bool)> = claims
        .docs
        .iter()
        .map(|(doc, perm)| (doc.as_str(), perm.can_write()))
        .collect();
    assert_eq!(grants, vec![("handbook", true), ("notes-*", true)]);
    let no_secret = run_with(&["token", "--sub", "ops", "--doc", "x"], &[]);
    assert_eq!(no_secret.code, Some(2), "{}", no_secret.stderr);
    assert!(
        no_secret.stderr.contains("auth.secret"),
        "{}",
        no_secret.stderr
    );
}
