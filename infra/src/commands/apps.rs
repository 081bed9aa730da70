//! `herald apps`: managing the apps in the app store (`app_store.url`).
//!
//! ```sh
//! herald apps add --set max_connections=1000           # prints id, key and secret once
//! herald apps list                                     # never prints a secret
//! herald apps update 1234567 --disable
//! herald apps rotate-secret 1234567                    # the old secret stays valid 24 h
//! herald apps remove 1234567
//! ```
//!
//! The store comes from `--app-store-url`, the config file (`-c`) or `HERALD_APP_STORE__URL`.
//! Every write is validated exactly as hubs will read it ([`crate::app_store::row`]) and checked
//! against the configured (file and environment) apps, so a bad or clashing app is refused here
//! rather than skipped by the hubs. Running hubs apply a change within `app_store.refresh_ms`.

use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use clap::{Args, Subcommand};
use serde_json::{Map, Value, json};

use crate::app_store::row::{self, BadRow};
use crate::app_store::{AppStore, StoreError, StoredRow};
use crate::cli::overrides_of;
use crate::config::keys::{self, APP_STORE_SECRET_GRACE_SECS, APP_STORE_URL};
use crate::config::raw::RawConfig;
use crate::config::resolve::{self, Resolver};
use crate::process::{EXIT_CONFIG, EXIT_UNAVAILABLE, fail};

/// Exit code when the app named does not exist or its id or key is taken.
const EXIT_NOT_DONE: u8 = 1;

/// `herald apps` arguments.
#[derive(Debug, Args)]
pub struct AppsCommand {
    /// Where the store is.
    #[command(flatten)]
    pub store: StoreArgs,
    /// What to do.
    #[command(subcommand)]
    pub what: AppsWhat,
}

/// Where the app store is.
#[derive(Debug, Args)]
pub struct StoreArgs {
    /// TOML configuration file (its app_store.* keys, and its apps for the clash check).
    #[arg(long, short = 'c', value_name = "FILE", global = true)]
    pub config: Option<std::path::PathBuf>,
    /// The app store (overrides app_store.url / HERALD_APP_STORE__URL).
    #[arg(long, value_name = "URL", global = true)]
    pub app_store_url: Option<String>,
    /// Print JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,
}

/// What `herald apps` does.
#[derive(Debug, Subcommand)]
pub enum AppsWhat {
    /// Every app in the store: id, key, enabled, settings, rotation (never a secret).
    List,
    /// Add an app; prints its id, key and secret once.
    Add {
        /// App id (default: 7 random digits).
        #[arg(long)]
        id: Option<String>,
        /// App key (default: 20 random hex characters).
        #[arg(long)]
        key: Option<String>,
        /// App secret (default: 32 random hex characters).
        #[arg(long)]
        secret: Option<String>,
        /// Add it disabled.
        #[arg(long)]
        disabled: bool,
        /// An app setting, NAME=VALUE as the app.NAME key takes it (max_connections=100,
        /// allowed_origins=example.com,*.example.com, webhooks=[{"url": "…"}]); repeat.
        #[arg(long = "set", value_name = "NAME=VALUE")]
        set: Vec<String>,
    },
    /// Change an app's key, enabled state or settings.
    Update {
        /// The app's id.
        id: String,
        /// A new key (clients then connect with it).
        #[arg(long)]
        key: Option<String>,
        /// Enable it.
        #[arg(long, conflicts_with = "disable")]
        enable: bool,
        /// Disable it: its connections are refused (4003), its triggers answered 403.
        #[arg(long)]
        disable: bool,
        /// Set an app setting, NAME=VALUE; repeat.
        #[arg(long = "set", value_name = "NAME=VALUE")]
        set: Vec<String>,
        /// Return a setting to its default; repeat.
        #[arg(long = "unset", value_name = "NAME")]
        unset: Vec<String>,
    },
    /// Remove an app.
    Remove {
        /// The app's id.
        id: String,
    },
    /// Give an app a new secret (printed once); the old one stays valid for the grace period.
    RotateSecret {
        /// The app's id.
        id: String,
        /// Seconds the old secret stays valid (default app_store.secret_grace_secs, 86400);
        /// 0 refuses it at once.
        #[arg(long, value_name = "SECS")]
        grace_secs: Option<u64>,
    },
}

/// Why a `herald apps` command failed, with its exit code.
#[derive(Debug, thiserror::Error)]
enum AppsError {
    #[error("{0}")]
    Config(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    NotDone(String),
}

impl AppsError {
    fn exit(self) -> ExitCode {
        let code = match &self {
            Self::Config(_) => EXIT_CONFIG,
            Self::Store(_) => EXIT_UNAVAILABLE,
            Self::NotDone(_) => EXIT_NOT_DONE,
        };
        fail(code, self)
    }
}

/// What the command needs from the configuration.
struct Context {
    store: AppStore,
    grace: Duration,
    configured: Vec<herald_shared::app::App>,
    json: bool,
}

/// Runs `herald apps`.
pub async fn run(command: AppsCommand) -> ExitCode {
    match execute(command).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => error.exit(),
    }
}

async fn context(args: &StoreArgs) -> Result<Context, AppsError> {
    let overrides = overrides_of([(
        &APP_STORE_URL.meta,
        "--app-store-url",
        args.app_store_url.clone(),
    )]);
    let raw = crate::config::load(
        args.config.as_deref(),
        &crate::config::env::ProcessEnv,
        &overrides,
    )
    .map_err(|errors| AppsError::Config(errors.to_string()))?;
    let mut r = Resolver::default();
    let plan = resolve::app_store(&raw, &mut r);
    let grace = r.get(&raw.settings, &APP_STORE_SECRET_GRACE_SECS);
    r.finish(())
        .map_err(|errors| AppsError::Config(errors.to_string()))?;
    let plan = plan.ok_or_else(|| {
        AppsError::Config(
            "app_store.url: is required (give --app-store-url, HERALD_APP_STORE__URL or app_store.url in -c FILE)".into(),
        )
    })?;
    let store = AppStore::open(&plan.url, plan.timeout).await?;
    Ok(Context {
        store,
        grace,
        configured: configured_apps(&raw),
        json: args.json,
    })
}

/// The file and environment apps, for the clash check (none if they do not resolve: the hub
/// reports those problems itself).
fn configured_apps(raw: &RawConfig) -> Vec<herald_shared::app::App> {
    let mut r = Resolver::default();
    let table = resolve::apps(raw, &mut r);
    match r.finish(()) {
        Ok(()) => table.apps().cloned().collect(),
        Err(_) => Vec::new(),
    }
}

async fn execute(command: AppsCommand) -> Result<(), AppsError> {
    let ctx = context(&command.store).await?;
    let result = match command.what {
        AppsWhat::List => list(&ctx).await,
        AppsWhat::Add {
            id,
            key,
            secret,
            disabled,
            set,
        } => {
            let row = StoredRow {
                id: id.unwrap_or_else(|| random_digits(7)),
                key: key.unwrap_or_else(|| random_hex(10)),
                secret: secret.unwrap_or_else(|| random_hex(16)),
                previous_secret: None,
                previous_secret_until: None,
                enabled: !disabled,
                settings: None,
            };
            let row = with_settings(row, &set, &[])?;
            add(&ctx, row).await
        }
        AppsWhat::Update {
            id,
            key,
            enable,
            disable,
            set,
            unset,
        } => {
            let mut row = existing(&ctx, &id).await?;
            if let Some(key) = key {
                row.key = key;
            }
            if enable || disable {
                row.enabled = enable;
            }
            let row = with_settings(row, &set, &unset)?;
            update(&ctx, &row).await?;
            say(
                &ctx,
                json!({"updated": row.id}),
                &format!("App {} updated.", row.id),
            );
            Ok(())
        }
        AppsWhat::Remove { id } => {
            if !ctx.store.remove(&id).await? {
                return Err(AppsError::NotDone(format!(
                    "no app with id {id:?} in the app store"
                )));
            }
            say(&ctx, json!({"removed": id}), &format!("App {id} removed."));
            Ok(())
        }
        AppsWhat::RotateSecret { id, grace_secs } => {
            let mut row = existing(&ctx, &id).await?;
            let grace = grace_secs.map_or(ctx.grace, Duration::from_secs);
            let until = now() + grace.as_secs() as i64;
            let secret = random_hex(16);
            row.previous_secret = Some(std::mem::replace(&mut row.secret, secret.clone()));
            row.previous_secret_until = Some(until);
            update(&ctx, &row).await?;
            say(
                &ctx,
                json!({"id": row.id, "key": row.key, "secret": secret, "previous_secret_valid_until": until}),
                &format!(
                    "New secret for app {}: {secret}\nShown once: store it now. The previous secret is accepted until {} (Unix time {until}).",
                    row.id,
                    humantime(until)
                ),
            );
            Ok(())
        }
    };
    ctx.store.close().await;
    result
}

async fn list(ctx: &Context) -> Result<(), AppsError> {
    let rows = ctx.store.rows().await?;
    let now = now();
    let apps: Vec<Value> = rows
        .iter()
        .map(|row| {
            let in_grace = row.previous_secret.is_some()
                && row.previous_secret_until.is_some_and(|until| until > now);
            json!({
                "id": row.id,
                "key": row.key,
                "enabled": row.enabled,
                "settings": row::settings_map(row.settings.as_deref()).map(Value::Object).unwrap_or(Value::Null),
                "previous_secret_valid_until": row.previous_secret_until.filter(|_| in_grace),
                "problem": row.validate().err().map(|bad| bad.problems.join("; ")),
            })
        })
        .collect();
    let mut text = String::new();
    for app in &apps {
        text.push_str(&format!(
            "{}\tkey={}\t{}",
            app["id"].as_str().unwrap_or_default(),
            app["key"].as_str().unwrap_or_default(),
            if app["enabled"] == json!(true) {
                "enabled"
            } else {
                "disabled"
            },
        ));
        if let Some(settings) = app["settings"].as_object().filter(|s| !s.is_empty()) {
            text.push_str(&format!("\t{}", Value::Object(settings.clone())));
        }
        if let Some(until) = app["previous_secret_valid_until"].as_i64() {
            text.push_str(&format!(
                "\tprevious secret valid until {}",
                humantime(until)
            ));
        }
        if let Some(problem) = app["problem"].as_str() {
            text.push_str(&format!("\tNOT SERVED: {problem}"));
        }
        text.push('\n');
    }
    if apps.is_empty() {
        text.push_str("No apps in the app store.\n");
    }
    say(ctx, Value::Array(apps), text.trim_end());
    Ok(())
}

async fn add(ctx: &Context, row: StoredRow) -> Result<(), AppsError> {
    check(ctx, &row)?;
    if !ctx.store.insert(&row, now()).await? {
        return Err(AppsError::NotDone(format!(
            "an app with id {:?} or key {:?} is already in the app store",
            row.id, row.key
        )));
    }
    say(
        ctx,
        json!({"id": row.id, "key": row.key, "secret": row.secret, "enabled": row.enabled}),
        &format!(
            "App added.\n  id:     {}\n  key:    {}\n  secret: {}\nThe secret is shown once: store it now (herald apps rotate-secret makes a new one).",
            row.id, row.key, row.secret
        ),
    );
    Ok(())
}

async fn update(ctx: &Context, row: &StoredRow) -> Result<(), AppsError> {
    check(ctx, row)?;
    if !ctx.store.update(row, now()).await? {
        return Err(AppsError::NotDone(format!(
            "the key {:?} belongs to another app in the app store",
            row.key
        )));
    }
    Ok(())
}

async fn existing(ctx: &Context, id: &str) -> Result<StoredRow, AppsError> {
    ctx.store
        .row(id)
        .await?
        .ok_or_else(|| AppsError::NotDone(format!("no app with id {id:?} in the app store")))
}

/// Refuses a row hubs would skip: invalid, or clashing with a configured app.
fn check(ctx: &Context, row: &StoredRow) -> Result<(), AppsError> {
    let stored = row.validate().map_err(|BadRow { problems, .. }| {
        AppsError::Config(format!("the app is not valid: {}", problems.join("; ")))
    })?;
    if let Some(app) = ctx
        .configured
        .iter()
        .find(|app| app.id == stored.app.id || app.key == stored.app.key)
    {
        return Err(AppsError::Config(format!(
            "app id {:?} / key {:?} clashes with the configured app {:?} (config file or environment); an app lives in one place",
            row.id,
            row.key,
            app.id.as_str()
        )));
    }
    Ok(())
}

/// The row with `NAME=VALUE` settings set and `NAME`s removed.
fn with_settings(
    mut row: StoredRow,
    set: &[String],
    unset: &[String],
) -> Result<StoredRow, AppsError> {
    let mut map: Map<String, Value> =
        row::settings_map(row.settings.as_deref()).map_err(AppsError::Config)?;
    for item in set {
        let (name, value) = item
            .split_once('=')
            .ok_or_else(|| AppsError::Config(format!("--set {item:?}: give NAME=VALUE")))?;
        let key = row::settings_key(name).map_err(|error| AppsError::Config(error.to_string()))?;
        let value = if key.path == keys::APP_WEBHOOKS.meta.path {
            serde_json::from_str(value)
                .map_err(|error| AppsError::Config(format!("--set {name}: is not JSON: {error}")))?
        } else {
            Value::String(value.to_string())
        };
        map.insert(name.to_string(), value);
    }
    for name in unset {
        row::settings_key(name).map_err(|error| AppsError::Config(error.to_string()))?;
        map.remove(name);
    }
    row.settings = (!map.is_empty()).then(|| Value::Object(map).to_string());
    Ok(row)
}

#[allow(clippy::print_stdout, reason = "printing is this command's job")]
fn say(ctx: &Context, json: Value, text: &str) {
    if ctx.json {
        println!("{json}");
    } else {
        println!("{text}");
    }
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn humantime(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| unix.to_string())
}

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    // The operating system's generator; without it no secret can be made safely.
    getrandom::fill(&mut bytes).expect("the operating system's random generator");
    bytes
}

fn random_hex(bytes: usize) -> String {
    let random: [u8; 32] = random_bytes();
    hex::encode(&random[..bytes.min(32)])
}

fn random_digits(count: usize) -> String {
    let random: [u8; 16] = random_bytes();
    let first = (random[0] % 9 + 1).to_string();
    let rest: String = random[1..count.min(16)]
        .iter()
        .map(|b| char::from(b'0' + b % 10))
        .collect();
    first + &rest
}
