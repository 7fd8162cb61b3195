//! `tests` on `host` (seed 003 "Updates"): runs each test run of the order as `dstart run
//! UNIT/test...` runs it (same runner, same `JUnit` report under `results/`, same `PASS`/`FAIL`
//! lines), and fails the order when a case of any of them failed, so that the orders after it
//! (a `tag` moving `latest`) run only after green tests.

use crate::execute::{OrderError, OrderResult, UnitRun};
use crate::output;
use crate::testing::runner;
use crate::unit::order::TestsArgs;

/// `tests`: every test run in written order, all of them even when one fails (the report names
/// every failed run); then the verdict.
pub async fn tests(run: &UnitRun<'_>, args: &TestsArgs) -> OrderResult {
    let rt = run.rt;
    let mut failed = Vec::new();
    for test in &args.tests {
        rt.interrupt.check()?;
        let plan = crate::generate::test_run_plan(&rt.conf, &rt.env, test)?;
        let junit = runner::default_junit_path(&plan);
        output::info(format!("Running the test run {test}"));
        let outcome = Box::pin(runner::run(rt, &plan, &junit)).await;
        if outcome.interrupted {
            return Err(OrderError::Interrupted);
        }
        let (bad, all) = (
            outcome.report.failed(),
            outcome.report.passed() + outcome.report.failed(),
        );
        if bad > 0 {
            output::info(format!(
                "The test run {test} failed: {bad} of {all} cases (report: {})",
                outcome.junit.display()
            ));
            failed.push(format!(
                "`{test}` ({bad} of {all} cases failed, report: {})",
                outcome.junit.display()
            ));
        } else {
            output::info(format!("The test run {test} passed ({all} cases)"));
        }
    }
    if failed.is_empty() {
        return Ok(());
    }
    Err(OrderError::hinted(
        format!(
            "{} of {} test runs failed: {}",
            failed.len(),
            args.tests.len(),
            failed.join(", ")
        ),
        "the orders after `tests` did not run; each report names the failed cases",
    ))
}
