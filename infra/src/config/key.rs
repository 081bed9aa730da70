//! What a configuration key is: one declaration ([`declare_keys!`]) gives its path, its
//! environment name, its Reverb aliases, its default, its parser and its help. Everything else
//! — the TOML reader, the environment, the flags, `herald config env`, docs/configuration.md and
//! the [`Resolver`](super::resolve::Resolver) — reads that one declaration.

use std::marker::PhantomData;

use super::parse::{Invalid, Parsed};

/// A key's default, as the text a user would write, so the help shows exactly what the code
/// uses (the same parser reads both).
#[derive(Clone, Copy)]
pub enum Fallback {
    /// A fixed value.
    Text(&'static str),
    /// A value defined elsewhere in Herald (e.g. `AppSettings::default()`), rendered into the
    /// docs by calling it.
    Const(fn() -> String),
    /// A value that depends on the machine (the CPU count); the docs show the words.
    Machine {
        /// What the docs say.
        doc: &'static str,
        /// The value on this machine.
        text: fn() -> String,
    },
    /// The key must be set.
    Required,
    /// Unset unless given; the words say what absence means.
    Unset(&'static str),
}

impl Fallback {
    /// The default as text, when it has one.
    pub fn text(&self) -> Option<String> {
        match self {
            Self::Text(text) => Some((*text).to_string()),
            Self::Const(text) | Self::Machine { text, .. } => Some(text()),
            Self::Required | Self::Unset(_) => None,
        }
    }

    /// The default as the docs show it.
    pub fn doc(&self) -> String {
        match self {
            Self::Text(text) => format!("`{text}`"),
            Self::Const(text) => format!("`{}`", text()),
            Self::Machine { doc, .. } => (*doc).to_string(),
            Self::Required => "required".to_string(),
            Self::Unset(doc) => (*doc).to_string(),
        }
    }
}

/// Everything about a key that does not depend on its value type.
pub struct Meta {
    /// `section.name`.
    pub path: &'static str,
    /// The help, one doc-comment line per item.
    pub help: &'static [&'static str],
    /// The default.
    pub fallback: Fallback,
    /// Other environment names (Laravel Reverb's), weaker than `HERALD_…`.
    pub aliases: &'static [&'static str],
    /// Parses a text and drops the value: checks every default without knowing its type.
    #[cfg_attr(not(test), expect(dead_code, reason = "read by the key table's tests"))]
    pub check: fn(&str) -> Result<(), Invalid>,
}

impl std::fmt::Debug for Meta {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Key({})", self.path)
    }
}

impl Meta {
    /// The key's `HERALD_…` environment variable: `hub.http_listen` is `HERALD_HUB__HTTP_LISTEN`.
    pub fn env_name(&self) -> String {
        format!(
            "HERALD_{}",
            self.path.replace('.', "__").to_ascii_uppercase()
        )
    }

    /// The section: `hub` for `hub.http_listen`.
    pub fn section(&self) -> &'static str {
        self.path
            .split_once('.')
            .map_or(self.path, |(section, _)| section)
    }

    /// The name within the section: `http_listen` for `hub.http_listen`.
    pub fn name(&self) -> &'static str {
        self.path
            .split_once('.')
            .map_or(self.path, |(_, name)| name)
    }

    /// The help as one line.
    pub fn help_text(&self) -> String {
        self.help
            .iter()
            .map(|line| line.trim())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// Marks a key that has a default: resolving it always gives a value.
pub struct Defaulted;
/// Marks a key that must be set: resolving it reports its absence.
pub struct Required;
/// Marks a key that may be absent: resolving it gives an `Option`.
pub struct Optional;

/// A key whose values are `T`; `D` ([`Defaulted`], [`Required`], [`Optional`]) says what its
/// absence means, so the resolver's method for it is chosen by type.
pub struct Key<T: 'static, D> {
    /// The untyped part.
    pub meta: Meta,
    /// The parser.
    pub parse: fn(&str) -> Parsed<T>,
    /// What absence means.
    pub absence: PhantomData<fn() -> D>,
}

impl<T> Key<T, Defaulted> {
    /// The default value.
    pub fn default_value(&self) -> T {
        let text = self
            .meta
            .fallback
            .text()
            .expect("a defaulted key declares a default");
        (self.parse)(&text).unwrap_or_else(|problem| {
            panic!(
                "the default of {} parses (keys::tests::every_default_parses): {problem}",
                self.meta.path
            )
        })
    }
}

/// The marker type of a default kind (`default`, `computed`, `machine`, `required`, `optional`).
macro_rules! key_absence {
    (default) => {
        $crate::config::key::Defaulted
    };
    (computed) => {
        $crate::config::key::Defaulted
    };
    (machine) => {
        $crate::config::key::Defaulted
    };
    (required) => {
        $crate::config::key::Required
    };
    (optional) => {
        $crate::config::key::Optional
    };
}

/// The [`Fallback`] of a default kind and its arguments.
macro_rules! key_fallback {
    (default($text:literal)) => {
        $crate::config::key::Fallback::Text($text)
    };
    (computed($text:expr)) => {
        $crate::config::key::Fallback::Const($text)
    };
    (machine($doc:literal, $text:expr)) => {
        $crate::config::key::Fallback::Machine {
            doc: $doc,
            text: $text,
        }
    };
    (required) => {
        $crate::config::key::Fallback::Required
    };
    (optional($doc:literal)) => {
        $crate::config::key::Fallback::Unset($doc)
    };
}

/// Declares keys, each once:
///
/// ```ignore
/// /// HTTP API address
/// HUB_HTTP_LISTEN: SocketAddr = "hub.http_listen", default("0.0.0.0:8081"), parse::socket_addr;
/// /// app id (Pusher/Reverb app_id)
/// APP_ID: String = "app.id", required, parse::non_empty, aliases["REVERB_APP_ID"];
/// ```
///
/// The doc comment is the help. The default is one of `default("text")`,
/// `computed(|| text)` (a constant defined elsewhere), `machine("words", || text)` (depends on
/// the machine), `required` or `optional("what absence means")`. Generates one `static` per key
/// and [`KEYS`](super::keys::KEYS), the list in declaration order.
macro_rules! declare_keys {
    ($(
        $(#[doc = $help:literal])+
        $name:ident : $ty:ty = $path:literal,
        $kind:ident $(($($arg:tt)*))?,
        $parse:path
        $(, aliases[$($alias:literal),* $(,)?])?;
    )*) => {
        $(
            $(#[doc = $help])+
            pub static $name: $crate::config::key::Key<$ty, key_absence!($kind)> =
                $crate::config::key::Key {
                    meta: $crate::config::key::Meta {
                        path: $path,
                        help: &[$($help),+],
                        fallback: key_fallback!($kind $(($($arg)*))?),
                        aliases: &[$($($alias),*)?],
                        check: |text| {
                            let parse: fn(&str) -> $crate::config::parse::Parsed<$ty> = $parse;
                            parse(text).map(drop)
                        },
                    },
                    parse: $parse,
                    absence: ::std::marker::PhantomData,
                };
        )*

        /// Every key, in the order `herald config env` and docs/configuration.md list them.
        pub static KEYS: &[&$crate::config::key::Meta] = &[$(&$name.meta),*];
    };
}
