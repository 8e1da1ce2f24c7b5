//! No test may pass by returning early without saying so.
//!
//! A test that lacks its prerequisite (a Debian tool, root, a cargo feature) must
//! call `prereq::missing` (tests/common/prereq.rs), which fails under `CI=true` and
//! prints a loud skip line elsewhere, and only then return. This test reads every
//! file in `tests/` and finds each `return` inside a `#[test]` function. Each one
//! must be a skip: `prereq::missing(` on the same line or the three before it, or a
//! call to a *prerequisite helper*, a function in `tests/` that itself calls
//! `prereq::missing` (directly or through another helper), such as
//! `real_servers::require` or `Netns::create`.
//!
//! It is a reading of the source, not of a run, so it also covers the tests that
//! need root or a browser on machines where they cannot run.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// One function found in a test source: its name, whether it is a `#[test]`, and
/// its lines (1-based numbers with text).
struct Function {
    name: String,
    is_test: bool,
    lines: Vec<(usize, String)>,
}

/// Splits Rust source into its `fn` items (nested closures stay in their
/// function). A function inside `impl Type` is named `Type::name`, so that
/// `Redis::start` and `Serve::start` are told apart. Good enough for test files:
/// it counts braces outside strings and comments, which is all the test sources
/// here need.
fn functions(source: &str) -> Vec<Function> {
    let mut out = Vec::new();
    let mut current: Option<(Function, i32)> = None;
    let mut test_attribute = false;
    // The `impl` block being read, and the brace depth it opened at.
    let mut in_impl: Option<(String, i32)> = None;
    let mut depth = 0i32;
    for (index, raw) in source.lines().enumerate() {
        let line = code_of(raw);
        let depth_before = depth;
        depth += line.matches('{').count() as i32 - line.matches('}').count() as i32;
        if current.is_none() {
            if let Some(type_name) = impl_type(&line) {
                in_impl = Some((type_name, depth_before));
            }
            if in_impl.as_ref().is_some_and(|(_, opened_at)| depth <= *opened_at && line.contains('}')) {
                in_impl = None;
            }
            if line.trim_start().starts_with("#[test]") {
                test_attribute = true;
            }
            if let Some(name) = fn_name(&line) {
                let name = match &in_impl {
                    Some((type_name, _)) => format!("{type_name}::{name}"),
                    None => name,
                };
                let f = Function { name, is_test: test_attribute, lines: Vec::new() };
                current = Some((f, 0));
                test_attribute = false;
            }
        }
        if let Some((f, depth)) = current.as_mut() {
            f.lines.push((index + 1, line.clone()));
            *depth += line.matches('{').count() as i32 - line.matches('}').count() as i32;
            // A function ends when its braces close again (or at a `;` for a
            // declaration without a body).
            let opened = f.lines.iter().any(|(_, l)| l.contains('{'));
            if (opened && *depth <= 0) || (!opened && line.trim_end().ends_with(';')) {
                out.push(current.take().unwrap().0);
            }
        }
    }
    out
}

/// The line without its `//` comment and with string literals blanked, so that
/// braces and words inside them do not count.
fn code_of(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut in_string = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if in_string => {
                chars.next();
            }
            '"' => {
                in_string = !in_string;
                out.push('"');
            }
            '/' if !in_string && chars.peek() == Some(&'/') => break,
            _ if in_string => out.push(' '),
            _ => out.push(c),
        }
    }
    out
}

/// `Type` if the line opens `impl Type` or `impl Trait for Type`.
fn impl_type(line: &str) -> Option<String> {
    let rest = line.trim_start().strip_prefix("impl")?;
    let rest = rest.strip_prefix(|c: char| c == ' ' || c == '<')?;
    let rest = rest.rsplit(" for ").next().unwrap_or(rest).trim_start();
    let name: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
    (!name.is_empty()).then_some(name)
}

/// `NAME` if the line declares `fn NAME`.
fn fn_name(line: &str) -> Option<String> {
    let at = line.find("fn ")?;
    if at > 0 && !line[..at].ends_with([' ', '(']) {
        return None;
    }
    let rest = &line[at + 3..];
    let name: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
    (!name.is_empty()).then_some(name)
}

/// The names of the prerequisite helpers: functions that are not tests, say in
/// their signature that the thing may be missing (they return `Option` or
/// `bool`), and call `prereq::missing` directly or through another helper.
fn helpers(all: &[Function]) -> BTreeSet<String> {
    let mut found: BTreeSet<String> = BTreeSet::from(["missing".to_string()]);
    let may_be_missing = |f: &Function| {
        let signature = f.lines.first().map_or("", |(_, l)| l.as_str());
        !f.is_test && (signature.contains("-> Option<") || signature.contains("-> bool"))
    };
    loop {
        let before = found.len();
        for f in all.iter().filter(|f| may_be_missing(f)) {
            let body = f.lines.iter().skip(1).map(|(_, l)| l.as_str()).collect::<String>();
            if found.iter().any(|h| calls(&body, h)) {
                found.insert(f.name.clone());
            }
        }
        if found.len() == before {
            return found;
        }
    }
}

/// True when `word` appears in `code` as a whole word.
fn has_word(code: &str, word: &str) -> bool {
    let is_ident = |c: char| c.is_alphanumeric() || c == '_';
    code.match_indices(word).any(|(at, _)| {
        !code[..at].chars().next_back().is_some_and(is_ident)
            && !code[at + word.len()..].chars().next().is_some_and(is_ident)
    })
}

/// True when `code` calls `name(` (`Type::name(` for an associated function),
/// as a whole path: `Serve::start(` is not a call of `Redis::start`, nor of a free
/// `start`. A free function may be reached through modules
/// (`common::prereq::missing(`): a path segment before it must be a module
/// (lower case), not a type.
fn calls(code: &str, name: &str) -> bool {
    let is_ident = |c: char| c.is_alphanumeric() || c == '_';
    code.match_indices(name).any(|(at, _)| {
        let before = &code[..at];
        let after = code[at + name.len()..].trim_start();
        let starts_a_path = match before.strip_suffix("::") {
            Some(path) => {
                let segment: String = path.chars().rev().take_while(|c| is_ident(*c)).collect();
                segment.chars().last().is_some_and(|c| c.is_lowercase())
            }
            None => !before.chars().next_back().is_some_and(is_ident),
        };
        starts_a_path && after.starts_with('(')
    })
}

/// Every `return` in a `#[test]` function that is not a skip, as `file:line: text`.
fn silent_returns(files: &BTreeMap<PathBuf, String>) -> Vec<String> {
    let parsed: Vec<(PathBuf, Vec<Function>)> = files.iter().map(|(p, s)| (p.clone(), functions(s))).collect();
    let all: Vec<&Function> = parsed.iter().flat_map(|(_, fs)| fs).collect();
    let owned: Vec<Function> =
        all.iter().map(|f| Function { name: f.name.clone(), is_test: f.is_test, lines: f.lines.clone() }).collect();
    let helpers = helpers(&owned);
    let mut bad = Vec::new();
    for (path, fs) in &parsed {
        for f in fs.iter().filter(|f| f.is_test) {
            for (i, (number, line)) in f.lines.iter().enumerate() {
                if !has_word(line, "return") {
                    continue;
                }
                let context = f.lines[i.saturating_sub(3)..=i].iter().map(|(_, l)| l.as_str()).collect::<String>();
                if !helpers.iter().any(|h| calls(&context, h)) {
                    bad.push(format!("{}:{number}: {}", path.display(), line.trim()));
                }
            }
        }
    }
    bad
}

fn test_sources() -> BTreeMap<PathBuf, String> {
    let mut files = BTreeMap::new();
    for dir in [Path::new("tests"), Path::new("tests/common")] {
        for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("read {}: {e}", dir.display())) {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                files.insert(path, text);
            }
        }
    }
    files
}

#[test]
fn no_test_returns_early_without_a_skip_that_fails_under_ci() {
    let files = test_sources();
    assert!(files.len() >= 10, "the test sources were not found: {:?}", files.keys());
    let bad = silent_returns(&files);
    assert!(
        bad.is_empty(),
        "these tests return early without prereq::missing (which fails under CI=true):\n{}",
        bad.join("\n")
    );
}

#[test]
fn the_scan_finds_a_silent_return_and_accepts_a_loud_one() {
    // A file outside tests/*.rs, so that the real scan does not read it.
    let source = include_str!("data/silent_skip_fixture.rs.txt");
    let files = BTreeMap::from([(PathBuf::from("t.rs"), source.to_string())]);
    let bad = silent_returns(&files);
    assert_eq!(bad.len(), 2, "{bad:?}");
    assert!(bad[0].starts_with("t.rs:12: return;"), "{bad:?}");
    // `Plain::start` is not `Tool::start`, though both are `start`.
    assert!(bad[1].contains("Plain::start()"), "{bad:?}");
}
