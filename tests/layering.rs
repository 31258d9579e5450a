//! Dependencies point one way: `main → server → {http, fs, stats}`, `stats → http`,
//! `http → fs`, `fs → sys` (ARCHITECTURE.md, "Dependencies point one way"). The compiler
//! allows any module to name any other, so this test keeps the rule: it reads the sources of
//! the lower layers and fails on any path in code that reaches up.
//!
//! What counts is a path in code, in a `use` or in an expression, starting with `crate`,
//! `self` or `super` and resolved against the module the line is in (the file's module and
//! any inline `mod name { … }` around the line). Comments (including doc comments and their
//! intra-doc links) and string or character literals are not code and are skipped, so prose
//! may name the upper layers. Use groups count item by item: `use crate::{fs, stats::Stats}`
//! names `stats`.

use std::path::{Path, PathBuf};

/// Which top-level modules each lower layer must never name.
const RULES: &[(&str, &[&str])] = &[
    ("src/http", &["server", "stats"]),
    ("src/fs", &["server", "stats", "http"]),
    ("src/stats.rs", &["server"]),
    ("src/sys", &["server", "stats", "http", "fs", "config"]),
];

#[test]
fn lower_layers_never_name_upper_ones() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut checked = 0;
    let mut violations = Vec::new();
    for &(place, forbidden) in RULES {
        let files = rust_files(&root.join(place));
        assert!(
            !files.is_empty(),
            "{place}: no Rust sources found; update RULES in tests/layering.rs if the layer moved"
        );
        for file in files {
            let text = std::fs::read_to_string(&file)
                .unwrap_or_else(|e| panic!("cannot read {}: {e}", file.display()));
            let relative = file.strip_prefix(root).unwrap_or(&file);
            let module = module_of(relative);
            for v in check_source(&module, &text, forbidden) {
                violations.push(format!(
                    "{}:{}: `{}` names crate::{} — {} must not depend on {} \
                     (dependencies point one way; see ARCHITECTURE.md)",
                    relative.display(),
                    v.line,
                    v.path,
                    v.top,
                    module.first().map_or("this module", String::as_str),
                    v.top,
                ));
            }
            checked += 1;
        }
    }
    assert!(checked >= 4, "only {checked} files checked");
    assert!(
        violations.is_empty(),
        "{} upward dependencies:\n{}",
        violations.len(),
        violations.join("\n")
    );
}

/// A path in code that resolves into a forbidden top-level module.
#[derive(Debug, PartialEq, Eq)]
struct Violation {
    /// 1-based line of the path's last segment (in a use group: of that item).
    line: usize,
    /// The path as written (whitespace removed, use groups expanded).
    path: String,
    /// The forbidden top-level module it reaches.
    top: String,
}

/// Every `.rs` file under `place` (or `place` itself when it is a file), sorted.
fn rust_files(place: &Path) -> Vec<PathBuf> {
    if place.is_file() {
        return vec![place.to_path_buf()];
    }
    let mut files = Vec::new();
    let mut dirs = vec![place.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// The module path of a source file: `src/http/conn.rs` → `[http, conn]`,
/// `src/http/mod.rs` → `[http]`, `src/stats.rs` → `[stats]`.
fn module_of(relative: &Path) -> Vec<String> {
    let mut parts: Vec<String> = relative
        .iter()
        .skip(1) // "src"
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    if let Some(last) = parts.pop() {
        let stem = last.trim_end_matches(".rs");
        if stem != "mod" && stem != "lib" && stem != "main" {
            parts.push(stem.to_string());
        }
    }
    parts
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Tok {
    Ident(String),
    /// `::`
    Sep,
    Punct(char),
}

/// Tokens of the code in `text`, each with its 1-based line; comments and the contents of
/// string and character literals are dropped.
fn tokens(text: &str) -> Vec<(Tok, usize)> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let (mut i, mut line) = (0, 1);
    let at = |i: usize| chars.get(i).copied().unwrap_or('\0');
    while i < chars.len() {
        let c = chars[i];
        if c == '\n' {
            line += 1;
            i += 1;
        } else if c == '/' && at(i + 1) == '/' {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && at(i + 1) == '*' {
            // Block comments nest in Rust.
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && at(i + 1) == '*' {
                    depth += 1;
                    i += 2;
                } else if chars[i] == '*' && at(i + 1) == '/' {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    line += usize::from(chars[i] == '\n');
                    i += 1;
                }
            }
        } else if c == '"' {
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                if chars[i] == '\\' {
                    i += 1; // the escaped character, which may be a line end
                }
                line += usize::from(at(i) == '\n');
                i += 1;
            }
            i += 1;
        } else if c == '\'' {
            // A character literal ('x', '\n', '\u{..}') or a lifetime/label ('a).
            if at(i + 1) == '\\' {
                i += 3; // the quote, the backslash and the escaped character
                while i < chars.len() && chars[i] != '\'' {
                    i += 1;
                }
                i += 1;
            } else if at(i + 2) == '\'' {
                i += 3;
            } else {
                i += 1;
            }
        } else if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let raw_string = (word == "r" || word == "br") && matches!(at(i), '"' | '#');
            if raw_string {
                let mut hashes = 0;
                while at(i) == '#' {
                    hashes += 1;
                    i += 1;
                }
                if at(i) == '"' {
                    i += 1;
                    loop {
                        if i >= chars.len() {
                            break;
                        }
                        if chars[i] == '"' && (1..=hashes).all(|k| at(i + k) == '#') {
                            i += 1 + hashes;
                            break;
                        }
                        line += usize::from(chars[i] == '\n');
                        i += 1;
                    }
                    continue;
                }
                // `r#ident`: a raw identifier.
            }
            out.push((Tok::Ident(word), line));
        } else if c == ':' && at(i + 1) == ':' {
            out.push((Tok::Sep, line));
            i += 2;
        } else {
            if !c.is_whitespace() {
                out.push((Tok::Punct(c), line));
            }
            i += 1;
        }
    }
    out
}

/// A path as written, and the line of its last segment.
type Written = (Vec<String>, usize);

/// Reads a path from `toks[*i..]` after `prefix`: `a::b`, `a::{b, c::d}`, `*`. Pushes every
/// complete path (prefix included) to `out`, with the line where it ends.
fn read_path(toks: &[(Tok, usize)], i: &mut usize, prefix: Written, out: &mut Vec<Written>) {
    let (mut path, mut line) = prefix;
    while let Some((Tok::Ident(word), at)) = toks.get(*i) {
        path.push(word.clone());
        line = *at;
        *i += 1;
        if toks.get(*i).map(|t| &t.0) != Some(&Tok::Sep) {
            break;
        }
        *i += 1;
        if toks.get(*i).map(|t| &t.0) == Some(&Tok::Punct('{')) {
            *i += 1;
            loop {
                match toks.get(*i).map(|t| &t.0) {
                    None => return,
                    Some(Tok::Punct('}')) => {
                        *i += 1;
                        return;
                    }
                    Some(Tok::Ident(_)) => read_path(toks, i, (path.clone(), line), out),
                    Some(_) => *i += 1,
                }
            }
        }
    }
    out.push((path, line));
}

/// The violations in one source file, whose module path is `module`.
fn check_source(module: &[String], text: &str, forbidden: &[&str]) -> Vec<Violation> {
    let toks = tokens(text);
    let mut found = Vec::new();
    // Inline modules open around the current token: (name, brace depth inside it).
    let mut inline: Vec<(String, usize)> = Vec::new();
    let mut depth = 0usize;
    let mut i = 0;
    while i < toks.len() {
        let (tok, line) = &toks[i];
        match tok {
            Tok::Punct('{') => {
                depth += 1;
                i += 1;
                continue;
            }
            Tok::Punct('}') => {
                if inline.last().is_some_and(|&(_, d)| d == depth) {
                    inline.pop();
                }
                depth = depth.saturating_sub(1);
                i += 1;
                continue;
            }
            Tok::Ident(word) if word == "mod" => {
                if let (Some((Tok::Ident(name), _)), Some((Tok::Punct('{'), _))) =
                    (toks.get(i + 1), toks.get(i + 2))
                {
                    inline.push((name.clone(), depth + 1));
                }
                i += 1;
                continue;
            }
            Tok::Ident(word)
                if matches!(word.as_str(), "crate" | "self" | "super")
                    && (i == 0 || toks[i - 1].0 != Tok::Sep) =>
            {
                let mut paths = Vec::new();
                read_path(&toks, &mut i, (Vec::new(), *line), &mut paths);
                let mut here: Vec<String> = module.to_vec();
                here.extend(inline.iter().map(|(name, _)| name.clone()));
                for (path, line) in paths {
                    if let Some(top) = resolve(&here, &path)
                        && forbidden.contains(&top.as_str())
                    {
                        found.push(Violation {
                            line,
                            path: path.join("::"),
                            top,
                        });
                    }
                }
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    found
}

/// The top-level module a path starting with `crate`, `self` or `super` names from module
/// `here`, if it names one.
fn resolve(here: &[String], path: &[String]) -> Option<String> {
    let mut absolute: Vec<String> = here.to_vec();
    let mut rest = path.iter().peekable();
    match rest.peek().map(|s| s.as_str()) {
        Some("crate") => {
            absolute.clear();
            rest.next();
        }
        Some("self") => {
            rest.next();
        }
        _ => {}
    }
    while rest.peek().is_some_and(|s| *s == "super") {
        absolute.pop()?;
        rest.next();
    }
    absolute.extend(rest.cloned());
    absolute.into_iter().next()
}

// ---- the checker itself -----------------------------------------------------------------

fn module(path: &str) -> Vec<String> {
    module_of(Path::new(path))
}

fn tops(module: &[String], text: &str) -> Vec<(usize, String)> {
    check_source(module, text, &["server", "stats"])
        .into_iter()
        .map(|v| (v.line, v.top))
        .collect()
}

#[test]
fn module_paths_follow_the_file_layout() {
    assert_eq!(module("src/http/conn.rs"), ["http", "conn"]);
    assert_eq!(module("src/http/mod.rs"), ["http"]);
    assert_eq!(module("src/stats.rs"), ["stats"]);
    assert_eq!(
        module("src/server/uring/worker.rs"),
        ["server", "uring", "worker"]
    );
}

#[test]
fn use_lines_and_paths_in_expressions_are_caught_with_their_line() {
    let conn = module("src/http/conn.rs");
    let text = "use super::date::DateCache;\n\
                use crate::server::listen::Stream;\n\
                fn f() { crate::stats::Stats::new(1); }\n\
                use super::super::server;\n";
    assert_eq!(
        tops(&conn, text),
        [
            (2, "server".into()),
            (3, "stats".into()),
            (4, "server".into())
        ]
    );
}

#[test]
fn use_groups_count_item_by_item_across_lines() {
    let conn = module("src/http/conn.rs");
    let text = "use crate::{\n    fs::Root,\n    stats::{Stats, WorkerStats},\n};\n\
                use crate::{fs, http::Status};\n";
    assert_eq!(
        tops(&conn, text),
        [(3, "stats".into()), (3, "stats".into())]
    );
}

#[test]
fn comments_and_literals_are_not_code() {
    let conn = module("src/http/conn.rs");
    let text = "//! Renders [`crate::stats::Stats`].\n\
                /// See crate::server::threaded.\n\
                // use crate::server;\n\
                let a = 1; // crate::server\n\
                /* crate::stats /* nested */ crate::server */\n\
                let s = \"crate::server::x\";\n\
                let r = r#\"use crate::stats;\"#;\n\
                let q = '\"'; let t = crate::fs::Root::open;\n";
    assert_eq!(tops(&conn, text), []);
}

#[test]
fn relative_paths_resolve_against_the_module_and_inline_modules() {
    // In `http/mod.rs`, `super` is the crate root.
    assert_eq!(
        tops(&module("src/http/mod.rs"), "use super::server::listen;"),
        [(1, "server".into())]
    );
    // In `http/conn.rs`, `super::server` would be `http::server`: not the driver.
    assert_eq!(
        tops(&module("src/http/conn.rs"), "use super::serve::Site;"),
        []
    );
    // Inside `mod tests`, one more `super` is needed to leave the file.
    let conn = module("src/http/conn.rs");
    let text = "mod tests {\n    use super::super::stats;\n    use super::super::super::stats;\n}\n\
                use super::super::stats;\n";
    assert_eq!(
        tops(&conn, text),
        [(3, "stats".into()), (5, "stats".into())]
    );
}
