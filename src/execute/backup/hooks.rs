//! `before` and `after` of backups and restores: a command run inside the running container
//! (exec), its output at `-v`, its exit code checked.

use crate::execute::{OrderError, OrderResult, Tail, UnitRun};
use crate::output;
use crate::unit::backup::Hook;

/// Lines of a failed hook's output shown in its error.
const TAIL_LINES: usize = 10;

/// Runs `hook` (`which`: `before` or `after` of a `what`) in container `name`, which must run.
pub(super) async fn run_hook(
    run: &UnitRun<'_>,
    name: &str,
    what: &str,
    which: &str,
    hook: &Hook,
) -> OrderResult {
    let argv = hook.argv();
    let shown = match hook {
        Hook::Shell(s) => s.clone(),
        Hook::Argv(v) => {
            shlex::try_join(v.iter().map(String::as_str)).unwrap_or_else(|_| v.join(" "))
        }
    };
    let running = run
        .engine()
        .container(name)
        .await?
        .is_some_and(|c| c.running);
    if !running {
        return Err(OrderError::hinted(
            format!(
                "`{which}` of the {what} of {name} runs inside the container, which is not running"
            ),
            format!("start the unit first, or leave `{which}` out of the {what}"),
        ));
    }
    output::info(format!(
        "Running `{which}` of the {what} in container {name}: {shown}"
    ));
    let mut tail = Tail::new(TAIL_LINES);
    let exec = run
        .engine()
        .exec(name, argv, Vec::new(), None, None, |chunk| {
            for line in tail.push(&chunk.data) {
                output::output(1, line);
            }
        });
    let code = run.rt.interrupt.race(exec).await??;
    if let Some(l) = tail.finish() {
        output::output(1, l);
    }
    if code != 0 {
        return Err(OrderError::failed(format!(
            "`{which}` of the {what} of {name} (`{shown}`) failed with exit code {code}{}",
            tail.render()
        )));
    }
    Ok(())
}
