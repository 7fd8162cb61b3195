//! A rendered configuration file: its YAML documents, and where a key path sits in its text.
//!
//! Parsing uses `serde_yaml_ng` (YAML 1.2, safe, mapping order kept). Positions are only
//! needed when something is wrong, so [`Source::locate`] re-reads the text with
//! `yaml-rust2`'s marked events on demand instead of carrying spans through every value.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;
use serde_yaml_ng::Value;
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

use crate::error::{ConfigError, Location};

/// One step of a path into a YAML document.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PathSeg {
    Key(String),
    Index(usize),
}

impl fmt::Display for PathSeg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PathSeg::Key(k) => write!(f, "{k}"),
            PathSeg::Index(i) => write!(f, "[{i}]"),
        }
    }
}

/// Renders a key path as `a.b[2].c`.
pub fn display_path(path: &[PathSeg]) -> String {
    let mut out = String::new();
    for seg in path {
        match seg {
            PathSeg::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            PathSeg::Index(i) => {
                out.push('[');
                out.push_str(&i.to_string());
                out.push(']');
            }
        }
    }
    out
}

/// A configuration file after template rendering.
#[derive(Debug)]
pub struct Source {
    pub path: PathBuf,
    pub text: String,
}

/// A value and the place it came from: a file, a document in it, and a key path.
#[derive(Debug, Clone)]
pub struct Origin {
    pub source: Arc<Source>,
    pub doc: usize,
    pub path: Vec<PathSeg>,
}

impl Origin {
    pub fn new(source: Arc<Source>, doc: usize, path: Vec<PathSeg>) -> Self {
        Origin { source, doc, path }
    }

    /// An origin for something dstart generated itself (no file behind it).
    pub fn generated(what: &str) -> Self {
        Origin {
            source: Arc::new(Source {
                path: PathBuf::from(format!("<{what}>")),
                text: String::new(),
            }),
            doc: 0,
            path: Vec::new(),
        }
    }

    /// The same origin, one step deeper.
    #[must_use]
    pub fn child(&self, seg: PathSeg) -> Self {
        let mut path = self.path.clone();
        path.push(seg);
        Origin {
            source: Arc::clone(&self.source),
            doc: self.doc,
            path,
        }
    }

    #[must_use]
    pub fn key(&self, key: &str) -> Self {
        self.child(PathSeg::Key(key.to_string()))
    }

    /// The file, line and column of this origin (line and column where they can be found).
    pub fn location(&self) -> Location {
        let (line, column) = match self.source.locate(self.doc, &self.path) {
            Some((l, c)) => (Some(l), Some(c)),
            None => (None, None),
        };
        Location {
            file: self.source.path.clone(),
            line,
            column,
        }
    }

    /// An "invalid configuration" error at this origin.
    pub fn invalid(&self, message: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            location: self.location(),
            message: clip_message(&message.into()),
            hint: None,
        }
    }

    pub fn invalid_with_hint(
        &self,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) -> ConfigError {
        ConfigError::Invalid {
            location: self.location(),
            message: clip_message(&message.into()),
            hint: Some(clip_message(&hint.into())),
        }
    }

    /// Deserializes `value` into `T`, turning a serde error into one that names the file, line
    /// and key. `what` says what is being read ("container `web`").
    pub fn deserialize<T: for<'de> Deserialize<'de>>(
        &self,
        value: &Value,
        what: &str,
    ) -> Result<T, ConfigError> {
        self.read(value)
            .map_err(|e| (*e).into_config_error(what, None))
    }

    /// Deserializes `value` into `T`; a failure says where (the key or item below this origin)
    /// and what went wrong, in plain words.
    pub fn read<T: for<'de> Deserialize<'de>>(&self, value: &Value) -> Result<T, Box<ReadError>> {
        let err = match serde_path_to_error::deserialize::<_, T>(value.clone()) {
            Ok(v) => return Ok(v),
            Err(err) => err,
        };
        let mut rel: Vec<PathSeg> = Vec::new();
        for seg in err.path() {
            match seg {
                serde_path_to_error::Segment::Seq { index } => rel.push(PathSeg::Index(*index)),
                serde_path_to_error::Segment::Map { key } => rel.push(PathSeg::Key(key.clone())),
                serde_path_to_error::Segment::Enum { variant } => {
                    rel.push(PathSeg::Key(variant.clone()));
                }
                serde_path_to_error::Segment::Unknown => {}
            }
        }
        let inner = err.into_inner().to_string();
        let unknown_key = unknown_field(&inner);
        // Depending on the shape, the path of an unknown key ends at its parent or already at
        // the key itself; point at the key, once.
        if let Some((key, _)) = &unknown_key {
            if rel.last() != Some(&PathSeg::Key(key.clone())) {
                rel.push(PathSeg::Key(key.clone()));
            }
        }
        let mut path = self.path.clone();
        path.extend(rel.iter().cloned());
        Err(Box::new(ReadError {
            origin: Origin {
                source: Arc::clone(&self.source),
                doc: self.doc,
                path,
            },
            rel,
            unknown_key,
            message: tidy_serde_message(&inner),
        }))
    }
}

/// A value that could not be read into its type.
#[derive(Debug)]
pub struct ReadError {
    /// Where: the offending key or item.
    pub origin: Origin,
    /// Its path below the value that was read.
    pub rel: Vec<PathSeg>,
    /// The unknown key and the keys accepted there, when that is what went wrong.
    pub unknown_key: Option<(String, Vec<String>)>,
    /// What went wrong, in plain words.
    pub message: String,
}

impl ReadError {
    /// The configuration error, `what` saying what was read ("container `web`").
    pub fn into_config_error(self, what: &str, hint: Option<String>) -> ConfigError {
        let message = if self.rel.is_empty() {
            format!("{what}: {}", self.message)
        } else {
            format!("{what}: `{}`: {}", display_path(&self.rel), self.message)
        };
        ConfigError::Invalid {
            location: self.origin.location(),
            message: clip_message(&message),
            hint,
        }
    }
}

/// The key named by serde's "unknown field `x`, expected one of `a`, `b`" message, and the
/// accepted keys.
fn unknown_field(message: &str) -> Option<(String, Vec<String>)> {
    let rest = message.strip_prefix("unknown field `")?;
    let end = rest.find('`')?;
    let key = rest[..end].to_string();
    let accepted = match rest.find("expected ") {
        Some(i) => rest[i + "expected ".len()..]
            .split('`')
            .skip(1)
            .step_by(2)
            .map(str::to_string)
            .collect(),
        None => Vec::new(),
    };
    Some((key, accepted))
}

/// serde's message in the words of a unit file: `expected X, found Y` instead of
/// `invalid type: Y, expected X`, YAML names for kinds of values, no Rust type names, and
/// without the position `serde_yaml_ng` appends (relative to the value, so meaningless here).
fn tidy_serde_message(message: &str) -> String {
    let msg = match message.find(" at line ") {
        Some(i) => &message[..i],
        None => message,
    };
    for prefix in ["invalid type: ", "invalid value: "] {
        if let Some(rest) = msg.strip_prefix(prefix) {
            if let Some(i) = rest.rfind(", expected ") {
                return format!(
                    "expected {}, found {}",
                    plain_expected(&rest[i + ", expected ".len()..]),
                    plain_unexpected(&rest[..i])
                );
            }
        }
    }
    msg.replace("unknown field", "unknown key")
        .replace("missing field", "missing key")
        .replace("unknown variant", "unknown value")
        .replace("there are no fields", "this takes no keys")
}

/// What serde's `Unexpected` printed, in YAML words.
fn plain_unexpected(found: &str) -> String {
    if let Some(s) = found
        .strip_prefix("string \"")
        .and_then(|s| s.strip_suffix('"'))
    {
        return format!("`{s}`");
    }
    for number in ["integer ", "floating point "] {
        if let Some(n) = found.strip_prefix(number) {
            return format!("the number {n}");
        }
    }
    if let Some(b) = found.strip_prefix("boolean ") {
        return b.to_string();
    }
    match found {
        "map" => "a mapping".into(),
        "sequence" => "a list".into(),
        "unit value" | "null" => "nothing (null)".into(),
        "enum" => "a tagged value".into(),
        other => other.to_string(),
    }
}

/// What a visitor expected, without Rust type names.
fn plain_expected(expected: &str) -> String {
    match expected {
        "u8" | "u16" | "u32" | "u64" | "usize" => "a whole number, 0 or more".into(),
        "i8" | "i16" | "i32" | "i64" | "isize" => "a whole number".into(),
        "f32" | "f64" => "a number".into(),
        "a sequence" => "a list".into(),
        "a map" => "a mapping".into(),
        "unit" => "nothing (null)".into(),
        "option" => "a value".into(),
        other if other.starts_with("struct ") => "a mapping".into(),
        other if other.starts_with("tuple") => "a list".into(),
        other => other.to_string(),
    }
}

impl Source {
    pub fn new(path: impl Into<PathBuf>, text: impl Into<String>) -> Self {
        Source {
            path: path.into(),
            text: text.into(),
        }
    }

    /// All YAML documents of the text, in order. An empty document is `Value::Null`. Merge
    /// keys (`<<: *anchor`, as compose files use them) are applied.
    pub fn documents(&self) -> Result<Vec<Value>, ConfigError> {
        if let Some(mark) = too_deep(&self.text) {
            return Err(ConfigError::Yaml {
                location: Location {
                    file: self.path.clone(),
                    line: Some(mark.line()),
                    column: Some(mark.col() + 1),
                },
                message: format!("lists and mappings nest deeper than {MAX_DEPTH} levels"),
            });
        }
        let mut docs = Vec::new();
        for de in serde_yaml_ng::Deserializer::from_str(&self.text) {
            match Value::deserialize(de) {
                Ok(mut v) => {
                    if let Some((path, found)) = bad_merge(&v, &mut Vec::new()) {
                        let origin = Origin::new(
                            Arc::new(Source::new(&self.path, self.text.clone())),
                            docs.len(),
                            path,
                        );
                        return Err(origin.invalid(format!(
                            "`<<` merges a mapping or a list of mappings, found {found}"
                        )));
                    }
                    v.apply_merge().map_err(|e| yaml_error(&self.path, &e))?;
                    docs.push(v);
                }
                Err(e) if e.to_string().contains("duplicate entry with key") => {
                    // serde_yaml_ng points at the start of the mapping; point at the key.
                    return Err(self
                        .duplicate_key_error()
                        .unwrap_or_else(|| yaml_error(&self.path, &e)));
                }
                Err(e) => return Err(yaml_error(&self.path, &e)),
            }
        }
        Ok(docs)
    }

    /// The line where document `doc` begins (its first node).
    pub fn document_start(&self, doc: usize) -> Location {
        Location {
            file: self.path.clone(),
            line: self.locate(doc, &[]).map(|(line, _)| line),
            column: None,
        }
    }

    /// The first key given twice in one mapping, at its second place, naming the first.
    fn duplicate_key_error(&self) -> Option<ConfigError> {
        let d = find_duplicate_key(&self.text)?;
        let message = format!(
            "duplicate key `{}`, first given at line {}",
            d.key,
            d.first.line()
        );
        Some(ConfigError::Yaml {
            location: Location {
                file: self.path.clone(),
                line: Some(d.second.line()),
                column: Some(d.second.col() + 1),
            },
            message: if d.path.is_empty() {
                message
            } else {
                format!("`{}`: {message}", display_path(&d.path))
            },
        })
    }

    /// Line and column (1-based) of the node at `path` in document `doc`: for a mapping entry,
    /// the position of its key. Falls back to the deepest ancestor that can be found.
    pub fn locate(&self, doc: usize, path: &[PathSeg]) -> Option<(usize, usize)> {
        if self.text.is_empty() {
            return None;
        }
        let mut collector = EventCollector::default();
        let mut parser = Parser::new_from_str(&self.text);
        // A syntax error only cuts the event list short; what was read still locates.
        let _ = parser.load(&mut collector, true);
        let events = collector.events;
        // Find the start of document `doc`.
        let mut i = 0;
        let mut seen = 0;
        while i < events.len() {
            if matches!(events[i].0, Event::DocumentStart) {
                if seen == doc {
                    break;
                }
                seen += 1;
            }
            i += 1;
        }
        if i >= events.len() {
            return None;
        }
        let mut best = None;
        locate_in(&events, i + 1, path, &mut best);
        best.map(|m: Marker| (m.line(), m.col() + 1))
    }
}

/// How deep lists and mappings may nest in a file. A unit needs about 8; the YAML parser's time
/// grows with the cube of the depth (100,000 levels took a minute before it gave up).
pub const MAX_DEPTH: usize = 64;

/// Where `text` nests lists and mappings deeper than [`MAX_DEPTH`], if it does. The parser reads
/// lazily, so a deep file is refused after about [`MAX_DEPTH`] events; a syntax error is left
/// for the real parse to report.
fn too_deep(text: &str) -> Option<Marker> {
    let mut parser = Parser::new_from_str(text);
    let mut depth = 0usize;
    loop {
        match parser.next_token() {
            Ok((Event::MappingStart(..) | Event::SequenceStart(..), mark)) => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Some(mark);
                }
            }
            Ok((Event::MappingEnd | Event::SequenceEnd, _)) => depth = depth.saturating_sub(1),
            // yaml-rust2 scans flow collections ahead and counts their levels in a byte.
            Err(e) if e.info().contains("recursion limit") => return Some(*e.marker()),
            Ok((Event::StreamEnd, _)) | Err(_) => return None,
            Ok(_) => {}
        }
    }
}

/// The path of the first merge key `<<` whose value is neither a mapping nor a list of
/// mappings, and what it holds instead (`serde_yaml_ng`'s own error has no position and calls a
/// list a scalar).
fn bad_merge(value: &Value, path: &mut Vec<PathSeg>) -> Option<(Vec<PathSeg>, &'static str)> {
    let kind = |v: &Value| match v {
        Value::Null => "nothing (null)",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "a mapping",
        Value::Tagged(_) => "a tagged value",
    };
    match value {
        Value::Mapping(map) => {
            for (k, v) in map {
                let key = key_string(k).unwrap_or_default();
                path.push(PathSeg::Key(key.clone()));
                if key == "<<" {
                    let found = match v {
                        Value::Mapping(_) => None,
                        Value::Sequence(items) => items
                            .iter()
                            .find(|i| !i.is_mapping())
                            .map(|_| "a list holding something other than mappings"),
                        other => Some(kind(other)),
                    };
                    if let Some(found) = found {
                        return Some((path.clone(), found));
                    }
                }
                if let Some(bad) = bad_merge(v, path) {
                    return Some(bad);
                }
                path.pop();
            }
            None
        }
        Value::Sequence(items) => {
            for (i, item) in items.iter().enumerate() {
                path.push(PathSeg::Index(i));
                if let Some(bad) = bad_merge(item, path) {
                    return Some(bad);
                }
                path.pop();
            }
            None
        }
        Value::Tagged(t) => bad_merge(&t.value, path),
        _ => None,
    }
}

#[derive(Default)]
struct EventCollector {
    events: Vec<(Event, Marker)>,
}

impl MarkedEventReceiver for EventCollector {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        self.events.push((ev, mark));
    }
}

/// Walks the node starting at `events[i]` along `path`, recording in `best` the position of the
/// deepest node reached. Returns the index just past the node.
fn locate_in(
    events: &[(Event, Marker)],
    i: usize,
    path: &[PathSeg],
    best: &mut Option<Marker>,
) -> usize {
    let Some((event, mark)) = events.get(i) else {
        return i;
    };
    if best.is_none() {
        *best = Some(*mark);
    }
    match event {
        Event::MappingStart(..) => {
            let mut j = i + 1;
            loop {
                match events.get(j) {
                    None => return j,
                    Some((Event::MappingEnd, _)) => return j + 1,
                    Some((key_event, key_mark)) => {
                        let key_text = match key_event {
                            Event::Scalar(s, ..) => Some(s.clone()),
                            _ => None,
                        };
                        let key_end = skip_node(events, j);
                        let wanted = matches!(
                            (path.first(), &key_text),
                            (Some(PathSeg::Key(k)), Some(t)) if k == t
                        );
                        if wanted {
                            *best = Some(*key_mark);
                            if path.len() == 1 {
                                return skip_node(events, key_end);
                            }
                            let mut inner = *best;
                            let end = locate_in(events, key_end, &path[1..], &mut inner);
                            *best = inner;
                            return end;
                        }
                        j = skip_node(events, key_end);
                    }
                }
            }
        }
        Event::SequenceStart(..) => {
            let mut j = i + 1;
            let mut index = 0;
            loop {
                match events.get(j) {
                    None => return j,
                    Some((Event::SequenceEnd, _)) => return j + 1,
                    Some((item_event, item_mark)) => {
                        if matches!(path.first(), Some(PathSeg::Index(n)) if *n == index) {
                            // A mapping item is best shown at its first key.
                            let mark = match (item_event, events.get(j + 1)) {
                                (Event::MappingStart(..), Some((Event::Scalar(..), key_mark))) => {
                                    *key_mark
                                }
                                _ => *item_mark,
                            };
                            *best = Some(mark);
                            if path.len() == 1 {
                                return skip_node(events, j);
                            }
                            let mut inner = *best;
                            let end = locate_in(events, j, &path[1..], &mut inner);
                            *best = inner;
                            return end;
                        }
                        j = skip_node(events, j);
                        index += 1;
                    }
                }
            }
        }
        _ => i + 1,
    }
}

/// The index just past the node starting at `events[i]`.
fn skip_node(events: &[(Event, Marker)], i: usize) -> usize {
    match events.get(i) {
        Some((Event::MappingStart(..) | Event::SequenceStart(..), _)) => {
            let mut depth = 0usize;
            let mut j = i;
            while let Some((ev, _)) = events.get(j) {
                match ev {
                    Event::MappingStart(..) | Event::SequenceStart(..) => depth += 1,
                    Event::MappingEnd | Event::SequenceEnd => {
                        depth -= 1;
                        if depth == 0 {
                            return j + 1;
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
            j
        }
        _ => i + 1,
    }
}

/// A key given twice in one mapping.
struct DuplicateKey {
    key: String,
    /// The path to the mapping.
    path: Vec<PathSeg>,
    first: Marker,
    second: Marker,
}

/// Finds the first key given twice in one mapping of `text` (any document).
fn find_duplicate_key(text: &str) -> Option<DuplicateKey> {
    use std::collections::HashMap;
    use yaml_rust2::scanner::TScalarStyle;

    enum Frame {
        Map {
            /// Keys seen so far (a quoted key is another key than the same plain text).
            keys: HashMap<(bool, String), Marker>,
            /// The next node is a key.
            want_key: bool,
            /// The key whose value is being read.
            key: Option<String>,
        },
        Seq {
            index: usize,
        },
    }

    /// A node below the top frame is complete.
    fn done(stack: &mut [Frame]) {
        match stack.last_mut() {
            Some(Frame::Map { want_key, key, .. }) => {
                if *want_key {
                    // A key that is a collection or an alias: not a key to compare.
                    *want_key = false;
                    *key = None;
                } else {
                    *want_key = true;
                }
            }
            Some(Frame::Seq { index }) => *index += 1,
            None => {}
        }
    }

    let mut collector = EventCollector::default();
    let _ = Parser::new_from_str(text).load(&mut collector, true);
    let mut stack: Vec<Frame> = Vec::new();
    for (event, mark) in collector.events {
        match event {
            Event::DocumentStart => stack.clear(),
            Event::MappingStart(..) => stack.push(Frame::Map {
                keys: HashMap::new(),
                want_key: true,
                key: None,
            }),
            Event::SequenceStart(..) => stack.push(Frame::Seq { index: 0 }),
            Event::MappingEnd | Event::SequenceEnd => {
                stack.pop();
                done(&mut stack);
            }
            Event::Scalar(text, style, ..) => {
                let path: Vec<PathSeg> = stack
                    .iter()
                    .take(stack.len().saturating_sub(1))
                    .filter_map(|f| match f {
                        Frame::Map { key, .. } => key.clone().map(PathSeg::Key),
                        Frame::Seq { index } => Some(PathSeg::Index(*index)),
                    })
                    .collect();
                if let Some(Frame::Map {
                    keys,
                    want_key: want_key @ true,
                    key,
                }) = stack.last_mut()
                {
                    let id = (style == TScalarStyle::Plain, text.clone());
                    if let Some(first) = keys.get(&id) {
                        return Some(DuplicateKey {
                            key: text,
                            path,
                            first: *first,
                            second: mark,
                        });
                    }
                    keys.insert(id, mark);
                    *key = Some(text);
                    *want_key = false;
                } else {
                    done(&mut stack);
                }
            }
            Event::Alias(_) => done(&mut stack),
            _ => {}
        }
    }
    None
}

/// `text`, cut to about `max` bytes (on a character boundary) with `…` and the number of bytes
/// left out: a 4 MiB value is not repeated whole in a message.
pub fn clip(text: &str, max: usize) -> std::borrow::Cow<'_, str> {
    if text.len() <= max {
        return text.into();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} more bytes)", &text[..end], text.len() - end).into()
}

/// The longest value quoted in backticks that a message repeats whole.
pub const MAX_QUOTED: usize = 120;
/// The longest message.
pub const MAX_MESSAGE: usize = 2000;

/// `message` with each value in backticks clipped to [`MAX_QUOTED`] bytes, and the whole to
/// [`MAX_MESSAGE`].
pub fn clip_message(message: &str) -> String {
    if message.len() <= MAX_QUOTED {
        return message.to_string();
    }
    let mut out = String::new();
    for (i, part) in message.split('`').enumerate() {
        if i > 0 {
            out.push('`');
        }
        // Odd parts are inside backticks.
        if i % 2 == 1 {
            out.push_str(&clip(part, MAX_QUOTED));
        } else {
            out.push_str(part);
        }
    }
    clip(&out, MAX_MESSAGE).into_owned()
}

/// The line of `text` that gives `name` as the value of a `name:` key, else the first line that
/// holds it: for errors about values parsed without positions.
pub fn line_naming(text: &str, name: &str) -> Option<usize> {
    if name.is_empty() {
        return None;
    }
    let lines: Vec<&str> = text.lines().collect();
    let names_it = |l: &&str| {
        l.find("name:").is_some_and(|i| {
            let value = l[i + "name:".len()..].trim();
            let value = value.trim_matches(|c| matches!(c, '\'' | '"' | '}' | ',' | ' '));
            value.starts_with(name)
        })
    };
    lines
        .iter()
        .position(names_it)
        .or_else(|| lines.iter().position(|l| l.contains(name)))
        .map(|i| i + 1)
}

/// The first line of `text` holding `needle`, at or after the first line holding `after` (if
/// any line does).
pub fn line_holding(text: &str, after: &str, needle: &str) -> Option<usize> {
    let from = text.lines().position(|l| l.contains(after)).unwrap_or(0);
    text.lines()
        .skip(from)
        .position(|l| l.contains(needle))
        .map(|i| from + i + 1)
}

/// The text of a file that must be UTF-8; a bad byte is an error at its line and column.
pub fn read_text(path: &Path) -> Result<String, ConfigError> {
    let bytes = std::fs::read(path).map_err(|source| ConfigError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    utf8_text(bytes).map_err(|bad| ConfigError::Invalid {
        location: Location {
            file: path.to_path_buf(),
            line: Some(bad.line),
            column: Some(bad.column),
        },
        message: bad.to_string(),
        hint: Some("unit files, templates and environment files are UTF-8 text".into()),
    })
}

/// The first byte that is not UTF-8, and where it is (1-based; the column counts characters).
#[derive(Debug, PartialEq, Eq)]
pub struct BadUtf8 {
    pub line: usize,
    pub column: usize,
    pub byte: u8,
}

impl fmt::Display for BadUtf8 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid UTF-8: byte 0x{:02x}", self.byte)
    }
}

/// `bytes` as text, or where its first bad byte is.
pub fn utf8_text(bytes: Vec<u8>) -> Result<String, BadUtf8> {
    String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        let bytes = e.as_bytes();
        // The bytes before `at` are valid, so they can be read as text.
        let before = std::str::from_utf8(&bytes[..at]).unwrap_or_default();
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        BadUtf8 {
            line: before.matches('\n').count() + 1,
            column: before[line_start..].chars().count() + 1,
            byte: bytes[at],
        }
    })
}

/// A YAML syntax error of `path`, with line and column where the parser knows them.
pub fn yaml_error(path: &Path, err: &serde_yaml_ng::Error) -> ConfigError {
    let (line, column) = match err.location() {
        Some(loc) => (Some(loc.line()), Some(loc.column())),
        None => (None, None),
    };
    let mut message = err.to_string();
    if let Some(i) = message.find(" at line ") {
        message.truncate(i);
    }
    ConfigError::Yaml {
        location: Location {
            file: path.to_path_buf(),
            line,
            column,
        },
        message: clip_message(&message),
    }
}

/// A mapping key as a string: YAML allows integer or boolean keys (`80: 8080`).
pub fn key_string(key: &Value) -> Option<String> {
    match key {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Converts a YAML value to JSON for the template context (keys become strings).
pub fn yaml_to_json(value: &Value) -> serde_json::Value {
    match value {
        Value::Null => serde_json::Value::Null,
        Value::Bool(b) => serde_json::Value::Bool(*b),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                serde_json::Value::from(i)
            } else if let Some(u) = n.as_u64() {
                serde_json::Value::from(u)
            } else {
                n.as_f64()
                    .and_then(serde_json::Number::from_f64)
                    .map_or(serde_json::Value::Null, serde_json::Value::Number)
            }
        }
        Value::String(s) => serde_json::Value::String(s.clone()),
        Value::Sequence(seq) => serde_json::Value::Array(seq.iter().map(yaml_to_json).collect()),
        Value::Mapping(map) => {
            let mut out = serde_json::Map::new();
            for (k, v) in map {
                let key = key_string(k).unwrap_or_else(|| {
                    serde_yaml_ng::to_string(k)
                        .unwrap_or_default()
                        .trim()
                        .to_string()
                });
                out.insert(key, yaml_to_json(v));
            }
            serde_json::Value::Object(out)
        }
        Value::Tagged(t) => yaml_to_json(&t.value),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn src(text: &str) -> Source {
        Source::new("units/t/start.yaml", text)
    }

    #[test]
    fn locates_nested_keys_and_sequence_items() {
        let s = src(
            "web:\n  build:\n    tag: x\n  startup:\n    binds: {}\n---\n- web: {command: start}\n- db:\n    command: stop\n",
        );
        let key = |k: &str| PathSeg::Key(k.to_string());
        assert_eq!(s.locate(0, &[key("web")]), Some((1, 1)));
        assert_eq!(s.locate(0, &[key("web"), key("startup")]), Some((4, 3)));
        assert_eq!(
            s.locate(0, &[key("web"), key("startup"), key("binds")]),
            Some((5, 5))
        );
        assert_eq!(s.locate(1, &[PathSeg::Index(1)]), Some((8, 3)));
        assert_eq!(
            s.locate(1, &[PathSeg::Index(1), key("db"), key("command")]),
            Some((9, 5))
        );
    }

    #[test]
    fn falls_back_to_deepest_ancestor() {
        let s = src("web:\n  build:\n    tag: x\n---\n");
        let key = |k: &str| PathSeg::Key(k.to_string());
        assert_eq!(
            s.locate(0, &[key("web"), key("build"), key("nope")]),
            Some((2, 3))
        );
    }

    #[test]
    fn documents_split_and_empty_is_null() {
        let docs = src("a: 1\n---\n").documents().unwrap();
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[1], Value::Null);
    }

    #[test]
    fn merge_keys_are_applied() {
        let docs =
            src("base: &base {image: busybox, user: '1'}\nweb:\n  <<: *base\n  user: '2'\n---\n")
                .documents()
                .unwrap();
        let web = docs[0].get("web").unwrap();
        assert_eq!(web.get("image").and_then(Value::as_str), Some("busybox"));
        assert_eq!(web.get("user").and_then(Value::as_str), Some("2"));
        assert!(web.get("<<").is_none());
    }

    #[test]
    fn a_duplicate_key_is_found_at_its_second_place() {
        let d = find_duplicate_key("aa: 1\nbb: 2\naa: 3\n").unwrap();
        assert_eq!(d.key, "aa");
        assert!(d.path.is_empty());
        assert_eq!((d.first.line(), d.second.line(), d.second.col()), (1, 3, 0));
        let d = find_duplicate_key(
            "a: {x: 1}\n---\n- web:\n    image: x\n    env: {A: 1}\n    image: y\n",
        )
        .unwrap();
        assert_eq!(d.key, "image");
        assert_eq!(display_path(&d.path), "[0].web");
        assert_eq!((d.first.line(), d.second.line(), d.second.col()), (4, 6, 4));
        // The same key in two mappings, or a quoted and a plain `80`, are no duplicates.
        assert!(find_duplicate_key("a: {x: 1}\nb: {x: 1}\nc: {80: 1, '80': 2}\n").is_none());
    }

    #[test]
    fn syntax_error_has_line() {
        let err = src("a: [1, 2\nb: 3\n").documents().unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("units/t/start.yaml:"), "{text}");
    }

    #[test]
    fn nesting_is_bounded() {
        let flow = |n: usize| format!("a: {}{}\n", "[".repeat(n), "]".repeat(n));
        let block = |n: usize| format!("a:\n{}x\n", "- ".repeat(n));
        for (text, want) in [
            (flow(MAX_DEPTH - 1), None),
            (flow(MAX_DEPTH), Some((1, 67))),
            (flow(100_000), Some((1, 259))),
            (block(MAX_DEPTH - 1), None),
            (block(MAX_DEPTH), Some((2, 127))),
            ("a: [\n".to_string(), None),
        ] {
            let got = too_deep(&text).map(|m| (m.line(), m.col() + 1));
            assert_eq!(got, want, "{}", &text[..text.len().min(40)]);
        }
        let err = src(&flow(1000)).documents().unwrap_err().to_string();
        assert!(err.ends_with("nest deeper than 64 levels"), "{err}");
    }

    #[test]
    fn a_merge_of_anything_but_mappings_is_located() {
        for (text, want) in [
            ("b: &b {x: 1}\na:\n  <<: *b\n", None),
            ("b: &b {x: 1}\na:\n  <<: [*b, *b]\n", None),
            (
                "b: &b [1]\na:\n  <<: *b\n",
                Some(("a.<<", "a list holding something other than mappings")),
            ),
            ("a:\n  - y: 1\n    <<: 5\n", Some(("a[0].<<", "a number"))),
            ("a: {<<: x}\n", Some(("a.<<", "a string"))),
        ] {
            let v: Value = serde_yaml_ng::from_str(text).unwrap();
            let got = bad_merge(&v, &mut Vec::new());
            assert_eq!(
                got.as_ref().map(|(p, f)| (display_path(p), *f)),
                want.map(|(p, f)| (p.to_string(), f)),
                "{text}"
            );
        }
        let err = src("b: &b 5\na:\n  x: 1\n  <<: *b\n")
            .documents()
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "units/t/start.yaml:4:3: `<<` merges a mapping or a list of mappings, found a number"
        );
    }

    #[test]
    fn long_values_are_clipped_in_messages() {
        assert_eq!(clip("short", 10), "short");
        assert_eq!(clip(&"a".repeat(20), 5), "aaaaa… (15 more bytes)");
        assert_eq!(clip("ééé", 3), "é… (4 more bytes)");
        let long = "x".repeat(4 << 20);
        let message = clip_message(&format!("`{long}` is not `KEY=VALUE`"));
        assert_eq!(
            message,
            format!(
                "`{}… ({} more bytes)` is not `KEY=VALUE`",
                "x".repeat(120),
                (4 << 20) - 120
            )
        );
        assert!(clip_message(&"y".repeat(10_000)).len() < MAX_MESSAGE + 40);
    }

    #[test]
    fn the_first_bad_byte_is_found() {
        for (bytes, want) in [
            (&b"a: 1\n"[..], None),
            (b"\xff", Some((1, 1, 0xff))),
            (b"a: 1\nb: \xc3\xa9\xff\n", Some((2, 5, 0xff))),
            (b"a\n\nccc\xc3", Some((3, 4, 0xc3))),
        ] {
            let got = utf8_text(bytes.to_vec())
                .err()
                .map(|b| (b.line, b.column, b.byte));
            assert_eq!(got, want, "{bytes:?}");
        }
    }

    #[test]
    fn display_path_formats() {
        let p = vec![
            PathSeg::Key("startup".into()),
            PathSeg::Key("binds".into()),
            PathSeg::Index(2),
        ];
        assert_eq!(display_path(&p), "startup.binds[2]");
    }
}
