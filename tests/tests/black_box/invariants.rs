//! The architecture's checkable invariants (ARCHITECTURE.md), read from `cargo tree`:
//! `herald-shared` has no runtime dependency, and edge and hub never depend on each other.

use std::process::Command;

use herald_tests::binary::workspace_root;

/// The normal (non-dev) dependency tree of a package, one crate name per line.
fn dependencies(package: &str) -> Vec<String> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(cargo)
        .args([
            "tree", "--quiet", "--edges", "normal", "--prefix", "none", "--format", "{p}", "-p",
            package,
        ])
        .current_dir(workspace_root())
        .output()
        .expect("cargo tree runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.split_whitespace().next().map(str::to_string))
        .collect()
}

#[test]
fn shared_has_no_runtime_dependency() {
    let deps = dependencies("herald-shared");
    assert!(
        deps.iter().any(|d| d == "serde"),
        "the tree was read: {deps:?}"
    );
    for forbidden in [
        "tokio",
        "axum",
        "quinn",
        "redis",
        "tokio-tungstenite",
        "hyper",
    ] {
        assert!(
            !deps.iter().any(|d| d == forbidden),
            "herald-shared depends on {forbidden}"
        );
    }
}

#[test]
fn edge_and_hub_never_depend_on_each_other() {
    let edge = dependencies("herald-edge");
    assert!(
        edge.iter().any(|d| d == "herald-shared"),
        "the tree was read: {edge:?}"
    );
    assert!(!edge.iter().any(|d| d == "herald-hub"));
    assert!(
        !dependencies("herald-hub")
            .iter()
            .any(|d| d == "herald-edge")
    );
}
