//! Apps in a database: `app_store.url`, PostgreSQL or MySQL/MariaDB through `sqlx`.
//!
//! One table, `herald_apps`, which Herald creates (and migrates, through the version kept in
//! `herald_app_store_schema`) itself. Its columns are the credentials, the rotation state and
//! `enabled`; every other app setting is a key of the JSON object in `settings`, named as in the
//! `[app]` file section (`{"max_connections": 100, "allowed_origins": "example.com"}`) and
//! validated by the same key parsers ([`row`]). A row that does not validate is skipped and
//! reported, never served and never fatal.
//!
//! The two databases differ in placeholders only (`$1` against `?`): each query is written once
//! for PostgreSQL and [`Dialect::sql`] rewrites it; [`on_pool!`] runs the same code against
//! either pool. Nothing here prints the URL: errors name the scheme, host and database
//! ([`StoreUrl::redacted`]) and have the password scrubbed ([`StoreUrl::scrub`]).
//!
//! [`poller`] keeps a process's app table current (file apps and store apps combined).

pub mod poller;
pub mod row;

use std::str::FromStr;
use std::time::Duration;

use herald_shared::secret::Secret;
use sqlx::mysql::{MySqlConnectOptions, MySqlPool, MySqlPoolOptions};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{ConnectOptions, Row};

pub use row::StoredRow;

/// The table that holds the apps.
pub const TABLE: &str = "herald_apps";
/// The table that holds the schema version.
pub const SCHEMA_TABLE: &str = "herald_app_store_schema";

/// Which database a URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// `postgres://` or `postgresql://`.
    Postgres,
    /// `mysql://` or `mariadb://`.
    MySql,
}

impl Dialect {
    /// A query written with PostgreSQL's `$N` placeholders in this dialect (the arguments are
    /// always bound in order).
    fn sql(self, postgres: &str) -> String {
        match self {
            Self::Postgres => postgres.to_string(),
            Self::MySql => {
                let mut out = String::with_capacity(postgres.len());
                let mut chars = postgres.chars().peekable();
                while let Some(c) = chars.next() {
                    if c == '$' && chars.peek().is_some_and(char::is_ascii_digit) {
                        while chars.peek().is_some_and(char::is_ascii_digit) {
                            chars.next();
                        }
                        out.push('?');
                    } else {
                        out.push(c);
                    }
                }
                out
            }
        }
    }
}

/// A parsed `app_store.url`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreUrl {
    dialect: Dialect,
    url: Secret,
    redacted: String,
    /// The password as written in the URL and percent-decoded.
    passwords: Vec<Secret>,
}

/// What is wrong with an `app_store.url`, without its password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct UrlError(String);

impl StoreUrl {
    /// Parses a `postgres://`, `postgresql://`, `mysql://` or `mariadb://` URL.
    pub fn parse(text: &str) -> Result<Self, UrlError> {
        let (scheme, rest) = text.split_once("://").ok_or_else(|| {
            UrlError("is not a URL like postgres://user:password@host:5432/database or mysql://user:password@host:3306/database".into())
        })?;
        let dialect = match scheme {
            "postgres" | "postgresql" => Dialect::Postgres,
            "mysql" | "mariadb" => Dialect::MySql,
            other => {
                return Err(UrlError(format!(
                    "has the scheme {other:?}; Herald's app store is PostgreSQL (postgres://) or MySQL/MariaDB (mysql://)"
                )));
            }
        };
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let (credentials, host) = match authority.rsplit_once('@') {
            Some((credentials, host)) => (Some(credentials), host),
            None => (None, authority),
        };
        let password = credentials
            .and_then(|c| c.split_once(':'))
            .map(|(_, password)| password)
            .filter(|password| !password.is_empty());
        let database = path.split('?').next().unwrap_or_default();
        if host.is_empty() || database.is_empty() {
            return Err(UrlError(format!(
                "names no {} (give {scheme}://user:password@host:port/database)",
                if host.is_empty() { "host" } else { "database" }
            )));
        }
        let scheme_shown = match dialect {
            Dialect::Postgres => "postgres",
            Dialect::MySql => "mysql",
        };
        let normalized = format!("{scheme_shown}://{rest}");
        let url = Self {
            dialect,
            redacted: format!("{scheme_shown}://{host}/{database}"),
            passwords: password
                .map(|p| vec![Secret::new(p), Secret::new(percent_decode(p))])
                .unwrap_or_default(),
            url: Secret::new(normalized),
        };
        let checked = match dialect {
            Dialect::Postgres => PgConnectOptions::from_str(url.url.expose()).map(drop),
            Dialect::MySql => MySqlConnectOptions::from_str(url.url.expose()).map(drop),
        };
        checked.map_err(|error| {
            UrlError(format!(
                "is not a usable URL: {}",
                url.scrub(&error.to_string())
            ))
        })?;
        Ok(url)
    }

    /// Scheme, host and database: safe to print.
    pub fn redacted(&self) -> &str {
        &self.redacted
    }

    /// `text` with the URL's password (as written and decoded) replaced by `****`.
    pub fn scrub(&self, text: &str) -> String {
        let mut text = text.replace(self.url.expose(), &self.redacted);
        for password in &self.passwords {
            text = text.replace(password.expose(), "****");
        }
        text
    }
}

/// `%XX` escapes decoded (invalid ones kept as written).
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|pair| std::str::from_utf8(pair).ok())
            .and_then(|pair| u8::from_str_radix(pair, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Why the app store could not be used.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database could not be reached or refused a query (password-free text).
    #[error("app store {url}: {problem}")]
    Database {
        /// The redacted URL.
        url: String,
        /// What went wrong.
        problem: String,
    },
    /// The schema is newer than this Herald knows.
    #[error(
        "app store {url}: its schema is version {found}, this Herald knows up to {known}; upgrade Herald"
    )]
    NewerSchema {
        /// The redacted URL.
        url: String,
        /// The version in the database.
        found: i64,
        /// The newest this build knows.
        known: i64,
    },
}

/// A query text for sqlx. Every query here is put together from this module's constants only;
/// values always go in as bound arguments.
fn trusted(sql: &str) -> sqlx::AssertSqlSafe<String> {
    sqlx::AssertSqlSafe(sql.to_string())
}

/// The pool of one of the two databases.
#[derive(Debug, Clone)]
enum Pool {
    Postgres(PgPool),
    MySql(MySqlPool),
}

/// Runs `$body` with `$pool` bound to whichever pool the store has (the same code, compiled once
/// per database).
macro_rules! on_pool {
    ($store:expr, |$pool:ident| $body:expr) => {
        match &$store.pool {
            Pool::Postgres($pool) => $body,
            Pool::MySql($pool) => $body,
        }
    };
}

/// The schema, one list of statements per version (PostgreSQL and MySQL understand both).
const MIGRATIONS: &[&[&str]] = &[&["CREATE TABLE IF NOT EXISTS herald_apps (
        id VARCHAR(100) NOT NULL PRIMARY KEY,
        app_key VARCHAR(100) NOT NULL UNIQUE,
        secret VARCHAR(255) NOT NULL,
        previous_secret VARCHAR(255) NULL,
        previous_secret_until BIGINT NULL,
        enabled BOOLEAN NOT NULL DEFAULT TRUE,
        settings TEXT NULL,
        created_at BIGINT NOT NULL DEFAULT 0,
        updated_at BIGINT NOT NULL DEFAULT 0
    )"]];

/// The columns every read selects, in [`StoredRow`]'s order.
const COLUMNS: &str =
    "id, app_key, secret, previous_secret, previous_secret_until, enabled, settings";

/// A connected app store.
#[derive(Debug, Clone)]
pub struct AppStore {
    pool: Pool,
    url: StoreUrl,
}

impl AppStore {
    /// Connects (failing after `timeout`) and creates or migrates the tables.
    pub async fn open(url: &StoreUrl, timeout: Duration) -> Result<Self, StoreError> {
        let failed = |error: sqlx::Error| url.error(&error);
        let pool = match url.dialect {
            Dialect::Postgres => {
                // CREATE TABLE IF NOT EXISTS notices would be logged at every start.
                let options = PgConnectOptions::from_str(url.url.expose())
                    .map_err(failed)?
                    .options([("client_min_messages", "warning")])
                    .disable_statement_logging();
                Pool::Postgres(
                    PgPoolOptions::new()
                        .max_connections(2)
                        .acquire_timeout(timeout)
                        .connect_with(options)
                        .await
                        .map_err(failed)?,
                )
            }
            Dialect::MySql => {
                let options = MySqlConnectOptions::from_str(url.url.expose())
                    .map_err(failed)?
                    .disable_statement_logging();
                Pool::MySql(
                    MySqlPoolOptions::new()
                        .max_connections(2)
                        .acquire_timeout(timeout)
                        .connect_with(options)
                        .await
                        .map_err(failed)?,
                )
            }
        };
        let store = Self {
            pool,
            url: url.clone(),
        };
        store.migrate().await?;
        Ok(store)
    }

    /// The URL, for printing ([`StoreUrl::redacted`]) and scrubbing.
    pub fn url(&self) -> &StoreUrl {
        &self.url
    }

    async fn execute(&self, sql: &str) -> Result<u64, StoreError> {
        on_pool!(self, |pool| sqlx::query(trusted(sql))
            .execute(pool)
            .await
            .map(|done| done.rows_affected())
            .map_err(|e| self.url.error(&e)))
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        self.execute(&format!(
            "CREATE TABLE IF NOT EXISTS {SCHEMA_TABLE} (version BIGINT NOT NULL)"
        ))
        .await?;
        let found: Option<i64> = on_pool!(self, |pool| sqlx::query(trusted(&format!(
            "SELECT MAX(version) AS version FROM {SCHEMA_TABLE}"
        )))
        .fetch_one(pool)
        .await
        .and_then(|row| row.try_get::<Option<i64>, _>("version"))
        .map_err(|e| self.url.error(&e)))?;
        let found = found.unwrap_or(0);
        let known = MIGRATIONS.len() as i64;
        if found > known {
            return Err(StoreError::NewerSchema {
                url: self.url.redacted.clone(),
                found,
                known,
            });
        }
        for (index, statements) in MIGRATIONS.iter().enumerate().skip(found as usize) {
            for statement in *statements {
                self.execute(statement).await?;
            }
            let version = index as i64 + 1;
            self.execute(&format!(
                "INSERT INTO {SCHEMA_TABLE} (version) VALUES ({version})"
            ))
            .await?;
            tracing::info!(message = "App store schema migrated.", store = %self.url.redacted, version);
        }
        Ok(())
    }

    /// Every row, in id order.
    pub async fn rows(&self) -> Result<Vec<StoredRow>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM {TABLE} ORDER BY id");
        on_pool!(self, |pool| {
            let rows = sqlx::query(trusted(&sql))
                .fetch_all(pool)
                .await
                .map_err(|e| self.url.error(&e))?;
            rows.iter()
                .map(|row| {
                    Ok(StoredRow {
                        id: row.try_get("id")?,
                        key: row.try_get("app_key")?,
                        secret: row.try_get("secret")?,
                        previous_secret: row.try_get("previous_secret")?,
                        previous_secret_until: row.try_get("previous_secret_until")?,
                        enabled: row.try_get("enabled")?,
                        settings: row.try_get("settings")?,
                    })
                })
                .collect::<Result<Vec<_>, sqlx::Error>>()
                .map_err(|e| self.url.error(&e))
        })
    }

    /// The row with this id.
    pub async fn row(&self, id: &str) -> Result<Option<StoredRow>, StoreError> {
        Ok(self.rows().await?.into_iter().find(|row| row.id == id))
    }

    /// Inserts a new app; `false` when its id or key is taken.
    pub async fn insert(&self, row: &StoredRow, now: i64) -> Result<bool, StoreError> {
        let sql = self.url.dialect.sql(&format!(
            "INSERT INTO {TABLE} (id, app_key, secret, previous_secret, previous_secret_until, enabled, settings, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        ));
        let inserted = on_pool!(self, |pool| sqlx::query(trusted(&sql))
            .bind(&row.id)
            .bind(&row.key)
            .bind(&row.secret)
            .bind(&row.previous_secret)
            .bind(row.previous_secret_until)
            .bind(row.enabled)
            .bind(&row.settings)
            .bind(now)
            .bind(now)
            .execute(pool)
            .await
            .map(drop));
        match inserted {
            Ok(()) => Ok(true),
            Err(sqlx::Error::Database(error)) if error.is_unique_violation() => Ok(false),
            Err(error) => Err(self.url.error(&error)),
        }
    }

    /// Replaces the row with `row.id`; `false` when there is none (or the new key is taken:
    /// [`AppStore::key_taken`] tells which).
    pub async fn update(&self, row: &StoredRow, now: i64) -> Result<bool, StoreError> {
        let sql = self.url.dialect.sql(&format!(
            "UPDATE {TABLE} SET app_key = $1, secret = $2, previous_secret = $3, previous_secret_until = $4, enabled = $5, settings = $6, updated_at = $7 WHERE id = $8"
        ));
        let updated = on_pool!(self, |pool| sqlx::query(trusted(&sql))
            .bind(&row.key)
            .bind(&row.secret)
            .bind(&row.previous_secret)
            .bind(row.previous_secret_until)
            .bind(row.enabled)
            .bind(&row.settings)
            .bind(now)
            .bind(&row.id)
            .execute(pool)
            .await
            .map(|done| done.rows_affected()));
        match updated {
            // MySQL counts changed rows: an update that changes nothing still found its row.
            Ok(0) => Ok(self.row(&row.id).await?.is_some()),
            Ok(_) => Ok(true),
            Err(sqlx::Error::Database(error)) if error.is_unique_violation() => Ok(false),
            Err(error) => Err(self.url.error(&error)),
        }
    }

    /// Deletes an app; `false` when there was none.
    pub async fn remove(&self, id: &str) -> Result<bool, StoreError> {
        let sql = self
            .url
            .dialect
            .sql(&format!("DELETE FROM {TABLE} WHERE id = $1"));
        let removed = on_pool!(self, |pool| sqlx::query(trusted(&sql))
            .bind(id)
            .execute(pool)
            .await
            .map(|done| done.rows_affected())
            .map_err(|e| self.url.error(&e)))?;
        Ok(removed > 0)
    }

    /// Closes the pool.
    pub async fn close(&self) {
        on_pool!(self, |pool| pool.close().await)
    }
}

impl StoreUrl {
    /// A database error as a [`StoreError`], password-free.
    fn error(&self, error: &sqlx::Error) -> StoreError {
        StoreError::Database {
            url: self.redacted.clone(),
            problem: self.scrub(&error.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_become_question_marks_for_mysql() {
        assert_eq!(
            Dialect::MySql.sql("UPDATE t SET a = $1, b = $12 WHERE c = '$'"),
            "UPDATE t SET a = ?, b = ? WHERE c = '$'"
        );
        assert_eq!(Dialect::Postgres.sql("a = $1"), "a = $1");
    }

    #[test]
    fn urls_are_parsed_and_never_shown_with_their_password() {
        let url = StoreUrl::parse("mariadb://herald:s3cr%40t@db.internal:3306/apps").unwrap();
        assert_eq!(url.dialect, Dialect::MySql);
        assert_eq!(url.redacted(), "mysql://db.internal:3306/apps");
        assert_eq!(
            url.scrub("denied for herald:s3cr@t and s3cr%40t"),
            "denied for herald:**** and ****"
        );
        assert!(!format!("{url:?}").contains("s3cr"));
        let pg = StoreUrl::parse("postgresql://u@localhost/db").unwrap();
        assert_eq!(pg.dialect, Dialect::Postgres);
        for bad in [
            "sqlite://x.db",
            "postgres://u:hunter2@host",
            "nope",
            "mysql://u:hunter2@/db",
        ] {
            let error = StoreUrl::parse(bad).unwrap_err().to_string();
            assert!(!error.contains("hunter2"), "{error}");
        }
    }
}
