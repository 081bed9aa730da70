//! The architecture's checkable invariants (ARCHITECTURE.md), read from `cargo tree` and from the
//! sources: `herald-shared` has no runtime dependency, edge and hub never depend on each other,
//! the server binary carries no benchmark, and the edge's top-level modules form layers (no
//! import cycle).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
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

/// The top-level modules of a crate's `src/` and, for each, the other top-level modules its files
/// name through `crate::` paths (`use crate::a::…`, `crate::{a, b}`, `crate::a::f()` inline).
fn module_imports(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    fn rust_files(path: &Path, files: &mut Vec<std::path::PathBuf>) {
        if path.is_dir() {
            for entry in std::fs::read_dir(path).expect("the source directory is readable") {
                rust_files(&entry.expect("a directory entry").path(), files);
            }
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            files.push(path.to_path_buf());
        }
    }
    fn ident(text: &str) -> String {
        text.chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect()
    }
    let mut graph = BTreeMap::new();
    for entry in std::fs::read_dir(src).expect("the crate has a src directory") {
        let path = entry.expect("a directory entry").path();
        let name = ident(&path.file_stem().unwrap().to_string_lossy());
        if name == "lib" || name == "main" {
            continue;
        }
        let mut files = Vec::new();
        rust_files(&path, &mut files);
        let imports: &mut BTreeSet<String> = graph.entry(name.clone()).or_default();
        for file in files {
            let text = std::fs::read_to_string(&file).expect("a source file is readable");
            for (at, _) in text.match_indices("crate::") {
                let rest = &text[at + "crate::".len()..];
                let named: Vec<String> = match rest.strip_prefix('{') {
                    Some(group) => group[..group.find('}').unwrap_or(group.len())]
                        .split(',')
                        .map(|item| ident(item.trim()))
                        .collect(),
                    None => vec![ident(rest)],
                };
                imports.extend(named.into_iter().filter(|m| !m.is_empty() && *m != name));
            }
        }
    }
    graph
}

/// A cycle in `graph`, if there is one (as the list of modules around it).
fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|n| n == node) {
            let mut cycle = path[at..].to_vec();
            cycle.push(node.to_string());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|node| visit(node, graph, &mut Vec::new(), &mut done))
}

#[test]
fn the_cycle_check_sees_a_cycle() {
    let graph: BTreeMap<String, BTreeSet<String>> = [
        ("a", &["b"][..]),
        ("b", &["c"][..]),
        ("c", &["a"][..]),
        ("d", &[][..]),
    ]
    .into_iter()
    .map(|(n, e)| (n.to_string(), e.iter().map(|m| m.to_string()).collect()))
    .collect();
    assert_eq!(
        find_cycle(&graph),
        Some(vec!["a".into(), "b".into(), "c".into(), "a".into()])
    );
}

#[test]
fn the_edges_modules_form_layers() {
    let graph = module_imports(&workspace_root().join("edge/src"));
    // The scan read the crate: the server wires the index, the link and the sockets together.
    for module in ["index", "link", "socket"] {
        assert!(
            graph["server"].contains(module),
            "the scan missed server → {module}: {graph:?}"
        );
    }
    assert_eq!(find_cycle(&graph), None, "edge/src modules: {graph:?}");
    // The layering edge/src/lib.rs documents: the index is below the link and the sockets,
    // which never name each other.
    for (lower, upper) in [
        ("index", "link"),
        ("index", "socket"),
        ("link", "socket"),
        ("socket", "link"),
    ] {
        assert!(
            !graph[lower].contains(upper),
            "edge/src/{lower} imports {upper}: {graph:?}"
        );
    }
}

#[test]
fn the_hubs_modules_form_layers() {
    let graph = module_imports(&workspace_root().join("hub/src"));
    // The scan read the crate: the server wires the registry, the region and the link together.
    for module in ["registry", "region", "cluster", "link", "api"] {
        assert!(
            graph["server"].contains(module),
            "the scan missed server → {module}: {graph:?}"
        );
    }
    // The layers ARCHITECTURE.md draws have no cycle. (Counters are shared by everyone: `stats`
    // may name the webhooks' counters, so it is left out of the layering.)
    let layered: BTreeMap<String, BTreeSet<String>> = graph
        .iter()
        .filter(|(module, _)| *module != "stats")
        .map(|(module, imports)| {
            let imports = imports.iter().filter(|m| *m != "stats").cloned().collect();
            (module.clone(), imports)
        })
        .collect();
    assert_eq!(find_cycle(&layered), None, "hub/src modules: {graph:?}");
    for (lower, upper) in [
        ("registry", "watchlist"),
        ("registry", "link"),
        ("registry", "api"),
        ("region", "registry"),
        ("region", "cluster"),
        ("edge", "link"),
    ] {
        assert!(
            !graph[lower].contains(upper),
            "hub/src/{lower} imports {upper}: {graph:?}"
        );
    }
    // cluster/ is the Redis implementation of the region seam: it reports what it hears and
    // never calls up into the registry, the watchlist, the link or the API.
    assert!(graph["cluster"].contains("region"), "{graph:?}");
    for upper in ["registry", "watchlist", "link", "api"] {
        assert!(
            !graph["cluster"].contains(upper),
            "hub/src/cluster imports {upper}: {graph:?}"
        );
    }
}

#[test]
fn the_server_binary_carries_no_benchmark() {
    let herald = dependencies("herald");
    assert!(
        herald.iter().any(|d| d == "herald-wire"),
        "the tree was read: {herald:?}"
    );
    for forbidden in ["herald-bench", "hdrhistogram", "reqwest"] {
        assert!(
            !herald.iter().any(|d| d == forbidden),
            "herald depends on {forbidden}"
        );
    }
    let bench = dependencies("herald-bench");
    assert!(
        bench.iter().any(|d| d == "herald-wire"),
        "the tree was read: {bench:?}"
    );
    for forbidden in ["herald-edge", "herald-hub"] {
        assert!(
            !bench.iter().any(|d| d == forbidden),
            "the benchmark depends on {forbidden}: it must measure through the public protocol only"
        );
    }
}
