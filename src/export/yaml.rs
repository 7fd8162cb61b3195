//! A small YAML writer for exported files. The readers of an export are Python's `PyYAML`
//! (docker-compose, YAML 1.1) and Go's yaml.v2 (`docker stack deploy`), which read `no`, `on`
//! or `0755` differently from each other and from YAML 1.2: so a string is written plain only
//! when it cannot read as anything but a string anywhere, else JSON-quoted (a JSON string is a
//! YAML double-quoted scalar).

/// A value of the document, mappings in insertion order.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    Str(String),
    Int(i64),
    Bool(bool),
    Seq(Vec<Node>),
    Map(Vec<(String, Node)>),
}

impl Node {
    pub fn str(text: impl Into<String>) -> Node {
        Node::Str(text.into())
    }

    /// A list of strings.
    pub fn strings<S: AsRef<str>>(items: &[S]) -> Node {
        Node::Seq(items.iter().map(|s| Node::str(s.as_ref())).collect())
    }
}

/// A mapping being built, in insertion order.
#[derive(Debug, Default)]
pub struct MapBuilder(Vec<(String, Node)>);

impl MapBuilder {
    pub fn put(&mut self, key: impl Into<String>, value: Node) {
        self.0.push((key.into(), value));
    }

    /// Adds `key` unless `value` is an empty list or mapping.
    pub fn put_nonempty(&mut self, key: impl Into<String>, value: Node) {
        let empty = match &value {
            Node::Seq(v) => v.is_empty(),
            Node::Map(m) => m.is_empty(),
            _ => false,
        };
        if !empty {
            self.put(key, value);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn build(self) -> Node {
        Node::Map(self.0)
    }
}

/// Words YAML 1.1 reads as booleans or null.
const SPECIAL: [&str; 12] = [
    "y", "n", "yes", "no", "on", "off", "true", "false", "null", "~", "nan", "inf",
];

/// Whether `text` reads as the same string when written plain.
fn plain_ok(text: &str) -> bool {
    let Some(first) = text.chars().next() else {
        return false;
    };
    (first.is_ascii_alphabetic() || first == '/' || first == '_')
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_./@+=,:-".contains(c))
        && !text.ends_with(':')
        && !SPECIAL.contains(&text.to_ascii_lowercase().as_str())
}

fn scalar(text: &str) -> String {
    if plain_ok(text) {
        text.to_string()
    } else {
        serde_json::to_string(text).unwrap_or_default()
    }
}

fn inline(node: &Node) -> Option<String> {
    match node {
        Node::Str(s) => Some(scalar(s)),
        Node::Int(i) => Some(i.to_string()),
        Node::Bool(b) => Some(b.to_string()),
        Node::Seq(v) if v.is_empty() => Some("[]".into()),
        Node::Map(m) if m.is_empty() => Some("{}".into()),
        Node::Seq(_) | Node::Map(_) => None,
    }
}

fn write(node: &Node, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    match node {
        Node::Map(entries) => {
            for (key, value) in entries {
                out.push_str(&pad);
                out.push_str(&scalar(key));
                out.push(':');
                if let Some(text) = inline(value) {
                    out.push(' ');
                    out.push_str(&text);
                    out.push('\n');
                } else {
                    out.push('\n');
                    write(value, indent + 2, out);
                }
            }
        }
        Node::Seq(items) => {
            for item in items {
                if let Some(text) = inline(item) {
                    out.push_str(&pad);
                    out.push_str("- ");
                    out.push_str(&text);
                    out.push('\n');
                } else {
                    // The item's block at indent + 2, its first line starting with `- `.
                    let mut block = String::new();
                    write(item, indent + 2, &mut block);
                    out.push_str(&pad);
                    out.push_str("- ");
                    out.push_str(&block[indent + 2..]);
                }
            }
        }
        scalar_node => {
            out.push_str(&pad);
            out.push_str(&inline(scalar_node).unwrap_or_default());
            out.push('\n');
        }
    }
}

/// `node` as a block YAML document.
pub fn to_string(node: &Node) -> String {
    let mut out = String::new();
    write(node, 0, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_that_could_read_otherwise_are_quoted() {
        for (text, written) in [
            ("busybox:latest", "busybox:latest"),
            ("no", "\"no\""),
            ("On", "\"On\""),
            ("0755", "\"0755\""),
            ("127.0.0.1:8080:80", "\"127.0.0.1:8080:80\""),
            ("/var/www:ro", "/var/www:ro"),
            ("a b", "\"a b\""),
            ("", "\"\""),
            ("x:", "\"x:\""),
            ("$${HOME}", "\"$${HOME}\""),
            ("line\nbreak", "\"line\\nbreak\""),
        ] {
            assert_eq!(scalar(text), written, "{text}");
        }
    }

    #[test]
    fn nested_blocks() {
        let mut inner = MapBuilder::default();
        inner.put("a", Node::Int(1));
        inner.put("b", Node::strings(&["x", "y z"]));
        inner.put_nonempty("c", Node::Seq(Vec::new()));
        let mut item = MapBuilder::default();
        item.put("k", Node::Bool(true));
        item.put("l", Node::str("v"));
        inner.put("d", Node::Seq(vec![item.build()]));
        let mut top = MapBuilder::default();
        top.put("top", inner.build());
        top.put("e", Node::Map(Vec::new()));
        assert_eq!(
            to_string(&top.build()),
            "top:\n  a: 1\n  b:\n    - x\n    - \"y z\"\n  d:\n    - k: true\n      l: v\ne: {}\n"
        );
    }
}
