//! Template rendering with tera (SPEC "Templates").
//!
//! Unit files, `globals.yaml` and Dockerfile templates are rendered before parsing. An undefined
//! variable is an error naming the variable, the file and the line. Names in `{% include %}`,
//! `{% import %}` and `{% extends %}` are paths relative to `units/` or to the unit's
//! `jinja.macroloader_path` (where `import "foo"` may also mean `foo/extensions.yaml`). Only the
//! templates a file names are loaded, so one broken file never breaks another unit.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use regex::Regex;

use crate::error::{Location, TemplateError};

/// Where included templates are looked up.
#[derive(Debug, Clone)]
pub struct TemplateDirs {
    pub dirs: Vec<PathBuf>,
}

static DEPENDENCY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"\{%-?\s*(include|import|extends)\s+(?:"([^"]+)"|'([^']+)')([^%]*)-?%\}"#)
        .expect("valid regex")
});

static UNDEFINED: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"Variable `([^`]+)` not found in context while rendering '([^']+)'")
        .expect("valid regex")
});

static PEST_POSITION: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"-->\s*(\d+):(\d+)").expect("valid regex"));

/// Whether `text` contains template syntax at all.
pub fn is_template(text: &str) -> bool {
    text.contains("{{") || text.contains("{%") || text.contains("{#")
}

/// Renders `text` (read from `file`) with `context`. `dirs` resolves included templates.
pub fn render(
    file: &Path,
    text: &str,
    context: &serde_json::Value,
    dirs: &TemplateDirs,
) -> Result<String, TemplateError> {
    if !is_template(text) {
        return Ok(text.to_string());
    }
    let main_name = file.display().to_string();
    // (template name, file path, text)
    let mut templates: Vec<(String, PathBuf, String)> =
        vec![(main_name.clone(), file.to_path_buf(), text.to_string())];
    let mut seen: BTreeSet<String> = BTreeSet::new();
    seen.insert(main_name.clone());
    let mut i = 0;
    while i < templates.len() {
        let (_, tfile, ttext) = templates[i].clone();
        for cap in DEPENDENCY.captures_iter(&ttext) {
            let name = cap
                .get(2)
                .or_else(|| cap.get(3))
                .map_or("", |m| m.as_str())
                .to_string();
            let ignore_missing = cap
                .get(4)
                .is_some_and(|m| m.as_str().contains("ignore missing"));
            if name.is_empty() || !seen.insert(name.clone()) {
                continue;
            }
            match resolve(&name, dirs) {
                Some(path) => {
                    let body = std::fs::read(&path)
                        .map_err(|e| TemplateError::Render {
                            location: Location::file(&path),
                            message: format!("cannot read template: {e}"),
                        })
                        .and_then(|bytes| {
                            crate::config::source::utf8_text(bytes).map_err(|bad| {
                                TemplateError::Render {
                                    location: Location {
                                        file: path.clone(),
                                        line: Some(bad.line),
                                        column: Some(bad.column),
                                    },
                                    message: bad.to_string(),
                                }
                            })
                        })?;
                    templates.push((name, path, body));
                }
                None if ignore_missing => {}
                None => {
                    let line = cap.get(0).map(|m| line_of_offset(&ttext, m.start()));
                    return Err(TemplateError::MissingInclude {
                        location: Location {
                            file: tfile.clone(),
                            line,
                            column: None,
                        },
                        name,
                        searched: dirs.dirs.clone(),
                    });
                }
            }
        }
        i += 1;
    }

    let mut tera = tera::Tera::default();
    tera.autoescape_on(vec![]);
    let raw: Vec<(String, String)> = templates
        .iter()
        .map(|(n, _, t)| (n.clone(), t.clone()))
        .collect();
    if let Err(err) = tera.add_raw_templates(raw) {
        return Err(syntax_error(&err, &templates));
    }
    let ctx = tera::Context::from_value(context.clone()).map_err(|e| TemplateError::Render {
        location: Location::file(file),
        message: format!("invalid template context: {e}"),
    })?;
    tera.register_function("range", bounded_range);
    match render_bounded(tera, main_name, ctx) {
        Rendered::Text(text) => Ok(text),
        Rendered::Failed(err) => Err(render_error(&err, &templates)),
        Rendered::TooLarge => Err(bound_error(
            &templates,
            &format!(
                "the rendered text is larger than {} MiB",
                MAX_RENDERED >> 20
            ),
        )),
        Rendered::TooSlow => Err(bound_error(
            &templates,
            &format!("rendering took longer than {} s", MAX_RENDER_TIME.as_secs()),
        )),
        Rendered::TooHungry => Err(bound_error(
            &templates,
            &format!(
                "rendering used more than {} MiB of memory",
                MAX_RENDER_MEMORY >> 20
            ),
        )),
    }
}

/// The most items `range` makes: tera's own built the whole list first (`range(end=100000000)`
/// aborted on a 7.2 GB allocation, and `step_by=0` never ended).
pub const MAX_RANGE: usize = 100_000;
/// The most text one file may render to.
pub const MAX_RENDERED: usize = 16 << 20;
/// How long one file may take to render.
pub const MAX_RENDER_TIME: std::time::Duration = std::time::Duration::from_secs(20);
/// How much the process may grow while one file renders (`{% set_global s = s ~ s %}` in a
/// loop doubles a string each time, without writing anything).
pub const MAX_RENDER_MEMORY: u64 = 1 << 30;

/// tera's `range(end, start=0, step_by=1)`, refusing more than [`MAX_RANGE`] items.
fn bounded_range(
    args: &std::collections::HashMap<String, tera::Value>,
) -> tera::Result<tera::Value> {
    let arg = |name: &str, default: Option<u64>| -> tera::Result<u64> {
        match (args.get(name), default) {
            (Some(v), _) => v.as_u64().ok_or_else(|| {
                tera::Error::msg(format!(
                    "Function `range`: `{name}` must be a whole number, 0 or more, not {v}"
                ))
            }),
            (None, Some(d)) => Ok(d),
            (None, None) => Err(tera::Error::msg(format!("Function `range` needs `{name}`"))),
        }
    };
    let (start, end, step) = (
        arg("start", Some(0))?,
        arg("end", None)?,
        arg("step_by", Some(1))?,
    );
    if step == 0 {
        return Err(tera::Error::msg(
            "Function `range`: `step_by` must be 1 or more",
        ));
    }
    if start > end {
        return Err(tera::Error::msg(
            "Function `range`: `start` is greater than `end`",
        ));
    }
    let count = (end - start).div_ceil(step);
    if count > MAX_RANGE as u64 {
        return Err(tera::Error::msg(format!(
            "Function `range` would make {count} items, more than {MAX_RANGE}"
        )));
    }
    Ok(tera::Value::Array(
        (start..end)
            .step_by(usize::try_from(step).unwrap_or(usize::MAX))
            .map(tera::Value::from)
            .collect(),
    ))
}

/// How a bounded rendering ended.
enum Rendered {
    Text(String),
    Failed(tera::Error),
    TooLarge,
    TooSlow,
    TooHungry,
}

/// A writer that refuses to grow past [`MAX_RENDERED`]: tera writes as it renders, so the
/// refusal stops the rendering.
struct Bounded {
    out: Vec<u8>,
    overflowed: bool,
}

impl std::io::Write for Bounded {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.out.len() + buf.len() > MAX_RENDERED {
            self.overflowed = true;
            return Err(std::io::Error::other("rendered text too large"));
        }
        self.out.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Renders `name` on a thread of its own, watched: its output is bounded by [`Bounded`], its
/// time by [`MAX_RENDER_TIME`] and the growth of the process by [`MAX_RENDER_MEMORY`]. A thread
/// that overruns is left behind (tera cannot be stopped) and dstart ends with the error.
fn render_bounded(tera: tera::Tera, name: String, ctx: tera::Context) -> Rendered {
    let (tx, rx) = std::sync::mpsc::channel();
    let spawned = std::thread::Builder::new()
        .name("render".into())
        .spawn(move || {
            let mut out = Bounded {
                out: Vec::new(),
                overflowed: false,
            };
            let result = tera.render_to(&name, &ctx, &mut out);
            let _ = tx.send(match result {
                _ if out.overflowed => Rendered::TooLarge,
                Ok(()) => Rendered::Text(String::from_utf8_lossy(&out.out).into_owned()),
                Err(e) => Rendered::Failed(e),
            });
        });
    if let Err(e) = spawned {
        return Rendered::Failed(tera::Error::msg(format!("cannot start rendering: {e}")));
    }
    let started = std::time::Instant::now();
    let base = resident_bytes();
    loop {
        match rx.recv_timeout(std::time::Duration::from_millis(5)) {
            Ok(done) => return done,
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                return Rendered::Failed(tera::Error::msg("rendering stopped unexpectedly"));
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
        }
        if started.elapsed() > MAX_RENDER_TIME {
            return Rendered::TooSlow;
        }
        if let (Some(b), Some(now)) = (base, resident_bytes()) {
            if now.saturating_sub(b) > MAX_RENDER_MEMORY {
                return Rendered::TooHungry;
            }
        }
    }
}

/// The resident memory of this process (Linux `/proc/self/statm`), if it can be read.
fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // 4 KiB pages, the usual size; with larger pages the bound is only looser.
    Some(pages * 4096)
}

/// An error of a bound, at the first line of the main template that holds a tag.
fn bound_error(templates: &[(String, PathBuf, String)], message: &str) -> TemplateError {
    let (_, file, text) = &templates[0];
    TemplateError::Render {
        location: Location {
            file: file.clone(),
            line: first_tag_line(text),
            column: None,
        },
        message: message.to_string(),
    }
}

/// Where a render error happened, as far as its messages tell: tera gives no position, so the
/// first tag that holds a name they quote (`Filter 'upper2' not found`), else the first tag.
fn failure_line(text: &str, messages: &[String]) -> Option<usize> {
    static QUOTED: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"['`]([A-Za-z_][A-Za-z0-9_.]*)['`]").expect("valid regex"));
    let tag = Regex::new(r"\{\{.*?\}\}|\{%.*?%\}").ok()?;
    for m in messages {
        for c in QUOTED.captures_iter(m) {
            let name = &c[1];
            let found = text
                .lines()
                .position(|l| tag.find_iter(l).any(|t| t.as_str().contains(name)));
            if let Some(i) = found {
                return Some(i + 1);
            }
        }
    }
    first_tag_line(text)
}

/// The first line holding `{{` or `{%`.
fn first_tag_line(text: &str) -> Option<usize> {
    text.lines()
        .position(|l| l.contains("{{") || l.contains("{%"))
        .map(|i| i + 1)
}

/// Finds template `name` in the search directories.
fn resolve(name: &str, dirs: &TemplateDirs) -> Option<PathBuf> {
    for dir in &dirs.dirs {
        let candidate = dir.join(name);
        if candidate.is_file() {
            return Some(candidate);
        }
        let ext = candidate.join("extensions.yaml");
        if ext.is_file() {
            return Some(ext);
        }
    }
    None
}

fn line_of_offset(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// All messages of a tera error chain.
fn chain(err: &tera::Error) -> Vec<String> {
    use std::error::Error as _;
    let mut out = vec![err.to_string()];
    let mut source = err.source();
    while let Some(s) = source {
        out.push(s.to_string());
        source = s.source();
    }
    out
}

fn file_of(name: &str, templates: &[(String, PathBuf, String)]) -> (PathBuf, String) {
    templates.iter().find(|(n, _, _)| n == name).map_or_else(
        || (PathBuf::from(name), String::new()),
        |(_, p, t)| (p.clone(), t.clone()),
    )
}

fn syntax_error(err: &tera::Error, templates: &[(String, PathBuf, String)]) -> TemplateError {
    let messages = chain(err);
    // "Failed to parse 'name'" names the template; the pest error below carries " --> l:c".
    let name = messages
        .iter()
        .find_map(|m| {
            m.strip_prefix("Failed to parse '")
                .and_then(|r| r.split('\'').next())
        })
        .unwrap_or(&templates[0].0)
        .to_string();
    let (file, _) = file_of(&name, templates);
    let detail = messages.last().cloned().unwrap_or_default();
    let (line, column) = PEST_POSITION
        .captures(&detail)
        .map_or((None, None), |c| (c[1].parse().ok(), c[2].parse().ok()));
    let message = detail
        .lines()
        .map(str::trim)
        .rfind(|l| {
            !l.is_empty() && !l.starts_with('|') && !l.starts_with("-->") && !l.starts_with('=')
        })
        .map_or_else(
            || detail.trim().to_string(),
            |l| l.trim_start_matches("= ").to_string(),
        );
    let expected = detail
        .lines()
        .find_map(|l| l.trim().strip_prefix("= "))
        .map(str::to_string);
    TemplateError::Syntax {
        location: Location { file, line, column },
        message: format!("template syntax error: {}", expected.unwrap_or(message)),
    }
}

fn render_error(err: &tera::Error, templates: &[(String, PathBuf, String)]) -> TemplateError {
    let messages = chain(err);
    for m in &messages {
        if let Some(c) = UNDEFINED.captures(m) {
            let variable = c[1].to_string();
            let (file, text) = file_of(&c[2], templates);
            let line = find_variable_line(&text, &variable);
            return TemplateError::UndefinedVariable {
                location: Location {
                    file,
                    line,
                    column: None,
                },
                variable,
            };
        }
    }
    // Other failures: the innermost message says what went wrong.
    let name = messages
        .iter()
        .find_map(|m| {
            m.strip_prefix("Failed to render '")
                .and_then(|r| r.split('\'').next())
        })
        .unwrap_or(&templates[0].0)
        .to_string();
    let (file, text) = file_of(&name, templates);
    let message = messages
        .iter()
        .skip(1)
        .cloned()
        .collect::<Vec<_>>()
        .join(": ");
    TemplateError::Render {
        location: Location {
            file,
            line: failure_line(&text, &messages),
            column: None,
        },
        message: if message.is_empty() {
            messages[0].clone()
        } else {
            message
        },
    }
}

/// The first line where `variable` (its first dotted part at least) appears inside a tag.
fn find_variable_line(text: &str, variable: &str) -> Option<usize> {
    let root = variable.split(['.', '[']).next().unwrap_or(variable);
    let word = Regex::new(&format!(r"(^|[^A-Za-z0-9_.]){}\b", regex::escape(root))).ok()?;
    let tag = Regex::new(r"\{\{.*?\}\}|\{%.*?%\}").ok()?;
    for (i, line) in text.lines().enumerate() {
        for t in tag.find_iter(line) {
            if t.as_str().contains(variable) || word.is_match(t.as_str()) {
                return Some(i + 1);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn range_is_bounded() {
        let render = |t: &str| {
            render(Path::new("a.yaml"), t, &json!({}), &dirs(Path::new("/")))
                .map_err(|e| e.to_string())
        };
        for (text, want) in [
            ("{{ range(end=3) | join(sep=',') }}", Ok("0,1,2")),
            (
                "{{ range(start=2, end=9, step_by=3) | join(sep=',') }}",
                Ok("2,5,8"),
            ),
            ("{{ range(end=100000) | length }}", Ok("100000")),
            (
                "{{ range(end=100001) | length }}",
                Err("would make 100001 items, more than 100000"),
            ),
            (
                "{{ range(end=5, step_by=0) | length }}",
                Err("`step_by` must be 1 or more"),
            ),
            (
                "{{ range(start=5, end=1) | length }}",
                Err("`start` is greater than `end`"),
            ),
            (
                "{{ range(end=-1) | length }}",
                Err("`end` must be a whole number"),
            ),
            ("{{ range() | length }}", Err("needs `end`")),
        ] {
            match (render(text), want) {
                (Ok(got), Ok(w)) => assert_eq!(got, w, "{text}"),
                (Err(e), Err(w)) => {
                    assert!(e.starts_with("a.yaml:1: "), "{text}: {e}");
                    assert!(e.contains(w), "{text}: {e}");
                }
                (got, want) => panic!("{text}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn output_size_is_bounded() {
        let text = format!(
            "a\n{{% for i in range(end=100000) %}}{{% for j in range(end=100000) %}}{}{{% endfor %}}{{% endfor %}}",
            "x".repeat(1000)
        );
        let err = render(
            Path::new("a.yaml"),
            &text,
            &json!({}),
            &dirs(Path::new("/")),
        )
        .unwrap_err()
        .to_string();
        assert_eq!(err, "a.yaml:2: the rendered text is larger than 16 MiB");
    }

    fn dirs(tmp: &Path) -> TemplateDirs {
        TemplateDirs {
            dirs: vec![tmp.to_path_buf()],
        }
    }

    #[test]
    fn plain_text_is_returned_unchanged() {
        let out = render(
            Path::new("a.yaml"),
            "a: 1\n",
            &json!({}),
            &dirs(Path::new("/")),
        )
        .unwrap();
        assert_eq!(out, "a: 1\n");
    }

    #[test]
    fn renders_variables_and_keeps_runtime_placeholders() {
        let out = render(
            Path::new("a.yaml"),
            "x: {{ A }}\nb: ${CONFIG_DIR}/d\nc: \"[[ip]](web)\"\n",
            &json!({"A": "hello"}),
            &dirs(Path::new("/")),
        )
        .unwrap();
        assert_eq!(out, "x: hello\nb: ${CONFIG_DIR}/d\nc: \"[[ip]](web)\"\n");
    }

    #[test]
    fn undefined_variable_names_variable_file_and_line() {
        let err = render(
            Path::new("units/w/start.yaml"),
            "a: 1\nb: {{ MISSING }}\n",
            &json!({}),
            &dirs(Path::new("/")),
        )
        .unwrap_err();
        match err {
            TemplateError::UndefinedVariable { location, variable } => {
                assert_eq!(variable, "MISSING");
                assert_eq!(location.to_string(), "units/w/start.yaml:2");
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn default_filter_makes_a_variable_optional() {
        let out = render(
            Path::new("a.yaml"),
            "b: {{ MISSING | default(value=\"x\") }}",
            &json!({}),
            &dirs(Path::new("/")),
        )
        .unwrap();
        assert_eq!(out, "b: x");
    }

    /// The idiom for optional flags: a bare undefined variable in `{% if %}` is false, while
    /// printing it, or comparing it, is an error.
    #[test]
    fn an_undefined_variable_is_false_in_if_and_an_error_in_output() {
        let text = |t: &str| render(Path::new("a.yaml"), t, &json!({}), &dirs(Path::new("/")));
        let cases = [
            ("{% if FLAG %}on{% else %}off{% endif %}", "off"),
            ("{% if not FLAG %}off{% endif %}", "off"),
            ("{% if FLAG.sub %}on{% else %}off{% endif %}", "off"),
            ("{% if FLAG is defined %}on{% else %}off{% endif %}", "off"),
            ("{{ FLAG | default(value='off') }}", "off"),
        ];
        for (template, expected) in cases {
            assert_eq!(text(template).unwrap(), expected, "{template}");
        }
        for template in ["{{ FLAG }}", "{% if FLAG == 1 %}on{% endif %}"] {
            assert!(
                matches!(
                    text(template),
                    Err(TemplateError::UndefinedVariable { ref variable, .. }) if variable == "FLAG"
                ),
                "{template}: {:?}",
                text(template)
            );
        }
        let defined = render(
            Path::new("a.yaml"),
            "{% if FLAG %}on{% endif %}",
            &json!({"FLAG": true}),
            &dirs(Path::new("/")),
        );
        assert_eq!(defined.unwrap(), "on");
    }

    #[test]
    fn syntax_error_has_line() {
        let err = render(
            Path::new("units/w/start.yaml"),
            "a: 1\nb: {% if %}\n",
            &json!({}),
            &dirs(Path::new("/")),
        )
        .unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("units/w/start.yaml:2:"), "{text}");
    }

    #[test]
    fn includes_resolve_against_dirs_and_missing_is_reported() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(tmp.path().join("common")).unwrap();
        std::fs::write(tmp.path().join("common/part.yaml"), "p: {{ A }}").unwrap();
        std::fs::create_dir_all(tmp.path().join("foo")).unwrap();
        std::fs::write(
            tmp.path().join("foo/extensions.yaml"),
            "{% macro name() %}x1{% endmacro name %}",
        )
        .unwrap();
        let out = render(
            Path::new("t.yaml"),
            "{% import \"foo\" as foo %}{% include \"common/part.yaml\" %}\nn: {{ foo::name() }}\n{% include \"nope\" ignore missing %}",
            &json!({"A": 1}),
            &dirs(tmp.path()),
        )
        .unwrap();
        assert_eq!(out, "p: 1\nn: x1\n");
        let err = render(
            Path::new("t.yaml"),
            "a: 1\n{% include \"nope.yaml\" %}",
            &json!({}),
            &dirs(tmp.path()),
        )
        .unwrap_err();
        assert!(
            matches!(err, TemplateError::MissingInclude { .. }),
            "{err:?}"
        );
        assert!(
            err.to_string()
                .starts_with("t.yaml:2: template `nope.yaml`"),
            "{err}"
        );
    }

    #[test]
    fn modes_membership_works() {
        let out = render(
            Path::new("a.yaml"),
            "{% if 'big' in modes %}big{% else %}small{% endif %}",
            &json!({"modes": ["big"]}),
            &dirs(Path::new("/")),
        )
        .unwrap();
        assert_eq!(out, "big");
    }
}
