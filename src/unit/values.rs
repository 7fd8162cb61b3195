//! Values that are checked once, while the unit loads, and then cannot be wrong: a number of
//! [`Seconds`] (finite, 0 or more, at most a year), a compiled [`Pattern`], an [`HttpMethod`],
//! an [`HttpUrl`], and sizes with checked arithmetic ([`size_bytes`]).
//!
//! Each reads itself from YAML with a visitor; a bad value is a serde error whose message
//! `config/source.rs` turns into one naming file, line and key (exit 2), so nothing later can
//! panic on it (`Duration::from_secs_f64(-1.0)` did, with exit 101).

use std::fmt;
use std::time::Duration;

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

use crate::config::source::clip;

/// `Deserialize` for a type read from a string by its `new`, whose error message becomes
/// serde's.
macro_rules! checked_text {
    ($name:ident, $expecting:literal) => {
        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                struct V;
                impl Visitor<'_> for V {
                    type Value = $name;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str($expecting)
                    }
                    fn visit_str<E: de::Error>(self, v: &str) -> Result<$name, E> {
                        $name::new(v).map_err(E::custom)
                    }
                }
                deserializer.deserialize_any(V)
            }
        }
    };
}

/// A number of seconds: finite, 0 or more, at most [`Seconds::MAX`].
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Default)]
pub struct Seconds(f64);

impl Seconds {
    /// A year: any longer wait is a mistake, and a bound keeps `Instant + duration` from
    /// overflowing.
    pub const MAX: f64 = 365.0 * 24.0 * 3600.0;

    /// The value, or why it is no number of seconds.
    pub fn new(value: f64) -> Result<Seconds, String> {
        if value.is_nan() {
            Err("expected a number of seconds, found NaN".into())
        } else if value < 0.0 {
            Err(format!(
                "expected a number of seconds, 0 or more, found {value}"
            ))
        } else if value > Self::MAX {
            Err(format!(
                "expected at most {} seconds (a year), found {value}",
                Self::MAX
            ))
        } else {
            Ok(Seconds(value))
        }
    }

    /// Whole seconds, for defaults.
    pub const fn from_secs(secs: u32) -> Seconds {
        Seconds(secs as f64)
    }

    pub fn get(self) -> f64 {
        self.0
    }

    pub fn duration(self) -> Duration {
        Duration::from_secs_f64(self.0)
    }
}

impl fmt::Display for Seconds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl<'de> Deserialize<'de> for Seconds {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Seconds;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number of seconds, like `30` or `2.5`")
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Seconds, E> {
                Seconds::new(v).map_err(E::custom)
            }
            #[allow(clippy::cast_precision_loss)]
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Seconds, E> {
                Seconds::new(v as f64).map_err(E::custom)
            }
            #[allow(clippy::cast_precision_loss)]
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Seconds, E> {
                Seconds::new(v as f64).map_err(E::custom)
            }
        }
        deserializer.deserialize_any(V)
    }
}

/// A regex, compiled while the unit loads; printed and compared as written.
#[derive(Debug, Clone)]
pub struct Pattern(regex::Regex);

impl Pattern {
    /// The compiled regex, or what is wrong with it in one line.
    pub fn new(text: &str) -> Result<Pattern, String> {
        regex::Regex::new(text)
            .map(Pattern)
            .map_err(|e| format!("invalid regex: {}", regex_problem(&e)))
    }

    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    pub fn regex(&self) -> &regex::Regex {
        &self.0
    }
}

impl PartialEq for Pattern {
    fn eq(&self, other: &Pattern) -> bool {
        self.as_str() == other.as_str()
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The regex crate's error in one line: its last line (`unclosed group`), without the pattern
/// and caret it draws above (a long pattern would be repeated whole).
fn regex_problem(err: &regex::Error) -> String {
    match err {
        regex::Error::CompiledTooBig(limit) => {
            format!("the compiled regex would be larger than {limit} bytes")
        }
        other => {
            let text = other.to_string();
            let last = text.lines().last().unwrap_or_default().trim();
            last.strip_prefix("error: ").unwrap_or(last).to_string()
        }
    }
}

checked_text!(Pattern, "a regex");

/// The HTTP methods a check may use.
pub const HTTP_METHODS: [&str; 7] = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"];

/// An HTTP method of [`HTTP_METHODS`], upper-case (written in any case).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpMethod(&'static str);

impl HttpMethod {
    pub const GET: HttpMethod = HttpMethod("GET");

    /// The method named by `word` (any case), or what is wrong.
    pub fn new(word: &str) -> Result<HttpMethod, String> {
        HTTP_METHODS
            .iter()
            .find(|m| m.eq_ignore_ascii_case(word))
            .map(|m| HttpMethod(m))
            .ok_or_else(|| {
                format!(
                    "unknown method `{}` ({})",
                    clip(word, 40),
                    HTTP_METHODS.join(", ")
                )
            })
    }

    pub fn as_str(self) -> &'static str {
        self.0
    }
}

checked_text!(
    HttpMethod,
    "an HTTP method (GET, HEAD, POST, PUT, DELETE, PATCH, OPTIONS)"
);

/// An `http://` or `https://` URL with a host. It may hold `[[ip]](web)` and `[[port 80]](web)`,
/// filled in when the order runs: the check reads each as a plain word.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpUrl(String);

impl HttpUrl {
    pub fn new(text: &str) -> Result<HttpUrl, String> {
        url_problem(text).map_or_else(|| Ok(HttpUrl(text.to_string())), Err)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The URL with its text rewritten by `f`, which may only change `[[...]](K)` placeholders
    /// (they are not part of what [`HttpUrl::new`] checks).
    #[must_use]
    pub fn map_text(&self, f: impl FnOnce(&str) -> String) -> HttpUrl {
        HttpUrl(f(&self.0))
    }
}

/// What is wrong with `text` as an HTTP URL, if anything.
fn url_problem(text: &str) -> Option<String> {
    static SUBSTITUTION: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"\[\[[^\]]+\]\](?:\([^)]*\))?").expect("valid regex")
    });
    let plain = SUBSTITUTION.replace_all(text, "1");
    let shown = clip(text, 80);
    let uri = match plain.parse::<http::Uri>() {
        Ok(uri) => uri,
        Err(e) => return Some(format!("`{shown}` is not a URL: {e}")),
    };
    match uri.scheme_str() {
        Some("http" | "https") => {}
        _ => {
            return Some(format!("`{shown}` is not an `http://` or `https://` URL"));
        }
    }
    if uri.host().is_none_or(str::is_empty) {
        return Some(format!("`{shown}` names no host"));
    }
    None
}

impl fmt::Display for HttpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

checked_text!(HttpUrl, "an `http://` or `https://` URL");

/// A number of CPUs for Swarm resources (`deploy.resources.*.cpus`): finite, more than 0, at
/// most [`Cpus::MAX`]; written as a number or a string (`0.5`, `'2'`, as Compose files do).
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub struct Cpus(f64);

impl Cpus {
    /// More CPUs than any machine has: a typo.
    pub const MAX: f64 = 4096.0;

    pub fn new(value: f64) -> Result<Cpus, String> {
        if value.is_finite() && value > 0.0 && value <= Self::MAX {
            Ok(Cpus(value))
        } else {
            Err(format!(
                "expected a number of CPUs above 0 and at most {}, found {value}",
                Self::MAX
            ))
        }
    }

    pub fn get(self) -> f64 {
        self.0
    }

    /// In billionths of a CPU, as the engine counts them.
    #[allow(clippy::cast_possible_truncation)]
    pub fn nano(self) -> i64 {
        (self.0 * 1e9).round() as i64
    }
}

impl fmt::Display for Cpus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl<'de> Deserialize<'de> for Cpus {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Cpus;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number of CPUs, like `0.5` or `2`")
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Cpus, E> {
                Cpus::new(v).map_err(E::custom)
            }
            #[allow(clippy::cast_precision_loss)]
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Cpus, E> {
                Cpus::new(v as f64).map_err(E::custom)
            }
            #[allow(clippy::cast_precision_loss)]
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Cpus, E> {
                Cpus::new(v as f64).map_err(E::custom)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Cpus, E> {
                let n: f64 = v.trim().parse().map_err(|_| {
                    E::custom(format!(
                        "expected a number of CPUs, like `0.5` or `2`, found `{}`",
                        clip(v, 40)
                    ))
                })?;
                Cpus::new(n).map_err(E::custom)
            }
        }
        deserializer.deserialize_any(V)
    }
}

/// A size in bytes above 0 (a memory limit): a number of bytes or a string like `512m`, read
/// with [`size_bytes`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ByteSize(i64);

impl ByteSize {
    pub fn new(bytes: i64) -> Result<ByteSize, String> {
        if bytes > 0 {
            Ok(ByteSize(bytes))
        } else {
            Err(format!("expected a size above 0, found {bytes}"))
        }
    }

    pub fn get(self) -> i64 {
        self.0
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match crate::unit::forms::Size::deserialize(deserializer)? {
            crate::unit::forms::Size::Bytes(b) => ByteSize::new(b),
            crate::unit::forms::Size::Text(t) => size_bytes(&t).and_then(ByteSize::new),
        }
        .map_err(de::Error::custom)
    }
}

/// A size as bytes: a number, or a number with `k`, `m` or `g` (and an optional `b`), computed
/// with checked arithmetic.
pub fn size_bytes(text: &str) -> Result<i64, String> {
    let t = text.trim().to_ascii_lowercase();
    let t = t.strip_suffix('b').unwrap_or(&t);
    let (num, shift) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 10),
        Some('m') => (&t[..t.len() - 1], 20),
        Some('g') => (&t[..t.len() - 1], 30),
        _ => (t, 0),
    };
    let shown = clip(text, 40);
    let n = num
        .trim()
        .parse::<i64>()
        .map_err(|_| format!("invalid size `{shown}` (use bytes or a number with k, m or g)"))?;
    n.checked_mul(1i64 << shift)
        .ok_or_else(|| format!("size `{shown}` is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::unit::forms::tests::read;

    #[test]
    fn seconds() {
        for (yaml, want) in [
            ("0", Ok(0.0)),
            ("30", Ok(30.0)),
            ("2.5", Ok(2.5)),
            ("31536000", Ok(Seconds::MAX)),
            ("-1", Err("0 or more, found -1")),
            ("-0.5", Err("0 or more, found -0.5")),
            (".nan", Err("found NaN")),
            (".inf", Err("at most 31536000 seconds (a year), found inf")),
            ("-.inf", Err("0 or more, found -inf")),
            ("1e300", Err("at most 31536000 seconds")),
            ("18446744073709551615", Err("at most 31536000 seconds")),
            ("'30'", Err("expected a number of seconds, like `30`")),
            ("[1]", Err("expected a number of seconds")),
        ] {
            match (read::<Seconds>(yaml), want) {
                (Ok(s), Ok(w)) => assert!((s.get() - w).abs() < f64::EPSILON, "{yaml}"),
                (Err(e), Err(w)) => assert!(e.contains(w), "{yaml}: {e}"),
                (got, want) => panic!("{yaml}: got {got:?}, want {want:?}"),
            }
        }
        assert_eq!(Seconds::from_secs(60).duration(), Duration::from_secs(60));
    }

    #[test]
    fn patterns() {
        for (text, want) in [
            ("^ready$", Ok(())),
            ("(?i)listening on \\d+", Ok(())),
            ("([", Err("invalid regex: unclosed character class")),
            ("(a", Err("invalid regex: unclosed group")),
            ("a{99999}{99999}", Err("invalid regex: ")),
        ] {
            match (Pattern::new(text), want) {
                (Ok(p), Ok(())) => assert_eq!(p.as_str(), text),
                (Err(e), Err(w)) => {
                    assert!(e.starts_with(w), "{text}: {e}");
                    assert!(!e.contains('\n'), "{text}: {e}");
                }
                (got, want) => panic!("{text}: got {got:?}, want {want:?}"),
            }
        }
        assert!(read::<Pattern>("'(['").unwrap_err().contains("unclosed"));
    }

    #[test]
    fn methods() {
        for (word, want) in [
            ("GET", Some("GET")),
            ("post", Some("POST")),
            ("Options", Some("OPTIONS")),
            ("FOO", None),
            ("", None),
        ] {
            assert_eq!(HttpMethod::new(word).ok().map(HttpMethod::as_str), want);
        }
        assert!(
            HttpMethod::new("FOO")
                .unwrap_err()
                .contains("unknown method `FOO` (GET, HEAD")
        );
    }

    #[test]
    fn urls() {
        for (text, want) in [
            ("http://localhost:8080/", None),
            ("https://example.org", None),
            ("http://[[ip]](web):80/x?y=1", None),
            ("http://127.0.0.1:[[port 80]](web)/", None),
            ("http://[[.NetworkSettings.IPAddress]](web)/", None),
            ("ftp://x/", Some("is not an `http://` or `https://` URL")),
            (
                "localhost:8080",
                Some("is not an `http://` or `https://` URL"),
            ),
            ("/path", Some("is not an `http://` or `https://` URL")),
            ("ht tp://x", Some("is not a URL")),
            ("http://", Some("is not a URL")),
            ("", Some("is not a URL")),
        ] {
            match (HttpUrl::new(text), want) {
                (Ok(u), None) => assert_eq!(u.as_str(), text),
                (Err(e), Some(w)) => assert!(e.contains(w), "{text}: {e}"),
                (got, want) => panic!("{text}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn sizes() {
        for (text, want) in [
            ("512", Ok(512)),
            ("1k", Ok(1024)),
            ("512m", Ok(512 << 20)),
            ("2g", Ok(2 << 30)),
            ("2GB", Ok(2 << 30)),
            (" 3 m ", Ok(3 << 20)),
            ("8589934591g", Ok(8_589_934_591 << 30)),
            ("8589934592g", Err("too large")),
            ("99999999999g", Err("too large")),
            ("99999999999999999999", Err("invalid size")),
            ("1t", Err("invalid size")),
            ("m", Err("invalid size")),
            ("", Err("invalid size")),
        ] {
            match (size_bytes(text), want) {
                (Ok(n), Ok(w)) => assert_eq!(n, w, "{text}"),
                (Err(e), Err(w)) => assert!(e.contains(w), "{text}: {e}"),
                (got, want) => panic!("{text}: got {got:?}, want {want:?}"),
            }
        }
    }
}
