//! The `herald` and `herald-bench` binaries, built once per test process.
//!
//! `CARGO_BIN_EXE_herald` exists only for tests of the package that defines the binary, so this
//! crate runs `cargo build` itself and takes the executable's path from cargo's JSON messages
//! (which follows `CARGO_TARGET_DIR` and the profile wherever they point). It builds with
//! `--workspace` so features unify as they do for `cargo test --workspace`: the binary reuses the
//! dependencies the tests were built with instead of compiling a second set.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The workspace root (the parent of this crate).
pub fn workspace_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate lives inside the workspace")
}

/// The target directory cargo builds into.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
}

/// The binaries the tests run, built together by one `cargo build`.
const BINARIES: [&str; 2] = ["herald", "herald-bench"];

/// The path of a freshly built `herald` (debug profile). Panics with cargo's output if the build
/// fails: no test can run without the binary.
pub fn herald_binary() -> &'static Path {
    binary("herald")
}

/// The path of a freshly built `herald-bench` (the benchmark client and the floor server), in
/// the same directory as [`herald_binary`].
pub fn bench_binary() -> &'static Path {
    binary("herald-bench")
}

fn binary(name: &str) -> &'static Path {
    static BINARIES_BUILT: OnceLock<BTreeMap<String, PathBuf>> = OnceLock::new();
    BINARIES_BUILT
        .get_or_init(build)
        .get(name)
        .unwrap_or_else(|| panic!("cargo reported no {name} executable"))
        .as_path()
}

/// Variables cargo sets for the test process that describe the tests crate. Passed on to the
/// inner `cargo build`, they reach build scripts that watch them (ring's watches
/// `CARGO_MANIFEST_DIR`) and make every run rebuild half the dependency graph.
const TEST_PROCESS_VARIABLES: [&str; 9] = [
    "CARGO_MANIFEST_DIR",
    "CARGO_MANIFEST_PATH",
    "CARGO_CRATE_NAME",
    "CARGO_BIN_NAME",
    "CARGO_PRIMARY_PACKAGE",
    "CARGO_TARGET_TMPDIR",
    "CARGO_RUSTC_CURRENT_DIR",
    "CARGO_MANIFEST_LINKS",
    "OUT_DIR",
];

fn build() -> BTreeMap<String, PathBuf> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .args(["build", "--quiet", "--workspace", "--message-format=json"])
        .args(BINARIES.iter().flat_map(|name| ["--bin", name]))
        .current_dir(workspace_root());
    for (name, _) in std::env::vars_os() {
        let text = name.to_string_lossy();
        if text.starts_with("CARGO_PKG_") || TEST_PROCESS_VARIABLES.contains(&text.as_ref()) {
            command.env_remove(&name);
        }
    }
    let output = command.output().expect("cargo can be run to build herald");
    assert!(
        output.status.success(),
        "cargo build --workspace --bin herald --bin herald-bench failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|message| message["reason"] == "compiler-artifact")
        .filter_map(|message| {
            let name = message["target"]["name"].as_str()?;
            let executable = message["executable"].as_str()?;
            BINARIES
                .contains(&name)
                .then(|| (name.to_string(), PathBuf::from(executable)))
        })
        .collect()
}

/// The variable `.ci/run` sets after it built the release artifacts (the portable binary, the
/// container image): with it set to `1`, a test that finds no artifact fails instead of
/// skipping, so a broken build cannot pass as a skip. Not `HERALD_…`: `herald` refuses unknown
/// `HERALD_` variables.
pub const REQUIRE_ARTIFACTS: &str = "CI_REQUIRE_ARTIFACTS";

/// For a test whose artifact is missing: says it skipped (`why`), or panics when
/// [`REQUIRE_ARTIFACTS`] is `1`.
pub fn skip_without_artifact(why: &str) {
    if std::env::var(REQUIRE_ARTIFACTS).is_ok_and(|value| value == "1") {
        panic!("{REQUIRE_ARTIFACTS}=1 but {why}");
    }
    eprintln!("skipped: {why}");
}
