//! Fuzz targets for every parser of outside input: search parameters and cursors, dates and
//! periods, operation parameters, FHIR JSON resources, iCalendar (lexer, values, RRULE,
//! VTIMEZONE, expansion), SMART Scheduling Links manifests and NDJSON lines.
//!
//! Each target starts from a seed corpus in the repository (`tests/fuzz/corpus/<target>/`, and
//! fixtures other tests use) and mutates it: bytes inserted, removed, replaced, repeated, and
//! pieces of other seeds and of a dictionary of the format's own words spliced in. The property
//! is always the same: the parser answers (a value or an error), it never panics, and what it
//! answers is usable. proptest runs on stable Rust (`cargo fuzz` needs a nightly compiler):
//! `make test` runs each target for `PROPTEST_CASES` inputs (256 by default) and `make fuzz` for
//! far more. An input that fails is shrunk and its seed written to
//! `tests/fuzz/regressions/<target>.txt`, which is committed: every later run tries it first, and
//! the fix adds the input itself to a regression test of the parser.

use std::path::{Path, PathBuf};

use proptest::prelude::*;

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests")
}

/// Every file of `tests/fuzz/corpus/<target>/`, whole or line by line, and extra fixtures.
fn seeds(target: &str, by_line: bool, fixtures: &[&str]) -> Vec<String> {
    let dir = corpus_dir().join("fuzz/corpus").join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.extend(fixtures.iter().map(|f| corpus_dir().join(f)));
    files.sort();
    let mut out = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        if by_line {
            out.extend(text.lines().filter(|l| !l.trim().is_empty()).map(String::from));
        } else {
            out.push(text);
        }
    }
    assert!(!out.is_empty(), "no seeds for {target}");
    out
}

/// One change to a seed.
#[derive(Debug, Clone)]
enum Edit {
    /// A dictionary word at a position.
    Insert(usize, &'static str),
    /// Characters removed from a position.
    Remove(usize, usize),
    /// A character replaced by any character.
    Replace(usize, char),
    /// A stretch repeated.
    Repeat(usize, usize, usize),
    /// A piece of another seed inserted.
    Splice(usize, usize, usize, usize),
}

fn edit(words: &'static [&'static str], seeds: usize) -> impl Strategy<Value = Edit> {
    prop_oneof![
        3 => (any::<usize>(), prop::sample::select(words)).prop_map(|(at, w)| Edit::Insert(at, w)),
        2 => (any::<usize>(), 1..40usize).prop_map(|(at, n)| Edit::Remove(at, n)),
        3 => (any::<usize>(), any::<char>()).prop_map(|(at, c)| Edit::Replace(at, c)),
        1 => (any::<usize>(), 1..24usize, 2..40usize).prop_map(|(at, n, times)| Edit::Repeat(at, n, times)),
        1 => (any::<usize>(), 0..seeds, any::<usize>(), 1..80usize).prop_map(|(at, s, from, n)| Edit::Splice(at, s, from, n)),
    ]
}

/// The char boundary at or before `at % (len + 1)`.
fn boundary(text: &str, at: usize) -> usize {
    let mut i = at % (text.len() + 1);
    while !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn apply(seeds: &[String], seed: usize, edits: &[Edit]) -> String {
    let mut text = seeds[seed].clone();
    for e in edits {
        match *e {
            Edit::Insert(at, w) => {
                let i = boundary(&text, at);
                text.insert_str(i, w);
            }
            Edit::Remove(at, n) => {
                let i = boundary(&text, at);
                let j = boundary(&text, i + n.min(text.len() - i));
                text.replace_range(i..j.max(i), "");
            }
            Edit::Replace(at, c) => {
                let i = boundary(&text, at);
                if let Some(old) = text[i..].chars().next() {
                    text.replace_range(i..i + old.len_utf8(), &c.to_string());
                }
            }
            Edit::Repeat(at, n, times) => {
                let i = boundary(&text, at);
                let j = boundary(&text, i + n.min(text.len() - i));
                let piece = text[i..j.max(i)].repeat(times);
                text.insert_str(i, &piece);
            }
            Edit::Splice(at, other, from, n) => {
                let source = &seeds[other % seeds.len()];
                let a = boundary(source, from);
                let b = boundary(source, a + n.min(source.len() - a));
                let piece = source[a..b.max(a)].to_string();
                let i = boundary(&text, at);
                text.insert_str(i, &piece);
            }
        }
    }
    text
}

/// What JSON is made of, for the targets that read JSON.
const JSON_WORDS: &[&str] =
    &["\"", "{", "}", "[", "]", ",", ":", "null", "true", "false", "0", "-1", "1e400", "\\u0000"];

/// [`JSON_WORDS`] and a target's own words.
fn json_words(own: &'static [&'static str]) -> &'static [&'static str] {
    Box::leak([JSON_WORDS, own].concat().into_boxed_slice())
}

/// Seeds of `target` and mutations of them.
fn mutated(seeds: Vec<String>, words: &'static [&'static str]) -> impl Strategy<Value = String> {
    let n = seeds.len();
    (0..n, prop::collection::vec(edit(words, n), 0..6)).prop_map(move |(i, edits)| apply(&seeds, i, &edits))
}

/// The configuration of a target: `PROPTEST_CASES` inputs, failures kept in
/// `tests/fuzz/regressions/{file}`.
fn config(file: &'static str) -> ProptestConfig {
    use proptest::test_runner::FileFailurePersistence;
    let path: &'static str =
        Box::leak(corpus_dir().join("fuzz/regressions").join(file).to_string_lossy().into_owned().into_boxed_str());
    ProptestConfig {
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(path))),
        ..ProptestConfig::default()
    }
}

fn now() -> chrono::DateTime<chrono::Utc> {
    "2026-12-05T12:00:00Z".parse().unwrap()
}

mod calendars;
mod feeds;
mod operations;
mod resources;
mod search;
