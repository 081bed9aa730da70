//! The release `herald` from `scripts/build-portable.sh` runs on glibc 2.28 and newer (Amazon
//! Linux 2023 has 2.34): the newest glibc symbol version its ELF header asks for is at most
//! 2.28, it asks for the standard x86_64 loader and only glibc's own libraries, and
//! `herald --version` names the version and the commit.
//!
//! CI builds the binary first and points `TEST_PORTABLE_BINARY` at it; without the variable
//! the test reads `target/portable/herald-x86_64-linux` when it exists and otherwise says it
//! skipped (a plain `cargo test` does not build release binaries) — or fails, when
//! `CI_REQUIRE_ARTIFACTS=1` (set by `.ci/run`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use herald_tests::binary::{skip_without_artifact, workspace_root};
use herald_tests::dev::herald;

/// The newest glibc the portable binary may need.
const GLIBC_FLOOR: (u32, u32) = (2, 28);

/// Libraries glibc 2.28 itself provides: all the portable binary may link.
const GLIBC_LIBRARIES: [&str; 7] = [
    "libc.so.6",
    "libm.so.6",
    "libpthread.so.0",
    "libdl.so.2",
    "librt.so.1",
    "libgcc_s.so.1",
    "ld-linux-x86-64.so.2",
];

fn readelf(args: &[&str], binary: &Path) -> String {
    let output = Command::new("readelf")
        .args(args)
        .arg(binary)
        .output()
        .expect("readelf (binutils) is installed");
    assert!(output.status.success(), "readelf {args:?}: {output:?}");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Every `GLIBC_x.y[.z]` version `binary` needs (its .gnu.version_r section), as numbers.
fn glibc_versions(binary: &Path) -> Vec<Vec<u32>> {
    let text = readelf(&["--version-info", "--wide"], binary);
    let mut versions: Vec<Vec<u32>> = text
        .split_whitespace()
        .filter_map(|word| word.strip_prefix("GLIBC_"))
        .filter_map(|version| {
            version
                .split('.')
                .map(|part| part.parse::<u32>().ok())
                .collect::<Option<Vec<u32>>>()
        })
        .collect();
    versions.sort();
    versions.dedup();
    versions
}

/// The libraries `binary`'s dynamic section names.
fn needed(binary: &Path) -> Vec<String> {
    readelf(&["--dynamic", "--wide"], binary)
        .lines()
        .filter(|line| line.contains("(NEEDED)"))
        .filter_map(|line| line.split('[').nth(1)?.split(']').next().map(String::from))
        .collect()
}

/// The commit in `herald --version`'s output ("herald 0.1.0 (commit <40 hex>)"), checked.
fn commit_of(version: &str) -> &str {
    let expected = format!("herald {} (commit ", env!("CARGO_PKG_VERSION"));
    let commit = version
        .trim()
        .strip_prefix(&expected)
        .and_then(|rest| rest.strip_suffix(')'))
        .unwrap_or_else(|| panic!("not `{expected}<commit>)`: {version}"));
    assert!(
        commit.len() == 40 && commit.chars().all(|c| c.is_ascii_hexdigit()),
        "not a commit: {version}"
    );
    commit
}

fn git_head() -> String {
    let output = Command::new("git")
        .args(["rev-parse", "HEAD"])
        .current_dir(workspace_root())
        .output()
        .expect("git is installed");
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

fn portable_binary() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("TEST_PORTABLE_BINARY") {
        return Some(PathBuf::from(path));
    }
    let default = workspace_root().join("target/portable/herald-x86_64-linux");
    default.exists().then_some(default)
}

#[test]
fn the_glibc_versions_a_binary_needs_are_read_from_its_elf_header() {
    // This test binary was linked against this machine's glibc: it needs GLIBC_2.2.5 (every
    // x86_64 glibc program does), which shows the reading works.
    let this = std::env::current_exe().expect("the test binary's path");
    let versions = glibc_versions(&this);
    assert!(versions.contains(&vec![2, 2, 5]), "{versions:?}");
    assert!(needed(&this).iter().any(|library| library == "libc.so.6"));
}

#[test]
fn the_portable_binary_needs_glibc_2_28_at_most() {
    let Some(binary) = portable_binary() else {
        skip_without_artifact(
            "there is no portable binary (run scripts/build-portable.sh or set TEST_PORTABLE_BINARY)",
        );
        return;
    };
    assert!(binary.exists(), "{} does not exist", binary.display());
    let versions = glibc_versions(&binary);
    let newest = versions.last().expect("herald needs some glibc symbols");
    eprintln!(
        "{}: newest glibc symbol version GLIBC_{}",
        binary.display(),
        newest
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(".")
    );
    assert!(
        (newest[0], newest.get(1).copied().unwrap_or(0)) <= GLIBC_FLOOR,
        "{} needs GLIBC_{newest:?}, newer than 2.28: {versions:?}",
        binary.display()
    );

    let program_headers = readelf(&["--program-headers", "--wide"], &binary);
    assert!(
        program_headers.contains("[Requesting program interpreter: /lib64/ld-linux-x86-64.so.2]"),
        "{program_headers}"
    );
    for library in needed(&binary) {
        assert!(
            GLIBC_LIBRARIES.contains(&library.as_str()),
            "{} links {library}, which glibc does not provide",
            binary.display()
        );
    }

    let output = Command::new(&binary)
        .arg("--version")
        .output()
        .expect("the portable binary runs here");
    assert!(output.status.success(), "{output:?}");
    commit_of(&String::from_utf8_lossy(&output.stdout));
}

#[tokio::test]
async fn herald_version_names_the_version_and_the_commit() {
    let output = herald(&["--version"], Duration::from_secs(30)).await;
    assert!(output.status.success(), "{output:?}");
    let version = String::from_utf8_lossy(&output.stdout);
    // Built from this checkout: its HEAD, unless HERALD_COMMIT said otherwise at build time.
    let commit = commit_of(&version);
    if std::env::var_os("HERALD_COMMIT").is_none() {
        assert_eq!(commit, git_head(), "{version}");
    }
}
