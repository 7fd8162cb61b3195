//! The test plan as YAML (`--print-unit` of a test run): the unit under its pseudonames, its
//! setup orders, then the names and every suite's cases.

use indexmap::IndexMap;
use serde_yaml_ng::{Mapping, Value};

use super::{DEFAULT_DAEMON_TIMEOUT, DEFAULT_JOB_TIMEOUT, JobKind, OrderCase, Suite, TestPlan};
use crate::unit::checks::HttpCheck;
use crate::unit::order::order_to_value;

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

/// `skipped (<why>)` for a skipped case, else what it checks.
fn skipped_or(skip: Option<&str>, describe: impl FnOnce() -> String) -> String {
    skip.map_or_else(describe, |why| format!("skipped ({why})"))
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
        plan.insert(
            "unit label".into(),
            Value::String(self.unit.naming.unit_label.clone()),
        );
        plan.insert("test data".into(), Value::String(self.test_data.clone()));
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
                        Value::String(skipped_or(c.skip.as_deref(), || {
                            describe_check(&c.method, &c.check)
                        })),
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
                        Value::String(skipped_or(c.skip.as_deref(), || describe_job(&c.kind))),
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

        let yaml = |v: &Value| crate::output::masked_yaml(v);
        format!(
            "{}---\n{}---\n# the test plan\n{}",
            yaml(&Value::Mapping(composition)),
            yaml(&setup_orders),
            yaml(&Value::Mapping(plan))
        )
    }
}
