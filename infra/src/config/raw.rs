//! The configuration as given, before defaults and validation: a [`Setting`] per key that was
//! set, remembering where it came from, so a bad value is reported with its key and its source
//! (file, environment variable or flag). The TOML file is read against the key table: a name
//! that is not a key is an error, with the nearest key suggested.

use std::collections::BTreeMap;
use std::fmt;

use super::key::Meta;
use super::keys;

/// Where a value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// The configuration file.
    File,
    /// An environment variable.
    Env(String),
    /// A command-line flag.
    Flag(String),
    /// A default of the command (e.g. `herald dev`'s loopback addresses).
    CommandDefault(&'static str),
    /// A row of the app store (`app_store.url`).
    Store,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::File => f.write_str("in the config file"),
            Self::Env(name) => write!(f, "from {name}"),
            Self::Flag(name) => write!(f, "from {name}"),
            Self::CommandDefault(command) => write!(f, "the default of {command}"),
            Self::Store => f.write_str("in the app store"),
        }
    }
}

/// One configured value, as text, with its origin. Lists are comma-separated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    /// The value as text.
    pub text: String,
    /// Where it came from.
    pub origin: Origin,
}

impl Setting {
    /// A value with its origin.
    pub fn new(text: impl Into<String>, origin: Origin) -> Self {
        Self {
            text: text.into(),
            origin,
        }
    }
}

/// The settings of one scope: the configuration's keys, or one `[[apps]]` entry (whose keys are
/// the `app.*` ones, reported as `apps[N].name`).
#[derive(Debug, Default)]
pub struct Settings {
    scope: Option<String>,
    values: BTreeMap<&'static str, Setting>,
}

impl Settings {
    /// The settings of one app reported as `{scope}.name` (`apps[0]`, an app store row).
    pub fn scoped(scope: String) -> Self {
        Self {
            scope: Some(scope),
            values: BTreeMap::new(),
        }
    }

    /// The setting of a key, if given.
    pub fn get(&self, key: &Meta) -> Option<&Setting> {
        self.values.get(key.path)
    }

    /// Sets a key (a later source overrides an earlier one).
    pub fn set(&mut self, key: &'static Meta, setting: Setting) {
        self.values.insert(key.path, setting);
    }

    /// Sets a key unless it is set already.
    pub fn set_default(&mut self, key: &'static Meta, setting: Setting) {
        self.values.entry(key.path).or_insert(setting);
    }

    /// The name problems with this key are reported under: its path, or `apps[N].name`.
    pub fn name(&self, key: &Meta) -> String {
        match &self.scope {
            Some(scope) => format!("{scope}.{}", key.name()),
            None => key.path.to_string(),
        }
    }

    /// Whether any key of this section is set.
    pub fn any_in(&self, section: &str) -> bool {
        self.values
            .keys()
            .any(|path| path.split_once('.').is_some_and(|(s, _)| s == section))
    }
}

/// The whole configuration as given.
#[derive(Debug, Default)]
pub struct RawConfig {
    /// Every key set by the file (outside `[[apps]]`), the environment or a flag.
    pub settings: Settings,
    /// `[[apps]]`: more apps, each with `app.*` keys.
    pub apps: Vec<Settings>,
}

impl RawConfig {
    /// Reads a TOML configuration; every problem (unknown key, a value that is not a scalar or
    /// a list of scalars) is returned.
    pub fn from_toml(text: &str) -> Result<Self, Vec<String>> {
        let table: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| vec![e.to_string()])?;
        let mut raw = Self::default();
        let mut problems = Vec::new();
        for (name, value) in table {
            if name == "apps" {
                let toml::Value::Array(entries) = value else {
                    problems.push("apps: write each app as an [[apps]] table".to_string());
                    continue;
                };
                for (index, entry) in entries.into_iter().enumerate() {
                    let scope = format!("apps[{index}]");
                    let toml::Value::Table(entry) = entry else {
                        problems.push(format!("{scope}: write each app as an [[apps]] table"));
                        continue;
                    };
                    let mut settings = Settings::scoped(scope.clone());
                    for (name, value) in entry {
                        let path = format!("app.{name}");
                        match keys::key(&path) {
                            Some(key) if is_structured(key) => {
                                let text = structured_text(value);
                                settings.set(key, Setting::new(text, Origin::File));
                            }
                            Some(key) => match text_of(&value) {
                                Ok(text) => settings.set(key, Setting::new(text, Origin::File)),
                                Err(problem) => problems.push(format!("{scope}.{name}: {problem}")),
                            },
                            None => problems.push(unknown(&format!("{scope}.{name}"), &path)),
                        }
                    }
                    raw.apps.push(settings);
                }
            } else {
                read_table(&name, value, &mut raw.settings, &mut problems);
            }
        }
        if problems.is_empty() {
            Ok(raw)
        } else {
            Err(problems)
        }
    }
}

fn read_table(path: &str, value: toml::Value, into: &mut Settings, problems: &mut Vec<String>) {
    if let Some(key) = keys::key(path).filter(|key| is_structured(key)) {
        into.set(key, Setting::new(structured_text(value), Origin::File));
        return;
    }
    match value {
        toml::Value::Table(table) => {
            for (name, value) in table {
                read_table(&format!("{path}.{name}"), value, into, problems);
            }
        }
        value => match keys::key(path) {
            Some(key) => match text_of(&value) {
                Ok(text) => into.set(key, Setting::new(text, Origin::File)),
                Err(problem) => problems.push(format!("{path}: {problem}")),
            },
            None => problems.push(unknown(path, path)),
        },
    }
}

/// "unknown key", with the nearest key when one is close.
fn unknown(shown: &str, path: &str) -> String {
    let nearest = keys::KEYS
        .iter()
        .map(|key| (strsim::damerau_levenshtein(path, key.path), key.path))
        .min();
    match nearest {
        Some((distance, near)) if distance <= 3 => {
            format!("{shown} is not a configuration key (did you mean {near}?)")
        }
        _ => format!("{shown} is not a configuration key (`herald config env` lists them)"),
    }
}

/// The environment's counterpart of [`unknown`].
pub fn unknown_env(name: &str) -> String {
    let nearest = keys::KEYS
        .iter()
        .map(|key| {
            let env = key.env_name();
            (strsim::damerau_levenshtein(name, &env), env)
        })
        .min();
    match nearest {
        Some((distance, near)) if distance <= 3 => {
            format!("names no configuration key (did you mean {near}?)")
        }
        _ => "names no configuration key (`herald config env` lists them)".to_string(),
    }
}

/// Whether a key's value is structured: a list of tables in the file (`[[app.webhooks]]`),
/// read as its JSON text by the key's parser, the same text its environment variable holds.
fn is_structured(key: &Meta) -> bool {
    key.path == keys::APP_WEBHOOKS.meta.path
}

/// A structured value as JSON (one table stands for a list of one).
fn structured_text(value: toml::Value) -> String {
    let value = match value {
        toml::Value::Table(table) => toml::Value::Array(vec![toml::Value::Table(table)]),
        value => value,
    };
    serde_json::to_string(&value).expect("a TOML value encodes as JSON")
}

/// A scalar as text; a list of scalars comma-separated.
fn text_of(value: &toml::Value) -> Result<String, String> {
    match value {
        toml::Value::String(text) => Ok(text.clone()),
        toml::Value::Integer(number) => Ok(number.to_string()),
        toml::Value::Float(number) => Ok(number.to_string()),
        toml::Value::Boolean(flag) => Ok(flag.to_string()),
        toml::Value::Datetime(datetime) => Ok(datetime.to_string()),
        toml::Value::Array(items) => items
            .iter()
            .map(|item| match item {
                toml::Value::Array(_) | toml::Value::Table(_) => {
                    Err("is a list of lists or tables; give a list of values".to_string())
                }
                item => text_of(item),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(|items| items.join(",")),
        toml::Value::Table(_) => Err("is a table; give a value".to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalars_and_lists_become_text() {
        let raw = RawConfig::from_toml(
            r#"
            [edge]
            hubs = ["a:1", "b:2"]
            drain_timeout_secs = 25
            [[apps]]
            id = "1"
            enabled = false
            "#,
        )
        .unwrap();
        assert_eq!(
            raw.settings.get(&keys::EDGE_HUBS.meta).unwrap().text,
            "a:1,b:2"
        );
        assert_eq!(
            raw.settings
                .get(&keys::EDGE_DRAIN_TIMEOUT_SECS.meta)
                .unwrap()
                .text,
            "25"
        );
        let app = &raw.apps[0];
        assert_eq!(app.get(&keys::APP_ENABLED.meta).unwrap().text, "false");
        assert_eq!(app.name(&keys::APP_ENABLED.meta), "apps[0].enabled");
    }

    #[test]
    fn unknown_keys_are_errors_naming_the_nearest_key() {
        let problems = RawConfig::from_toml(
            "[hub]\nhttp_listn = \"x\"\n[nope]\nthing = 1\n[[apps]]\nsecrt = \"s\"\n",
        )
        .unwrap_err();
        assert_eq!(
            problems,
            vec![
                "apps[0].secrt is not a configuration key (did you mean app.secret?)",
                "hub.http_listn is not a configuration key (did you mean hub.http_listen?)",
                "nope.thing is not a configuration key (`herald config env` lists them)",
            ]
        );
    }

    #[test]
    fn tables_where_values_belong_are_errors() {
        let problems = RawConfig::from_toml("[edge]\nhubs = [[\"a:1\"]]\n[app]\nid = { x = 1 }\n")
            .unwrap_err();
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(
            problems[0].starts_with("app.id.x is not a configuration key"),
            "{problems:?}"
        );
        assert!(
            problems[1].starts_with("edge.hubs: is a list of lists"),
            "{problems:?}"
        );
    }
}
