//! The crate's layering, kept by a test (docs/ARCHITECTURE.md draws it).
//!
//! Every module of `src/` belongs to one layer; a module may name (through
//! `crate::` or `super::` paths) only modules of its own layer or of layers
//! below, the module graph has no cycle, and the layers below the adapters
//! never name Pingora. Test modules (`#[cfg(test)] mod tests`) are left out:
//! they may build what they need.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Layers from the bottom up, with the modules (path prefixes) in each.
const LAYERS: &[(&str, &[&str])] = &[
    ("base", &["base"]),
    (
        "domain",
        &[
            "addr",
            "answer",
            "auth",
            "call",
            "error",
            "federation",
            "health",
            "hygiene",
            "jsonrpc",
            "mcp",
            "policy",
            "ratelimit",
            "routing",
            "session",
            "tools",
            "tunnel::protocol",
            "tunnel::registry",
            "tunnel::relay",
            "upstream",
            "uri",
        ],
    ),
    ("telemetry", &["telemetry"]),
    ("config", &["config", "runtime", "tls_material"]),
    (
        "adapters",
        &[
            "admin",
            "edge",
            "proxy",
            "checker",
            "jwks",
            "tunnel::bridge",
            "tunnel::client",
            "tunnel::clientconf",
            "tunnel::local",
            "tunnel::processes",
            "tunnel::endpoint",
        ],
    ),
    ("app", &["cli", "logsetup", "reload", "server", "upgrade"]),
];

/// Layers whose code must not name Pingora.
const PINGORA_FREE: &[&str] = &["base", "domain", "telemetry"];

/// What of Pingora they may name: pingora-load-balancing's selection
/// algorithms are pure functions over a member list (no I/O, no server
/// types), and the design card asks for them.
const PINGORA_ALLOWED: &[&str] = &["pingora_load_balancing::selection"];

/// Modules that only declare submodules (no layer of their own).
const CONTAINERS: &[&str] = &["", "tunnel"];

struct Module {
    path: String,
    text: String,
}

fn module_path(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap_or(file);
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let last = parts.pop().unwrap_or_default();
    let stem = last.trim_end_matches(".rs");
    if stem != "mod" && stem != "lib" && stem != "main" {
        parts.push(stem.to_string());
    }
    parts.join("::")
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .expect("src/ is readable")
        .flatten()
        .map(|e| e.path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            collect(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

/// The shipped part of a file: everything before its unit-test module.
fn shipped(text: &str) -> &str {
    let cut = ["#[cfg(test)]\nmod tests", "#[cfg(test)]\nmod test"]
        .iter()
        .filter_map(|m| text.find(m))
        .min();
    &text[..cut.unwrap_or(text.len())]
}

/// Code without comments (line comments and doc comments).
fn code(text: &str) -> String {
    text.lines()
        .map(|l| match l.find("//") {
            Some(i) if !l[..i].contains('"') => &l[..i],
            _ => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn layer_of(module: &str) -> Option<usize> {
    LAYERS
        .iter()
        .enumerate()
        .filter_map(|(i, (_, prefixes))| {
            prefixes
                .iter()
                .filter(|p| module == **p || module.starts_with(&format!("{p}::")))
                .map(|p| (p.len(), i))
                .max()
        })
        .max()
        .map(|(_, i)| i)
}

/// Every module path `code` names through `crate::` (and `super::`,
/// resolved from `from`), cut to the longest known module.
fn references(code: &str, from: &str, known: &BTreeSet<String>) -> Vec<String> {
    let mut out = Vec::new();
    let bytes = code.as_bytes();
    let ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    for anchor in ["crate::", "super::"] {
        let mut at = 0;
        while let Some(i) = code[at..].find(anchor) {
            let start = at + i;
            at = start + anchor.len();
            if start > 0 && (ident(bytes[start - 1]) || bytes[start - 1] == b':') {
                continue;
            }
            // the path: identifiers joined by ::
            let mut end = at;
            while end < bytes.len() && (ident(bytes[end]) || code[end..].starts_with("::")) {
                end += if bytes[end] == b':' { 2 } else { 1 };
            }
            let tail = code[at..end].trim_end_matches("::");
            let mut segments: Vec<String> = Vec::new();
            let mut rest = tail;
            if anchor == "super::" {
                segments = from
                    .split("::")
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect();
                segments.pop();
                while let Some(r) = rest.strip_prefix("super::") {
                    segments.pop();
                    rest = r;
                }
            }
            segments.extend(
                rest.split("::")
                    .filter(|s| !s.is_empty())
                    .map(str::to_string),
            );
            // longest known module prefix
            let found = (1..=segments.len())
                .rev()
                .map(|n| segments[..n].join("::"))
                .find(|p| known.contains(p));
            if let Some(m) = found {
                if m != from {
                    out.push(m);
                }
            }
        }
    }
    out
}

fn modules() -> Vec<Module> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    collect(&src, &mut files);
    files
        .into_iter()
        // main.rs is the binary; `tests.rs` files are unit-test modules
        .filter(|f| !f.ends_with("main.rs") && !f.ends_with("tests.rs"))
        .map(|f| Module {
            path: module_path(&src, &f),
            text: std::fs::read_to_string(&f).expect("source is readable"),
        })
        .collect()
}

fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let mods = modules();
    let known: BTreeSet<String> = mods.iter().map(|m| m.path.clone()).collect();
    mods.iter()
        .map(|m| {
            let code = code(shipped(&m.text));
            let refs = references(&code, &m.path, &known)
                .into_iter()
                // a parent naming its children declares them
                .filter(|r| !(m.path.is_empty() || r.starts_with(&format!("{}::", m.path))))
                .collect();
            (m.path.clone(), refs)
        })
        .collect()
}

#[test]
fn every_module_has_a_layer() {
    let missing: Vec<String> = modules()
        .into_iter()
        .map(|m| m.path)
        .filter(|p| !CONTAINERS.contains(&p.as_str()) && layer_of(p).is_none())
        .collect();
    assert!(
        missing.is_empty(),
        "modules with no layer in tests/layers.rs: {missing:?}"
    );
}

#[test]
fn dependencies_point_down() {
    let mut upward = Vec::new();
    for (from, refs) in graph() {
        let Some(lf) = layer_of(&from) else { continue };
        for to in refs {
            let Some(lt) = layer_of(&to) else { continue };
            if lt > lf {
                upward.push(format!(
                    "{from} ({}) -> {to} ({})",
                    LAYERS[lf].0, LAYERS[lt].0
                ));
            }
        }
    }
    assert!(
        upward.is_empty(),
        "imports that point up a layer:\n  {}",
        upward.join("\n  ")
    );
}

#[test]
fn no_import_cycle() {
    let g = graph();
    // Tarjan-free: repeated DFS with colours, report one cycle per start.
    fn visit(
        n: &str,
        g: &BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<String, u8>,
        stack: &mut Vec<String>,
        cycles: &mut Vec<String>,
    ) {
        state.insert(n.to_string(), 1);
        stack.push(n.to_string());
        for m in g.get(n).into_iter().flatten() {
            match state.get(m.as_str()).copied().unwrap_or(0) {
                0 => visit(m, g, state, stack, cycles),
                1 => {
                    let at = stack.iter().position(|s| s == m).unwrap_or(0);
                    let mut c = stack[at..].to_vec();
                    c.push(m.clone());
                    cycles.push(c.join(" -> "));
                }
                _ => {}
            }
        }
        stack.pop();
        state.insert(n.to_string(), 2);
    }
    let mut state = BTreeMap::new();
    let mut cycles = Vec::new();
    for n in g.keys() {
        if state.get(n.as_str()).copied().unwrap_or(0) == 0 {
            visit(n, &g, &mut state, &mut Vec::new(), &mut cycles);
        }
    }
    assert!(
        cycles.is_empty(),
        "import cycles:\n  {}",
        cycles.join("\n  ")
    );
}

#[test]
fn the_lower_layers_never_name_pingora() {
    let mut named = Vec::new();
    for m in modules() {
        let Some(l) = layer_of(&m.path) else { continue };
        if !PINGORA_FREE.contains(&LAYERS[l].0) {
            continue;
        }
        let mut text = code(shipped(&m.text));
        for allowed in PINGORA_ALLOWED {
            text = text.replace(allowed, "");
        }
        if text.contains("pingora") {
            named.push(m.path);
        }
    }
    assert!(
        named.is_empty(),
        "modules below the adapters that name Pingora: {named:?}"
    );
}

#[test]
fn the_checker_reads_super_paths() {
    let known: BTreeSet<String> = ["a", "a::b", "a::c", "d"].map(String::from).into();
    let refs = references(
        "use super::c::X; crate::d::f(); super::super::d::g",
        "a::b",
        &known,
    );
    assert_eq!(refs, vec!["d", "a::c", "d"]);
}
