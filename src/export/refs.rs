//! The text of an exported value: Compose interpolates every `$` of a value, so a `$` of the
//! unit is written `$$`; and no secret is written in clear: a secret value becomes a `${NAME}`
//! reference that Compose fills in from its environment (SPEC "Secrets").

use indexmap::IndexMap;

use crate::secrets::maskable;

/// The secrets of one export: which value each `${NAME}` stands for.
#[derive(Debug, Default)]
pub struct SecretRefs {
    /// Name → value, in the order the names were given out.
    names: IndexMap<String, String>,
    /// Maskable parts of every secret value → its name, longest first.
    parts: Vec<(String, String)>,
    /// The names written into the export, in order.
    used: indexmap::IndexSet<String>,
}

/// `name` as a Compose variable name (`[A-Za-z_][A-Za-z0-9_]*`).
fn variable(name: &str) -> String {
    let mut out = crate::text::replace_unless(name, |c| c.is_ascii_alphanumeric() || c == '_', '_');
    if out.starts_with(|c: char| c.is_ascii_digit()) || out.is_empty() {
        out.insert(0, '_');
    }
    out
}

impl SecretRefs {
    /// The name `${…}` of `value`, preferring `name`, else `fallback`, else either with a number
    /// (one name stands for one value).
    pub fn name_for(&mut self, name: &str, fallback: &str, value: &str) -> String {
        let candidates = [variable(name), variable(fallback)];
        let mut chosen = None;
        for n in candidates
            .iter()
            .cloned()
            .chain((2..).map(|i| format!("{}_{i}", candidates[1])))
        {
            match self.names.get(&n) {
                Some(v) if v == value => return n,
                Some(_) => {}
                None => {
                    chosen = Some(n);
                    break;
                }
            }
        }
        let chosen = chosen.unwrap_or_else(|| candidates[0].clone());
        self.names.insert(chosen.clone(), value.to_string());
        for part in maskable(value) {
            if !self.parts.iter().any(|(p, _)| p == part) {
                self.parts.push((part.to_string(), chosen.clone()));
            }
        }
        self.parts
            .sort_by(|a, b| b.0.len().cmp(&a.0.len()).then_with(|| a.0.cmp(&b.0)));
        chosen
    }

    /// `${NAME}` of a whole value.
    pub fn reference(&mut self, name: &str, fallback: &str, value: &str) -> String {
        let name = self.name_for(name, fallback, value);
        let text = format!("${{{name}}}");
        self.used.insert(name);
        text
    }

    /// `text` for Compose: `$` doubled, and every secret value in it a `${NAME}` reference.
    pub fn text(&mut self, text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        'outer: while !rest.is_empty() {
            for (part, name) in &self.parts {
                if let Some(tail) = rest.strip_prefix(part.as_str()) {
                    out.push_str("${");
                    out.push_str(name);
                    out.push('}');
                    self.used.insert(name.clone());
                    rest = tail;
                    continue 'outer;
                }
            }
            let c = rest.chars().next().unwrap_or_default();
            if c == '$' {
                out.push('$');
            }
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
        out
    }

    /// The names written into the export, in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.used.iter().map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dollars_are_doubled_and_secrets_referenced() {
        let mut refs = SecretRefs::default();
        assert_eq!(
            refs.reference("DB_PASSWORD", "db_DB_PASSWORD", "hunter22"),
            "${DB_PASSWORD}"
        );
        assert_eq!(
            refs.text("psql -W hunter22 $HOME"),
            "psql -W ${DB_PASSWORD} $$HOME"
        );
        assert_eq!(refs.text("no secret"), "no secret");
    }

    #[test]
    fn one_name_per_value() {
        let mut refs = SecretRefs::default();
        assert_eq!(
            refs.name_for("PASSWORD", "web_PASSWORD", "first-one"),
            "PASSWORD"
        );
        assert_eq!(
            refs.name_for("PASSWORD", "db_PASSWORD", "first-one"),
            "PASSWORD"
        );
        assert_eq!(
            refs.name_for("PASSWORD", "db_PASSWORD", "second"),
            "db_PASSWORD"
        );
        assert_eq!(
            refs.name_for("PASSWORD", "db_PASSWORD", "third"),
            "db_PASSWORD_2"
        );
        assert_eq!(refs.name_for("api.token", "x", "tok-value"), "api_token");
        // Only names written into the export are listed.
        assert_eq!(refs.names().count(), 0);
        assert_eq!(refs.text("[tok-value]"), "[${api_token}]");
        assert_eq!(refs.names().collect::<Vec<_>>(), ["api_token"]);
    }

    #[test]
    fn short_secrets_are_referenced_by_name_only() {
        let mut refs = SecretRefs::default();
        assert_eq!(refs.reference("KEY", "k", "abc"), "${KEY}");
        // Three characters are not masked anywhere (secrets::MIN_LEN), so not replaced either.
        assert_eq!(refs.text("abc"), "abc");
    }
}
