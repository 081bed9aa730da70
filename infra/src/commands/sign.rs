//! `herald sign`: prints a curl command for a signed Pusher HTTP API request.

use std::process::ExitCode;
use std::time::SystemTime;

use clap::Args;
use herald_shared::auth::api;
use herald_shared::time::UnixTime;

use crate::cli::AppArgs;
use crate::config::keys;
use crate::config::raw::RawConfig;
use crate::config::resolve::{self, Resolver};
use crate::process::{EXIT_CONFIG, fail};

/// Arguments of `herald sign`.
#[derive(Debug, Args)]
pub struct SignArgs {
    /// The hub's HTTP API base URL (default: from hub.http_listen, else http://127.0.0.1:8081).
    #[arg(long)]
    pub url: Option<String>,
    /// The app to sign for.
    #[command(flatten)]
    pub app: AppArgs,
    /// HTTP method.
    pub method: String,
    /// Path below the app, e.g. `events` or `channels/presence-room/users`; a path starting
    /// with `/` is used as it is.
    pub path: String,
    /// Request body (JSON), for POST.
    pub body: Option<String>,
    /// Extra query parameters as `key=value` (e.g. `info=subscription_count`).
    #[arg(long = "query", short = 'q')]
    pub query: Vec<String>,
}

/// The base URL of the hub this configuration describes.
fn default_url(raw: &RawConfig) -> String {
    let listen = raw
        .settings
        .get(&keys::HUB_HTTP_LISTEN.meta)
        .and_then(|setting| setting.text.parse::<std::net::SocketAddr>().ok());
    match listen {
        Some(addr) if addr.ip().is_unspecified() => format!("http://127.0.0.1:{}", addr.port()),
        Some(addr) => format!("http://{addr}"),
        None => "http://127.0.0.1:8081".to_string(),
    }
}

/// Prints the curl command.
pub fn run(args: SignArgs) -> ExitCode {
    let raw = match super::load_config(args.app.config.as_deref(), &args.app.overrides()) {
        Ok(raw) => raw,
        Err(code) => return code,
    };
    let mut r = Resolver::default();
    let apps = resolve::apps(&raw, &mut r);
    let apps = match super::resolved(r, apps) {
        Ok(apps) => apps,
        Err(code) => return code,
    };
    let Some(app) = apps.apps().next() else {
        return fail(EXIT_CONFIG, "no app configured");
    };
    let base = args.url.clone().unwrap_or_else(|| default_url(&raw));
    let method = args.method.to_ascii_uppercase();
    let path = if args.path.starts_with('/') {
        args.path.clone()
    } else {
        format!("/apps/{}/{}", app.id, args.path)
    };
    let mut extra = Vec::new();
    for pair in &args.query {
        let Some((key, value)) = pair.split_once('=') else {
            return fail(EXIT_CONFIG, format!("--query {pair:?} is not key=value"));
        };
        extra.push((key.to_string(), value.to_string()));
    }
    let body = args.body.unwrap_or_default();
    let now = UnixTime::from_system(SystemTime::now()).as_secs();
    let params = api::sign(
        app.key.as_str(),
        app.secret.expose(),
        &method,
        &path,
        &extra,
        body.as_bytes(),
        now,
    );
    let query = api::query_string(&params);
    let url = format!("{}{}?{}", base.trim_end_matches('/'), path, query);
    let mut command = format!("curl -sS -X {method}");
    if !body.is_empty() {
        command.push_str(" -H 'Content-Type: application/json' --data-raw ");
        command.push_str(&shell_quote(&body));
    }
    command.push(' ');
    command.push_str(&shell_quote(&url));
    #[allow(
        clippy::print_stdout,
        reason = "printing the command is this subcommand's job"
    )]
    {
        println!("{command}");
    }
    ExitCode::SUCCESS
}

/// Quotes a string for a POSIX shell.
fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_quoting_survives_single_quotes() {
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
    }
}
