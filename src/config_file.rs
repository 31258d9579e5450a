//! `--config FILE`: a TOML file that mirrors the command-line flags, turned into the flags
//! themselves, so the file and the command line cannot drift apart.
//!
//! A key is exactly a flag's long name (`root` for the positional DIR); the flags are found by
//! walking clap's `Command`, never listed here. A switch (`--listing`) takes a boolean, a
//! repeatable flag (`--listen`) an array, a numeric flag a number, any other flag a string;
//! each value goes through that flag's own clap value parser, so the file accepts exactly what
//! the flag accepts. `[[headers]]` tables (`pattern` and a `set` table of name = value) are a
//! second spelling of `--header`.
//!
//! Precedence: a flag given on the command line replaces the file's value; the `--header`
//! rules of the command line come after the file's (`header` and `[[headers]]`, in file
//! order), so they win where both match.
//!
//! Owns: reading the file, checking it, and producing the merged argument list. Every
//! problem is one [`FileError`], displayed as `FILE:LINE:COL: what` (1-based, from the TOML
//! spans), or `FILE: what` when the file cannot be read.

use clap::builder::ArgAction;
use clap::parser::ValueSource;
use clap::{Arg, ArgMatches, Command};
use ringserve::HeaderRule;
use std::any::TypeId;
use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};
use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// The key naming the positional DIR.
const ROOT_KEY: &str = "root";
/// The key of the `[[headers]]` tables.
const HEADERS_KEY: &str = "headers";
/// Flags that are about the file itself, not settings in it.
const NOT_KEYS: &[&str] = &["config", "check-config"];

/// Why a configuration file was refused: one line.
#[derive(Debug)]
pub enum FileError {
    /// The file could not be read (or is not UTF-8).
    Read { file: PathBuf, reason: String },
    /// A problem at a place in the file.
    At {
        file: PathBuf,
        line: usize,
        col: usize,
        what: String,
    },
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FileError::Read { file, reason } => write!(f, "{}: {reason}", file.display()),
            FileError::At {
                file,
                line,
                col,
                what,
            } => write!(f, "{}:{line}:{col}: {what}", file.display()),
        }
    }
}

/// Every settable key: the long names of the flags (but `--config`, `--check-config`,
/// `--help`, `--version`), `root` and `headers`. For the example file's test.
pub fn keys(cmd: &Command) -> Vec<String> {
    let mut keys: Vec<String> = cmd
        .get_arguments()
        .filter_map(|a| key_of(a).map(str::to_owned))
        .collect();
    keys.push(HEADERS_KEY.to_owned());
    keys
}

fn key_of(arg: &Arg) -> Option<&str> {
    if matches!(arg.get_action(), ArgAction::Help | ArgAction::Version) {
        return None;
    }
    if arg.is_positional() {
        return Some(ROOT_KEY);
    }
    arg.get_long().filter(|l| !NOT_KEYS.contains(l))
}

/// Reads `file` and returns the arguments to parse: the file's settings as flags, then the
/// command line's own `args` (without the program name), which therefore win, and the root
/// last unless the command line gave one. `given` are the command line's matches.
pub fn merged_args(
    cmd: &Command,
    args: &[OsString],
    given: &ArgMatches,
    file: &Path,
) -> Result<Vec<OsString>, FileError> {
    let text = std::fs::read_to_string(file).map_err(|e| FileError::Read {
        file: file.to_owned(),
        reason: plain(&e),
    })?;
    let doc = Doc { file, text: &text };
    let table = DeTable::parse(&text).map_err(|e| {
        let at = e.span().map_or(0, |s| s.start);
        doc.error(at, e.message().trim_end().to_owned())
    })?;
    let mut settings: Vec<(usize, OsString)> = Vec::new();
    let mut root = None;
    for (key, value) in table.get_ref() {
        let at = key.span().start;
        if key.get_ref() == HEADERS_KEY {
            header_tables(&doc, value, &mut settings)?;
            continue;
        }
        let arg = cmd
            .get_arguments()
            .find(|a| key_of(a) == Some(key.get_ref().as_ref()))
            .ok_or_else(|| doc.error(at, unknown_key(cmd, key.get_ref())))?;
        let values = values_of(&doc, cmd, arg, key.get_ref(), value)?;
        let from_command_line = given.value_source(arg.get_id().as_str())
            == Some(ValueSource::CommandLine)
            && !is_header(arg);
        if from_command_line {
            continue;
        }
        if arg.is_positional() {
            root = values.into_iter().next().map(|(_, v)| v);
            continue;
        }
        for (at, v) in values {
            let flag = match v {
                // A switch: `true` sets it; `false` is its default.
                None => OsString::from(format!("--{}", key.get_ref())),
                Some(v) => {
                    let mut flag = OsString::from(format!("--{}=", key.get_ref()));
                    flag.push(v);
                    flag
                }
            };
            settings.push((at, flag));
        }
    }
    // File order, so that `header` and `[[headers]]` rules keep theirs.
    settings.sort_by_key(|(at, _)| *at);
    let mut out: Vec<OsString> = settings.into_iter().map(|(_, flag)| flag).collect();
    out.extend(args.iter().cloned());
    if let Some(Some(root)) = root {
        if !args.iter().any(|a| a == "--") {
            out.push("--".into());
        }
        out.push(root);
    }
    Ok(out)
}

fn is_header(arg: &Arg) -> bool {
    arg.get_long() == Some("header")
}

/// The file's text, for turning byte offsets into lines and columns.
struct Doc<'a> {
    file: &'a Path,
    text: &'a str,
}

impl Doc<'_> {
    fn error(&self, at: usize, what: String) -> FileError {
        let before = &self.text[..self.text.floor_char_boundary(at.min(self.text.len()))];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let col = before[line_start..].chars().count() + 1;
        FileError::At {
            file: self.file.to_owned(),
            line,
            col,
            what,
        }
    }
}

/// The values of one key as flag values (`None`: a switch that is on), each with the offset
/// of its place in the file; checked by the flag's own value parser.
fn values_of(
    doc: &Doc<'_>,
    cmd: &Command,
    arg: &Arg,
    key: &str,
    value: &Spanned<DeValue<'_>>,
) -> Result<Vec<(usize, Option<OsString>)>, FileError> {
    let at = value.span().start;
    match arg.get_action() {
        ArgAction::SetTrue => match value.get_ref() {
            DeValue::Boolean(true) => Ok(vec![(at, None)]),
            DeValue::Boolean(false) => Ok(Vec::new()),
            other => Err(doc.error(at, wrong_type(key, "a boolean", other))),
        },
        ArgAction::Append => match value.get_ref() {
            DeValue::Array(items) => items
                .iter()
                .map(|item| {
                    let v = scalar(doc, cmd, arg, key, item)?;
                    Ok((item.span().start, Some(v)))
                })
                .collect(),
            other => Err(doc.error(
                at,
                wrong_type(key, &format!("an array of {}", expected_each(arg)), other),
            )),
        },
        _ => Ok(vec![(at, Some(scalar(doc, cmd, arg, key, value)?))]),
    }
}

/// One value of a flag that takes one, as the text the flag would be given.
fn scalar(
    doc: &Doc<'_>,
    cmd: &Command,
    arg: &Arg,
    key: &str,
    value: &Spanned<DeValue<'_>>,
) -> Result<OsString, FileError> {
    let at = value.span().start;
    let numeric = numeric_kind(arg);
    let text = match (value.get_ref(), numeric) {
        (DeValue::String(s), Numeric::No) => s.to_string(),
        (DeValue::Integer(i), Numeric::Integer | Numeric::Float) => {
            match i64::from_str_radix(i.as_str(), i.radix()) {
                Ok(n) => n.to_string(),
                Err(_) => return Err(doc.error(at, format!("{key}: the number is too large"))),
            }
        }
        (DeValue::Float(f), Numeric::Float) => f.as_str().to_owned(),
        (other, _) => return Err(doc.error(at, wrong_type(key, expected(arg), other))),
    };
    // The flag's own value parser, through clap (which keeps it private): a command line of
    // this one value, so the file accepts exactly what the flag does.
    let alone: Vec<OsString> = if arg.is_positional() {
        vec!["ringserve".into(), "--".into(), text.clone().into()]
    } else {
        let mut flag = OsString::from(format!("--{key}="));
        flag.push(&text);
        vec!["ringserve".into(), flag]
    };
    cmd.clone()
        .try_get_matches_from(alone)
        .map_err(|e| doc.error(at, clap_message(&e)))?;
    Ok(text.into())
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Numeric {
    No,
    Integer,
    Float,
}

/// Whether a flag's parser produces a number (then the file gives a TOML number).
fn numeric_kind(arg: &Arg) -> Numeric {
    let id = arg.get_value_parser().type_id();
    let integers = [
        TypeId::of::<u8>(),
        TypeId::of::<u16>(),
        TypeId::of::<u32>(),
        TypeId::of::<u64>(),
        TypeId::of::<usize>(),
        TypeId::of::<i32>(),
        TypeId::of::<i64>(),
    ];
    if integers.iter().any(|t| id == *t) {
        Numeric::Integer
    } else if id == TypeId::of::<f64>() || id == TypeId::of::<f32>() {
        Numeric::Float
    } else {
        Numeric::No
    }
}

fn expected(arg: &Arg) -> &'static str {
    match numeric_kind(arg) {
        Numeric::No => "a string",
        Numeric::Integer => "an integer",
        Numeric::Float => "a number",
    }
}

fn expected_each(arg: &Arg) -> &'static str {
    match numeric_kind(arg) {
        Numeric::No => "strings",
        Numeric::Integer => "integers",
        Numeric::Float => "numbers",
    }
}

fn wrong_type(key: &str, expected: &str, found: &DeValue<'_>) -> String {
    format!("{key}: expected {expected}, found {}", found.type_str())
}

/// `[[headers]]`: each table has `pattern` and a `set` table of header name = value. Each
/// entry becomes one `--header` rule, checked by the same parser.
fn header_tables(
    doc: &Doc<'_>,
    value: &Spanned<DeValue<'_>>,
    out: &mut Vec<(usize, OsString)>,
) -> Result<(), FileError> {
    let tables = match value.get_ref() {
        DeValue::Array(items) => items,
        other => {
            return Err(doc.error(
                value.span().start,
                wrong_type(HEADERS_KEY, "an array of tables ([[headers]])", other),
            ));
        }
    };
    for item in tables {
        let DeValue::Table(table) = item.get_ref() else {
            return Err(doc.error(
                item.span().start,
                wrong_type(HEADERS_KEY, "a table", item.get_ref()),
            ));
        };
        let mut pattern: Option<&Spanned<DeValue<'_>>> = None;
        let mut set: Option<&Spanned<DeValue<'_>>> = None;
        for (key, v) in table {
            match key.get_ref().as_ref() {
                "pattern" => pattern = Some(v),
                "set" => set = Some(v),
                other => {
                    let near = nearest(other, ["pattern", "set"].into_iter());
                    return Err(doc.error(
                        key.span().start,
                        unknown(
                            &format!("headers.{other}"),
                            near.map(|n| format!("headers.{n}")),
                        ),
                    ));
                }
            }
        }
        let at = item.span().start;
        let pattern = pattern.ok_or_else(|| doc.error(at, "[[headers]] needs a pattern".into()))?;
        let pattern_text = match pattern.get_ref() {
            DeValue::String(s) => s.as_ref(),
            other => {
                return Err(doc.error(
                    pattern.span().start,
                    wrong_type("headers.pattern", "a string", other),
                ));
            }
        };
        let set = set.ok_or_else(|| doc.error(at, "[[headers]] needs a set table".into()))?;
        let DeValue::Table(fields) = set.get_ref() else {
            return Err(doc.error(
                set.span().start,
                wrong_type("headers.set", "a table of name = value", set.get_ref()),
            ));
        };
        if fields.is_empty() {
            return Err(doc.error(set.span().start, "headers.set is empty".into()));
        }
        for (name, v) in fields {
            let DeValue::String(field_value) = v.get_ref() else {
                return Err(doc.error(
                    v.span().start,
                    wrong_type(
                        &format!("headers.set.{}", name.get_ref()),
                        "a string",
                        v.get_ref(),
                    ),
                ));
            };
            let rule = HeaderRule::new(pattern_text, name.get_ref(), field_value).map_err(|e| {
                let at = match e {
                    ringserve::RuleError::BadPattern { .. } => pattern.span().start,
                    ringserve::RuleError::BadValue { .. } => v.span().start,
                    _ => name.span().start,
                };
                doc.error(at, e.to_string())
            })?;
            out.push((name.span().start, format!("--header={rule}").into()));
        }
    }
    Ok(())
}

fn unknown_key(cmd: &Command, key: &str) -> String {
    let keys = keys(cmd);
    unknown(
        key,
        nearest(key, keys.iter().map(String::as_str)).map(str::to_owned),
    )
}

fn unknown(key: &str, near: Option<String>) -> String {
    match near {
        Some(n) => format!("unknown key '{key}' (did you mean '{n}'?)"),
        None => format!("unknown key '{key}'"),
    }
}

/// The known key closest to `key` by edit distance, if it is close (a typo, not a guess).
fn nearest<'a>(key: &str, known: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    known
        .map(|k| (edit_distance(key, k), k))
        .filter(|&(d, k)| d <= 2.max(k.len() / 4))
        .min_by_key(|&(d, _)| d)
        .map(|(_, k)| k)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let substituted = diagonal + usize::from(ca != cb);
            diagonal = row[j + 1];
            row[j + 1] = substituted.min(row[j] + 1).min(diagonal + 1);
        }
    }
    row[b.len()]
}

/// A clap value error as one line: `invalid value 'x' for '--mode <MODE>' [possible values:
/// uring, threaded]`, without the `error:` prefix and the `--help` hint.
fn clap_message(e: &clap::Error) -> String {
    let rendered = e.render().to_string();
    let mut parts = Vec::new();
    for line in rendered.lines() {
        let line = line.trim();
        if line.is_empty() {
            break;
        }
        parts.push(line.strip_prefix("error: ").unwrap_or(line));
    }
    parts.join(" ")
}

/// An I/O error without the "(os error N)" suffix.
fn plain(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_owned(),
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Cli;
    use clap::{CommandFactory, FromArgMatches};

    const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/ringserve.toml.example");

    /// The example with its commented settings (`# key = value`, `# [[headers]]`) uncommented.
    fn uncommented(text: &str) -> String {
        let is_setting = |s: &str| {
            s == "[[headers]]"
                || s.split_once(" = ").is_some_and(|(k, _)| {
                    !k.is_empty() && k.bytes().all(|b| b.is_ascii_lowercase() || b == b'-')
                })
        };
        let lines: Vec<&str> = text
            .lines()
            .map(|line| match line.strip_prefix("# ") {
                Some(rest) if is_setting(rest) => rest,
                _ => line,
            })
            .collect();
        lines.join("\n")
    }

    /// What `ringserve --config file` would run with: the merged arguments, through the
    /// real parser and checks (the root `www` is relative to the crate, the tests' directory).
    fn load(file: &Path) -> Result<Vec<OsString>, String> {
        let cmd = Cli::command();
        let given = cmd.clone().get_matches_from(["ringserve"]);
        let args = merged_args(&cmd, &[], &given, file).map_err(|e| e.to_string())?;
        let matches = cmd
            .try_get_matches_from(std::iter::once(OsString::from("ringserve")).chain(args.clone()))
            .map_err(|e| e.to_string())?;
        let cli = Cli::from_arg_matches(&matches).map_err(|e| e.to_string())?;
        ringserve::Server::check(&cli.into_config()).map_err(|e| e.to_string())?;
        Ok(args)
    }

    #[test]
    fn the_example_sets_every_key_and_passes_the_checks() {
        let text = std::fs::read_to_string(EXAMPLE).expect("ringserve.toml.example");
        load(Path::new(EXAMPLE)).expect("the example as shipped");

        let dir = tempfile::tempdir().unwrap();
        let all = dir.path().join("all.toml");
        let full = uncommented(&text);
        std::fs::write(&all, &full).unwrap();
        let args = load(&all).expect("the example with every setting uncommented");
        let rules = args
            .iter()
            .filter(|a| a.to_string_lossy().starts_with("--header="))
            .count();
        assert_eq!(rules, 3, "the [[headers]] examples: {args:?}");

        let table = DeTable::parse(&full).expect("TOML");
        let present: Vec<&str> = table
            .get_ref()
            .keys()
            .map(|k| k.get_ref().as_ref())
            .collect();
        let missing: Vec<String> = keys(&Cli::command())
            .into_iter()
            .filter(|k| !present.contains(&k.as_str()))
            .collect();
        assert!(
            missing.is_empty(),
            "ringserve.toml.example does not document the keys {missing:?}: add each, set to \
             its default, or as a `# key = value` line when it has none"
        );
    }

    #[test]
    fn typos_find_their_key_and_guesses_do_not() {
        let known = ["listing", "workers", "max-conns", "cache-control"];
        assert_eq!(nearest("listin", known.into_iter()), Some("listing"));
        assert_eq!(nearest("worker", known.into_iter()), Some("workers"));
        assert_eq!(nearest("max_conns", known.into_iter()), Some("max-conns"));
        assert_eq!(
            nearest("cache_control", known.into_iter()),
            Some("cache-control")
        );
        assert_eq!(nearest("colour", known.into_iter()), None);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }
}
