//! Reading a request mix from the command line: named `-m NAME=WEIGHT:MESSAGE`
//! values, or a `--mix FILE` (TOML, or JSON by its `.json` extension).
//!
//! # Which `-m` is named
//!
//! A `-m` value is a named entry when it starts with a NAME
//! (`[A-Za-z_][A-Za-z0-9_.-]*`), then `=`, then a WEIGHT with no space in it, then
//! `:`. Everything after that first `:` is the message, in the usual `-m` syntax.
//! Anything else is a plain message, exactly as before: `PING\r\n`,
//! `GET /a?x=1:2 HTTP/1.1` (a space comes before the `=`), `SET k v` all stay plain. A
//! plain message that happens to start like `a=1:...` is written with its first byte
//! escaped (`\x61=1:...`), since escapes are resolved after the split. Either every
//! `-m` is named or none is.
//!
//! # The file
//!
//! ```toml
//! [[request]]
//! name = "get"
//! weight = 3
//! template = 'GET /item/{seq} HTTP/1.1\r\nHost: x\r\n\r\n'   # -m syntax: escapes, {fields}
//! expect = "http"                                             # optional: default --expect
//!
//! [[request]]
//! name = "put"
//! weight = 1
//! message = "PUT /item HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi"  # sent as is
//! ```
//!
//! With `--resp`, `message` and `template` are Redis command lines, as `-m` is.

use std::path::Path;

use serde::Deserialize;

use crate::framing::Framing;
use crate::mix::{is_name, Mix, MixEntry, MixOrder, MAX_WEIGHT};
use crate::payload::{self, Template};
use crate::plan::PlanError;

/// How to turn message text into a template (`--resp` or not).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Syntax {
    /// The `-m` syntax: escapes and `{fields}`.
    Plain,
    /// `--resp`: a Redis command line, sent as a RESP array.
    Resp,
}

impl Syntax {
    /// Parses `text` (after escapes) as a template.
    fn template(self, text: &str) -> Result<Template, String> {
        let bytes = payload::unescape(text)?;
        match self {
            Syntax::Plain => Template::parse(bytes),
            Syntax::Resp => Template::parse_resp(&bytes),
        }
    }

    /// `text` as it is (no escapes, no fields), or as a RESP command.
    fn literal(self, text: &str) -> Result<Template, String> {
        match self {
            Syntax::Plain => Ok(Template::raw(text.as_bytes().to_vec())),
            Syntax::Resp => Template::parse_resp(text.as_bytes()),
        }
    }
}

/// Splits a named `-m` value into (name, weight text, message), or `None` for a
/// plain message (see the module's rule).
pub fn split_named(text: &str) -> Option<(&str, &str, &str)> {
    let (name, rest) = text.split_once('=')?;
    let (weight, message) = rest.split_once(':')?;
    let named = is_name(name) && !weight.is_empty() && !weight.contains(char::is_whitespace);
    named.then_some((name, weight, message))
}

/// Whether any `-m` value is named.
pub fn any_named(messages: &[String]) -> bool {
    messages.iter().any(|m| split_named(m).is_some())
}

/// The mix from named `-m` values. Every value must be named.
pub fn from_messages(messages: &[String], syntax: Syntax, order: MixOrder) -> Result<Mix, PlanError> {
    let mut entries = Vec::with_capacity(messages.len());
    for text in messages {
        let Some((name, weight, message)) = split_named(text) else {
            return Err(PlanError(format!(
                "-m '{text}' has no NAME=WEIGHT: while another -m has one: name every -m of a mix, or none"
            )));
        };
        let weight = parse_weight(weight).map_err(|e| PlanError(format!("-m {name}: {e}")))?;
        let template =
            syntax.template(message).and_then(not_empty).map_err(|e| PlanError(format!("-m {name}: {e}")))?;
        entries.push(MixEntry { name: name.to_string(), weight, template, framing: None });
    }
    Mix::new(entries, order).map_err(|e| PlanError(format!("-m: {e}")))
}

/// A message of at least one byte (an empty request would never be answered).
fn not_empty(template: Template) -> Result<Template, String> {
    if template.max_len() == 0 {
        return Err("the message is empty".into());
    }
    Ok(template)
}

/// A weight: a whole number from 1 to [`MAX_WEIGHT`].
fn parse_weight(text: &str) -> Result<u64, String> {
    let out_of_range = || format!("weight '{text}' is out of range (allowed: a whole number from 1 to {MAX_WEIGHT})");
    if !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(out_of_range());
    }
    match text.parse::<u64>() {
        Ok(w) if (1..=MAX_WEIGHT).contains(&w) => Ok(w),
        _ => Err(out_of_range()),
    }
}

/// The file's layout.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MixFile {
    request: Vec<FileEntry>,
}

/// One `[[request]]` of the file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileEntry {
    name: String,
    /// Signed, so that a negative weight gets our message rather than serde's.
    weight: i64,
    message: Option<String>,
    template: Option<String>,
    expect: Option<String>,
}

/// The mix in `path`: TOML, or JSON when the name ends in `.json`.
pub fn from_file(path: &Path, syntax: Syntax, order: MixOrder) -> Result<Mix, PlanError> {
    let at = |e: String| PlanError(format!("--mix {}: {e}", path.display()));
    let text = std::fs::read_to_string(path).map_err(|e| at(e.to_string()))?;
    let file: MixFile = if path.extension().is_some_and(|ext| ext == "json") {
        serde_json::from_str(&text).map_err(|e| at(e.to_string()))?
    } else {
        toml::from_str(&text).map_err(|e| at(toml_error(&text, &e)))?
    };
    let mut entries = Vec::with_capacity(file.request.len());
    for e in file.request {
        let name = e.name;
        let template = match (&e.message, &e.template) {
            (Some(m), None) => syntax.literal(m),
            (None, Some(t)) => syntax.template(t),
            _ => Err("give exactly one of message (sent as is) and template (escapes and {fields})".to_string()),
        }
        .and_then(not_empty)
        .map_err(|why| at(format!("request '{name}': {why}")))?;
        let weight = u64::try_from(e.weight).ok().filter(|w| (1..=MAX_WEIGHT).contains(w)).ok_or_else(|| {
            at(format!("request '{name}': weight {} is out of range (allowed: 1 to {MAX_WEIGHT})", e.weight))
        })?;
        let framing = match &e.expect {
            Some(spec) => Some(Framing::parse(spec).map_err(|why| at(format!("request '{name}': expect: {why}")))?),
            None => None,
        };
        entries.push(MixEntry { name, weight, template, framing });
    }
    Mix::new(entries, order).map_err(|e| at(e.0))
}

/// A TOML error on one line: its message and the line it points at (toml's own
/// rendering quotes the source over several lines).
fn toml_error(text: &str, e: &toml::de::Error) -> String {
    let message = e.message().replace('\n', " ");
    match e.span() {
        Some(span) => format!("line {}: {}", text[..span.start.min(text.len())].lines().count().max(1), message.trim()),
        None => message.trim().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_name_equals_weight_colon_makes_a_named_message() {
        assert_eq!(split_named("get=3:GET /a"), Some(("get", "3", "GET /a")));
        assert_eq!(split_named("a.b-c=1:x:y=z"), Some(("a.b-c", "1", "x:y=z")));
        for plain in
            ["PING\\r\\n", "GET /a?x=1:2 HTTP/1.1", "SET k v", "=3:x", "9a=3:x", "a b=3:x", "get=:x", "get= 3:x"]
        {
            assert_eq!(split_named(plain), None, "{plain}");
        }
        assert_eq!(split_named("\\x61=1:x"), None, "an escaped first byte keeps a message plain");
    }

    #[test]
    fn weights_are_whole_numbers_from_1_to_the_cap() {
        assert_eq!(parse_weight("3"), Ok(3));
        assert_eq!(parse_weight("1000000"), Ok(MAX_WEIGHT));
        for bad in ["0", "-1", "1.5", "NaN", "inf", "1000001", "99999999999999999999999", "+3"] {
            assert!(parse_weight(bad).unwrap_err().contains("out of range"), "{bad}");
        }
    }

    #[test]
    fn a_mix_of_named_and_plain_messages_is_refused() {
        let messages = vec!["get=1:GET".to_string(), "PING".to_string()];
        let e = from_messages(&messages, Syntax::Plain, MixOrder::RoundRobin).unwrap_err();
        assert!(e.0.contains("name every -m"), "{e}");
    }

    fn write(name: &str, text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    #[test]
    fn a_toml_file_gives_names_weights_templates_and_framings() {
        let (_dir, path) = write(
            "mix.toml",
            "[[request]]\nname = \"get\"\nweight = 3\ntemplate = 'GET /{seq}\\r\\n'\nexpect = \"line\"\n\n\
             [[request]]\nname = \"put\"\nweight = 1\nmessage = \"PUT {x}\\r\\n\"\n",
        );
        let mix = from_file(&path, Syntax::Plain, MixOrder::RoundRobin).unwrap();
        let [get, put] = mix.entries() else { panic!("two entries") };
        assert_eq!((get.name.as_str(), get.weight, get.framing.clone()), ("get", 3, Some(Framing::Line)));
        assert_eq!(get.template.as_static(), None, "a template has fields");
        assert_eq!((put.name.as_str(), put.weight, put.framing.clone()), ("put", 1, None));
        assert_eq!(put.template.as_static(), Some(&b"PUT {x}\r\n"[..]), "a message is sent as is");
    }

    #[test]
    fn a_json_file_is_read_by_its_extension() {
        let (_dir, path) = write(
            "mix.json",
            r#"{"request":[{"name":"a","weight":2,"message":"A"},{"name":"b","weight":1,"message":"B"}]}"#,
        );
        let mix = from_file(&path, Syntax::Plain, MixOrder::RoundRobin).unwrap();
        assert_eq!(mix.entries().iter().map(|e| e.weight).collect::<Vec<_>>(), [2, 1]);
    }

    #[test]
    fn bad_files_are_one_line_errors() {
        let cases = [
            ("[[request]]\nname = \"a\"\nweight = 0\nmessage = \"x\"\n", "out of range"),
            ("[[request]]\nname = \"a\"\nweight = -2\nmessage = \"x\"\n", "out of range"),
            ("[[request]]\nname = \"a\"\nweight = nan\nmessage = \"x\"\n", "line 3"),
            ("[[request]]\nname = \"a\"\nweight = 1\n", "exactly one of"),
            ("[[request]]\nname = \"a\"\nweight = 1\nmessage = \"\"\n", "request 'a': the message is empty"),
            ("[[request]]\nname = \"a\"\nweight = 1\nmessage = \"x\"\nexpect = \"nope\"\n", "expect"),
            ("[[request]]\nname = \"a\"\nweight = 1\nmessage = \"x\"\ncolour = 1\n", "colour"),
            ("request = []\n", "at least one"),
            ("[[request]\n", "line 1"),
        ];
        for (text, why) in cases {
            let (_dir, path) = write("mix.toml", text);
            let e = from_file(&path, Syntax::Plain, MixOrder::RoundRobin).unwrap_err().0;
            assert!(e.contains(why) && !e.contains('\n') && e.starts_with("--mix "), "{text:?} gave {e:?}");
        }
    }
}
