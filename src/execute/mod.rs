//! Running a unit command against the engine: one order after another (or a `parallel` block
//! at a time), each turned into engine calls by the function of its kind. No decisions that the
//! generate stage could have made are taken here.

pub mod backup;
pub mod builder;
pub mod buildhash;
pub mod chain;
pub mod context;
pub mod dockerfile;
pub mod hashcache;
pub mod image;
pub mod interrupt;
pub mod lifecycle;
pub mod logs;
pub mod ownership;
pub mod preview;
pub mod pull;
pub mod retention;
pub mod run;
pub mod substitute;
pub mod swarm;
pub mod swarm_backup;
pub mod swarm_checks;
pub mod swarm_preview;
pub mod test_runs;
pub mod upgrade;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use futures_util::StreamExt;
use thiserror::Error;

use crate::config::discover::ConfigDir;
use crate::config::environment::Environment;
use crate::engine::{Engine, EngineError};
use crate::error::ConfigError;
use crate::output;
use crate::unit::container::ContainerSpec;
use crate::unit::order::{Action, Order, Step};
use crate::unit::values::Seconds;
use crate::unit::{Container, Unit};

/// Why an order failed.
#[derive(Debug, Error)]
pub enum OrderError {
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("{message}")]
    Failed {
        message: String,
        /// What the user can do about it, shown as a `hint:` line.
        hint: Option<String>,
    },
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("interrupted")]
    Interrupted,
}

impl OrderError {
    pub fn failed(message: impl Into<String>) -> Self {
        OrderError::Failed {
            message: message.into(),
            hint: None,
        }
    }

    /// A failure with a `hint:` line.
    pub fn hinted(message: impl Into<String>, hint: impl Into<String>) -> Self {
        OrderError::Failed {
            message: message.into(),
            hint: Some(hint.into()),
        }
    }

    /// The hint of a failure, if it has one.
    pub fn hint(&self) -> Option<String> {
        match self {
            OrderError::Failed { hint, .. } => hint.clone(),
            OrderError::Engine(e) => e.hint(),
            _ => None,
        }
    }

    pub fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> OrderError {
        let context = context.into();
        move |source| OrderError::Io { context, source }
    }
}

pub type OrderResult<T = ()> = Result<T, OrderError>;

/// What stays the same for a whole `dstart run`, nested `unit` orders included.
pub struct Runtime {
    pub engine: Engine,
    pub conf: ConfigDir,
    /// The environment before any unit's globals (for nested `unit` orders).
    pub env: Environment,
    pub cwd: PathBuf,
    /// `run --pull`: the pull policy of every container in this run.
    pub pull: Option<crate::unit::container::PullPolicy>,
    /// `run --no-cache`: every image this run builds is rebuilt without the engine's cache.
    pub no_cache: bool,
    /// `BUILD_KEEP`: how many images dstart built to keep per repository.
    pub build_keep: usize,
    /// SIGINT and SIGTERM: every long wait of the run races it.
    pub interrupt: interrupt::Interrupt,
    /// What the run left alone because dstart did not make it for the unit (exit 1 at the end).
    pub refusals: ownership::Refusals,
    /// The builds of the configuration directory that the run's builds may be built from.
    pub chain: std::sync::Arc<chain::Chain>,
    /// Containers on the engine, or services on its swarm.
    pub orchestrator: crate::unit::orchestrator::Orchestrator,
}

pub use crate::unit::naming::{Naming, network_name};

/// One unit command being run.
pub struct UnitRun<'a> {
    pub rt: &'a Runtime,
    pub unit: &'a Unit,
    pub naming: Naming,
    /// Unit commands above this one (nested `unit` orders), to refuse cycles.
    pub stack: Vec<String>,
    /// Whether this run made sure the unit network exists; cleared when it removes it.
    network_ready: tokio::sync::Mutex<bool>,
    volumes_ready: Mutex<HashSet<String>>,
    image_locks: image::ImageLocks,
    /// Backup directory locks this run holds (until it ends).
    pub backup_locks: tokio::sync::Mutex<Vec<crate::backup::lock::DirLock>>,
    /// Named volumes a generated backup or restore of this run has already taken, so that a
    /// volume shared by several containers is archived (and restored) once.
    pub generated_volumes: Mutex<HashSet<String>>,
}

impl<'a> UnitRun<'a> {
    /// A run of `unit` under the names it was loaded with ([`Unit::naming`]).
    pub fn new(rt: &'a Runtime, unit: &'a Unit, stack: Vec<String>) -> Self {
        UnitRun {
            rt,
            unit,
            naming: unit.naming.clone(),
            stack,
            network_ready: tokio::sync::Mutex::new(false),
            volumes_ready: Mutex::new(HashSet::new()),
            image_locks: image::ImageLocks::default(),
            backup_locks: tokio::sync::Mutex::new(Vec::new()),
            generated_volumes: Mutex::new(HashSet::new()),
        }
    }

    /// Serializes work on one image (builds, pulls) within this run.
    pub async fn image_lock(&self, image: &str) -> tokio::sync::OwnedMutexGuard<()> {
        self.image_locks.lock(image).await
    }

    pub fn engine(&self) -> &Engine {
        &self.rt.engine
    }

    /// The spec of a container of this unit.
    pub fn container(&self, name: &str) -> OrderResult<&'a Container> {
        self.unit.containers.get(name).ok_or_else(|| {
            OrderError::failed(format!("container `{name}` has no spec in this unit"))
        })
    }

    pub fn spec(&self, name: &str) -> OrderResult<&'a ContainerSpec> {
        Ok(&self.container(name)?.spec)
    }

    /// The seconds a stop of `name` waits before the engine kills it: the order's explicit
    /// `timeout`, else the container's `stop_timeout`.
    pub fn stop_timeout(&self, name: &str, explicit: Option<u32>) -> u32 {
        explicit.unwrap_or_else(|| {
            self.unit
                .containers
                .get(name)
                .map_or(crate::unit::container::DEFAULT_STOP_TIMEOUT, |c| {
                    c.spec.stop_timeout
                })
        })
    }

    /// Creates the unit network once per run (again after the run removed it).
    pub async fn ensure_network(&self) -> OrderResult {
        let mut ready = self.network_ready.lock().await;
        if *ready {
            return Ok(());
        }
        let req = if self.swarm() {
            crate::engine::convert::overlay_network_request(
                &self.naming.network,
                &self.naming.unit_label,
            )
        } else {
            crate::engine::convert::network_request(&self.naming.network, &self.naming.unit_label)
        };
        if self.engine().ensure_network(req).await? {
            output::debug(format!("Created network {}", self.naming.network));
        }
        *ready = true;
        Ok(())
    }

    /// Notes that the unit network is gone: the next container that needs it creates it.
    pub async fn forget_network(&self) {
        *self.network_ready.lock().await = false;
    }

    /// Creates a named volume of the unit once per run; `container` declared it.
    pub async fn ensure_volume(&self, engine_name: &str, container: &str) -> OrderResult {
        if self
            .volumes_ready
            .lock()
            .is_ok_and(|v| v.contains(engine_name))
        {
            return Ok(());
        }
        let req =
            crate::engine::convert::volume_request(engine_name, &self.naming.unit_label, container);
        if self.engine().ensure_volume(req).await? {
            output::debug(format!("Created volume {engine_name}"));
        }
        if let Ok(mut v) = self.volumes_ready.lock() {
            v.insert(engine_name.to_string());
        }
        Ok(())
    }

    /// Whether the run deploys services on a swarm instead of containers.
    pub fn swarm(&self) -> bool {
        self.rt.orchestrator == crate::unit::orchestrator::Orchestrator::Swarm
    }

    /// The name a container's key has for the user.
    pub fn display_name<'n>(&'n self, name: &'n str) -> &'n str {
        self.naming.display(name)
    }

    /// Runs all steps. Stops at the first failure; inside a `parallel` block, the orders already
    /// running finish first.
    /// Runs the unit command: its steps, then, for the generated `purge`, the removal of the
    /// unit's test data container.
    pub async fn run_unit(&self) -> OrderResult {
        self.run_steps(&self.unit.steps).await?;
        if let Some(name) = &self.unit.purge_test_data {
            self.remove_test_data(name).await?;
        }
        Ok(())
    }

    /// Removes `name` with its volumes if it is this unit's test data container (labelled
    /// so); a container of another owner under that name is kept, with a warning.
    async fn remove_test_data(&self, name: &str) -> OrderResult {
        use crate::generate::testplan::LABEL_TEST_DATA;
        let Some(info) = self.engine().container(name).await? else {
            output::debug(format!("No test data container {name} (skipped)"));
            return Ok(());
        };
        let unit = &self.unit.command.unit;
        if info.labels.get(LABEL_TEST_DATA) != Some(unit) {
            output::warn(
                "execute",
                format!(
                    "kept the container {name}: it is not the test data container of {unit} \
                     (no label {LABEL_TEST_DATA}={unit})"
                ),
            );
            return Ok(());
        }
        match self.engine().remove_container(name, true, true).await {
            Ok(()) => {
                output::info(format!("Removed the test data container {name}"));
                Ok(())
            }
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(OrderError::Engine(e)),
        }
    }

    pub async fn run_steps(&self, steps: &[Step]) -> OrderResult {
        for step in steps {
            self.rt.interrupt.check()?;
            match step {
                Step::Order(order) => self.run_order(order).await?,
                Step::Parallel { max, orders, .. } => {
                    let results: Vec<OrderResult> = futures_util::stream::iter(chains(orders))
                        .map(|chain| async move {
                            for o in chain {
                                self.rt.interrupt.check()?;
                                self.run_order(o).await?;
                            }
                            Ok(())
                        })
                        .buffer_unordered(*max)
                        .collect()
                        .await;
                    let mut failures = results.into_iter().filter_map(Result::err);
                    if let Some(first) = failures.next() {
                        // The first failure ends the run and is reported then; the others
                        // are logged here so that none is lost.
                        for other in failures.filter(|e| !matches!(e, OrderError::Interrupted)) {
                            output::error("execute", other.to_string());
                        }
                        return Err(first);
                    }
                }
            }
        }
        Ok(())
    }

    /// Runs one order, logging what it does. A failure is returned, not logged: whoever ends
    /// the run reports it once (a cron job's mail holds one error, not two).
    pub async fn run_order(&self, order: &Order) -> OrderResult {
        let kind = order.action.kind();
        if order.container != crate::unit::order::HOST {
            output::debug(format!("Initialized docker container {}", order.container));
        }
        output::info(format!("Executing step {kind} on {}", order.container));
        let result = Box::pin(self.dispatch(order)).await;
        match result {
            Ok(()) => {
                if order.wait > Seconds::default() {
                    self.rt.interrupt.sleep(order.wait.duration()).await?;
                }
                Ok(())
            }
            Err(OrderError::Interrupted) => Err(OrderError::Interrupted),
            Err(e) => Err(OrderError::Failed {
                message: format!("order `{kind}` on `{}` failed: {e}", order.container),
                hint: e.hint(),
            }),
        }
    }

    async fn dispatch(&self, order: &Order) -> OrderResult {
        let name = order.container.as_str();
        if self.swarm() {
            // `unit::orchestrator::check_swarm` refused the other kinds before the run began.
            match &order.action {
                Action::Start(args) => return Box::pin(swarm::start(self, name, args)).await,
                Action::Stop(args) => {
                    return swarm::stop(self, name, self.stop_timeout(name, args.timeout)).await;
                }
                Action::Remove(args) => return swarm::remove(self, name, args).await,
                Action::Backup(args) => {
                    return Box::pin(swarm_backup::backup(self, order, args)).await;
                }
                Action::Restore(args) => {
                    return Box::pin(swarm_backup::restore(self, order, args)).await;
                }
                _ => {}
            }
        }
        match &order.action {
            Action::Build => image::build_order(self, name).await,
            Action::Create => lifecycle::create(self, name).await.map(|_| ()),
            Action::Start(args) => Box::pin(lifecycle::start(self, name, args)).await,
            Action::Stop(args) => {
                lifecycle::stop(self, name, self.stop_timeout(name, args.timeout)).await
            }
            Action::Remove(args) => lifecycle::remove(self, name, args).await,
            Action::RemoveImage(args) => image::remove_image(self, name, args).await,
            Action::Tag(args) => image::tag(self, name, args).await,
            Action::Commit(args) => image::commit(self, name, args).await,
            Action::Push(args) => image::push(self, name, args).await,
            Action::Execute(args) => Box::pin(run::execute(self, name, args)).await,
            Action::Unit(args) => run::unit(self, args).await,
            Action::Tests(args) => Box::pin(test_runs::tests(self, args)).await,
            Action::Upgrade(args) => Box::pin(upgrade::upgrade(self, args)).await,
            Action::Backup(args) => backup::backup(self, order, args).await,
            Action::Restore(args) => backup::restore(self, order, args).await,
        }
    }
}

/// The orders of a `parallel` block as chains that may run concurrently: the orders on one
/// container keep their written order (a generated cleanup removes a container right after
/// its own stop, while others are still stopping); `host` orders are independent commands.
fn chains(orders: &[Order]) -> Vec<Vec<&Order>> {
    let mut out: Vec<Vec<&Order>> = Vec::new();
    for o in orders {
        let same = (o.container != "host")
            .then(|| out.iter_mut().find(|c| c[0].container == o.container))
            .flatten();
        match same {
            Some(chain) => chain.push(o),
            None => out.push(vec![o]),
        }
    }
    out
}

/// Resolves a host path from a unit file: `${CONFIG_DIR}` (the container's build directory,
/// else the current directory, ORIGINAL §2.2), `${PWD}`, and relative paths against the
/// configuration directory.
pub fn resolve_host_path(rt: &Runtime, spec: Option<&ContainerSpec>, path: &str) -> PathBuf {
    let build = spec.and_then(|s| s.build.as_ref()).map(|b| b.path.as_str());
    host_path(rt.conf.root(), &rt.cwd, build, path)
}

/// [`resolve_host_path`] for the configuration directory `conf`, the current directory `cwd`
/// and the container's `build.path`.
pub fn host_path(conf: &Path, cwd: &Path, build: Option<&str>, path: &str) -> PathBuf {
    // The engine takes only absolute bind paths (a relative one reads as a volume name),
    // whatever the form of `-c`.
    let conf = &absolute_dir(conf, cwd);
    let config_dir = build
        .map(|b| build_path(conf, cwd, b))
        .filter(|p| p.exists())
        .unwrap_or_else(|| cwd.to_path_buf());
    let replaced = path
        .replace("${CONFIG_DIR}", &config_dir.display().to_string())
        .replace("${PWD}", &cwd.display().to_string());
    let p = PathBuf::from(&replaced);
    let p = if let Some(rest) = replaced.strip_prefix("~/") {
        std::env::var_os("HOME").map_or(p.clone(), |h| PathBuf::from(h).join(rest))
    } else {
        p
    };
    let joined = if p.is_absolute() { p } else { conf.join(p) };
    // `dir/./backups` reads as `dir/backups` (only `.` is dropped: `..` may cross a link).
    joined.components().collect()
}

/// `dir` made absolute against `cwd`; a relative one without its `.` and `..` (`-c ../x/conf`).
fn absolute_dir(dir: &Path, cwd: &Path) -> PathBuf {
    if dir.is_absolute() {
        return dir.to_path_buf();
    }
    let joined = cwd.join(dir);
    std::fs::canonicalize(&joined).unwrap_or(joined)
}

/// A build context directory: absolute, else relative to the configuration directory, else to
/// the current directory.
pub fn resolve_build_path(rt: &Runtime, path: &str) -> PathBuf {
    build_path(rt.conf.root(), &rt.cwd, path)
}

/// [`resolve_build_path`] for the configuration directory `conf` and current directory `cwd`.
pub fn build_path(conf: &Path, cwd: &Path, path: &str) -> PathBuf {
    let p = Path::new(path);
    if p.is_absolute() {
        return p.to_path_buf();
    }
    let in_conf = conf.join(p);
    if in_conf.exists() {
        return in_conf;
    }
    let in_cwd = cwd.join(p);
    if in_cwd.exists() { in_cwd } else { in_conf }
}

/// Keeps the last lines of some output, for error messages.
#[derive(Debug, Default)]
pub struct Tail {
    lines: std::collections::VecDeque<String>,
    partial: String,
    keep: usize,
}

impl Tail {
    pub fn new(keep: usize) -> Self {
        Tail {
            lines: std::collections::VecDeque::new(),
            partial: String::new(),
            keep,
        }
    }

    /// Adds output; returns the complete lines it finished.
    pub fn push(&mut self, data: &[u8]) -> Vec<String> {
        self.partial.push_str(&String::from_utf8_lossy(data));
        let mut done = Vec::new();
        while let Some(i) = self.partial.find('\n') {
            let line: String = self.partial.drain(..=i).collect();
            let line = line.trim_end_matches(['\n', '\r']).to_string();
            self.remember(line.clone());
            done.push(line);
        }
        done
    }

    fn remember(&mut self, line: String) {
        self.lines.push_back(line);
        while self.lines.len() > self.keep {
            self.lines.pop_front();
        }
    }

    /// Ends the output; returns the unfinished last line, if any.
    pub fn finish(&mut self) -> Option<String> {
        if self.partial.is_empty() {
            return None;
        }
        let line = std::mem::take(&mut self.partial);
        self.remember(line.clone());
        Some(line)
    }

    /// The kept lines, indented for an error message ("" when there were none).
    pub fn render(&self) -> String {
        if self.lines.is_empty() {
            return String::new();
        }
        let mut out = String::from("\nlast lines of output:");
        for l in &self.lines {
            out.push_str("\n  ");
            out.push_str(l);
        }
        out
    }

    pub fn lines(&self) -> impl Iterator<Item = &String> {
        self.lines.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_keeps_last_lines() {
        let mut t = Tail::new(2);
        assert_eq!(t.push(b"a\nb\nc"), vec!["a", "b"]);
        assert_eq!(t.finish().as_deref(), Some("c"));
        assert_eq!(t.render(), "\nlast lines of output:\n  b\n  c");
    }

    #[test]
    fn parallel_orders_on_one_container_keep_their_order() {
        let origin = crate::config::source::Origin::generated("test");
        let order = |c: &str, command: &str| {
            let run = if command == "execute" {
                ", run: [x]"
            } else {
                ""
            };
            let v: serde_yaml_ng::Value =
                serde_yaml_ng::from_str(&format!("{{command: {command}{run}}}")).unwrap();
            crate::unit::order::order_from_value(c, &v, &origin).unwrap()
        };
        let orders = [
            order("b", "stop"),
            order("a", "stop"),
            order("host", "execute"),
            order("b", "remove"),
            order("host", "execute"),
            order("a", "remove"),
        ];
        let got: Vec<Vec<String>> = chains(&orders)
            .iter()
            .map(|c| {
                c.iter()
                    .map(|o| format!("{} {}", o.container, o.action.kind()))
                    .collect()
            })
            .collect();
        assert_eq!(
            got,
            [
                vec!["b stop", "b remove"],
                vec!["a stop", "a remove"],
                vec!["host execute"],
                vec!["host execute"],
            ]
        );
    }

    #[test]
    fn host_paths_resolve_placeholders_and_relative_paths() {
        let tmp = tempfile::tempdir().unwrap();
        let conf = tmp.path().join("conf");
        let cwd = tmp.path().join("elsewhere");
        std::fs::create_dir_all(conf.join("services/app")).unwrap();
        std::fs::create_dir_all(cwd.join("only-here")).unwrap();
        let app = Some("services/app");
        for (build, path, expected) in [
            (app, "${CONFIG_DIR}/etc", conf.join("services/app/etc")),
            (None, "${CONFIG_DIR}/etc", cwd.join("etc")),
            // A build directory that does not exist falls back to the current directory.
            (Some("services/gone"), "${CONFIG_DIR}/etc", cwd.join("etc")),
            (
                Some("only-here"),
                "${CONFIG_DIR}/x",
                cwd.join("only-here/x"),
            ),
            (app, "${PWD}/data", cwd.join("data")),
            (app, "./www", conf.join("www")),
            (app, "www/./a", conf.join("www/a")),
            (None, "/abs/path", PathBuf::from("/abs/path")),
        ] {
            assert_eq!(
                host_path(&conf, &cwd, build, path),
                expected,
                "{path} with build {build:?}"
            );
        }
    }

    #[test]
    fn bind_paths_are_absolute_whatever_the_form_of_the_configuration_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let base = std::fs::canonicalize(tmp.path()).unwrap();
        let cwd = base.join("work/here");
        std::fs::create_dir_all(&cwd).unwrap();
        std::fs::create_dir_all(cwd.join("conf")).unwrap();
        std::fs::create_dir_all(base.join("work/x/conf")).unwrap();
        for (conf, expected) in [
            ("conf", cwd.join("conf/data")),
            ("./conf", cwd.join("conf/data")),
            ("../x/conf", base.join("work/x/conf/data")),
            (".", cwd.join("data")),
        ] {
            let got = host_path(Path::new(conf), &cwd, None, "./data");
            assert_eq!(got, expected, "-c {conf}");
            assert!(got.is_absolute(), "-c {conf}: {}", got.display());
        }
    }

    #[test]
    fn build_paths_prefer_the_configuration_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let conf = tmp.path().join("conf");
        let cwd = tmp.path().join("cwd");
        std::fs::create_dir_all(conf.join("both")).unwrap();
        std::fs::create_dir_all(cwd.join("both")).unwrap();
        std::fs::create_dir_all(cwd.join("cwd-only")).unwrap();
        assert_eq!(build_path(&conf, &cwd, "both"), conf.join("both"));
        assert_eq!(build_path(&conf, &cwd, "cwd-only"), cwd.join("cwd-only"));
        assert_eq!(build_path(&conf, &cwd, "nowhere"), conf.join("nowhere"));
        assert_eq!(build_path(&conf, &cwd, "/abs"), PathBuf::from("/abs"));
    }
}
