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

mod overrides;
mod print;
mod rename;
mod restore;
mod selection;
#[cfg(test)]
mod tests;

use indexmap::IndexMap;

use crate::config::environment::Environment;
use crate::error::ConfigError;
use crate::generate::{commands, defaults};
use crate::unit::checks::{CustomTest, HttpCheck, JobCheck, JobRun};
use crate::unit::container::{ContainerSpec, container_from_value, split_image};
use crate::unit::naming::Naming;
use crate::unit::order::{Action, Order, Step};
use crate::unit::values::Seconds;
use crate::unit::{Container, Unit};

pub use crate::config::command::tempid;
pub use overrides::apply_overrides;
use overrides::temporary;
pub use rename::{Renames, pseudo_image, rename_order, rename_spec, rename_unit};
pub use selection::Selection;

/// Seconds a daemon check retries by default.
pub const DEFAULT_DAEMON_TIMEOUT: Seconds = Seconds::from_secs(10);
/// Seconds a `job:` check waits for its container to exit by default.
pub const DEFAULT_JOB_TIMEOUT: Seconds = Seconds::from_secs(60);
/// Seconds a `jobs:` run or a custom test may take by default.
pub const DEFAULT_RUN_TIMEOUT: Seconds = Seconds::from_secs(600);

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
    /// Why the case is reported as skipped instead of run.
    pub skip: Option<String>,
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
    /// Why the case is reported as skipped instead of run.
    pub skip: Option<String>,
}

/// The label of a test data container: the unit whose test runs made it.
pub const LABEL_TEST_DATA: &str = "dstart.test-data";

/// The test data container of `unit`'s test runs (SPEC "Tests"): `TEST_DATA_CONTAINER` from
/// the environment (which units may share), else the unit's own, `<unit>_test_data`.
pub fn test_data_name(unit: &str, env: &Environment) -> String {
    env.get_str("TEST_DATA_CONTAINER")
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| format!("{}_test_data", crate::text::docker_name(unit)))
}

/// The unit's own test data container, which its purge removes; none when the environment
/// names one (it may be shared).
pub fn own_test_data(unit: &str, env: &Environment) -> Option<String> {
    env.get_str("TEST_DATA_CONTAINER")
        .is_none_or(|s| s.is_empty())
        .then(|| test_data_name(unit, env))
}

/// Why a check is skipped: one marked `production: false` (it changes data) in a run against
/// the live unit.
pub fn skip_reason(production_run: bool, check_production: bool) -> Option<String> {
    (production_run && !check_production)
        .then(|| "`production: false`: not run against the live unit".to_string())
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
    /// orders the setup comes from; its `naming` what the run calls things on the engine
    /// (`dstart.unit` `<unit>_<tempid>`, production: `<unit>`).
    pub unit: Unit,
    pub renames: Renames,
    pub setup: Suite<OrderCase>,
    /// Start orders a test does not run (`unit` orders would act under production names).
    pub skipped: Vec<OrderCase>,
    pub daemon: Vec<Suite<DaemonCase>>,
    pub jobs: Vec<Suite<JobCase>>,
    pub custom: Vec<Suite<CustomCase>>,
    pub stop: Suite<OrderCase>,
    pub teardown: Suite<OrderCase>,
    /// The container the run's files are kept in ([`test_data_name`]).
    pub test_data: String,
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

fn order_case(order: Order, naming: &Naming) -> OrderCase {
    OrderCase {
        name: format!(
            "{}:{}",
            naming.display(&order.container),
            order.action.kind()
        ),
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

/// Plans the test run of `unit` (a resolved `UNIT/test[:...]`).
pub fn plan(unit: &Unit, production_flag: bool) -> Result<TestPlan, ConfigError> {
    let command = unit.command.to_string();
    let tempid = tempid(&command);
    let selection = Selection::new(&unit.test_variants, &unit.custom_tests, production_flag)?;
    let (renames, renamed) = if selection.production {
        (Renames::identity(&tempid), unit.clone())
    } else {
        let r = Renames::new(unit, &tempid, selection.full);
        let renamed = rename_unit(unit, &r);
        (r, renamed)
    };
    let display = &renamed.naming;

    let mut setup = Suite::new(&command, "setup");
    let mut skipped = Vec::new();
    let mut stop = Suite::new("stop", "teardown");
    let mut teardown = Suite::new("teardown", "teardown");
    if !selection.production {
        let mut restores = if selection.restore {
            restore::setup(unit, &renamed, &renames)?
        } else {
            restore::RestoreSetup::default()
        };
        for order in renamed.steps.iter().flat_map(Step::orders) {
            match order.action {
                Action::Stop(_) | Action::Remove(_) | Action::RemoveImage(_) => {}
                Action::Unit(_) | Action::Tests(_) | Action::Upgrade(_) => {
                    skipped.push(order_case(order.clone(), display));
                }
                // `test:restore`: a container's archive goes in right after it is created,
                // before it first starts.
                Action::Create => {
                    setup.cases.push(order_case(order.clone(), display));
                    for o in restores.take(&order.container, false) {
                        setup.cases.push(order_case(o, display));
                    }
                }
                Action::Start(_) => {
                    for o in restores.take(&order.container, true) {
                        setup.cases.push(order_case(o, display));
                    }
                    setup.cases.push(order_case(order.clone(), display));
                }
                _ => setup.cases.push(order_case(order.clone(), display)),
            }
        }
        for o in restores.rest() {
            setup.cases.push(order_case(o, display));
        }
        let generated = |what: &str| -> Result<Vec<Order>, ConfigError> {
            let steps = commands::generate(
                what,
                &unit.command.unit,
                &renamed.steps,
                &renamed.containers,
                &renamed.environment,
            )?;
            let mut orders = safe_teardown(
                steps.iter().flat_map(Step::orders).cloned().collect(),
                &tempid,
                &renamed.containers,
            );
            // With their effective timeouts, like every generated command.
            for o in &mut orders {
                defaults::order(o, &renamed.containers);
            }
            Ok(orders)
        };
        stop.cases = generated("stop")?
            .into_iter()
            .map(|o| order_case(o, display))
            .collect();
        // `remove` stops a running container itself: the teardown needs no stop orders.
        teardown.cases = generated("purge")?
            .into_iter()
            .filter(|o| !matches!(o.action, Action::Stop(_)))
            .map(|o| order_case(o, display))
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
                        method: method.as_str().to_string(),
                        check: check.clone(),
                        skip: skip_reason(selection.production, check.production),
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
                    skip: skip_reason(selection.production, job.production),
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
                    skip: skip_reason(selection.production, run.production),
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
            // The written spec with the test's changes, then renamed like every container of
            // the copy (the changes may name containers too).
            let value = apply_overrides(&original.raw, test);
            let mut spec = container_from_value(key, &value, &original.origin)?;
            if !selection.production {
                rename_spec(&mut spec, &renames);
            }
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
        setup,
        skipped,
        daemon,
        jobs,
        custom,
        stop,
        teardown,
        test_data: test_data_name(&unit.command.unit, &unit.environment),
    })
}
