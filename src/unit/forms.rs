//! Values a unit file may write in more than one form (`command: "a b"` or `command: [a, b]`,
//! `env` as a mapping or a list, ...), each read by a visitor whose `expecting` text lists the
//! accepted forms in plain words.
//!
//! serde's untagged enums would only say that "data did not match any variant", naming a Rust
//! type; these say which forms the key takes (`config/source.rs` adds which key and what was
//! found), and errors inside a form (an unknown key of a bind) keep their own message and path.

use std::fmt;

use indexmap::IndexMap;
use serde::Deserialize;
use serde::de::value::{MapAccessDeserializer, SeqAccessDeserializer};
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Unexpected, Visitor};

/// A type with two forms: a mapping or a list.
macro_rules! map_or_list {
    ($(#[$doc:meta])* $name:ident, $map:ty, $list:ty, $expecting:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq)]
        pub enum $name {
            Map($map),
            List($list),
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                struct V;
                impl<'de> Visitor<'de> for V {
                    type Value = $name;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str($expecting)
                    }
                    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<$name, A::Error> {
                        <$map>::deserialize(MapAccessDeserializer::new(map)).map($name::Map)
                    }
                    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<$name, A::Error> {
                        <$list>::deserialize(SeqAccessDeserializer::new(seq)).map($name::List)
                    }
                }
                deserializer.deserialize_any(V)
            }
        }
    };
}

/// A type holding a single value written as a string or a number, kept as text.
macro_rules! text_of_scalar {
    ($(#[$doc:meta])* $name:ident, $expecting:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub struct $name(pub String);

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                struct V;
                impl Visitor<'_> for V {
                    type Value = $name;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str($expecting)
                    }
                    fn visit_str<E: de::Error>(self, v: &str) -> Result<$name, E> {
                        Ok($name(v.to_string()))
                    }
                    fn visit_i64<E: de::Error>(self, v: i64) -> Result<$name, E> {
                        Ok($name(v.to_string()))
                    }
                    fn visit_u64<E: de::Error>(self, v: u64) -> Result<$name, E> {
                        Ok($name(v.to_string()))
                    }
                }
                deserializer.deserialize_any(V)
            }
        }
    };
}

/// A string or a list of strings.
#[derive(Debug, Clone, PartialEq)]
pub enum StringOrList {
    One(String),
    Many(Vec<String>),
}

impl StringOrList {
    pub fn to_vec(&self) -> Vec<String> {
        match self {
            StringOrList::One(s) => vec![s.clone()],
            StringOrList::Many(v) => v.clone(),
        }
    }
}

impl<'de> Deserialize<'de> for StringOrList {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = StringOrList;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or a list of strings")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<StringOrList, E> {
                Ok(StringOrList::One(v.to_string()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<StringOrList, A::Error> {
                Vec::deserialize(SeqAccessDeserializer::new(seq)).map(StringOrList::Many)
            }
        }
        deserializer.deserialize_any(V)
    }
}

/// A single value that is used as text (`A: 1` in `env`, a label, a build argument).
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
}

impl Scalar {
    pub fn as_string(&self) -> String {
        match self {
            Scalar::Str(s) => s.clone(),
            Scalar::Int(i) => i.to_string(),
            Scalar::Float(f) => f.to_string(),
            Scalar::Bool(b) => b.to_string(),
        }
    }
}

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Scalar;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a single value (a string, a number or `true`/`false`)")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar, E> {
                Ok(Scalar::Str(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
                Ok(Scalar::Int(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
                Ok(i64::try_from(v).map_or_else(|_| Scalar::Str(v.to_string()), Scalar::Int))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Scalar, E> {
                Ok(Scalar::Float(v))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Scalar, E> {
                Ok(Scalar::Bool(v))
            }
        }
        deserializer.deserialize_any(V)
    }
}

text_of_scalar!(
    /// A mapping key written as a string or a number (`80: 8080`).
    StrKey,
    "a string or a number"
);

text_of_scalar!(
    /// A compose-style port: `6379`, `8080:80`, `127.0.0.1:8080:80/udp`.
    PortText,
    "a port like `80`, `8080:80` or `127.0.0.1:8080:80/udp`"
);

text_of_scalar!(
    /// A user name or id, optionally with a group (`1000:1000`).
    UserText,
    "a user name or id, optionally with a group, like `1000` or `www-data:www-data`"
);

map_or_list!(
    /// Environment variables: a mapping, or a list of `KEY=VALUE`.
    EnvValue,
    IndexMap<String, Option<Scalar>>,
    Vec<String>,
    "a mapping of `NAME: value`, or a list of `NAME=value` strings"
);

map_or_list!(
    /// Labels: a mapping, or a list of `key=value`.
    LabelsValue,
    IndexMap<String, Scalar>,
    Vec<String>,
    "a mapping of `name: value`, or a list of `name=value` strings"
);

map_or_list!(
    /// `startup.binds`: `{host: target}` or a list of `host:ctr[:ro]`.
    BindsValue,
    IndexMap<String, BindTarget>,
    Vec<String>,
    "a mapping of host paths to `{bind: /container/path, ro: true}` (or just the container path), or a list of `/host:/container[:ro]` strings"
);

map_or_list!(
    /// `startup.links`: `{name: alias}` or a list of `name`, `name:alias` or `[name, alias]`.
    LinksValue,
    IndexMap<String, Option<String>>,
    Vec<StringOrList>,
    "a mapping of `name: alias`, or a list of `name`, `name:alias` or `[name, alias]`"
);

map_or_list!(
    /// `extra_hosts`: `{host: ip}` or a list of `host:ip`.
    ExtraHostsValue,
    IndexMap<String, String>,
    Vec<String>,
    "a mapping of `host: ip`, or a list of `host:ip` strings"
);

map_or_list!(
    /// `tmpfs`: `{path: options}` or a list of paths.
    TmpfsValue,
    IndexMap<String, Option<String>>,
    Vec<String>,
    "a mapping of `path: options`, or a list of paths"
);

/// A memory size: a number of bytes or a string like `512m`.
#[derive(Debug, Clone, PartialEq)]
pub enum Size {
    Bytes(i64),
    Text(String),
}

impl<'de> Deserialize<'de> for Size {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Size;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a size: a number of bytes, or a string like `512m` or `2g`")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Size, E> {
                Ok(Size::Text(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Size, E> {
                Ok(Size::Bytes(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Size, E> {
                i64::try_from(v)
                    .map(Size::Bytes)
                    .map_err(|_| E::invalid_value(Unexpected::Unsigned(v), &self))
            }
        }
        deserializer.deserialize_any(V)
    }
}

/// A bind in `startup.binds`: `{bind: /ctr, ro: false}`, `{bind: /ctr, mode: ro}` or `/ctr`.
#[derive(Debug, Clone, PartialEq)]
pub enum BindTarget {
    Path(String),
    Full(BindFull),
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BindFull {
    pub bind: String,
    pub ro: Option<bool>,
    pub mode: Option<String>,
}

impl<'de> Deserialize<'de> for BindTarget {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = BindTarget;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "a container path, or a mapping with `bind` (the container path) and `ro` or `mode`",
                )
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<BindTarget, E> {
                Ok(BindTarget::Path(v.to_string()))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<BindTarget, A::Error> {
                BindFull::deserialize(MapAccessDeserializer::new(map)).map(BindTarget::Full)
            }
        }
        deserializer.deserialize_any(V)
    }
}

/// A host side of `startup.port_bindings`: a port, `ip:port`, `[ip, port]`, a list of ports or
/// nothing (ephemeral).
#[derive(Debug, Clone, PartialEq)]
pub enum HostPortValue {
    None,
    Port(u16),
    Text(String),
    List(Vec<Scalar>),
}

impl<'de> Deserialize<'de> for HostPortValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = HostPortValue;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "a host port: a number, `IP:PORT`, `[IP, PORT]`, a list of ports, or nothing for a port the engine picks",
                )
            }
            fn visit_unit<E: de::Error>(self) -> Result<HostPortValue, E> {
                Ok(HostPortValue::None)
            }
            fn visit_none<E: de::Error>(self) -> Result<HostPortValue, E> {
                Ok(HostPortValue::None)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<HostPortValue, E> {
                u16::try_from(v)
                    .map(HostPortValue::Port)
                    .map_err(|_| E::invalid_value(Unexpected::Unsigned(v), &self))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<HostPortValue, E> {
                u16::try_from(v)
                    .map(HostPortValue::Port)
                    .map_err(|_| E::invalid_value(Unexpected::Signed(v), &self))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<HostPortValue, E> {
                Ok(HostPortValue::Text(v.to_string()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<HostPortValue, A::Error> {
                Vec::deserialize(SeqAccessDeserializer::new(seq)).map(HostPortValue::List)
            }
        }
        deserializer.deserialize_any(V)
    }
}

/// An HTTP status code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpStatus(pub u16);

impl<'de> Deserialize<'de> for HttpStatus {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = HttpStatus;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an HTTP status code from 100 to 599, like `200`")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<HttpStatus, E> {
                u16::try_from(v)
                    .ok()
                    .filter(|s| (100..=599).contains(s))
                    .map(HttpStatus)
                    .ok_or_else(|| E::invalid_value(Unexpected::Unsigned(v), &self))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<HttpStatus, E> {
                match u64::try_from(v) {
                    Ok(u) => self.visit_u64(u),
                    Err(_) => Err(E::invalid_value(Unexpected::Signed(v), &self)),
                }
            }
        }
        deserializer.deserialize_any(V)
    }
}

/// Reads one of `words` and returns its index: for enums written as a word (`recreate: never`).
/// serde's derived enums would name a Rust type for a value of the wrong kind.
pub fn one_word<'de, D: Deserializer<'de>>(
    deserializer: D,
    words: &'static [&'static str],
) -> Result<usize, D::Error> {
    struct V(&'static [&'static str]);
    impl Visitor<'_> for V {
        type Value = usize;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            let list: Vec<String> = self.0.iter().map(|w| format!("`{w}`")).collect();
            write!(f, "one of {}", list.join(", "))
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<usize, E> {
            self.0
                .iter()
                .position(|w| *w == v)
                .ok_or_else(|| E::unknown_variant(v, self.0))
        }
    }
    deserializer.deserialize_any(V(words))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Reads `yaml` into `T`, serde's message on failure.
    pub(crate) fn read<T: for<'de> Deserialize<'de>>(yaml: &str) -> Result<T, String> {
        serde_yaml_ng::from_str(yaml).map_err(|e| e.to_string())
    }

    #[test]
    fn each_form_is_read() {
        assert_eq!(
            read::<StringOrList>("a b").unwrap(),
            StringOrList::One("a b".into())
        );
        assert_eq!(
            read::<StringOrList>("[a, b]").unwrap(),
            StringOrList::Many(vec!["a".into(), "b".into()])
        );
        assert_eq!(read::<Scalar>("1").unwrap(), Scalar::Int(1));
        assert_eq!(read::<Scalar>("true").unwrap(), Scalar::Bool(true));
        assert_eq!(read::<PortText>("8080").unwrap().0, "8080");
        assert_eq!(read::<UserText>("'1000:1000'").unwrap().0, "1000:1000");
        assert!(matches!(
            read::<EnvValue>("{A: 1, B: null}").unwrap(),
            EnvValue::Map(m) if m.len() == 2
        ));
        assert!(matches!(
            read::<EnvValue>("[A=1]").unwrap(),
            EnvValue::List(l) if l == ["A=1"]
        ));
        assert_eq!(read::<HostPortValue>("null").unwrap(), HostPortValue::None);
        assert_eq!(
            read::<HostPortValue>("80").unwrap(),
            HostPortValue::Port(80)
        );
        assert_eq!(read::<Size>("512m").unwrap(), Size::Text("512m".into()));
        assert_eq!(read::<HttpStatus>("204").unwrap(), HttpStatus(204));
        assert!(matches!(
            read::<BindsValue>("{/a: {bind: /b, ro: true}, /c: /d}").unwrap(),
            BindsValue::Map(m) if m.len() == 2
        ));
    }

    #[test]
    fn a_wrong_form_says_which_forms_are_accepted() {
        let err = read::<StringOrList>("{a: 1}").unwrap_err();
        assert!(
            err.contains("expected a string or a list of strings"),
            "{err}"
        );
        let err = read::<HostPortValue>("70000").unwrap_err();
        assert!(err.contains("expected a host port"), "{err}");
        let err = read::<HttpStatus>("ok").unwrap_err();
        assert!(err.contains("expected an HTTP status code"), "{err}");
        for (yaml, err) in [
            ("{a: 1}", read::<StringOrList>("{a: 1}").unwrap_err()),
            ("[1]", read::<UserText>("[1]").unwrap_err()),
            ("{a: 1}", read::<PortText>("{a: 1}").unwrap_err()),
        ] {
            assert!(!err.contains("untagged"), "{yaml}: {err}");
        }
    }

    #[test]
    fn an_unknown_key_inside_a_form_is_named() {
        let err = read::<BindsValue>("{/a: {bind: /b, rw: true}}").unwrap_err();
        assert!(err.contains("unknown field `rw`"), "{err}");
        assert!(err.contains("`bind`, `ro`, `mode`"), "{err}");
    }

    #[test]
    fn one_word_lists_the_words() {
        #[derive(Debug)]
        struct W(usize);
        impl<'de> Deserialize<'de> for W {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                one_word(d, &["auto", "never"]).map(W)
            }
        }
        assert_eq!(read::<W>("never").unwrap().0, 1);
        let err = read::<W>("[1]").unwrap_err();
        assert!(err.contains("expected one of `auto`, `never`"), "{err}");
        let err = read::<W>("sometimes").unwrap_err();
        assert!(err.contains("unknown variant `sometimes`"), "{err}");
    }
}
