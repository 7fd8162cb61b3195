//! The test plan of `UNIT/test[:VARIANTS]` (ORIGINAL §6, SPEC "Tests"): which variants run, the
//! pseudonames that keep a test run away from production, and the suites with their cases.
//! Pure and synchronous: a resolved unit in, a plan out; `testing` runs it.
//!
//! Variants compose: `default` (the lifecycle: setup, stop, teardown; the default), `full` (the
//! same with the unit's built images under pseudo tags, removed at the end), `check` (adds the
//! `daemon` and `job` checks), `production` (only the checks, against the live containers) and
//! custom variants (the `tests:` keys of containers).
//!
//! Pseudonames, unless in production: every container key `K` becomes `K_<tempid>`, and so do
//! the references to it (`volumes_from`, `links`, `network_mode: container:K`,
//! `[[...]](K)`); named volumes `V` become `V_<tempid>`; fixed host ports become ephemeral
//! ones (so a test copy runs beside production); with `full`, built tags `repo:tag` become
//! `repo:tag_<tempid>`. Teardown only touches what ends with the tempid.

use std::collections::HashMap;
use std::sync::LazyLock;

use indexmap::IndexMap;
use md5::{Digest, Md5};
use regex::Regex;
use serde::de::DeserializeOwned;
use serde_yaml_ng::{Mapping, Value};

use crate::error::ConfigError;
use crate::generate::commands;
use crate::unit::checks::{CustomTest, HttpCheck, JobCheck, JobRun};
use crate::unit::container::{
    ContainerSpec, MountSpec, RawCreation, RawStartup, container_from_value, parse_port,
    parse_volume, split_image, strip_mode, with_default_tag,
};
use crate::unit::order::{Action, HOST, Order, Step, order_from_value, order_to_value};
use crate::unit::{Container, Unit};

/// The first 10 hex digits of the MD5 of the unit command as typed (`web/test:check`).
pub fn tempid(command: &str) -> String {
    use std::fmt::Write as _;
    Md5::digest(command.as_bytes())
        .iter()
        .take(5)
        .fold(String::with_capacity(10), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// The built-in variants of a test run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    /// Against the live containers: no pseudonames, no setup, no stop, no teardown.
    pub production: bool,
    /// Images built by the unit get pseudo tags and are removed by the teardown.
    pub full: bool,
    /// The `daemon` and `job` checks run.
    pub checks: bool,
    /// `restore`: the newest archives of the generated backup are restored into the copy
    /// before it starts, and then the checks run.
    pub restore: bool,
    /// Requested custom variants (`tests:` keys).
    pub custom: Vec<String>,
    /// The name of the run in archives: the built-in tokens joined by `-`.
    pub label: String,
}

impl Selection {
    /// The selection from the built-in tokens, the custom ones and `--production`.
    pub fn new(
        builtins: &[String],
        custom: &[String],
        production_flag: bool,
    ) -> Result<Self, ConfigError> {
        let has = |t: &str| builtins.iter().any(|b| b == t);
        let production = production_flag || has("production");
        let full = has("full");
        let restore = has("restore");
        if production && (full || restore || has("default")) {
            return Err(ConfigError::TestSelection {
                message: format!(
                    "the test variant `production` runs against the live containers and cannot be combined with `{}`",
                    if full {
                        "full"
                    } else if restore {
                        "restore"
                    } else {
                        "default"
                    }
                ),
            });
        }
        let mut tokens: Vec<String> = Vec::new();
        if production_flag && !has("production") {
            tokens.push("production".into());
        }
        for b in builtins {
            if !tokens.contains(b) {
                tokens.push(b.clone());
            }
        }
        Ok(Selection {
            production,
            full,
            checks: production || restore || has("check"),
            restore,
            custom: custom.to_vec(),
            label: if tokens.is_empty() {
                "default".into()
            } else {
                tokens.join("-")
            },
        })
    }
}

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

// ---------------------------------------------------------------------------------------------
// Renaming the written unit

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

// ---------------------------------------------------------------------------------------------
// Custom test containers

/// Whether `T` (a section's raw shape) knows the key.
fn accepts<T: DeserializeOwned>(key: &Value, value: &Value) -> bool {
    let mut m = Mapping::new();
    m.insert(key.clone(), value.clone());
    match serde_yaml_ng::from_value::<T>(Value::Mapping(m)) {
        Ok(_) => true,
        Err(e) => !e.to_string().contains("unknown field"),
    }
}

/// The section of a container spec a key of `overwrites` / `extra` belongs in: where the spec
/// already has it, else where it is accepted (`startup`, then `creation`, else the top level).
fn section_of(spec: &Mapping, key: &Value, value: &Value) -> Option<&'static str> {
    if spec.contains_key(key) {
        return None;
    }
    for section in ["startup", "creation"] {
        if spec
            .get(section)
            .and_then(Value::as_mapping)
            .is_some_and(|s| s.contains_key(key))
        {
            return Some(section);
        }
    }
    if accepts::<RawStartup>(key, value) {
        Some("startup")
    } else if accepts::<RawCreation>(key, value) {
        Some("creation")
    } else {
        None
    }
}

/// Merges `over` into `base`: mappings recursively, lists appended, the rest replaced.
fn deep_merge(base: &mut Value, over: &Value) {
    match (base, over) {
        (Value::Mapping(b), Value::Mapping(o)) => {
            for (k, v) in o {
                match b.get_mut(k) {
                    Some(existing) => deep_merge(existing, v),
                    None => {
                        b.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (Value::Sequence(b), Value::Sequence(o)) => b.extend(o.iter().cloned()),
        (b, o) => *b = o.clone(),
    }
}

/// The written spec with a custom test's `overwrites` (replacing keys) and `extra` (merged in).
pub fn apply_overrides(value: &Value, test: &CustomTest) -> Value {
    let mut v = value.clone();
    if !v.is_mapping() {
        v = Value::Mapping(Mapping::new());
    }
    for (changes, replace) in [(&test.overwrites, true), (&test.extra, false)] {
        for (key, value) in changes {
            let Value::Mapping(spec) = &mut v else {
                unreachable!("made a mapping above")
            };
            let target: &mut Mapping = match section_of(spec, key, value) {
                None => spec,
                Some(section) => {
                    if !spec.get(section).is_some_and(Value::is_mapping) {
                        spec.insert(section.into(), Value::Mapping(Mapping::new()));
                    }
                    spec.get_mut(section)
                        .and_then(Value::as_mapping_mut)
                        .expect("inserted above")
                }
            };
            match (replace, target.get_mut(key)) {
                (false, Some(existing)) => deep_merge(existing, value),
                _ => {
                    target.insert(key.clone(), value.clone());
                }
            }
        }
    }
    // The spec's own test metadata does not belong to the run.
    if let Value::Mapping(m) = &mut v {
        for key in ["daemon", "job", "jobs", "tests"] {
            m.remove(key);
        }
    }
    v
}

/// A throw-away container from `spec`: no host ports, no restart policy, no health check.
fn temporary(spec: &ContainerSpec, name: &str) -> ContainerSpec {
    let mut t = spec.clone();
    t.name = name.to_string();
    t.ports.clear();
    t.healthcheck = None;
    t.host.restart_policy = None;
    t.tty = false;
    t.stdin_open = false;
    t
}

// ---------------------------------------------------------------------------------------------
// The plan

/// A case that runs one order.
#[derive(Debug, Clone)]
pub struct OrderCase {
    /// `<container key>:<command>`.
    pub name: String,
    pub order: Order,
}

/// One HTTP check of a `daemon:` list.
#[derive(Debug, Clone)]
pub struct DaemonCase {
    pub name: String,
    /// The container key and its engine name.
    pub key: String,
    pub container: String,
    pub method: String,
    /// The check with its references renamed.
    pub check: HttpCheck,
}

/// What a job case does.
#[derive(Debug, Clone)]
pub enum JobKind {
    /// `job:`: wait for the container setup started to exit, then check it.
    Wait(JobCheck),
    /// A named run of `jobs:` in a fresh container.
    Run {
        spec: Box<ContainerSpec>,
        run: JobRun,
    },
}

#[derive(Debug, Clone)]
pub struct JobCase {
    pub name: String,
    pub key: String,
    pub container: String,
    pub kind: JobKind,
}

/// A custom test variant on one container.
#[derive(Debug, Clone)]
pub struct CustomCase {
    pub name: String,
    pub key: String,
    /// The engine name of the container (exec'd into when it runs).
    pub container: String,
    pub variant: String,
    pub test: CustomTest,
    /// The temporary container used when the container does not run.
    pub temporary: Box<ContainerSpec>,
}

/// A suite: a named list of cases of one class.
#[derive(Debug, Clone)]
pub struct Suite<C> {
    pub name: String,
    pub classname: String,
    pub cases: Vec<C>,
}

impl<C> Suite<C> {
    fn new(name: impl Into<String>, classname: impl Into<String>) -> Self {
        Suite {
            name: name.into(),
            classname: classname.into(),
            cases: Vec::new(),
        }
    }
}

/// Everything a test run does, in order.
#[derive(Debug, Clone)]
pub struct TestPlan {
    /// The unit command as typed (`web/test:check`).
    pub command: String,
    pub tempid: String,
    pub selection: Selection,
    /// The unit under its pseudonames (in production, as written). Its steps are the start
    /// orders the setup comes from.
    pub unit: Unit,
    pub renames: Renames,
    /// Engine name → container key.
    pub display: HashMap<String, String>,
    /// `dstart.unit` of what the run creates: `<unit>_<tempid>` (production: `<unit>`).
    pub unit_label: String,
    pub setup: Suite<OrderCase>,
    /// Start orders a test does not run (`unit` orders would act under production names).
    pub skipped: Vec<OrderCase>,
    pub daemon: Vec<Suite<DaemonCase>>,
    pub jobs: Vec<Suite<JobCase>>,
    pub custom: Vec<Suite<CustomCase>>,
    pub stop: Suite<OrderCase>,
    pub teardown: Suite<OrderCase>,
}

/// Keeps the teardown orders that only touch what the test created: containers whose name ends
/// with `_<tempid>`, images whose tag ends with the tempid.
pub fn safe_teardown(
    orders: Vec<Order>,
    tempid: &str,
    containers: &IndexMap<String, Container>,
) -> Vec<Order> {
    let suffix = format!("_{tempid}");
    orders
        .into_iter()
        .filter(|o| match &o.action {
            Action::Stop(_) | Action::Remove(_) => o.container.ends_with(&suffix),
            Action::RemoveImage(_) => containers
                .get(&o.container)
                .and_then(|c| c.spec.image.as_deref())
                .is_some_and(|image| split_image(image).1.ends_with(tempid)),
            _ => false,
        })
        .collect()
}

fn order_case(order: Order, display: &HashMap<String, String>) -> OrderCase {
    let key = display
        .get(&order.container)
        .map_or(order.container.as_str(), String::as_str);
    OrderCase {
        name: format!("{key}:{}", order.action.kind()),
        order,
    }
}

/// Readable names for list-form daemon checks (`0:GET` → `0:GET http://...`).
fn daemon_case_name(name: &str, url: &str) -> String {
    let indexed = name.split_once(':').is_some_and(|(i, m)| {
        i.parse::<usize>().is_ok() && m.chars().all(|c| c.is_ascii_uppercase())
    });
    if indexed {
        format!("{name} {url}")
    } else {
        name.to_string()
    }
}

/// The setup orders of `test:restore` around the start orders.
#[derive(Debug, Default)]
struct RestoreSetup {
    /// The copy's containers created, and the newest archives of the generated backup
    /// (named after the live containers) restored into them.
    before_start: Vec<Order>,
    /// Each container's `restore.after`, run in it once it runs.
    after_start: Vec<Order>,
}

/// The orders that restore the unit's backup into the test copy `renamed` before it starts.
fn restore_setup(unit: &Unit, renamed: &Unit, r: &Renames) -> Result<RestoreSetup, ConfigError> {
    let generate = |what: &str| {
        commands::generate(
            what,
            &unit.command.unit,
            &renamed.steps,
            &renamed.containers,
            &renamed.environment,
        )
    };
    let mut out = RestoreSetup::default();
    out.before_start
        .extend(generate("create")?.iter().flat_map(Step::orders).cloned());
    let live: HashMap<&str, &str> = r
        .containers
        .iter()
        .map(|(k, v)| (v.as_str(), k.as_str()))
        .collect();
    for order in generate("restore")?.iter().flat_map(Step::orders) {
        let mut order = order.clone();
        let original = live
            .get(order.container.as_str())
            .map_or(order.container.clone(), |k| (*k).to_string());
        if let Action::Restore(args) = &mut order.action {
            // The archives are the live containers'; the `after` hook needs the container
            // running, so it runs after the start orders.
            args.restore_name = Some(original.clone());
            if let Some(after) = args.after.take() {
                let origin = order.origin.clone();
                let mut m = Mapping::new();
                m.insert("command".into(), "execute".into());
                m.insert("type".into(), "in_running".into());
                m.insert("run".into(), after.to_value());
                let mut exec = crate::unit::order::order_from_value(
                    &order.container,
                    &Value::Mapping(m),
                    &origin,
                )?;
                exec.generated = true;
                out.after_start.push(exec);
            }
            order.raw.insert("restore_name".into(), original.into());
            order.raw.remove("after");
        }
        out.before_start.push(order);
    }
    Ok(out)
}

/// Plans the test run of `unit` (a resolved `UNIT/test[:...]`).
pub fn plan(unit: &Unit, production_flag: bool) -> Result<TestPlan, ConfigError> {
    let command = unit.command.to_string();
    let tempid = tempid(&command);
    let selection = Selection::new(&unit.test_variants, &unit.custom_tests, production_flag)?;
    let (renames, renamed, unit_label) = if selection.production {
        (
            Renames::identity(&tempid),
            unit.clone(),
            unit.command.unit.clone(),
        )
    } else {
        let r = Renames::new(unit, &tempid, selection.full);
        let renamed = rename_unit(unit, &r)?;
        (r, renamed, format!("{}_{tempid}", unit.command.unit))
    };
    let display: HashMap<String, String> = renames
        .containers
        .iter()
        .map(|(k, v)| (v.clone(), k.clone()))
        .collect();

    let mut setup = Suite::new(&command, "setup");
    let mut skipped = Vec::new();
    let mut stop = Suite::new("stop", "teardown");
    let mut teardown = Suite::new("teardown", "teardown");
    if !selection.production {
        let restores = if selection.restore {
            restore_setup(unit, &renamed, &renames)?
        } else {
            RestoreSetup::default()
        };
        for order in restores.before_start {
            setup.cases.push(order_case(order, &display));
        }
        for order in renamed.steps.iter().flat_map(Step::orders) {
            match order.action {
                Action::Stop(_) | Action::Remove(_) | Action::RemoveImage(_) => {}
                Action::Unit(_) => skipped.push(order_case(order.clone(), &display)),
                _ => setup.cases.push(order_case(order.clone(), &display)),
            }
        }
        for order in restores.after_start {
            setup.cases.push(order_case(order, &display));
        }
        let generated = |what: &str| -> Result<Vec<Order>, ConfigError> {
            let steps = commands::generate(
                what,
                &unit.command.unit,
                &renamed.steps,
                &renamed.containers,
                &renamed.environment,
            )?;
            Ok(safe_teardown(
                steps.iter().flat_map(Step::orders).cloned().collect(),
                &tempid,
                &renamed.containers,
            ))
        };
        stop.cases = generated("stop")?
            .into_iter()
            .map(|o| order_case(o, &display))
            .collect();
        // `remove` stops a running container itself: the teardown needs no stop orders.
        teardown.cases = generated("purge")?
            .into_iter()
            .filter(|o| !matches!(o.action, Action::Stop(_)))
            .map(|o| order_case(o, &display))
            .collect();
    }

    let mut daemon = Vec::new();
    let mut jobs = Vec::new();
    let mut custom = Vec::new();
    for (key, original) in &unit.containers {
        let name = renames.container(key).to_string();
        let c = &renamed.containers[&name];
        let tests = &c.spec.tests;
        if selection.checks {
            if let Some(checks) = &tests.daemon {
                let mut suite = Suite::new(format!("{key}_daemon"), "daemon");
                let written = original.spec.tests.daemon.as_ref();
                for (i, (case, method, check)) in checks.checks.iter().enumerate() {
                    let url = written
                        .and_then(|d| d.checks.get(i))
                        .map_or(check.url.as_str(), |w| w.2.url.as_str());
                    suite.cases.push(DaemonCase {
                        name: daemon_case_name(case, url),
                        key: key.clone(),
                        container: name.clone(),
                        method: method.clone(),
                        check: check.clone(),
                    });
                }
                daemon.push(suite);
            }
            let mut suite = Suite::new(format!("{key}_jobs"), "job");
            if let Some(job) = &tests.job {
                suite.cases.push(JobCase {
                    name: format!("{key}:job"),
                    key: key.clone(),
                    container: name.clone(),
                    kind: JobKind::Wait(job.clone()),
                });
            }
            for (job_name, run) in &tests.jobs {
                let mut spec = temporary(&c.spec, &format!("{key}_{job_name}_{tempid}"));
                if !run.args.is_empty() {
                    spec.command = Some(run.args.clone());
                }
                suite.cases.push(JobCase {
                    name: format!("{key}:{job_name}"),
                    key: key.clone(),
                    container: name.clone(),
                    kind: JobKind::Run {
                        spec: Box::new(spec),
                        run: run.clone(),
                    },
                });
            }
            if !suite.cases.is_empty() {
                jobs.push(suite);
            }
        }
        for variant in &selection.custom {
            let Some(test) = tests.tests.get(variant) else {
                continue;
            };
            let temp_name = format!("{key}_{variant}_{tempid}");
            let value = apply_overrides(&c.raw, test);
            let spec = container_from_value(&temp_name, &value, &c.origin)?;
            let mut suite = Suite::new(format!("{key}_{variant}"), variant.clone());
            suite.cases.push(CustomCase {
                name: format!("{key}:{variant}"),
                key: key.clone(),
                container: name.clone(),
                variant: variant.clone(),
                test: test.clone(),
                temporary: Box::new(temporary(&spec, &temp_name)),
            });
            custom.push(suite);
        }
    }

    Ok(TestPlan {
        command,
        tempid,
        selection,
        unit: renamed,
        renames,
        display,
        unit_label,
        setup,
        skipped,
        daemon,
        jobs,
        custom,
        stop,
        teardown,
    })
}

// ---------------------------------------------------------------------------------------------
// Printing

fn orders_value(cases: &[OrderCase]) -> Value {
    Value::Sequence(cases.iter().map(|c| order_to_value(&c.order)).collect())
}

fn case_names(cases: &[OrderCase]) -> Value {
    Value::Sequence(
        cases
            .iter()
            .map(|c| Value::String(c.name.clone()))
            .collect(),
    )
}

fn string_map(map: &IndexMap<String, String>) -> Value {
    Value::Mapping(
        map.iter()
            .filter(|(k, v)| k != v)
            .map(|(k, v)| (Value::String(k.clone()), Value::String(v.clone())))
            .collect(),
    )
}

fn suite_value<C>(suite: &Suite<C>, cases: Value) -> Value {
    let mut m = Mapping::new();
    m.insert("suite".into(), Value::String(suite.name.clone()));
    m.insert("class".into(), Value::String(suite.classname.clone()));
    m.insert("cases".into(), cases);
    Value::Mapping(m)
}

fn describe_check(method: &str, c: &HttpCheck) -> String {
    use std::fmt::Write as _;
    let mut out = format!("{method} {}", c.url);
    if let Some(e) = &c.error_match {
        let _ = write!(out, " fails with an error matching `{e}`");
    } else {
        let _ = write!(out, " answers {}", c.status.map_or(200, |s| s.0));
        if let Some(m) = &c.body_match {
            let _ = write!(out, " with a body matching `{m}`");
        }
    }
    if let Some(cert) = &c.cert {
        let _ = write!(out, ", trusting {cert}");
    }
    let _ = write!(
        out,
        " (within {}s)",
        c.timeout.unwrap_or(DEFAULT_DAEMON_TIMEOUT)
    );
    out
}

/// Seconds a daemon check retries by default.
pub const DEFAULT_DAEMON_TIMEOUT: f64 = 10.0;
/// Seconds a `job:` check waits for its container to exit by default.
pub const DEFAULT_JOB_TIMEOUT: f64 = 60.0;
/// Seconds a `jobs:` run or a custom test may take by default.
pub const DEFAULT_RUN_TIMEOUT: f64 = 600.0;

fn describe_job(kind: &JobKind) -> String {
    use std::fmt::Write as _;
    match kind {
        JobKind::Wait(j) => {
            let mut out = format!(
                "wait up to {}s for the exit, expect exit code {}",
                j.timeout.unwrap_or(DEFAULT_JOB_TIMEOUT),
                j.exit_code.unwrap_or(0)
            );
            for l in &j.logs {
                let _ = write!(out, ", output matching `{}`", l.0);
            }
            out
        }
        JobKind::Run { spec, run } => {
            let mut out = format!(
                "run {} as `{}`, expect exit code {}",
                spec.command
                    .as_ref()
                    .map_or_else(String::new, |c| c.join(" ")),
                spec.name,
                run.exit_code.unwrap_or(0)
            );
            if let Some(m) = &run.output_match {
                let _ = write!(out, ", output matching `{m}`");
            }
            if !run.files.is_empty() {
                let _ = write!(out, ", keep {}", run.files.join(" "));
            }
            out
        }
    }
}

impl TestPlan {
    /// The plan as YAML: the unit under its pseudonames (composition, then the setup orders),
    /// then a third document with the names and every suite's cases.
    pub fn to_yaml(&self) -> String {
        let mut composition = Mapping::new();
        for (name, c) in &self.unit.containers {
            composition.insert(Value::String(name.clone()), c.raw.clone());
        }
        let setup_orders = orders_value(&self.setup.cases);

        let mut plan = Mapping::new();
        plan.insert("test".into(), Value::String(self.command.clone()));
        plan.insert("tempid".into(), Value::String(self.tempid.clone()));
        plan.insert(
            "variant".into(),
            Value::String(self.selection.label.clone()),
        );
        plan.insert("production".into(), Value::Bool(self.selection.production));
        plan.insert("unit label".into(), Value::String(self.unit_label.clone()));
        if !self.selection.production {
            let mut renamed = Mapping::new();
            renamed.insert("containers".into(), string_map(&self.renames.containers));
            renamed.insert("volumes".into(), string_map(&self.renames.volumes));
            renamed.insert("images".into(), string_map(&self.renames.images));
            plan.insert("pseudonames".into(), Value::Mapping(renamed));
        }
        let mut suites = Vec::new();
        if !self.selection.production {
            // The orders themselves are the second document.
            suites.push(suite_value(&self.setup, case_names(&self.setup.cases)));
        }
        for s in &self.daemon {
            let cases = s
                .cases
                .iter()
                .map(|c| {
                    let mut m = Mapping::new();
                    m.insert(
                        Value::String(c.name.clone()),
                        Value::String(describe_check(&c.method, &c.check)),
                    );
                    Value::Mapping(m)
                })
                .collect();
            suites.push(suite_value(s, Value::Sequence(cases)));
        }
        for s in &self.jobs {
            let cases = s
                .cases
                .iter()
                .map(|c| {
                    let mut m = Mapping::new();
                    m.insert(
                        Value::String(c.name.clone()),
                        Value::String(describe_job(&c.kind)),
                    );
                    Value::Mapping(m)
                })
                .collect();
            suites.push(suite_value(s, Value::Sequence(cases)));
        }
        for s in &self.custom {
            let cases = s
                .cases
                .iter()
                .map(|c| {
                    let mut m = Mapping::new();
                    m.insert(
                        Value::String(c.name.clone()),
                        Value::String(format!(
                            "`{}` in `{}` if it runs, else in `{}`",
                            c.test.execute.to_vec().join(" "),
                            c.container,
                            c.temporary.name
                        )),
                    );
                    Value::Mapping(m)
                })
                .collect();
            suites.push(suite_value(s, Value::Sequence(cases)));
        }
        if !self.selection.production {
            suites.push(suite_value(&self.stop, orders_value(&self.stop.cases)));
            suites.push(suite_value(
                &self.teardown,
                orders_value(&self.teardown.cases),
            ));
        }
        plan.insert("suites".into(), Value::Sequence(suites));
        if !self.skipped.is_empty() {
            plan.insert("skipped".into(), orders_value(&self.skipped));
        }

        let yaml = |v: &Value| serde_yaml_ng::to_string(v).unwrap_or_default();
        format!(
            "{}---\n{}---\n# the test plan\n{}",
            yaml(&Value::Mapping(composition)),
            yaml(&setup_orders),
            yaml(&Value::Mapping(plan))
        )
    }
}

#[cfg(test)]
#[allow(clippy::many_single_char_names)]
mod tests {
    use super::*;

    use crate::config::environment::Environment;
    use crate::config::loader::UnitCommand;

    /// A resolved unit from a unit file's text, as `UNIT/test[:tokens]` would see it.
    fn unit(command: &str, text: &str) -> Unit {
        let (containers, steps) = crate::unit::typed_for_tests(text);
        let command = UnitCommand::parse(command).unwrap();
        let builtins: Vec<String> = command
            .tokens
            .iter()
            .filter(|t| crate::config::loader::TEST_VARIANTS.contains(&t.as_str()))
            .cloned()
            .collect();
        let custom: Vec<String> = command
            .tokens
            .iter()
            .filter(|t| !builtins.contains(t))
            .cloned()
            .collect();
        Unit {
            command,
            containers,
            steps,
            environment: Environment::default(),
            active: std::collections::BTreeSet::new(),
            test_variants: builtins,
            custom_tests: custom,
        }
    }

    const UNIT: &str = r#"
data:
  build: {path: data, tag: "me/data"}
  creation: {volumes: [/data], tty: true}
db:
  image: busybox
  volumes: ["dbvol:/var/lib/db:ro", "/cache"]
  ports: ["127.0.0.1:5432:5432", "6379", "8080:80/udp"]
web:
  build: {path: web, tag: "me/web:1.0"}
  startup:
    volumes_from: ["data:ro", db]
    links: {db: null, data: d}
    port_bindings: {443: 8443, 444: "127.0.0.1:9443"}
  daemon:
    - GET: {url: "http://127.0.0.1:[[port 80]](web)/x?h=[[ip]](db)", status: 200}
  jobs:
    migrate: {args: [migrate, --all], exit_code: 0}
  tests:
    unit:
      execute: make test
      overwrites: {volumes_from: db}
      extra: {binds: {/up: {bind: /uploads, ro: false}}, env: {A: "1"}}
      files: [out/]
side:
  image: busybox
  startup: {network_mode: "container:web", links: ["db", "data:alias", [web]]}
  job: {exit_code: 0, logs: [{re.match: ok}]}
user:
  image: me/web:1.0
---
- data: {command: create}
- db: {command: start}
- web: {command: start, ready: {http: "http://[[ip]](web):80/", status: 200}}
- side: {command: start, attach: true}
- host: {command: execute, run: ["echo", "[[.Id]](db)"]}
- db: {command: stop}
- host: {command: unit, unit: other/start}
"#;

    #[test]
    fn tempid_is_md5_of_the_command_as_typed() {
        // `printf %s web/test:check | md5sum` = 683b5a2efaab6a327c1bbd5e5c2f715b
        assert_eq!(tempid("web/test:check"), "683b5a2efa");
        assert_eq!(tempid("web/test"), "e351913932");
    }

    #[test]
    fn selection_of_variants() {
        let s = |b: &[&str], prod: bool| {
            Selection::new(
                &b.iter().map(ToString::to_string).collect::<Vec<_>>(),
                &[],
                prod,
            )
        };
        let d = s(&[], false).unwrap();
        assert!(!d.checks && !d.full && !d.production);
        assert_eq!(d.label, "default");
        let c = s(&["check"], false).unwrap();
        assert!(c.checks && !c.full);
        assert_eq!(c.label, "check");
        let f = s(&["full", "check"], false).unwrap();
        assert!(f.full && f.checks);
        assert_eq!(f.label, "full-check");
        let p = s(&[], true).unwrap();
        assert!(p.production && p.checks);
        assert_eq!(p.label, "production");
        let err = s(&["full"], true).unwrap_err().to_string();
        assert!(err.contains("cannot be combined with `full`"), "{err}");
    }

    #[test]
    fn renaming_rewrites_every_reference() {
        let u = unit("u/test:check", UNIT);
        let t = tempid("u/test:check");
        let p = plan(&u, false).unwrap();
        let n = |k: &str| format!("{k}_{t}");
        assert_eq!(
            p.unit.containers.keys().cloned().collect::<Vec<_>>(),
            ["data", "db", "web", "side", "user"].map(n)
        );
        let web = &p.unit.containers[&n("web")].spec;
        assert_eq!(
            web.host.volumes_from,
            vec![format!("{}:ro", n("data")), n("db")]
        );
        assert_eq!(
            web.host.links,
            vec![(n("db"), "db".to_string()), (n("data"), "d".to_string())]
        );
        assert_eq!(
            web.image.as_deref(),
            Some("me/web:1.0"),
            "images keep their names"
        );
        assert!(
            web.ports.iter().all(|p| p.host_port.is_none()),
            "{:?}",
            web.ports
        );
        assert_eq!(web.ports[1].host_ip.as_deref(), Some("127.0.0.1"));
        let daemon = &web.tests.daemon.as_ref().unwrap().checks[0].2;
        assert_eq!(
            daemon.url,
            format!(
                "http://127.0.0.1:[[port 80]]({})/x?h=[[ip]]({})",
                n("web"),
                n("db")
            )
        );
        let side = &p.unit.containers[&n("side")].spec;
        assert_eq!(
            side.host.network_mode.as_deref(),
            Some(format!("container:{}", n("web")).as_str())
        );
        assert_eq!(
            side.host.links,
            vec![
                (n("db"), "db".to_string()),
                (n("data"), "alias".to_string()),
                (n("web"), "web".to_string())
            ]
        );
        let db = &p.unit.containers[&n("db")].spec;
        assert_eq!(
            db.mounts[0],
            MountSpec::Named {
                name: n("dbvol"),
                container: "/var/lib/db".into(),
                read_only: true
            }
        );
        assert_eq!(
            db.mounts[1],
            MountSpec::Anonymous {
                container: "/cache".into()
            }
        );
        let ports: Vec<(Option<String>, Option<u16>, u16)> = db
            .ports
            .iter()
            .map(|p| (p.host_ip.clone(), p.host_port, p.container_port))
            .collect();
        assert_eq!(
            ports,
            vec![
                (Some("127.0.0.1".into()), None, 5432),
                (None, None, 6379),
                (None, None, 80)
            ]
        );
        assert_eq!(db.ports[2].protocol, "udp");
        let data = &p.unit.containers[&n("data")];
        assert!(!data.spec.tty);
        assert_eq!(
            data.raw.get("creation").and_then(|c| c.get("tty")),
            Some(&Value::Bool(false))
        );

        // Orders: containers and placeholders.
        let setup: Vec<String> = p.setup.cases.iter().map(|c| c.name.clone()).collect();
        assert_eq!(
            setup,
            [
                "data:create",
                "db:start",
                "web:start",
                "side:start",
                "host:execute"
            ]
        );
        assert_eq!(p.setup.cases[2].order.container, n("web"));
        let Action::Start(s) = &p.setup.cases[2].order.action else {
            panic!()
        };
        assert!(
            matches!(&s.ready, Some(crate::unit::order::Ready::Http { url, .. }) if *url == format!("http://[[ip]]({}):80/", n("web")))
        );
        let Action::Execute(e) = &p.setup.cases[4].order.action else {
            panic!()
        };
        assert_eq!(
            e.run,
            crate::unit::order::RunCommand::Argv(vec![
                "echo".into(),
                format!("[[.Id]]({})", n("db"))
            ])
        );
        assert_eq!(p.skipped.len(), 1, "the `unit` order is not run by tests");
        assert_eq!(p.unit_label, format!("u_{t}"));
    }

    #[test]
    fn full_renames_built_images_and_their_users() {
        let u = unit("u/test:full", UNIT);
        let t = tempid("u/test:full");
        let p = plan(&u, false).unwrap();
        let spec = |k: &str| &p.unit.containers[&format!("{k}_{t}")].spec;
        assert_eq!(
            spec("web").image.as_deref(),
            Some(format!("me/web:1.0_{t}").as_str())
        );
        assert_eq!(
            spec("data").image.as_deref(),
            Some(format!("me/data:latest_{t}").as_str())
        );
        assert_eq!(
            spec("user").image.as_deref(),
            Some(format!("me/web:1.0_{t}").as_str()),
            "a container using a built image follows its pseudo tag"
        );
        assert_eq!(
            spec("db").image.as_deref(),
            Some("busybox"),
            "pulled images stay"
        );
        let removed: Vec<String> = p
            .teardown
            .cases
            .iter()
            .filter(|c| c.order.action.kind() == "remove_image")
            .map(|c| c.name.clone())
            .collect();
        assert_eq!(removed, ["web:remove_image", "data:remove_image"]);
    }

    #[test]
    fn production_renames_nothing_and_has_no_lifecycle() {
        let u = unit("u/test:production", UNIT);
        let p = plan(&u, false).unwrap();
        assert!(p.unit.containers.contains_key("web"));
        assert!(p.setup.cases.is_empty() && p.stop.cases.is_empty() && p.teardown.cases.is_empty());
        assert_eq!(p.daemon.len(), 1);
        assert_eq!(p.unit_label, "u");
        let JobKind::Run { spec, .. } = &p.jobs[0].cases[0].kind else {
            panic!()
        };
        assert_eq!(spec.name, format!("web_migrate_{}", p.tempid));
        assert_eq!(
            spec.host.volumes_from,
            vec!["data:ro".to_string(), "db".to_string()]
        );
    }

    #[test]
    fn suites_follow_the_variants() {
        let p = plan(&unit("u/test", UNIT), false).unwrap();
        assert!(p.daemon.is_empty() && p.jobs.is_empty() && p.custom.is_empty());
        assert_eq!(p.setup.name, "u/test");

        let p = plan(&unit("u/test:check:unit", UNIT), false).unwrap();
        let t = &p.tempid;
        assert_eq!(p.daemon[0].name, "web_daemon");
        assert_eq!(
            p.daemon[0].cases[0].name,
            "0:GET http://127.0.0.1:[[port 80]](web)/x?h=[[ip]](db)"
        );
        let jobs: Vec<(String, Vec<String>)> = p
            .jobs
            .iter()
            .map(|s| {
                (
                    s.name.clone(),
                    s.cases.iter().map(|c| c.name.clone()).collect(),
                )
            })
            .collect();
        assert_eq!(
            jobs,
            vec![
                ("web_jobs".to_string(), vec!["web:migrate".to_string()]),
                ("side_jobs".to_string(), vec!["side:job".to_string()])
            ]
        );
        let JobKind::Run { spec, .. } = &p.jobs[0].cases[0].kind else {
            panic!()
        };
        assert_eq!(spec.name, format!("web_migrate_{t}"));
        assert_eq!(spec.command.as_ref().unwrap(), &["migrate", "--all"]);
        assert!(spec.ports.is_empty());

        let custom = &p.custom[0];
        assert_eq!(
            (custom.name.as_str(), custom.classname.as_str()),
            ("web_unit", "unit")
        );
        let case = &custom.cases[0];
        assert_eq!(case.container, format!("web_{t}"));
        assert_eq!(case.temporary.name, format!("web_unit_{t}"));
        assert_eq!(
            case.temporary.host.volumes_from,
            vec![format!("db_{t}")],
            "overwrites replace, with references renamed"
        );
        assert_eq!(case.temporary.env, vec![("A".to_string(), "1".to_string())]);
        assert!(
            case.temporary
                .mounts
                .iter()
                .any(|m| matches!(m, MountSpec::Bind { container, .. } if container == "/uploads"))
        );
    }

    #[test]
    fn teardown_only_touches_the_tempid() {
        let u = unit("u/test", UNIT);
        let p = plan(&u, false).unwrap();
        let t = &p.tempid;
        let names: Vec<String> = p.teardown.cases.iter().map(|c| c.name.clone()).collect();
        assert_eq!(
            names,
            ["side:remove", "web:remove", "db:remove", "data:remove"],
            "default keeps the images"
        );
        assert!(
            p.teardown
                .cases
                .iter()
                .all(|c| c.order.container.ends_with(&format!("_{t}")))
        );
        assert_eq!(p.stop.cases.len(), 3);

        // The filter itself: production names and production images never pass.
        let plain = plan(&unit("u/test:production", UNIT), false).unwrap();
        let purge = commands::generate(
            "purge",
            "u",
            &plain.unit.steps,
            &plain.unit.containers,
            &Environment::default(),
        )
        .unwrap();
        let orders: Vec<Order> = purge.iter().flat_map(Step::orders).cloned().collect();
        assert_eq!(orders.len(), 9);
        assert!(safe_teardown(orders.clone(), t, &plain.unit.containers).is_empty());
        let full = plan(&unit("u/test:full", UNIT), false).unwrap();
        let renamed_purge = commands::generate(
            "purge",
            "u",
            &full.unit.steps,
            &full.unit.containers,
            &Environment::default(),
        )
        .unwrap();
        let kept = safe_teardown(
            renamed_purge
                .iter()
                .flat_map(Step::orders)
                .cloned()
                .collect(),
            &full.tempid,
            &full.unit.containers,
        );
        assert_eq!(kept.len(), 9, "everything of a full run carries the tempid");
        assert_eq!(
            full.teardown.cases.len(),
            6,
            "4 removes and 2 images, no stops"
        );
        let default = plan(&unit("u/test", UNIT), false).unwrap();
        let renamed_purge = commands::generate(
            "purge",
            "u",
            &default.unit.steps,
            &default.unit.containers,
            &Environment::default(),
        )
        .unwrap();
        let kept = safe_teardown(
            renamed_purge
                .iter()
                .flat_map(Step::orders)
                .cloned()
                .collect(),
            &default.tempid,
            &default.unit.containers,
        );
        assert_eq!(kept.len(), 7, "images without a pseudo tag are not removed");
    }

    #[test]
    fn pseudonames_are_not_doubled() {
        let t = "0123456789";
        let text = format!("web_{t}:\n  image: x\n---\n- web_{t}: {{command: start}}\n");
        let u = unit("u/test", &text);
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

    #[test]
    fn plan_prints_as_three_documents() {
        let p = plan(&unit("u/test:check", UNIT), false).unwrap();
        let text = p.to_yaml();
        let docs: Vec<&str> = text.split("\n---\n").collect();
        assert_eq!(docs.len(), 3, "{text}");
        assert!(docs[0].contains(&format!("web_{}:", p.tempid)), "{text}");
        assert!(docs[1].contains(&format!("- web_{}:", p.tempid)), "{text}");
        assert!(docs[2].contains("suite: web_daemon"), "{text}");
        assert!(docs[2].contains("answers 200"), "{text}");
    }
}
