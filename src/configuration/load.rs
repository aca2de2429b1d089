//! Reading the settings in layers: built-in defaults, then the file (when
//! there is one), then `COLLAB__SECTION__KEY` variables; and where every
//! key's value came from, for error messages and `check-config`.
//!
//! The file is checked on its own first (its errors name the line), and
//! each variable on its own (its errors name the variable); only then are
//! the layers merged (by the `config` crate) and the ranges validated.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use super::{ENV_PREFIX, Settings};

/// The file read when no `--config` is given, if it exists.
pub const DEFAULT_FILE: &str = "settings.toml";

/// Where a key's value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// Nobody set it.
    Default,
    /// The settings file (the line of the key, when known).
    File { path: PathBuf, line: Option<usize> },
    /// An environment variable.
    Environment { variable: String },
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Default => write!(f, "the built-in default"),
            Origin::File {
                path,
                line: Some(line),
            } => write!(f, "{} line {line}", path.display()),
            Origin::File { path, line: None } => write!(f, "{}", path.display()),
            Origin::Environment { variable } => write!(f, "environment variable {variable}"),
        }
    }
}

/// Why the settings could not be used.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("configuration file {path} not found")]
    FileNotFound { path: PathBuf },
    #[error("configuration file {path} cannot be read: {source}")]
    FileUnreadable {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The file is not valid TOML, or holds an unknown key or a value of
    /// the wrong type; `message` says which line.
    #[error("configuration file {path}: {message}")]
    File { path: PathBuf, message: String },
    #[error("environment variable {variable}: {problem}")]
    Environment { variable: String, problem: String },
    #[error("configuration could not be read: {0}")]
    Read(String),
    #[error("configuration key `{key}` (from {origin}): {problem}")]
    Invalid {
        key: &'static str,
        problem: String,
        origin: Origin,
    },
}

/// Effective settings with the origin of every key (`section.key`).
#[derive(Debug, Clone)]
pub struct LoadedSettings {
    pub settings: Settings,
    pub origins: BTreeMap<String, Origin>,
}

impl Settings {
    /// Defaults, then `path` (which must exist), then the process's
    /// `COLLAB__…` variables.
    pub fn load(path: &Path) -> Result<Settings, SettingsError> {
        Ok(Settings::load_layers(Some(path), true, std::env::vars())?.settings)
    }

    /// Defaults, then [`DEFAULT_FILE`] if the working directory has one,
    /// then the process's `COLLAB__…` variables.
    pub fn load_default() -> Result<Settings, SettingsError> {
        Ok(Settings::load_layers(Some(Path::new(DEFAULT_FILE)), false, std::env::vars())?.settings)
    }

    /// The layers with explicit inputs: `file` (an error if `required` and
    /// missing) and the environment `env` (only `COLLAB__` names count).
    pub fn load_layers(
        file: Option<&Path>,
        required: bool,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<LoadedSettings, SettingsError> {
        let known = known_keys();
        let file = match file {
            Some(path) => read_file(path, required)?,
            None => None,
        };
        let mut overrides = BTreeMap::new();
        for (variable, value) in env {
            let Some(rest) = variable
                .strip_prefix(ENV_PREFIX)
                .and_then(|r| r.strip_prefix("__"))
            else {
                continue;
            };
            let key = check_variable(&known, &variable, rest, &value)?;
            overrides.insert(variable, (key, value));
        }

        let mut builder = config::Config::builder();
        if let Some((_, text, _)) = &file {
            builder = builder.add_source(config::File::from_str(text, config::FileFormat::Toml));
        }
        let env_source: config::Map<String, String> = overrides
            .iter()
            .map(|(variable, (_, value))| (variable.clone(), value.clone()))
            .collect();
        let settings: Settings = builder
            .add_source(
                config::Environment::with_prefix(ENV_PREFIX)
                    .prefix_separator("__")
                    .separator("__")
                    .try_parsing(true)
                    .list_separator(",")
                    .with_list_parse_key("server.allowed_origins")
                    .with_list_parse_key("webhooks.urls")
                    .source(Some(env_source)),
            )
            .build()
            .and_then(|merged| merged.try_deserialize())
            .map_err(|e| SettingsError::Read(e.to_string()))?;

        let mut origins = BTreeMap::new();
        for key in known.keys() {
            origins.insert(key.clone(), Origin::Default);
        }
        if let Some((path, _, lines)) = &file {
            for (key, line) in lines {
                let origin = Origin::File {
                    path: path.clone(),
                    line: Some(*line),
                };
                origins.insert(key.clone(), origin);
            }
        }
        for (variable, (key, _)) in overrides {
            origins.insert(key, Origin::Environment { variable });
        }
        settings
            .validate()
            .map_err(|invalid| SettingsError::Invalid {
                key: invalid.key,
                origin: origins.get(invalid.key).cloned().unwrap_or(Origin::Default),
                problem: invalid.problem,
            })?;
        Ok(LoadedSettings { settings, origins })
    }
}

/// Every key (`section.key`) with its default value.
fn known_keys() -> BTreeMap<String, toml::Value> {
    let mut keys = BTreeMap::new();
    // Serializing plain structs of strings, numbers and booleans cannot fail.
    let defaults = toml::Table::try_from(Settings::default()).unwrap_or_default();
    for (section, table) in defaults {
        if let toml::Value::Table(table) = table {
            for (key, value) in table {
                keys.insert(format!("{section}.{key}"), value);
            }
        }
    }
    keys
}

/// Reads and checks the file: `(path, text, line of each key)`; `None` when
/// it does not exist and is not required.
#[allow(clippy::type_complexity)]
fn read_file(
    path: &Path,
    required: bool,
) -> Result<Option<(PathBuf, String, BTreeMap<String, usize>)>, SettingsError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if required {
                return Err(SettingsError::FileNotFound {
                    path: path.to_path_buf(),
                });
            }
            return Ok(None);
        }
        Err(source) => {
            return Err(SettingsError::FileUnreadable {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    // toml's own errors say the line and column, and for an unknown key or
    // an enum which names are allowed.
    if let Err(e) = toml::from_str::<Settings>(&text) {
        return Err(SettingsError::File {
            path: path.to_path_buf(),
            message: e.to_string().trim_end().to_owned(),
        });
    }
    let lines = key_lines(&text);
    Ok(Some((path.to_path_buf(), text, lines)))
}

/// The line (1-based) of every `section.key` set in a TOML text.
fn key_lines(text: &str) -> BTreeMap<String, usize> {
    let mut lines = BTreeMap::new();
    let Ok(document) = toml::de::DeTable::parse(text) else {
        return lines;
    };
    let line_of = |offset: usize| text[..offset.min(text.len())].matches('\n').count() + 1;
    for (section, value) in document.get_ref() {
        if let toml::de::DeValue::Table(table) = value.get_ref() {
            for (key, _) in table {
                let name = format!("{}.{}", section.get_ref(), key.get_ref());
                lines.insert(name, line_of(key.span().start));
            }
        }
    }
    lines
}

/// Checks one `COLLAB__SECTION__KEY` variable (`rest` is `SECTION__KEY`)
/// against the known keys and the type of its default; returns its key.
fn check_variable(
    known: &BTreeMap<String, toml::Value>,
    variable: &str,
    rest: &str,
    value: &str,
) -> Result<String, SettingsError> {
    let problem = |problem: String| SettingsError::Environment {
        variable: variable.to_owned(),
        problem,
    };
    let Some((section, key)) = rest
        .split_once("__")
        .filter(|(s, k)| !s.is_empty() && !k.is_empty() && !k.contains("__"))
    else {
        return Err(problem(format!(
            "not a setting: the name must be {ENV_PREFIX}__SECTION__KEY, e.g. {ENV_PREFIX}__SERVER__PORT"
        )));
    };
    let (section, key) = (section.to_ascii_lowercase(), key.to_ascii_lowercase());
    let name = format!("{section}.{key}");
    let Some(default) = known.get(&name) else {
        let in_section: Vec<&str> = known
            .keys()
            .filter_map(|k| k.strip_prefix(&format!("{section}.")))
            .collect();
        let hint = if in_section.is_empty() {
            let mut sections: Vec<&str> =
                known.keys().filter_map(|k| k.split('.').next()).collect();
            sections.dedup();
            format!(
                "there is no section [{section}]; sections: {}",
                sections.join(", ")
            )
        } else {
            format!(
                "[{section}] has no key `{key}`; its keys: {}",
                in_section.join(", ")
            )
        };
        return Err(problem(format!("unknown setting `{name}`: {hint}")));
    };
    let typed = match default {
        toml::Value::Integer(_) => value
            .trim()
            .parse::<i64>()
            .map(toml::Value::Integer)
            .map_err(|_| problem(format!("`{name}` takes a whole number, got `{value}`")))?,
        toml::Value::Boolean(_) => match value.trim().to_ascii_lowercase().as_str() {
            "true" => toml::Value::Boolean(true),
            "false" => toml::Value::Boolean(false),
            _ => {
                return Err(problem(format!(
                    "`{name}` takes true or false, got `{value}`"
                )));
            }
        },
        toml::Value::Array(_) => toml::Value::Array(
            value
                .split(',')
                .map(str::trim)
                .filter(|item| !item.is_empty())
                .map(|item| toml::Value::String(item.to_owned()))
                .collect(),
        ),
        _ => toml::Value::String(value.to_owned()),
    };
    let mut table = toml::Table::new();
    let mut section_table = toml::Table::new();
    section_table.insert(key.clone(), typed);
    table.insert(section.clone(), toml::Value::Table(section_table));
    toml::Value::Table(table)
        .try_into::<Settings>()
        .map_err(|e| problem(format!("`{name}`: {}", e.to_string().trim_end())))?;
    Ok(name)
}
