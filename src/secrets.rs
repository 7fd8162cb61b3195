//! Secrets stay secret (SPEC "Command line", Secrets): the values of environment variables
//! whose name matches `PASSWORD|SECRET|TOKEN|KEY|CREDENTIAL` (any case) and registry
//! credentials are shown as `***`. [`Secrets::mask`] is the one masking function; `output`
//! applies it to every line, `--print-unit`, `JUnit` files and the archived test files.
//! Below every stage, like `text`.

use std::borrow::Cow;

/// What a secret value is shown as.
pub const MASK: &str = "***";

/// Values shorter than this are not masked: they would hide every digit of a timestamp and
/// protect nothing.
pub const MIN_LEN: usize = 4;

/// Whether an environment variable named `name` holds a secret.
pub fn is_secret_name(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    ["PASSWORD", "SECRET", "TOKEN", "KEY", "CREDENTIAL"]
        .iter()
        .any(|word| upper.contains(word))
}

/// The parts of a secret `value` that are masked wherever they appear: the value, and each line
/// of a multi-line one; none shorter than [`MIN_LEN`].
pub fn maskable(value: &str) -> Vec<&str> {
    let mut candidates = vec![value.trim_end_matches('\n')];
    if value.contains('\n') {
        candidates.extend(value.lines().map(str::trim));
    }
    // `true` and `false` are switches, not secrets (`USE_KEY=true`), and masking them would
    // break the YAML of `--print-unit`.
    candidates.retain(|v| {
        let switch = v.eq_ignore_ascii_case("true") || v.eq_ignore_ascii_case("false");
        v.chars().count() >= MIN_LEN && !switch
    });
    candidates
}

/// The secrets of a template environment, each with the keys that lead to it: scalar values
/// under a secret's name, at any depth (`osenv` included), and every scalar below a secret's
/// name.
pub fn secret_scalars(
    vars: &serde_json::Map<String, serde_json::Value>,
) -> Vec<(Vec<String>, String)> {
    fn walk(
        value: &serde_json::Value,
        path: &mut Vec<String>,
        secret: bool,
        out: &mut Vec<(Vec<String>, String)>,
    ) {
        use serde_json::Value;
        match value {
            Value::String(s) if secret => out.push((path.clone(), s.clone())),
            Value::Number(n) if secret => out.push((path.clone(), n.to_string())),
            Value::Object(map) => {
                for (name, v) in map {
                    path.push(name.clone());
                    walk(v, path, secret || is_secret_name(name), out);
                    path.pop();
                }
            }
            Value::Array(items) => {
                for v in items {
                    walk(v, path, secret, out);
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    let mut path = Vec::new();
    for (name, value) in vars {
        path.push(name.clone());
        walk(value, &mut path, is_secret_name(name), &mut out);
        path.pop();
    }
    out
}

/// The secret values of a run, longest first (so a secret holding another is masked whole).
#[derive(Debug, Clone, Default)]
pub struct Secrets {
    values: Vec<String>,
}

impl Secrets {
    pub const fn new() -> Self {
        Secrets { values: Vec::new() }
    }

    /// Adds `value` (ignored when shorter than [`MIN_LEN`]); also its lines one by one, as a
    /// multi-line secret (a key file) is often logged a line at a time.
    pub fn add(&mut self, value: &str) {
        for v in maskable(value) {
            if !self.values.iter().any(|s| s == v) {
                self.values.push(v.to_string());
            }
        }
        self.values
            .sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
    }

    /// Adds the value of every `(name, value)` whose name is a secret's.
    pub fn add_named<'a>(&mut self, pairs: impl IntoIterator<Item = (&'a str, &'a str)>) {
        for (name, value) in pairs {
            if is_secret_name(name) {
                self.add(value);
            }
        }
    }

    /// Adds the secrets of a template environment (see [`secret_scalars`]).
    pub fn add_json(&mut self, vars: &serde_json::Map<String, serde_json::Value>) {
        for (_, value) in secret_scalars(vars) {
            self.add(&value);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// `text` with every secret value replaced by `***`.
    pub fn mask<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let mut out = Cow::Borrowed(text);
        for secret in &self.values {
            if out.contains(secret.as_str()) {
                out = Cow::Owned(out.replace(secret.as_str(), MASK));
            }
        }
        out
    }

    /// A YAML value with every string (keys included) and number masked; the serializer then
    /// quotes `***` where YAML needs it, so the document stays valid.
    pub fn mask_yaml(&self, value: &serde_yaml_ng::Value) -> serde_yaml_ng::Value {
        use serde_yaml_ng::Value;
        if self.is_empty() {
            return value.clone();
        }
        match value {
            Value::String(s) => Value::String(self.mask(s).into_owned()),
            Value::Number(n) => {
                let text = n.to_string();
                match self.mask(&text) {
                    Cow::Borrowed(_) => value.clone(),
                    Cow::Owned(masked) => Value::String(masked),
                }
            }
            Value::Sequence(items) => {
                Value::Sequence(items.iter().map(|v| self.mask_yaml(v)).collect())
            }
            Value::Mapping(map) => Value::Mapping(
                map.iter()
                    .map(|(k, v)| (self.mask_yaml(k), self.mask_yaml(v)))
                    .collect(),
            ),
            Value::Tagged(t) => Value::Tagged(Box::new(serde_yaml_ng::value::TaggedValue {
                tag: t.tag.clone(),
                value: self.mask_yaml(&t.value),
            })),
            Value::Null | Value::Bool(_) => value.clone(),
        }
    }

    /// `value` as YAML text, masked (see [`Secrets::mask_yaml`]).
    pub fn yaml<T: serde::Serialize>(&self, value: &T) -> String {
        let value = serde_yaml_ng::to_value(value).unwrap_or_default();
        serde_yaml_ng::to_string(&self.mask_yaml(&value)).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_names() {
        for (name, secret) in [
            ("DB_PASSWORD", true),
            ("postgres_password", true),
            ("AWS_SECRET_ACCESS_KEY", true),
            ("GITHUB_TOKEN", true),
            ("api_key", true),
            ("KeyFile", true),
            ("REGISTRY_CREDENTIALS", true),
            ("PASSWD", false),
            ("DB_USER", false),
            ("HOME", false),
            ("", false),
        ] {
            assert_eq!(is_secret_name(name), secret, "{name}");
        }
    }

    #[test]
    fn masking() {
        let mut s = Secrets::default();
        s.add("hunter22");
        s.add("hunter22-and-more");
        s.add("abc");
        s.add("");
        s.add("true");
        s.add("False");
        s.add("-----BEGIN KEY-----\nline-two-of-key\n");
        for (text, masked) in [
            ("no secret here", "no secret here"),
            ("pw=hunter22;", "pw=***;"),
            ("hunter22hunter22", "******"),
            ("x hunter22-and-more y", "x *** y"),
            ("abc is too short to mask", "abc is too short to mask"),
            ("tty: true, init: False", "tty: true, init: False"),
            ("got line-two-of-key", "got ***"),
            ("-----BEGIN KEY-----\nline-two-of-key", "***"),
        ] {
            assert_eq!(s.mask(text), masked, "{text}");
        }
    }

    #[test]
    fn named_and_environment_values() {
        let mut s = Secrets::default();
        s.add_named([("DB_PASSWORD", "pw-one"), ("DB_USER", "user-one")]);
        let env: serde_json::Value = serde_json::json!({
            "API_TOKEN": 12_345_678,
            "PLAIN": "plain-value",
            "USE_KEY": true,
            "osenv": {"GITHUB_TOKEN": "gh-token", "HOME": "/home/x"},
            "secrets": {"one": "nested-one", "list": ["nested-two"]},
        });
        s.add_json(env.as_object().unwrap());
        let text =
            "pw-one user-one 12345678 plain-value true gh-token /home/x nested-one nested-two";
        assert_eq!(
            s.mask(text),
            "*** user-one *** plain-value true *** /home/x *** ***"
        );
    }

    #[test]
    fn masked_yaml_stays_valid() {
        let mut s = Secrets::default();
        s.add("s3cr3t-pw");
        s.add("98765432");
        let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(
            "db:\n  env: [DB_PASSWORD=s3cr3t-pw]\n  environment: {PASSWORD: s3cr3t-pw, PIN: 98765432}\n  s3cr3t-pw: key\n",
        )
        .unwrap();
        let text = serde_yaml_ng::to_string(&s.mask_yaml(&doc)).unwrap();
        assert!(
            !text.contains("s3cr3t") && !text.contains("98765432"),
            "{text}"
        );
        let back: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).unwrap();
        assert_eq!(back["db"]["environment"]["PASSWORD"], "***");
        assert_eq!(back["db"]["environment"]["PIN"], "***");
        assert_eq!(back["db"]["env"][0], "DB_PASSWORD=***");
        assert_eq!(back["db"]["***"], "key");
    }
}
