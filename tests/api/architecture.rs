//! The shape of the code, checked: every edge of the module graph points
//! inward. The graph is read from the sources (`crate::…` paths outside
//! `#[cfg(test)]` code), one node per top-level module of `src/` and one per
//! adapter folder, so a new import that breaks the rules fails here.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

type Graph = BTreeMap<String, BTreeSet<String>>;

const SERVICES: [&str; 4] = ["users", "products", "carts", "gateway"];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The node a file belongs to: `users`, `http`, `adapters::memory`…
fn node_of(root: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(root).ok()?;
    let parts: Vec<String> = rel.iter().map(|p| p.to_string_lossy().trim_end_matches(".rs").to_string()).collect();
    match parts.as_slice() {
        [top, file] if top == "src" && (file == "lib" || file == "main") => None,
        [top, file] if top == "src" => Some(file.clone()),
        [top, module, ..] if top == "src" => Some(module.clone()),
        [top, file] if top == "adapters" => {
            Some(if file == "mod" { "adapters".into() } else { format!("adapters::{file}") })
        }
        [top, module, ..] if top == "adapters" => Some(format!("adapters::{module}")),
        _ => None,
    }
}

/// The `crate::…` paths a file's non-test code names, as nodes.
fn imports(text: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for line in text.lines().take_while(|l| l.trim() != "#[cfg(test)]") {
        let code = line.split("//").next().unwrap_or_default();
        for (i, _) in code.match_indices("crate::") {
            let rest = &code[i + "crate::".len()..];
            let ident =
                |s: &str| s.split(|c: char| !(c.is_alphanumeric() || c == '_')).next().unwrap_or_default().to_string();
            let first = ident(rest);
            if first == "adapters" {
                let second = rest.strip_prefix("adapters::").map(ident).unwrap_or_default();
                found.insert(if second.is_empty() { first } else { format!("adapters::{second}") });
            } else if !first.is_empty() {
                found.insert(first);
            }
        }
    }
    found
}

fn graph() -> Graph {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    rust_files(&root.join("adapters"), &mut files);
    let mut graph = Graph::new();
    for file in files {
        let Some(node) = node_of(root, &file) else { continue };
        let text = std::fs::read_to_string(&file).unwrap();
        let edges = graph.entry(node.clone()).or_default();
        edges.extend(imports(&text).into_iter().filter(|n| *n != node));
    }
    graph
}

/// A cycle of the graph, if it has one.
fn cycle(graph: &Graph) -> Option<Vec<String>> {
    fn visit(node: &str, graph: &Graph, path: &mut Vec<String>, done: &mut BTreeSet<String>) -> Option<Vec<String>> {
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
            if let Some(c) = visit(next, graph, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    graph.keys().find_map(|n| visit(n, graph, &mut Vec::new(), &mut done))
}

fn deps<'a>(graph: &'a Graph, node: &str) -> &'a BTreeSet<String> {
    graph.get(node).unwrap_or_else(|| panic!("no module {node} in {:?}", graph.keys()))
}

#[test]
fn the_module_graph_has_no_cycle() {
    let graph = graph();
    assert!(graph.len() > 10, "the sources were read: {graph:?}");
    if let Some(c) = cycle(&graph) {
        panic!("import cycle: {}", c.join(" -> "));
    }
}

#[test]
fn the_shared_layers_know_no_service() {
    let graph = graph();
    for shared in ["kernel", "contracts", "ports", "http"] {
        for d in deps(&graph, shared) {
            assert!(
                !SERVICES.contains(&d.as_str()) && !d.starts_with("adapters") && d != "runtime" && d != "config",
                "{shared} imports {d}"
            );
        }
    }
    assert!(deps(&graph, "kernel").is_empty(), "the kernel stands alone: {:?}", deps(&graph, "kernel"));
}

#[test]
fn services_import_no_adapter_and_no_other_service() {
    let graph = graph();
    for service in SERVICES {
        for d in deps(&graph, service) {
            assert!(!d.starts_with("adapters") && d != "runtime", "{service} imports {d}");
            assert!(!SERVICES.contains(&d.as_str()), "{service} imports the {d} service: use a contract");
        }
    }
}

#[test]
fn only_the_runtime_chooses_adapters() {
    let graph = graph();
    for (node, edges) in &graph {
        if node != "runtime" && !node.starts_with("adapters") {
            assert!(!edges.iter().any(|d| d.starts_with("adapters")), "{node} imports an adapter");
        }
        if node.starts_with("adapters") {
            assert!(!edges.contains("runtime"), "{node} imports the runtime");
        }
    }
}

#[test]
fn the_reader_finds_imports_and_skips_tests() {
    let text = "use crate::kernel::money::Money;\n// crate::runtime in a comment\nfn f() { crate::adapters::memory::X }\n\
                #[cfg(test)]\nmod tests { use crate::gateway; }";
    let found: Vec<String> = imports(text).into_iter().collect();
    assert_eq!(found, ["adapters::memory", "kernel"]);
    let mut g = Graph::new();
    g.entry("a".into()).or_default().insert("b".into());
    g.entry("b".into()).or_default().insert("a".into());
    assert!(cycle(&g).is_some());
}
