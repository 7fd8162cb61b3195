//! Pseudonames (ORIGINAL §6.2): a test copy's containers, volumes and built images renamed with
//! the tempid, and every reference to them in the written unit rewritten to match.

use std::sync::LazyLock;

use indexmap::IndexMap;
use regex::Regex;
use serde_yaml_ng::{Mapping, Value};

use crate::error::ConfigError;
use crate::unit::container::{
    MountSpec, container_from_value, parse_port, parse_volume, split_image, strip_mode,
    with_default_tag,
};
use crate::unit::order::{HOST, Order, Step, order_from_value};
use crate::unit::{Container, Unit};

/// What a test run calls things on the engine.
#[derive(Debug, Clone, Default)]
pub struct Renames {
    pub tempid: String,
    /// Container key → container name.
    pub containers: IndexMap<String, String>,
    /// Named volume → volume name.
    pub volumes: IndexMap<String, String>,
    /// Built image (with its tag) → pseudo-tagged image (`full` only).
    pub images: IndexMap<String, String>,
}

impl Renames {
    /// No renaming (production).
    pub fn identity(tempid: &str) -> Self {
        Renames {
            tempid: tempid.to_string(),
            ..Renames::default()
        }
    }

    /// The pseudonames of `unit`'s containers and named volumes (and built images for `full`).
    pub fn new(unit: &Unit, tempid: &str, full: bool) -> Self {
        let mut r = Renames::identity(tempid);
        for (key, c) in &unit.containers {
            r.containers.insert(key.clone(), r.pseudo(key));
            for m in &c.spec.mounts {
                if let MountSpec::Named { name, .. } = m {
                    r.volumes.insert(name.clone(), r.pseudo(name));
                }
            }
            if full {
                if let Some(tag) = c.spec.build.as_ref().and_then(|b| b.tag.as_deref()) {
                    r.images
                        .insert(with_default_tag(tag), pseudo_image(tag, tempid));
                }
            }
        }
        r
    }

    fn suffix(&self) -> String {
        format!("_{}", self.tempid)
    }

    /// `name_<tempid>`, unless `name` already ends with it.
    fn pseudo(&self, name: &str) -> String {
        if name.ends_with(&self.suffix()) {
            name.to_string()
        } else {
            format!("{name}{}", self.suffix())
        }
    }

    /// The engine name of container `key`.
    pub fn container<'a>(&'a self, key: &'a str) -> &'a str {
        self.containers.get(key).map_or(key, String::as_str)
    }
}

/// `repo:tag` → `repo:tag_<tempid>` (`repo` → `repo:latest_<tempid>`): the tag carries the
/// tempid, so the teardown's image rule ("the tag ends with the tempid") holds.
pub fn pseudo_image(image: &str, tempid: &str) -> String {
    let (repo, tag) = split_image(image);
    if tag.ends_with(tempid) {
        format!("{repo}:{tag}")
    } else {
        format!("{repo}:{tag}_{tempid}")
    }
}

static PLACEHOLDER: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\[\[([^\]]+)\]\]\(([^)]*)\)").expect("valid regex"));

/// Rewrites `[[...]](K)` to `[[...]](K_<tempid>)` in every string of `value`.
fn rename_placeholders(value: &mut Value, r: &Renames) {
    match value {
        Value::String(s) if s.contains("[[") => {
            let replaced = PLACEHOLDER.replace_all(s, |caps: &regex::Captures<'_>| {
                format!("[[{}]]({})", &caps[1], r.container(&caps[2]))
            });
            *s = replaced.into_owned();
        }
        Value::Sequence(items) => {
            for item in items {
                rename_placeholders(item, r);
            }
        }
        Value::Mapping(map) => {
            for (_, v) in map.iter_mut() {
                rename_placeholders(v, r);
            }
        }
        Value::Tagged(t) => rename_placeholders(&mut t.value, r),
        _ => {}
    }
}

fn rename_volumes_from(item: &str, r: &Renames) -> String {
    let base = strip_mode(item);
    let mode = &item[base.len()..];
    format!("{}{mode}", r.container(base))
}

/// `links` in any written form, with the original key kept as the alias.
fn rename_links(value: &mut Value, r: &Renames) {
    match value {
        Value::Mapping(map) => {
            let old = std::mem::take(map);
            for (k, v) in old {
                let Some(name) = k.as_str() else {
                    map.insert(k, v);
                    continue;
                };
                let alias = if v.is_null() {
                    Value::String(name.to_string())
                } else {
                    v
                };
                map.insert(Value::String(r.container(name).to_string()), alias);
            }
        }
        Value::Sequence(items) => {
            for item in items {
                match item {
                    Value::String(s) => {
                        let (name, alias) = s.split_once(':').unwrap_or((s.as_str(), s.as_str()));
                        *s = format!("{}:{alias}", r.container(name));
                    }
                    Value::Sequence(pair) => {
                        if let Some(name) = pair.first().and_then(Value::as_str).map(str::to_string)
                        {
                            if pair.len() == 1 {
                                pair.push(Value::String(name.clone()));
                            }
                            pair[0] = Value::String(r.container(&name).to_string());
                        }
                    }
                    _ => {}
                }
            }
        }
        _ => {}
    }
}

/// A compose port string with its fixed host port made ephemeral (`127.0.0.1:8080:80` →
/// `127.0.0.1::80`).
fn ephemeral_port(text: &str) -> Option<String> {
    let p = parse_port(text).ok()?;
    p.host_port?;
    let proto = if p.protocol == "tcp" {
        String::new()
    } else {
        format!("/{}", p.protocol)
    };
    Some(match p.host_ip {
        Some(ip) if ip.contains(':') => format!("[{ip}]::{}{proto}", p.container_port),
        Some(ip) => format!("{ip}::{}{proto}", p.container_port),
        None => format!("{}{proto}", p.container_port),
    })
}

/// The host side of a `port_bindings` entry made ephemeral.
fn ephemeral_binding(value: &Value) -> Value {
    match value {
        Value::String(s) => match s.rsplit_once(':') {
            Some((ip, _)) => Value::String(format!("{ip}:")),
            None => Value::Null,
        },
        Value::Sequence(items) if items.len() == 2 && items[0].as_str().is_some() => {
            let ip = items[0].as_str().unwrap_or_default();
            if ip.parse::<u16>().is_ok() {
                Value::Null
            } else {
                Value::String(format!("{ip}:"))
            }
        }
        _ => Value::Null,
    }
}

/// Rewrites the references of one section (the spec's top level, `creation`, `startup`, or a
/// custom test's `overwrites` / `extra`).
fn rename_section(map: &mut Mapping, r: &Renames) {
    if let Some(v) = map.get_mut("volumes_from") {
        match v {
            Value::String(s) => *s = rename_volumes_from(s, r),
            Value::Sequence(items) => {
                for item in items {
                    if let Value::String(s) = item {
                        *s = rename_volumes_from(s, r);
                    }
                }
            }
            _ => {}
        }
    }
    if let Some(v) = map.get_mut("links") {
        rename_links(v, r);
    }
    if let Some(Value::String(mode)) = map.get_mut("network_mode") {
        if let Some(other) = mode.strip_prefix("container:") {
            *mode = format!("container:{}", r.container(other));
        }
    }
    if let Some(Value::Sequence(items)) = map.get_mut("volumes") {
        for item in items {
            if let Value::String(s) = item {
                if let Ok(MountSpec::Named { name, .. }) = parse_volume(s) {
                    if let Some(new) = r.volumes.get(&name) {
                        *s = format!("{new}{}", &s[name.len()..]);
                    }
                }
            }
        }
    }
    if let Some(Value::Sequence(items)) = map.get_mut("ports") {
        for item in items {
            let text = match item {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                _ => continue,
            };
            if let Some(new) = ephemeral_port(&text) {
                *item = Value::String(new);
            }
        }
    }
    if let Some(Value::Mapping(bindings)) = map.get_mut("port_bindings") {
        for (_, v) in bindings.iter_mut() {
            *v = ephemeral_binding(v);
        }
    }
    let image = map.get("image").and_then(Value::as_str).map(str::to_string);
    if let Some(image) = image {
        let tag = map.get("tag").and_then(|t| match t {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        });
        let written = tag
            .as_ref()
            .map_or_else(|| image.clone(), |t| format!("{image}:{t}"));
        if let Some(new) = r.images.get(&with_default_tag(&written)) {
            if tag.is_some() {
                map.insert("tag".into(), Value::String(split_image(new).1));
            } else {
                map.insert("image".into(), Value::String(new.clone()));
            }
        }
    }
}

/// The written spec of a container under its pseudonames.
pub fn rename_container_value(value: &Value, r: &Renames) -> Value {
    let mut v = value.clone();
    if let Value::Mapping(m) = &mut v {
        rename_section(m, r);
        for section in ["creation", "startup"] {
            if let Some(Value::Mapping(s)) = m.get_mut(section) {
                rename_section(s, r);
            }
        }
        if let Some(Value::Mapping(creation)) = m.get_mut("creation") {
            // A test never talks to a terminal (ORIGINAL §6.3).
            for key in ["tty", "stdin_open"] {
                if creation.contains_key(key) {
                    creation.insert(key.into(), Value::Bool(false));
                }
            }
        }
        if let Some(Value::Mapping(build)) = m.get_mut("build") {
            let tag = build.get("tag").and_then(Value::as_str).map(str::to_string);
            if let Some(new) = tag.and_then(|t| r.images.get(&with_default_tag(&t))) {
                build.insert("tag".into(), Value::String(new.clone()));
            }
        }
        if let Some(Value::Mapping(tests)) = m.get_mut("tests") {
            for (_, test) in tests.iter_mut() {
                if let Value::Mapping(test) = test {
                    for key in ["overwrites", "extra"] {
                        if let Some(Value::Mapping(section)) = test.get_mut(key) {
                            rename_section(section, r);
                        }
                    }
                }
            }
        }
    }
    rename_placeholders(&mut v, r);
    v
}

/// An order under its pseudonames (container and `[[...]](K)` in its arguments).
pub fn rename_order(order: &Order, r: &Renames) -> Result<Order, ConfigError> {
    let name = if order.container == HOST {
        HOST
    } else {
        r.container(&order.container)
    };
    let mut raw = Value::Mapping(order.raw.clone());
    rename_placeholders(&mut raw, r);
    // `order.origin` points at the container key inside the list item.
    let mut parent = order.origin.clone();
    parent.path.pop();
    let mut renamed = order_from_value(name, &raw, &parent)?;
    renamed.origin = order.origin.clone();
    renamed.generated = order.generated;
    renamed.variants.clone_from(&order.variants);
    Ok(renamed)
}

fn rename_steps(steps: &[Step], r: &Renames) -> Result<Vec<Step>, ConfigError> {
    steps
        .iter()
        .map(|step| match step {
            Step::Order(o) => Ok(Step::Order(Box::new(rename_order(o, r)?))),
            Step::Parallel {
                max,
                max_given,
                orders,
                generated,
            } => Ok(Step::Parallel {
                max: *max,
                max_given: *max_given,
                orders: orders
                    .iter()
                    .map(|o| rename_order(o, r))
                    .collect::<Result<_, _>>()?,
                generated: *generated,
            }),
        })
        .collect()
}

/// The unit under its pseudonames: containers, references and orders renamed, then typed again
/// from the renamed text (so what runs is what `--print-unit` shows).
pub fn rename_unit(unit: &Unit, r: &Renames) -> Result<Unit, ConfigError> {
    let mut containers = IndexMap::new();
    for (key, c) in &unit.containers {
        let name = r.container(key).to_string();
        let raw = rename_container_value(&c.raw, r);
        let mut spec = container_from_value(&name, &raw, &c.origin)?;
        spec.tty = false;
        spec.stdin_open = false;
        containers.insert(
            name,
            Container {
                spec,
                raw,
                origin: c.origin.clone(),
            },
        );
    }
    Ok(Unit {
        containers,
        steps: rename_steps(&unit.steps, r)?,
        ..unit.clone()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pseudonames_are_not_doubled() {
        let t = "0123456789";
        let text = format!("web_{t}:\n  image: x\n---\n- web_{t}: {{command: start}}\n");
        let u = crate::generate::testplan::tests::unit("u/test", &text);
        let r = Renames::new(&u, t, true);
        assert_eq!(r.container(&format!("web_{t}")), format!("web_{t}"));
        assert_eq!(
            pseudo_image("repo:latest_0123456789", t),
            "repo:latest_0123456789"
        );
        assert_eq!(
            pseudo_image("registry:5000/repo", t),
            "registry:5000/repo:latest_0123456789"
        );
    }
}
