//! The key table for people: `herald config env` (tab-separated) and docs/configuration.md
//! (Markdown, checked against this by a test so it cannot drift).

use super::key::Meta;
use super::keys::{KEYS, PROCESS_VARIABLES, REVERB_SERVER_HOST, REVERB_SERVER_PORT};

/// The other names of a key, each shown by `show`, joined by commas; `none` when there are none.
fn aliases(key: &Meta, show: fn(&str) -> String, none: &str) -> String {
    let mut aliases: Vec<String> = key.aliases.iter().map(|alias| show(alias)).collect();
    if key.path == super::keys::EDGE_LISTEN.meta.path {
        aliases.push(show(&format!(
            "{REVERB_SERVER_HOST} + {REVERB_SERVER_PORT}"
        )));
    }
    if aliases.is_empty() {
        none.to_string()
    } else {
        aliases.join(", ")
    }
}

/// The table `herald config env` prints.
pub fn env_table() -> String {
    let mut out = String::from("key\tenvironment\talso read from\tdefault\tmeaning\n");
    for key in KEYS {
        out.push_str(&format!(
            "{}\t{}\t{}\t{}\t{}\n",
            key.path,
            key.env_name(),
            aliases(key, str::to_string, "-"),
            key.fallback.doc().replace('`', ""),
            key.help_text()
        ));
    }
    for (name, help) in PROCESS_VARIABLES {
        out.push_str(&format!("-\t{name}\t-\t-\t{help}\n"));
    }
    out
}

/// docs/configuration.md.
pub fn markdown() -> String {
    let mut out = String::from(
        "# Configuration reference\n\n\
         <!-- Generated from infra/src/config/keys.rs by `herald config markdown`; a test checks \
         it is current. Do not edit by hand. -->\n\n\
         Herald reads a TOML file (`--config herald.toml`), then the environment, then flags; a \
         later source overrides an earlier one. Every key `section.name` is also the \
         environment variable `HERALD_SECTION__NAME`; the Laravel Reverb names in the \"also \
         read from\" column work too (the `HERALD_` name wins when both are set). An `[[apps]]` \
         entry takes the `app.*` keys without the `app.` prefix.\n\n\
         A value that does not parse, a key that does not exist (in the file or as a `HERALD_` \
         variable) and a missing required key stop the process at start with exit code 64 and \
         one line per problem naming the key and where the value came from.\n",
    );
    let mut section = "";
    for key in KEYS {
        if key.section() != section {
            section = key.section();
            out.push_str(&format!(
                "\n## `[{section}]`\n\n| key | environment | also read from | default | meaning |\n|---|---|---|---|---|\n"
            ));
        }
        out.push_str(&format!(
            "| `{}` | `{}` | {} | {} | {} |\n",
            key.path,
            key.env_name(),
            aliases(key, |alias| format!("`{alias}`"), ""),
            key.fallback.doc().replace('|', "\\|"),
            key.help_text().replace('|', "\\|")
        ));
    }
    out.push_str(
        "\n## Process variables\n\nNot configuration keys; the process reads them itself.\n\n\
         | variable | meaning |\n|---|---|\n",
    );
    for (name, help) in PROCESS_VARIABLES {
        out.push_str(&format!("| `{name}` | {help} |\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docs_configuration_md_is_generated_from_the_key_table() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/configuration.md");
        let written = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            written == markdown(),
            "docs/configuration.md is not what the key table says; regenerate it with\n  \
             cargo run --bin herald -- config markdown > docs/configuration.md"
        );
    }

    #[test]
    fn the_env_table_lists_every_key_with_its_default() {
        let table = env_table();
        assert!(table.contains(
            "hub.http_listen\tHERALD_HUB__HTTP_LISTEN\t-\t0.0.0.0:8081\tHTTP API address\n"
        ));
        assert!(table.contains(
            "edge.listen\tHERALD_EDGE__LISTEN\tREVERB_SERVER_HOST + REVERB_SERVER_PORT\t"
        ));
        assert!(table.contains("app.id\tHERALD_APP__ID\tREVERB_APP_ID\trequired\t"));
        assert_eq!(
            table.lines().count(),
            1 + KEYS.len() + PROCESS_VARIABLES.len()
        );
    }
}
