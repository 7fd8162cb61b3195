//! The build context of an image: the build directory streamed as a tar, without what
//! `.dockerignore` excludes (Docker's rules: patterns anchored at the context root, `*` and `?`
//! within one path element, `**` across elements, `!` re-includes, the last match wins, a
//! pattern matching a directory excludes what is below it). A `Dockerfile.tera` or
//! `Dockerfile.j2` is rendered and sent as `Dockerfile`.

use std::io::Write;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use futures_util::Stream;
use regex::Regex;
use tokio::sync::mpsc;

/// One `.dockerignore` pattern.
#[derive(Debug)]
struct Pattern {
    regex: Regex,
    exception: bool,
}

/// The rules of a `.dockerignore` file.
#[derive(Debug, Default)]
pub struct Ignore {
    patterns: Vec<Pattern>,
}

/// Translates one pattern (Go `filepath.Match` plus `**`) into an anchored regex.
pub fn pattern_regex(pattern: &str) -> Option<Regex> {
    let mut re = String::from("^");
    let chars: Vec<char> = pattern.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '*' => {
                if chars.get(i + 1) == Some(&'*') {
                    i += 1;
                    // `**/` matches zero or more directories.
                    if chars.get(i + 1) == Some(&'/') {
                        i += 1;
                        re.push_str("(?:.*/)?");
                    } else {
                        re.push_str(".*");
                    }
                } else {
                    re.push_str("[^/]*");
                }
            }
            '?' => re.push_str("[^/]"),
            '[' => {
                let mut j = i + 1;
                let mut class = String::from("[");
                if chars.get(j) == Some(&'^') || chars.get(j) == Some(&'!') {
                    class.push('^');
                    j += 1;
                }
                while j < chars.len() && chars[j] != ']' {
                    if chars[j] == '\\' && j + 1 < chars.len() {
                        class.push_str(&regex::escape(&chars[j + 1].to_string()));
                        j += 2;
                        continue;
                    }
                    if matches!(chars[j], '[' | '&' | '~' | '|') {
                        class.push('\\');
                    }
                    class.push(chars[j]);
                    j += 1;
                }
                if j >= chars.len() {
                    return None;
                }
                class.push(']');
                re.push_str(&class);
                i = j;
            }
            '\\' => {
                if let Some(n) = chars.get(i + 1) {
                    re.push_str(&regex::escape(&n.to_string()));
                    i += 1;
                }
            }
            other => re.push_str(&regex::escape(&other.to_string())),
        }
        i += 1;
    }
    re.push('$');
    Regex::new(&re).ok()
}

/// `filepath.Clean` for a relative pattern: no leading `/` or `./`, no `.` elements.
fn clean(pattern: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for p in pattern.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    parts.join("/")
}

impl Ignore {
    /// Parses the text of a `.dockerignore` file; an invalid pattern is an error with its line
    /// number (1-based), never dropped: it would send what the user meant to keep out.
    pub fn parse(text: &str) -> Result<Self, (usize, String)> {
        let mut patterns = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (exception, pat) = match line.strip_prefix('!') {
                Some(rest) => (true, rest.trim()),
                None => (false, line),
            };
            let cleaned = clean(pat);
            if cleaned.is_empty() {
                continue;
            }
            let regex = pattern_regex(&cleaned).ok_or_else(|| (n + 1, pat.to_string()))?;
            patterns.push(Pattern { regex, exception });
        }
        Ok(Ignore { patterns })
    }

    /// The rules of the `.dockerignore` file in `dir` (none without one).
    pub fn read(dir: &Path) -> Result<Self, crate::error::ConfigError> {
        use crate::error::{ConfigError, Location};
        let path = dir.join(".dockerignore");
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Ignore::default()),
            Err(source) => return Err(ConfigError::Io { path, source }),
        };
        Ignore::parse(&text).map_err(|(line, pattern)| ConfigError::Invalid {
            location: Location {
                file: path,
                line: Some(line),
                column: None,
            },
            message: format!("invalid pattern `{pattern}`"),
            hint: Some(
                "a `[` opens a character class that a `]` must close; `\\[` is a `[` itself".into(),
            ),
        })
    }

    /// Whether `rel` (a `/`-separated path relative to the context) is excluded.
    pub fn excluded(&self, rel: &str) -> bool {
        let mut excluded = false;
        for p in &self.patterns {
            let mut matched = p.regex.is_match(rel);
            if !matched {
                // A pattern matching a parent directory matches what is below it.
                let mut parent = rel;
                while let Some(i) = parent.rfind('/') {
                    parent = &parent[..i];
                    if p.regex.is_match(parent) {
                        matched = true;
                        break;
                    }
                }
            }
            if matched {
                excluded = !p.exception;
            }
        }
        excluded
    }

    fn has_exceptions(&self) -> bool {
        self.patterns.iter().any(|p| p.exception)
    }
}

/// Reads the `.dockerignore` of every build that `unit`'s orders may run, before anything runs:
/// an invalid pattern is the configuration's error (exit 2), not a failed order.
pub fn check_ignores(
    conf: &Path,
    cwd: &Path,
    unit: &crate::unit::Unit,
) -> Result<(), crate::error::ConfigError> {
    use crate::unit::order::Action;
    for order in unit.orders() {
        if matches!(
            order.action,
            Action::Stop(_) | Action::Remove(_) | Action::RemoveImage(_)
        ) {
            continue;
        }
        let build = unit
            .containers
            .get(&order.container)
            .and_then(|c| c.spec.build.as_ref());
        if let Some(b) = build {
            Ignore::read(&crate::execute::build_path(conf, cwd, &b.path))?;
        }
    }
    Ok(())
}

/// What goes into a build context.
#[derive(Debug, Clone)]
pub struct ContextSpec {
    pub dir: PathBuf,
    /// The Dockerfile's path inside the context.
    pub dockerfile: String,
    /// A rendered Dockerfile to send under `dockerfile` instead of a file.
    pub rendered: Option<Vec<u8>>,
    /// The template the rendered Dockerfile came from (not sent).
    pub template: Option<String>,
}

/// Files of the context, sorted, as (relative path, absolute path).
pub fn context_files(spec: &ContextSpec) -> std::io::Result<Vec<(String, PathBuf)>> {
    let ignore = Ignore::read(&spec.dir)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()))?;
    let mut out = Vec::new();
    walk(&spec.dir, "", &ignore, spec, &mut out)?;
    Ok(out)
}

fn walk(
    dir: &Path,
    prefix: &str,
    ignore: &Ignore,
    spec: &ContextSpec,
    out: &mut Vec<(String, PathBuf)>,
) -> std::io::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.filter_map(Result::ok).collect();
    entries.sort_by_key(std::fs::DirEntry::file_name);
    for entry in entries {
        let name = entry.file_name().to_string_lossy().into_owned();
        let rel = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}/{name}")
        };
        let path = entry.path();
        let kind = entry.file_type()?;
        // The Dockerfile and .dockerignore always go (as the docker CLI does); a rendered
        // Dockerfile replaces the file and its template stays out.
        let always = rel == spec.dockerfile || rel == ".dockerignore";
        if spec.rendered.is_some()
            && (rel == spec.dockerfile || Some(&rel) == spec.template.as_ref())
        {
            continue;
        }
        let excluded = !always && ignore.excluded(&rel);
        if kind.is_dir() {
            if excluded && !ignore.has_exceptions() {
                continue;
            }
            if !excluded {
                out.push((rel.clone(), path.clone()));
            }
            walk(&path, &rel, ignore, spec, out)?;
        } else if !excluded {
            out.push((rel, path));
        }
    }
    Ok(())
}

/// A writer that sends what is written as chunks over a channel (to stream a tar).
pub struct ChannelWriter {
    tx: mpsc::Sender<Result<Bytes, std::io::Error>>,
    buf: Vec<u8>,
    chunk: usize,
}

impl ChannelWriter {
    pub fn new(tx: mpsc::Sender<Result<Bytes, std::io::Error>>, chunk: usize) -> Self {
        ChannelWriter {
            tx,
            buf: Vec::with_capacity(chunk),
            chunk,
        }
    }

    fn send(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let data = Bytes::from(std::mem::replace(
            &mut self.buf,
            Vec::with_capacity(self.chunk),
        ));
        self.tx.blocking_send(Ok(data)).map_err(|_| {
            std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the receiver went away")
        })
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= self.chunk {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.send()
    }
}

/// A stream of chunks received from a channel.
pub fn receiver_stream<T: Send + 'static>(
    mut rx: mpsc::Receiver<T>,
) -> impl Stream<Item = T> + Send + 'static {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

/// Streams the build context as a tar, written on a blocking thread.
pub fn tar_stream(
    spec: ContextSpec,
) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
    let (tx, rx) = mpsc::channel(8);
    tokio::task::spawn_blocking(move || {
        let errors = tx.clone();
        let result = (|| -> std::io::Result<()> {
            let files = context_files(&spec)?;
            let mut builder = tar::Builder::new(ChannelWriter::new(tx, 256 * 1024));
            builder.mode(tar::HeaderMode::Deterministic);
            builder.follow_symlinks(false);
            for (rel, path) in files {
                builder.append_path_with_name(&path, &rel)?;
            }
            if let Some(rendered) = &spec.rendered {
                let mut header = tar::Header::new_gnu();
                header.set_size(rendered.len() as u64);
                header.set_mode(0o644);
                header.set_mtime(0);
                header.set_cksum();
                builder.append_data(&mut header, &spec.dockerfile, rendered.as_slice())?;
            }
            let mut writer = builder.into_inner()?;
            writer.flush()
        })();
        if let Err(e) = result {
            let _ = errors.blocking_send(Err(e));
        }
    });
    receiver_stream(rx)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dockerignore_rules() {
        let ig = Ignore::parse(
            "# comment\n*.log\n/tmp\nbuild/**\n!build/keep.txt\n**/secret*\ndocs/?.md\n",
        )
        .unwrap();
        assert!(ig.excluded("a.log"));
        assert!(!ig.excluded("sub/a.log"), "`*.log` is anchored at the root");
        assert!(ig.excluded("tmp"));
        assert!(
            ig.excluded("tmp/x/y"),
            "a matched directory excludes what is below it"
        );
        assert!(ig.excluded("build/out/x.o"));
        assert!(!ig.excluded("build/keep.txt"));
        assert!(ig.excluded("secret.txt"));
        assert!(ig.excluded("a/b/secret.key"));
        assert!(ig.excluded("docs/a.md"));
        assert!(!ig.excluded("docs/ab.md"));
        assert!(!ig.excluded("src/main.rs"));
    }

    #[test]
    fn invalid_patterns_are_errors_naming_the_line() {
        for (text, line, pattern) in [
            ("ok\n[unclosed\n", 2, "[unclosed"),
            ("# c\n\n!a[b\n", 3, "a[b"),
            ("a\\[b\n[x\n", 2, "[x"),
        ] {
            assert_eq!(
                Ignore::parse(text).unwrap_err(),
                (line, pattern.to_string()),
                "{text}"
            );
        }
        assert!(Ignore::parse("a\\[b\n[ab]\n").is_ok());
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join(".dockerignore"), "*.log\nbuild/[\n").unwrap();
        let err = Ignore::read(tmp.path()).unwrap_err().to_string();
        assert!(
            err.ends_with(".dockerignore:2: invalid pattern `build/[`"),
            "{err}"
        );
    }

    #[test]
    fn context_files_honour_dockerignore_and_keep_the_dockerfile() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        std::fs::write(d.join("Dockerfile"), "FROM scratch\n").unwrap();
        std::fs::write(d.join(".dockerignore"), "*\n!keep\n").unwrap();
        std::fs::write(d.join("keep"), "x").unwrap();
        std::fs::write(d.join("drop"), "x").unwrap();
        let spec = ContextSpec {
            dir: d.to_path_buf(),
            dockerfile: "Dockerfile".into(),
            rendered: None,
            template: None,
        };
        let names: Vec<String> = context_files(&spec)
            .unwrap()
            .into_iter()
            .map(|(r, _)| r)
            .collect();
        assert_eq!(names, vec![".dockerignore", "Dockerfile", "keep"]);
    }

    #[test]
    fn rendered_dockerfile_replaces_template() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        std::fs::write(d.join("Dockerfile.tera"), "FROM {{ base }}\n").unwrap();
        std::fs::write(d.join("app.txt"), "x").unwrap();
        let spec = ContextSpec {
            dir: d.to_path_buf(),
            dockerfile: "Dockerfile".into(),
            rendered: Some(b"FROM scratch\n".to_vec()),
            template: Some("Dockerfile.tera".into()),
        };
        let names: Vec<String> = context_files(&spec)
            .unwrap()
            .into_iter()
            .map(|(r, _)| r)
            .collect();
        assert_eq!(names, vec!["app.txt"]);
    }
}
