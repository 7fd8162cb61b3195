//! Runs a [`TestPlan`] against the engine, suite after suite (ORIGINAL §6.3): setup, daemon
//! checks, job checks, custom variants, the stop phase and the teardown, which always runs (also
//! after a failure and after an interrupt). Every case's log lines are captured for the report
//! instead of being printed; the console gets one `PASS|FAIL` line per case.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use futures_util::{FutureExt, StreamExt};

use crate::checks::http::{HttpCheck, request_limit};
use crate::engine::ContainerInfo;
use crate::engine::convert::LABEL_UNIT;
use crate::execute::lifecycle::{Probe, last_lines, probe};
use crate::execute::ownership::Owner;
use crate::execute::run::{remove_temporary, run_container_kept};
use crate::execute::substitute::{lookup, substitute_args, substitute_text};
use crate::execute::{OrderError, Runtime, UnitRun, resolve_host_path};
use crate::execute::{swarm, swarm_checks};
use crate::generate::testplan::{
    CustomCase, DEFAULT_DAEMON_TIMEOUT, DEFAULT_JOB_TIMEOUT, DEFAULT_RUN_TIMEOUT, DaemonCase,
    JobCase, JobKind, OrderCase, TestPlan,
};
use crate::output;
use crate::testing::archive::{self, Staging};
use crate::testing::files;
use crate::testing::junit;
use crate::testing::report::{CaseResult, Failure, Report};
use crate::unit::checks::LogMatch;
use crate::unit::container::{ContainerSpec, StringOrList};
use crate::unit::order::RemoveArgs;
use crate::unit::values::{Pattern, Seconds};

/// How a test run ended.
#[derive(Debug)]
pub struct Outcome {
    pub report: Report,
    pub interrupted: bool,
    /// Where the `JUnit` report was written.
    pub junit: PathBuf,
}

/// Why a case failed.
#[derive(Debug)]
struct CaseError {
    text: String,
    interrupted: bool,
}

impl CaseError {
    fn fail(text: impl Into<String>) -> Self {
        CaseError {
            text: text.into(),
            interrupted: false,
        }
    }
}

impl From<OrderError> for CaseError {
    fn from(e: OrderError) -> Self {
        match e {
            OrderError::Interrupted => CaseError {
                text: "interrupted".into(),
                interrupted: true,
            },
            other => CaseError::fail(other.to_string()),
        }
    }
}

impl From<crate::engine::EngineError> for CaseError {
    fn from(e: crate::engine::EngineError) -> Self {
        CaseError::fail(e.to_string())
    }
}

type CaseOutcome = Result<(), CaseError>;

/// Runs `work` as one case, capturing its log lines.
async fn timed(
    name: &str,
    classname: &str,
    work: impl Future<Output = CaseOutcome>,
) -> (CaseResult, bool) {
    output::start_capture(true);
    let start = Instant::now();
    let outcome = work.await;
    let log = output::stop_capture();
    let (failure, interrupted) = match outcome {
        Ok(()) => (None, false),
        Err(e) => (Some(Failure::from_text(e.text)), e.interrupted),
    };
    (
        CaseResult {
            name: name.to_string(),
            classname: classname.to_string(),
            secs: start.elapsed().as_secs_f64(),
            failure,
            skipped: None,
            log,
        },
        interrupted,
    )
}

/// How long a failing daemon check waits before it tries again.
const RETRY_PAUSE: Duration = Duration::from_millis(500);

/// Why a daemon check of `name` cannot go on, given its state: it does not exist, or it
/// exited (with its last lines of output).
async fn not_running(
    run: &UnitRun<'_>,
    name: &str,
    state: Option<ContainerInfo>,
) -> Option<CaseError> {
    match state {
        None => Some(CaseError::fail(format!(
            "container `{name}` does not exist: was it started?"
        ))),
        Some(info) if !info.running => Some(CaseError::fail(format!(
            "container `{name}` exited with code {} while it was checked{}",
            info.exit_code,
            last_lines(run, name, 10).await
        ))),
        Some(_) => None,
    }
}

/// The container a daemon check of `name` looks at: the container itself, or in swarm mode
/// the container of a running task of the service (waiting for one until `deadline`).
async fn daemon_target(
    run: &UnitRun<'_>,
    name: &str,
    deadline: Instant,
) -> Result<String, CaseError> {
    if !run.swarm() {
        return Ok(name.to_string());
    }
    swarm_checks::wait_running_task(run, name, deadline)
        .await?
        .map_err(CaseError::fail)
}

/// Whether a daemon check ends on `stopped` (its container no longer runs): always on one
/// engine; in swarm mode only past `deadline`, since the swarm replaces a task that ended and
/// the check goes on with the next one.
fn give_up(run: &UnitRun<'_>, stopped: CaseError, deadline: Instant) -> CaseOutcome {
    if !run.swarm() || Instant::now() >= deadline {
        return Err(stopped);
    }
    output::info(format!(
        "{} (checking the service's next task)",
        stopped.text
    ));
    Ok(())
}

/// The whole output of a container so far; an error when the engine's log stream breaks (a
/// check must not judge truncated output).
async fn all_output(run: &UnitRun<'_>, name: &str) -> Result<String, CaseError> {
    let mut stream = run.engine().logs(name, false, 0, None);
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            CaseError::fail(format!(
                "the output of `{name}` could not be read to its end ({} bytes read): {e}",
                out.len()
            ))
        })?;
        out.extend_from_slice(&chunk.data);
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// The last `n` lines of `text`, indented, for a failure message.
fn last_of(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    if lines.is_empty() {
        return "\n(no output)".into();
    }
    let mut out = String::from("\nlast lines of output:");
    for l in &lines[lines.len().saturating_sub(n)..] {
        out.push_str("\n  ");
        out.push_str(l);
    }
    out
}

/// What an exit code and an output must look like; every mismatch, in words.
fn mismatches<'a>(
    expected_code: i64,
    code: i64,
    output: &str,
    matches: impl Iterator<Item = &'a Pattern>,
) -> Vec<String> {
    let mut problems = Vec::new();
    if code != expected_code {
        problems.push(format!("expected exit code {expected_code}, got {code}"));
    }
    for pattern in matches {
        if !pattern.regex().is_match(output) {
            problems.push(format!(
                "expected the output to match `{pattern}`, it does not"
            ));
        }
    }
    problems
}

/// The working directory of a container (for relative file patterns).
async fn workdir(run: &UnitRun<'_>, name: &str) -> String {
    match run.engine().container(name).await {
        Ok(Some(info)) => lookup(&info.raw, ".Config.WorkingDir")
            .and_then(|v| v.as_str())
            .filter(|s| !s.is_empty())
            .unwrap_or("/")
            .to_string(),
        _ => "/".into(),
    }
}

struct Tester<'a> {
    run: UnitRun<'a>,
    plan: &'a TestPlan,
    report: Report,
    staging: Option<Staging>,
    /// Why the check cases cannot run (a setup case failed).
    blocked: Option<String>,
    interrupted: bool,
    test_data: String,
    /// Whether the test data container exists (files can be stored).
    test_data_ready: bool,
}

impl Tester<'_> {
    fn record(&mut self, suite: &str, (case, interrupted): (CaseResult, bool)) {
        let failed = case.failure.is_some();
        let line = self.report.add(suite, case);
        // `-q`: only failures are printed (SPEC "Command line", Output).
        if failed || !output::quiet() {
            output::result(line);
        }
        if interrupted {
            self.interrupted = true;
        }
    }

    fn record_blocked(&mut self, suite: &str, name: &str, classname: &str) {
        let reason = self.blocked.clone().unwrap_or_default();
        self.record(
            suite,
            (
                CaseResult {
                    name: name.to_string(),
                    classname: classname.to_string(),
                    secs: 0.0,
                    failure: Some(Failure::from_text(format!("setup failed\n{reason}"))),
                    skipped: None,
                    log: Vec::new(),
                },
                false,
            ),
        );
    }

    /// A directory for `key`'s files in `variant`, if files can be kept at all.
    fn files_dir(&mut self, variant: &str, key: &str) -> Option<PathBuf> {
        let staging = self.staging.as_mut()?;
        match staging.dir_for(variant, key) {
            Ok(d) => Some(d),
            Err(e) => {
                output::warn("tests", format!("cannot keep the files of {key}: {e}"));
                None
            }
        }
    }

    async fn order_case(&self, case: &OrderCase) -> CaseOutcome {
        self.run.run_order(&case.order).await.map_err(Into::into)
    }

    async fn setup(&mut self) {
        let plan = self.plan;
        for case in &plan.setup.cases {
            if self.interrupted {
                return;
            }
            if self.blocked.is_some() {
                self.record_blocked(&plan.setup.name, &case.name, &plan.setup.classname);
                continue;
            }
            let result = timed(
                &case.name,
                &plan.setup.classname,
                Box::pin(self.order_case(case)),
            )
            .await;
            if result.0.failure.is_some() {
                self.blocked = Some(format!("(`{}` failed)", case.name));
            }
            self.record(&plan.setup.name, result);
        }
        for case in &plan.skipped {
            output::warn(
                "tests",
                format!(
                    "not run by tests: `{}` (a `unit` order would act on production names)",
                    case.name
                ),
            );
        }
    }

    async fn daemon_case(&self, case: &DaemonCase) -> CaseOutcome {
        let run = &self.run;
        let c = &case.check;
        let spec = run.spec(&case.container).ok();
        let timeout = c.timeout.unwrap_or(DEFAULT_DAEMON_TIMEOUT);
        let deadline = Instant::now() + timeout.duration();
        let cert = c.cert.as_ref().map(|p| resolve_host_path(run.rt, spec, p));
        let mut last;
        let mut attempts = 0u32;
        loop {
            let target = daemon_target(run, &case.container, deadline).await?;
            if let Some(e) = not_running(run, &target, run.engine().container(&target).await?).await
            {
                give_up(run, e, deadline)?;
                run.rt.interrupt.sleep(RETRY_PAUSE).await?;
                continue;
            }
            attempts += 1;
            match substitute_text(run, c.url.as_str(), &case.container).await {
                Err(e) => last = e.to_string(),
                Ok(url) => {
                    let http = HttpCheck {
                        method: case.method.clone(),
                        url,
                        status: c.status.map_or(200, |s| s.0),
                        body_match: c.body_match.clone(),
                        error_match: c.error_match.clone(),
                        cert: cert.clone(),
                        headers: c
                            .headers
                            .iter()
                            .map(|(k, v)| (k.clone(), v.clone()))
                            .collect(),
                        body: c.body.clone(),
                    };
                    let client = http.client().map_err(CaseError::fail)?;
                    let limit = request_limit(deadline.saturating_duration_since(Instant::now()));
                    let answer = match probe(run, &target, &http, &client, limit).await? {
                        Probe::Answered(answer) => answer,
                        Probe::Stopped(state) => {
                            let state = state.map(|s| *s);
                            if let Some(e) = not_running(run, &target, state).await {
                                give_up(run, e, deadline)?;
                                run.rt.interrupt.sleep(RETRY_PAUSE).await?;
                            }
                            continue;
                        }
                    };
                    match answer {
                        Ok(()) => {
                            output::info(format!(
                                "{} {} passed (attempt {attempts})",
                                http.method, http.url
                            ));
                            return Ok(());
                        }
                        Err(e) => {
                            output::info(format!("attempt {attempts}: {e}"));
                            last = e;
                        }
                    }
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(CaseError::fail(format!(
                    "{last}\n(still failing after {timeout}s and {attempts} attempt{})",
                    if attempts == 1 { "" } else { "s" }
                )));
            }
            run.rt.interrupt.sleep(left.min(RETRY_PAUSE)).await?;
        }
    }

    async fn job_wait_case(
        &self,
        case: &JobCase,
        job: &crate::unit::checks::JobCheck,
    ) -> CaseOutcome {
        let run = &self.run;
        let name = &case.container;
        let engine = run.engine();
        if run.swarm() {
            return self.swarm_job_wait(case, job).await;
        }
        if engine.container(name).await?.is_none() {
            return Err(CaseError::fail(format!(
                "container `{name}` does not exist: a `job` check needs the unit to start `{}`",
                case.key
            )));
        }
        let timeout = job.timeout.unwrap_or(DEFAULT_JOB_TIMEOUT);
        let waited = tokio::time::timeout(timeout.duration(), engine.wait_container(name));
        let Ok(code) = run.rt.interrupt.race(waited).await? else {
            return Err(CaseError::fail(format!(
                "container `{name}` did not exit within {timeout}s{}",
                last_lines(run, name, 10).await
            )));
        };
        let code = code?;
        judge_job(job, name, code, &job_output(run, name, job).await?)
    }

    /// `job:` in swarm mode: the first task of the job's service, once it ended.
    async fn swarm_job_wait(
        &self,
        case: &JobCase,
        job: &crate::unit::checks::JobCheck,
    ) -> CaseOutcome {
        let run = &self.run;
        let name = &case.container;
        let timeout = job.timeout.unwrap_or(DEFAULT_JOB_TIMEOUT);
        let Some(task) = swarm_checks::first_task_end(run, name, timeout).await? else {
            return Err(CaseError::fail(format!(
                "the first task of service `{name}` did not end within {timeout}s"
            )));
        };
        let Some(code) = task.exit_code else {
            return Err(CaseError::fail(format!(
                "the first task of service `{name}` ended `{}` without an exit code: {}",
                task.state,
                task.error.as_deref().unwrap_or(&task.message)
            )));
        };
        let out = match &task.container {
            Some(container) => job_output(run, container, job).await?,
            None => String::new(),
        };
        judge_job(job, name, code, &out)
    }
}

/// The whole output of the job's container `name`; when only the exit code is judged, an
/// unreadable output costs the message its last lines only.
async fn job_output(
    run: &UnitRun<'_>,
    name: &str,
    job: &crate::unit::checks::JobCheck,
) -> Result<String, CaseError> {
    match all_output(run, name).await {
        Ok(out) => Ok(out),
        Err(e) if job.logs.is_empty() => Ok(format!("({})", e.text)),
        Err(e) => Err(e),
    }
}

/// A `job:` check's verdict on the exit code and output of `name`.
fn judge_job(job: &crate::unit::checks::JobCheck, name: &str, code: i64, out: &str) -> CaseOutcome {
    let problems = mismatches(
        job.exit_code.unwrap_or(0),
        code,
        out,
        job.logs.iter().map(|l| &l.0),
    );
    if problems.is_empty() {
        output::info(format!("{name} exited with {code} and its output matched"));
        Ok(())
    } else {
        Err(CaseError::fail(format!(
            "{}{}",
            problems.join("; "),
            last_of(out, 10)
        )))
    }
}

impl Tester<'_> {
    /// Runs `spec` to its end (at most `timeout` seconds), keeps the files `patterns` name and
    /// removes the container. Returns the exit code and the whole output.
    async fn run_temporary(
        &self,
        spec: &ContainerSpec,
        timeout: Seconds,
        patterns: &[String],
        files_dir: Option<&Path>,
    ) -> Result<(i64, String), CaseError> {
        let run = &self.run;
        if run.swarm() {
            let result = self.run_once(spec, timeout, patterns, files_dir).await;
            swarm_checks::remove_once(run, &spec.name).await;
            return result;
        }
        let image = spec
            .image
            .clone()
            .ok_or_else(|| CaseError::fail(format!("`{}` has no image", spec.name)))?;
        crate::execute::image::ensure_image(run, spec, &image).await?;
        let mut collected = Vec::new();
        let ran = tokio::time::timeout(
            timeout.duration(),
            run_container_kept(run, spec.clone(), |chunk| {
                collected.extend_from_slice(&chunk.data);
            }),
        )
        .await;
        let result = match ran {
            Ok(Ok((code, _))) => {
                if let (Some(dir), false) = (files_dir, patterns.is_empty()) {
                    let wd = workdir(run, &spec.name).await;
                    for note in files::gather(run.engine(), &spec.name, &wd, patterns, dir).await {
                        output::warn("tests", note);
                    }
                }
                Ok((code, String::from_utf8_lossy(&collected).into_owned()))
            }
            Ok(Err(e)) => Err(CaseError::from(e)),
            Err(_) => {
                let _ = run.engine().kill_container(&spec.name).await;
                Err(CaseError::fail(format!(
                    "`{}` did not finish within {timeout}s{}",
                    spec.name,
                    last_of(&String::from_utf8_lossy(&collected), 10)
                )))
            }
        };
        remove_temporary(run, &spec.name, true).await;
        result
    }

    /// [`Self::run_temporary`] in swarm mode: `spec` as a one-off service of the test copy.
    async fn run_once(
        &self,
        spec: &ContainerSpec,
        timeout: Seconds,
        patterns: &[String],
        files_dir: Option<&Path>,
    ) -> Result<(i64, String), CaseError> {
        let run = &self.run;
        let Some(end) = swarm_checks::run_once(run, spec, timeout).await? else {
            return Err(CaseError::fail(format!(
                "the one-off service `{}` did not finish within {timeout}s",
                spec.name
            )));
        };
        let Some(container) = end.container else {
            return Ok((end.code, String::new()));
        };
        if let (Some(dir), false) = (files_dir, patterns.is_empty()) {
            let wd = workdir(run, &container).await;
            for note in files::gather(run.engine(), &container, &wd, patterns, dir).await {
                output::warn("tests", note);
            }
        }
        Ok((end.code, all_output(run, &container).await?))
    }

    async fn job_run_case(
        &self,
        spec: &ContainerSpec,
        job: &crate::unit::checks::JobRun,
        files_dir: Option<PathBuf>,
    ) -> CaseOutcome {
        let (code, out) = self
            .run_temporary(
                spec,
                job.timeout.unwrap_or(DEFAULT_RUN_TIMEOUT),
                &job.files,
                files_dir.as_deref(),
            )
            .await?;
        let problems = mismatches(
            job.exit_code.unwrap_or(0),
            code,
            &out,
            job.output_match
                .iter()
                .chain(job.logs.iter().map(|l: &LogMatch| &l.0)),
        );
        if problems.is_empty() {
            Ok(())
        } else {
            Err(CaseError::fail(format!(
                "{}{}",
                problems.join("; "),
                last_of(&out, 10)
            )))
        }
    }

    async fn custom_case(&self, case: &CustomCase, files_dir: Option<PathBuf>) -> CaseOutcome {
        let run = &self.run;
        let test = &case.test;
        let cmd = match &test.execute {
            StringOrList::One(s) => vec!["sh".to_string(), "-c".to_string(), s.clone()],
            StringOrList::Many(v) => v.clone(),
        };
        let cmd = substitute_args(run, &cmd, &case.container).await?;
        let timeout = test.timeout.unwrap_or(DEFAULT_RUN_TIMEOUT);
        // In swarm mode the test runs in the container of a running task of the service.
        let target = if run.swarm() {
            swarm_checks::running_task(run, &case.container).await?.ok()
        } else {
            Some(case.container.clone())
        };
        let running = match &target {
            Some(t) => run.engine().container(t).await?.is_some_and(|c| c.running),
            None => false,
        };
        let (code, out) = if let (true, Some(target)) = (running, &target) {
            output::info(format!(
                "Executing {} in the running container {}",
                cmd.join(" "),
                case.container
            ));
            let mut collected = Vec::new();
            let exec = run
                .engine()
                .exec(target, cmd, Vec::new(), None, None, |chunk| {
                    collected.extend_from_slice(&chunk.data);
                });
            let exec = tokio::time::timeout(timeout.duration(), exec);
            let Ok(code) = run.rt.interrupt.race(exec).await? else {
                return Err(CaseError::fail(format!(
                    "the command did not finish within {timeout}s"
                )));
            };
            let code = code?;
            if let (Some(dir), false) = (files_dir.as_deref(), test.files.is_empty()) {
                let wd = workdir(run, target).await;
                for note in files::gather(run.engine(), target, &wd, &test.files, dir).await {
                    output::warn("tests", note);
                }
            }
            (code, String::from_utf8_lossy(&collected).into_owned())
        } else {
            output::info(format!(
                "{} does not run: running the test in the temporary container {}",
                case.container, case.temporary.name
            ));
            let mut spec = (*case.temporary).clone();
            spec.command = Some(cmd);
            self.run_temporary(&spec, timeout, &test.files, files_dir.as_deref())
                .await?
        };
        for line in out.lines() {
            output::output(1, line);
        }
        if test.capture_logs {
            if let Some(dir) = &files_dir {
                if let Err(e) =
                    archive::write_new(&dir.join("logs.txt"), output::mask(&out).as_bytes())
                {
                    output::warn("tests", format!("cannot keep logs.txt: {e}"));
                }
            }
        }
        let problems = mismatches(test.exit_code.unwrap_or(0), code, &out, std::iter::empty());
        if problems.is_empty() {
            Ok(())
        } else {
            Err(CaseError::fail(format!(
                "{}{}",
                problems.join("; "),
                last_of(&out, 10)
            )))
        }
    }

    async fn checks(&mut self) {
        let plan = self.plan;
        for suite in &plan.daemon {
            for case in &suite.cases {
                if self.interrupted {
                    return;
                }
                if let Some(why) = &case.skip {
                    let skipped = CaseResult::skipped(&case.name, &suite.classname, why);
                    self.record(&suite.name, (skipped, false));
                    continue;
                }
                if self.blocked.is_some() {
                    self.record_blocked(&suite.name, &case.name, &suite.classname);
                    continue;
                }
                self.touch(&plan.selection.label, &case.key);
                let r = timed(
                    &case.name,
                    &suite.classname,
                    Box::pin(self.daemon_case(case)),
                )
                .await;
                self.record(&suite.name, r);
            }
        }
        for suite in &plan.jobs {
            for case in &suite.cases {
                if self.interrupted {
                    return;
                }
                if let Some(why) = &case.skip {
                    let skipped = CaseResult::skipped(&case.name, &suite.classname, why);
                    self.record(&suite.name, (skipped, false));
                    continue;
                }
                if self.blocked.is_some() {
                    self.record_blocked(&suite.name, &case.name, &suite.classname);
                    continue;
                }
                let dir = self.files_dir(&plan.selection.label, &case.key);
                let r = match &case.kind {
                    JobKind::Wait(job) => {
                        timed(
                            &case.name,
                            &suite.classname,
                            Box::pin(self.job_wait_case(case, job)),
                        )
                        .await
                    }
                    JobKind::Run { spec, run } => {
                        timed(
                            &case.name,
                            &suite.classname,
                            Box::pin(self.job_run_case(spec, run, dir)),
                        )
                        .await
                    }
                };
                self.record(&suite.name, r);
            }
        }
        for suite in &plan.custom {
            for case in &suite.cases {
                if self.interrupted {
                    return;
                }
                if self.blocked.is_some() {
                    self.record_blocked(&suite.name, &case.name, &suite.classname);
                    continue;
                }
                let dir = self.files_dir(&case.variant, &case.key);
                let r = timed(
                    &case.name,
                    &suite.classname,
                    Box::pin(self.custom_case(case, dir)),
                )
                .await;
                self.record(&suite.name, r);
            }
        }
    }

    fn touch(&mut self, variant: &str, key: &str) {
        let _ = self.files_dir(variant, key);
    }

    /// Makes sure the test data container exists.
    async fn prepare_test_data(&mut self) {
        if self.staging.as_ref().is_none_or(Staging::is_empty) || self.test_data_ready {
            return;
        }
        output::start_capture(true);
        let result = self.create_test_data().await;
        output::stop_capture();
        match result {
            Ok(()) => self.test_data_ready = true,
            Err(e) => output::warn(
                "tests",
                format!(
                    "cannot create the test data container {}: {e}; the test files are not kept",
                    self.test_data
                ),
            ),
        }
    }

    async fn create_test_data(&self) -> Result<(), String> {
        archive::ensure(&self.run, &self.test_data, &self.plan.unit.command.unit)
            .await
            .map_err(|e| e.to_string())
    }

    async fn lifecycle_suite(&mut self, suite: &crate::generate::testplan::Suite<OrderCase>) {
        for case in &suite.cases {
            let r = timed(
                &case.name,
                &suite.classname,
                Box::pin(self.order_case(case)),
            )
            .await;
            self.record(&suite.name, r);
        }
    }

    /// Removes what is left of the run: containers of the test label whose name ends with the
    /// tempid, the test's named volumes and its network.
    async fn sweep(&self) -> CaseOutcome {
        let run = &self.run;
        let engine = run.engine();
        let suffix = format!("_{}", self.plan.tempid);
        let mut problems = Vec::new();
        if run.swarm() {
            // Services of the copy that its teardown did not remove (one-off `jobs:` services
            // of an interrupted run too): only what carries the copy's label.
            let label = self.plan.unit.naming.unit_label.as_str();
            for service in engine.services_with_labels(&[(LABEL_UNIT, label)]).await? {
                match swarm::remove(run, &service.name, &RemoveArgs::default()).await {
                    Ok(()) => {
                        output::info(format!("Removed the leftover service {}", service.name));
                    }
                    Err(e) => problems.push(e.to_string()),
                }
            }
        }
        for c in engine
            .containers_with_labels(&[(LABEL_UNIT, self.plan.unit.naming.unit_label.as_str())])
            .await?
        {
            if c.name.ends_with(&suffix) {
                match engine.remove_container(&c.name, true, true).await {
                    Ok(()) => output::info(format!("Removed the leftover container {}", c.name)),
                    Err(e) if e.is_not_found() => {}
                    Err(e) => problems.push(e.to_string()),
                }
            }
        }
        for volume in self.plan.renames.volumes.values() {
            if !volume.ends_with(&suffix) {
                continue;
            }
            let owner = match engine.volume_labels(volume).await? {
                Some(labels) => Owner::of(&labels, &self.plan.unit.naming.unit_label),
                None => continue,
            };
            if !owner.is_unit() {
                run.rt.refusals.refuse("volume", volume, "removing", &owner);
                continue;
            }
            match engine.remove_volume(volume).await {
                Ok(()) => output::info(format!("Removed the volume {volume}")),
                Err(e) if e.is_not_found() => {}
                Err(e) => problems.push(e.to_string()),
            }
        }
        let net = &run.naming.network;
        match engine.network_containers(net).await? {
            Some(attached) if attached.is_empty() => match engine.remove_network(net).await {
                Ok(()) => output::info(format!("Removed the network {net}")),
                Err(e) if e.is_not_found() => {}
                Err(e) => problems.push(e.to_string()),
            },
            Some(attached) => problems.push(format!(
                "the network {net} is still used by {}",
                attached.join(", ")
            )),
            None => {}
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(CaseError::fail(problems.join("\n")))
        }
    }

    /// Removes leftovers of an earlier run with the same tempid (not reported).
    async fn preclean(&self) {
        output::start_capture(true);
        for case in &self.plan.teardown.cases {
            let _ = self.run.run_order(&case.order).await;
        }
        let _ = self.sweep().await;
        output::stop_capture();
    }

    async fn write_results(&mut self, junit_path: &Path) -> Result<(), String> {
        let xml = junit::to_xml(&self.report);
        if let Some(parent) = junit_path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .map_err(|e| format!("cannot create `{}`: {e}", parent.display()))?;
        }
        std::fs::write(junit_path, &xml)
            .map_err(|e| format!("cannot write `{}`: {e}", junit_path.display()))?;
        output::info(format!("Wrote the JUnit report {}", junit_path.display()));
        if !self.test_data_ready {
            return Ok(());
        }
        let Some(staging) = &self.staging else {
            return Ok(());
        };
        let environment = output::masked_yaml(&serde_json::Value::Object(
            self.run.unit.environment.without_osenv(),
        ));
        staging
            .finish(&[("junit.xml", &xml), ("environment.yaml", &environment)])
            .map_err(|e| format!("cannot stage the test files: {e}"))?;
        archive::upload(&self.run, &self.test_data, staging)
            .await
            .map_err(|e| format!("cannot store the test files in {}: {e}", self.test_data))?;
        output::info(format!(
            "Stored the test files in {}: {} (-> /archives/.../{})",
            self.test_data,
            staging.links().join(", "),
            staging.timestamp
        ));
        Ok(())
    }
}

/// `results/<unit with / → _>_<tempid>.xml`, relative to the current directory.
pub fn default_junit_path(plan: &TestPlan) -> PathBuf {
    PathBuf::from("results").join(format!(
        "{}_{}.xml",
        plan.unit.command.unit.replace('/', "_"),
        plan.tempid
    ))
}

/// Runs the plan; writes the `JUnit` report to `junit` and the test files into the test data
/// container.
pub async fn run(rt: &Runtime, plan: &TestPlan, junit: &Path) -> Outcome {
    let run = UnitRun::new(rt, &plan.unit, vec![plan.command.clone()]);
    let mut report = Report::new(&plan.command, &plan.tempid);
    report.properties = vec![
        ("tempid".into(), plan.tempid.clone()),
        ("variant".into(), plan.selection.label.clone()),
        ("unit label".into(), plan.unit.naming.unit_label.clone()),
    ];
    let staging = match Staging::new() {
        Ok(s) => Some(s),
        Err(e) => {
            output::warn("tests", format!("cannot stage test files: {e}"));
            None
        }
    };
    let test_data = plan.test_data.clone();
    let mut t = Tester {
        run,
        plan,
        report,
        staging,
        blocked: None,
        interrupted: false,
        test_data,
        test_data_ready: false,
    };
    output::info(format!(
        "Testing {} (tempid {}, variant {})",
        plan.command, plan.tempid, plan.selection.label
    ));
    let production = plan.selection.production;
    // Whatever happens in between, internal errors (a panic) included, the teardown below
    // runs: a test copy never outlives its run.
    let ran = std::panic::AssertUnwindSafe(async {
        if !production {
            t.preclean().await;
            t.setup().await;
        }
        crate::faults::point("test:set-up");
        t.checks().await;
        if t.staging.as_ref().is_some_and(Staging::is_empty) {
            // Nothing was checked: the report and the environment go under the unit's name.
            let unit = plan.unit.command.unit.clone();
            t.touch(&plan.selection.label, &unit);
        }
        if !t.interrupted {
            t.prepare_test_data().await;
        }
        if !production && !t.interrupted {
            t.lifecycle_suite(&plan.stop).await;
        }
    })
    .catch_unwind()
    .await;
    if let Err(panic) = ran {
        let _ = output::stop_capture();
        let why = panic
            .downcast_ref::<&str>()
            .map(|s| (*s).to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic".into());
        output::error(
            "tests",
            format!("internal error ({why}); the test copy is torn down"),
        );
        t.record(
            &plan.teardown.name,
            (
                CaseResult {
                    name: "internal error".into(),
                    classname: plan.teardown.classname.clone(),
                    secs: 0.0,
                    failure: Some(Failure::from_text(format!(
                        "dstart failed internally: {why}"
                    ))),
                    skipped: None,
                    log: Vec::new(),
                },
                false,
            ),
        );
    }
    if !production {
        t.lifecycle_suite(&plan.teardown).await;
        let r = timed("leftovers", &plan.teardown.classname, Box::pin(t.sweep())).await;
        t.record(&plan.teardown.name, r);
    }
    if let Err(e) = t.write_results(junit).await {
        output::error("tests", e);
    }
    if t.report.failed() > 0 || !output::quiet() {
        output::result(format!("{}\n", t.report.summary()));
    }
    Outcome {
        interrupted: t.interrupted || rt.interrupt.is_set(),
        report: t.report,
        junit: junit.to_path_buf(),
    }
}
