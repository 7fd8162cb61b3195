//! Custom test variants (`tests:` of a container): the written spec with the test's
//! `overwrites` and `extra` applied, and the throw-away container a test or job runs in.

use serde::de::DeserializeOwned;
use serde_yaml_ng::{Mapping, Value};

use crate::unit::checks::CustomTest;
use crate::unit::container::{ContainerSpec, RawCreation, RawStartup};

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
pub(super) fn temporary(spec: &ContainerSpec, name: &str) -> ContainerSpec {
    let mut t = spec.clone();
    t.name = name.to_string();
    t.ports.clear();
    t.healthcheck = None;
    t.host.restart_policy = None;
    t.tty = false;
    t.stdin_open = false;
    t
}
