//! The results of a test run: one [`CaseResult`] per case, grouped in suites, and the console
//! lines (`PASS|FAIL <suite> <case> (<secs>s)`, the reason indented under a failure, a last
//! line `N passed, M failed`).

use std::fmt::Write as _;

/// Why a case failed: a one-line message and the full text (what was expected and what came
/// back, last lines of output).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub message: String,
    pub text: String,
}

impl Failure {
    /// A failure from a possibly multi-line text: the first line is the message.
    pub fn from_text(text: impl Into<String>) -> Self {
        let text = text.into();
        let message = text.lines().next().unwrap_or_default().trim().to_string();
        Failure { message, text }
    }
}

/// One case, run.
#[derive(Debug, Clone)]
pub struct CaseResult {
    pub name: String,
    pub classname: String,
    pub secs: f64,
    pub failure: Option<Failure>,
    /// Why the case was not run (reported as skipped).
    pub skipped: Option<String>,
    /// The log lines captured while the case ran.
    pub log: Vec<String>,
}

impl CaseResult {
    /// A case that was not run, and why.
    pub fn skipped(name: &str, classname: &str, why: &str) -> Self {
        CaseResult {
            name: name.to_string(),
            classname: classname.to_string(),
            secs: 0.0,
            failure: None,
            skipped: Some(why.to_string()),
            log: Vec::new(),
        }
    }
}

/// One suite, run.
#[derive(Debug, Clone)]
pub struct SuiteResult {
    pub name: String,
    /// When its first case started (local time).
    pub timestamp: chrono::NaiveDateTime,
    pub cases: Vec<CaseResult>,
}

impl SuiteResult {
    pub fn failures(&self) -> usize {
        self.cases.iter().filter(|c| c.failure.is_some()).count()
    }

    pub fn skipped(&self) -> usize {
        self.cases.iter().filter(|c| c.skipped.is_some()).count()
    }

    pub fn secs(&self) -> f64 {
        self.cases.iter().map(|c| c.secs).sum()
    }
}

/// The results of a whole run.
#[derive(Debug, Clone)]
pub struct Report {
    /// The unit command (`web/test:check`).
    pub command: String,
    pub tempid: String,
    pub hostname: String,
    /// Recorded as `JUnit` properties (tempid, variant, ...).
    pub properties: Vec<(String, String)>,
    pub suites: Vec<SuiteResult>,
}

impl Report {
    pub fn new(command: &str, tempid: &str) -> Self {
        Report {
            command: command.to_string(),
            tempid: tempid.to_string(),
            hostname: hostname(),
            properties: Vec::new(),
            suites: Vec::new(),
        }
    }

    pub fn cases(&self) -> impl Iterator<Item = &CaseResult> {
        self.suites.iter().flat_map(|s| s.cases.iter())
    }

    pub fn passed(&self) -> usize {
        self.cases()
            .filter(|c| c.failure.is_none() && c.skipped.is_none())
            .count()
    }

    pub fn skipped(&self) -> usize {
        self.cases().filter(|c| c.skipped.is_some()).count()
    }

    pub fn failed(&self) -> usize {
        self.cases().filter(|c| c.failure.is_some()).count()
    }

    /// Adds a case to suite `suite` (created on first use) and returns its console lines.
    pub fn add(&mut self, suite: &str, case: CaseResult) -> String {
        let line = console_line(suite, &case);
        match self.suites.iter_mut().find(|s| s.name == suite) {
            Some(s) => s.cases.push(case),
            None => self.suites.push(SuiteResult {
                name: suite.to_string(),
                timestamp: chrono::Local::now().naive_local(),
                cases: vec![case],
            }),
        }
        line
    }

    /// `N passed, M failed`, and `, K skipped` when cases were skipped.
    pub fn summary(&self) -> String {
        let mut out = format!("{} passed, {} failed", self.passed(), self.failed());
        if self.skipped() > 0 {
            let _ = write!(out, ", {} skipped", self.skipped());
        }
        out
    }
}

/// `PASS <suite> <case> (<secs>s)`, and for a failure its text indented below;
/// `SKIP <suite> <case> (<why>)` for a case not run.
pub fn console_line(suite: &str, case: &CaseResult) -> String {
    if let Some(why) = &case.skipped {
        return format!("SKIP {suite} {} ({why})\n", case.name);
    }
    let mut out = format!(
        "{} {suite} {} ({:.2}s)\n",
        if case.failure.is_some() {
            "FAIL"
        } else {
            "PASS"
        },
        case.name,
        case.secs
    );
    if let Some(f) = &case.failure {
        for line in f.text.lines() {
            let _ = writeln!(out, "    {line}");
        }
    }
    out
}

/// The machine's host name (for the report).
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn case(name: &str, failure: Option<&str>) -> CaseResult {
        CaseResult {
            name: name.into(),
            classname: "setup".into(),
            secs: 1.234,
            failure: failure.map(Failure::from_text),
            skipped: None,
            log: Vec::new(),
        }
    }

    #[test]
    fn console_lines_and_summary() {
        let mut r = Report::new("web/test:check", "0123456789");
        let pass = r.add("web/test:check", case("web:start", None));
        assert_eq!(pass, "PASS web/test:check web:start (1.23s)\n");
        let fail = r.add(
            "web_daemon",
            case("0:GET", Some("expected status 200, got 404\nbody: nope")),
        );
        assert_eq!(
            fail,
            "FAIL web_daemon 0:GET (1.23s)\n    expected status 200, got 404\n    body: nope\n"
        );
        r.add("web/test:check", case("db:start", None));
        assert_eq!(r.suites.len(), 2);
        assert_eq!(r.suites[0].cases.len(), 2);
        assert_eq!(r.summary(), "2 passed, 1 failed");
        let skip = r.add(
            "web_daemon",
            CaseResult::skipped("1:POST", "daemon", "`production: false`"),
        );
        assert_eq!(skip, "SKIP web_daemon 1:POST (`production: false`)\n");
        assert_eq!(r.summary(), "2 passed, 1 failed, 1 skipped");
        assert_eq!(
            r.suites[1].cases[0].failure.as_ref().unwrap().message,
            "expected status 200, got 404"
        );
    }
}
