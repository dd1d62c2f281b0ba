//! The module picture of `src/`: every module imports only from its own layer or below
//! (docs/services.md, "Layers"). Read from the source, outside of tests and comments.

use std::path::Path;

use crate::support::repo;

/// The layer of each top-level module of the library.
const LAYERS: &[(&str, u8)] = &[
    ("names", 1),
    ("ledger", 1),
    ("kept", 1),
    ("cache", 1),
    ("prefault", 1),
    ("diagnostic", 1),
    ("events", 1),
    ("outcome", 1),
    ("process", 1),
    ("redact", 1),
    ("signals", 1),
    ("exit", 1),
    ("config", 2),
    ("airflow", 2),
    ("snapshot", 2),
    ("services", 3),
    ("dag", 3),
    ("backend", 4),
    ("runner", 5),
    ("report", 6),
    ("doctor", 6),
    ("bench", 6),
    ("cli", 7),
];

fn layer(module: &str) -> Option<u8> {
    LAYERS.iter().find(|(m, _)| *m == module).map(|(_, l)| *l)
}

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src").flatten() {
        let p = entry.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

/// Every `crate::module` a file's code (not its tests or comments) names.
fn imports(text: &str) -> Vec<String> {
    let code = text.split("#[cfg(test)]").next().unwrap_or("");
    let mut out = Vec::new();
    for line in code.lines() {
        let line = line.trim_start();
        if line.starts_with("//") {
            continue;
        }
        for part in line.split("crate::").skip(1) {
            let name: String = part
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            out.push(name);
        }
    }
    out
}

#[test]
fn no_module_imports_from_a_layer_above_its_own() {
    let src = repo().join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut upward = Vec::new();
    for file in &files {
        let rel = file.strip_prefix(&src).expect("under src");
        let top = rel
            .components()
            .next()
            .and_then(|c| c.as_os_str().to_str())
            .unwrap_or("")
            .trim_end_matches(".rs");
        if matches!(top, "lib" | "main") {
            continue;
        }
        let own = layer(top).unwrap_or_else(|| panic!("src/{top} has no layer in LAYERS"));
        let text = std::fs::read_to_string(file).expect("read");
        for target in imports(&text) {
            if let Some(l) = layer(&target)
                && l > own
            {
                upward.push(format!("{} -> crate::{target}", rel.display()));
            }
        }
    }
    upward.sort();
    upward.dedup();
    assert!(
        upward.is_empty(),
        "imports from a higher layer:\n{}",
        upward.join("\n")
    );
}

#[test]
fn the_layer_check_sees_an_upward_import() {
    assert_eq!(
        imports(
            "use crate::runner::plan;\n// crate::cli in a comment\nfn f() { crate::report::count(1, \"x\"); }\n#[cfg(test)]\nuse crate::cli;"
        ),
        vec!["runner".to_string(), "report".to_string()]
    );
}
