//! Defaults applied while the unit loads, so that `--print-unit` shows the effective values and
//! the executor has no default of its own to apply: each container's `stop_timeout`, the
//! `timeout` of the orders that stop a container (the container's `stop_timeout`), and the
//! `timeout` (and `status`) of a `start` order's `ready`.

use indexmap::IndexMap;
use serde_yaml_ng::{Mapping, Value};

use crate::unit::Container;
use crate::unit::container::DEFAULT_STOP_TIMEOUT;
use crate::unit::order::{Action, Order, Ready, Step};
use crate::unit::values::Seconds;

/// Seconds as YAML: whole ones as integers.
fn seconds(s: Seconds) -> Value {
    let v = s.get();
    if v.fract() == 0.0 {
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        Value::from(v as u64)
    } else {
        Value::from(v)
    }
}

/// Shows every container's effective `stop_timeout` and fills in the defaults of the orders.
pub fn apply(containers: &mut IndexMap<String, Container>, steps: &mut [Step]) {
    for c in containers.values_mut() {
        if c.raw.is_null() {
            c.raw = Value::Mapping(Mapping::new());
        }
        if let Value::Mapping(m) = &mut c.raw {
            if !m.contains_key("stop_timeout") {
                m.insert("stop_timeout".into(), c.spec.stop_timeout.into());
            }
        }
    }
    for step in steps {
        match step {
            Step::Order(o) => order(o, containers),
            Step::Parallel { orders, .. } => {
                for o in orders {
                    order(o, containers);
                }
            }
        }
    }
}

/// The defaults of one order.
pub fn order(order: &mut Order, containers: &IndexMap<String, Container>) {
    let stop = containers
        .get(&order.container)
        .map_or(DEFAULT_STOP_TIMEOUT, |c| c.spec.stop_timeout);
    // The orders whose point (or whose `stop: true`) is stopping the container.
    let timeout = match &mut order.action {
        Action::Stop(a) => Some(&mut a.timeout),
        Action::Remove(a) => Some(&mut a.timeout),
        Action::Start(a) if a.restart => Some(&mut a.timeout),
        Action::Backup(a) if a.stop => Some(&mut a.timeout),
        Action::Restore(a) if a.stop => Some(&mut a.timeout),
        _ => None,
    };
    if let Some(t) = timeout {
        if t.is_none() {
            *t = Some(stop);
            order.raw.insert("timeout".into(), stop.into());
        }
    }
    if let Action::Start(a) = &order.action {
        if let Some(ready) = &a.ready {
            ready_defaults(&mut order.raw, ready);
        }
    }
}

/// `ready` as written, with its effective `timeout` (and an HTTP check's `status`).
fn ready_defaults(raw: &mut Mapping, ready: &Ready) {
    let Some(written) = raw.get_mut("ready") else {
        return;
    };
    if written.as_str() == Some("healthy") {
        let mut m = Mapping::new();
        m.insert("healthy".into(), Value::Bool(true));
        *written = Value::Mapping(m);
    }
    let Value::Mapping(m) = written else { return };
    if let Ready::Http { status, .. } = ready {
        if !m.contains_key("status") {
            m.insert("status".into(), Value::from(*status));
        }
    }
    if !m.contains_key("timeout") {
        m.insert("timeout".into(), seconds(ready.timeout()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn effective_values_are_written_into_what_prints() {
        let (mut containers, mut steps) = crate::unit::typed_for_tests(
            "db: {image: busybox, stop_timeout: 30}\nweb: {image: busybox}\nnull_spec:\n---\n\
             - db: {command: start, ready: healthy}\n\
             - web: {command: start, restart: true, ready: {http: 'http://[[ip]](web)/'}}\n\
             - web: {command: start, ready: {log: up, timeout: 5}}\n\
             - db: {command: stop}\n\
             - web: {command: stop, timeout: 3}\n\
             - db: {command: remove, v: true}\n\
             - db: {command: backup}\n\
             - db: {command: backup, stop: true}\n",
        );
        apply(&mut containers, &mut steps);
        let printed = |v: &Value| serde_yaml_ng::to_string(v).unwrap().trim_end().to_string();
        let composition: Vec<String> = containers
            .values()
            .map(|c| printed(&c.raw).replace('\n', " "))
            .collect();
        assert_eq!(
            composition,
            [
                "image: busybox stop_timeout: 30",
                "image: busybox stop_timeout: 10",
                "stop_timeout: 10"
            ]
        );
        let orders: Vec<String> = steps
            .iter()
            .flat_map(Step::orders)
            .map(|o| printed(&Value::Mapping(o.raw.clone())).replace('\n', " "))
            .collect();
        assert_eq!(
            orders,
            [
                "command: start ready:   healthy: true   timeout: 60",
                "command: start restart: true ready:   http: http://[[ip]](web)/   status: 200   timeout: 60 timeout: 10",
                "command: start ready:   log: up   timeout: 5",
                "command: stop timeout: 30",
                "command: stop timeout: 3",
                "command: remove v: true timeout: 30",
                "command: backup",
                "command: backup stop: true timeout: 30",
            ]
        );
        // The typed orders carry the same values: the executor applies no default.
        let timeouts: Vec<Option<u32>> = steps
            .iter()
            .flat_map(Step::orders)
            .map(|o| match &o.action {
                Action::Stop(a) => a.timeout,
                Action::Remove(a) => a.timeout,
                Action::Start(a) => a.timeout,
                Action::Backup(a) => a.timeout,
                _ => None,
            })
            .collect();
        assert_eq!(
            timeouts,
            [
                None,
                Some(10),
                None,
                Some(30),
                Some(3),
                Some(30),
                None,
                Some(30)
            ]
        );
    }
}
