//! The `JUnit` XML report of a test run: `<testsuites>` with one `<testsuite>` per suite (name,
//! tests, failures, errors, time, timestamp, hostname, id, properties), a `<testcase>` per case
//! (name, classname, time), a `<failure>` with message and text for a failed case, and the
//! case's captured log as its `<system-out>`. The shape is the one Jenkins, GitLab and the Ant
//! `JUnit` task share; `tests/fixtures/junit.xsd` is the schema the engine tests validate against.

use std::fmt::Write as _;

use crate::testing::report::Report;

/// Escapes text for XML 1.0 content and attribute values, secrets masked; characters XML cannot hold (most
/// control characters, such as terminal escapes in container output) become `?`.
pub fn escape(text: &str) -> String {
    // Every text of the report passes here: secrets as `***` (SPEC "Secrets").
    let text = crate::output::mask(text);
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || matches!(c as u32, 0xFFFE | 0xFFFF) => out.push('?'),
            c => out.push(c),
        }
    }
    out
}

/// Like [`escape`], for attribute values, where line breaks must be kept as references.
fn attr(text: &str) -> String {
    escape(text)
        .replace('\n', "&#10;")
        .replace('\r', "&#13;")
        .replace('\t', "&#9;")
}

fn secs(s: f64) -> String {
    format!("{s:.3}")
}

/// The report as a `JUnit` XML document.
pub fn to_xml(report: &Report) -> String {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let total_time: f64 = report
        .suites
        .iter()
        .map(super::report::SuiteResult::secs)
        .sum();
    let _ = writeln!(
        out,
        "<testsuites name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"0\" time=\"{}\">",
        attr(&report.command),
        report.passed() + report.failed() + report.skipped(),
        report.failed(),
        secs(total_time)
    );
    for (n, suite) in report.suites.iter().enumerate() {
        let _ = writeln!(
            out,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"0\" skipped=\"{}\" time=\"{}\" timestamp=\"{}\" hostname=\"{}\" id=\"{}\" package=\"{}\">",
            attr(&suite.name),
            suite.cases.len(),
            suite.failures(),
            suite.skipped(),
            secs(suite.secs()),
            suite.timestamp.format("%Y-%m-%dT%H:%M:%S"),
            attr(&report.hostname),
            attr(&format!("{}_{}_{n}", report.command, report.tempid)),
            attr(&report.command),
        );
        if !report.properties.is_empty() {
            out.push_str("    <properties>\n");
            for (k, v) in &report.properties {
                let _ = writeln!(
                    out,
                    "      <property name=\"{}\" value=\"{}\"/>",
                    attr(k),
                    attr(v)
                );
            }
            out.push_str("    </properties>\n");
        }
        for case in &suite.cases {
            let _ = write!(
                out,
                "    <testcase name=\"{}\" classname=\"{}\" time=\"{}\"",
                attr(&case.name),
                attr(&case.classname),
                secs(case.secs)
            );
            if case.failure.is_none() && case.skipped.is_none() && case.log.is_empty() {
                out.push_str("/>\n");
                continue;
            }
            out.push_str(">\n");
            if let Some(why) = &case.skipped {
                let _ = writeln!(out, "      <skipped message=\"{}\"/>", attr(why));
            }
            if let Some(f) = &case.failure {
                let _ = writeln!(
                    out,
                    "      <failure message=\"{}\" type=\"failure\">{}</failure>",
                    attr(&f.message),
                    escape(&f.text)
                );
            }
            if !case.log.is_empty() {
                let _ = writeln!(
                    out,
                    "      <system-out>{}</system-out>",
                    escape(&case.log.join("\n"))
                );
            }
            out.push_str("    </testcase>\n");
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::report::{CaseResult, Failure};

    #[test]
    fn escaping() {
        assert_eq!(escape("a<b>&\"c'"), "a&lt;b&gt;&amp;&quot;c&apos;");
        assert_eq!(escape("\u{1b}[31mred\u{1b}[0m\n"), "?[31mred?[0m\n");
        assert_eq!(attr("two\nlines"), "two&#10;lines");
    }

    #[test]
    fn report_shape() {
        let mut r = Report::new("web/test:check", "0123456789");
        r.hostname = "box".into();
        r.properties.push(("tempid".into(), "0123456789".into()));
        r.add(
            "web/test:check",
            CaseResult {
                name: "web:start".into(),
                classname: "setup".into(),
                secs: 0.5,
                failure: None,
                skipped: None,
                log: Vec::new(),
            },
        );
        r.add(
            "web_daemon",
            CaseResult {
                name: "0:GET http://x/?a=1&b=<2>".into(),
                classname: "daemon".into(),
                secs: 1.25,
                failure: Some(Failure::from_text(
                    "expected status 200, got 404\nbody: <html>",
                )),
                skipped: None,
                log: vec!["INFO: one".into(), "OUTPUT: two".into()],
            },
        );
        r.add(
            "web_daemon",
            CaseResult::skipped("1:POST", "daemon", "`production: false`"),
        );
        let xml = to_xml(&r);
        assert!(xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"web/test:check\" tests=\"3\" failures=\"1\" errors=\"0\" time=\"1.750\">"), "{xml}");
        assert!(xml.contains("<testsuite name=\"web_daemon\" tests=\"2\" failures=\"1\" errors=\"0\" skipped=\"1\" time=\"1.250\" timestamp=\""), "{xml}");
        assert!(
            xml.contains("hostname=\"box\" id=\"web/test:check_0123456789_1\""),
            "{xml}"
        );
        assert!(
            xml.contains("<property name=\"tempid\" value=\"0123456789\"/>"),
            "{xml}"
        );
        assert!(
            xml.contains("<testcase name=\"web:start\" classname=\"setup\" time=\"0.500\"/>"),
            "{xml}"
        );
        assert!(xml.contains("<testcase name=\"0:GET http://x/?a=1&amp;b=&lt;2&gt;\" classname=\"daemon\" time=\"1.250\">"), "{xml}");
        assert!(xml.contains("<failure message=\"expected status 200, got 404\" type=\"failure\">expected status 200, got 404\nbody: &lt;html&gt;</failure>"), "{xml}");
        assert!(
            xml.contains("<system-out>INFO: one\nOUTPUT: two</system-out>"),
            "{xml}"
        );
        assert!(
            xml.contains("<testcase name=\"1:POST\" classname=\"daemon\" time=\"0.000\">\n      <skipped message=\"`production: false`\"/>\n    </testcase>"),
            "{xml}"
        );
        assert!(xml.ends_with("</testsuites>\n"));
    }
}
