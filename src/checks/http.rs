//! An HTTP check from the host: method, URL, expected status, a regex the body must contain,
//! or (`error_match`) a regex the error of a failing request must match. HTTPS trusts the
//! system roots plus an optional CA certificate (PEM). Each request is bounded by the time its
//! caller has left ([`request_limit`]), so a server that accepts and never answers costs a check
//! its own timeout, not more.

use std::path::PathBuf;
use std::time::Duration;

use crate::unit::values::Pattern;

/// The shortest time a request is given, so the last attempt of a check still gets an answer
/// from a server that is up.
pub const MIN_REQUEST: Duration = Duration::from_millis(250);
/// The longest time one request may take: a check with a long timeout retries rather than wait
/// on one hanging connection.
pub const MAX_REQUEST: Duration = Duration::from_secs(30);

/// How long a request may take when `remaining` is left of its check's timeout.
pub fn request_limit(remaining: Duration) -> Duration {
    remaining.clamp(MIN_REQUEST, MAX_REQUEST)
}

/// One request and what its answer must look like.
#[derive(Debug, Clone)]
pub struct HttpCheck {
    pub method: String,
    pub url: String,
    pub status: u16,
    pub body_match: Option<Pattern>,
    pub error_match: Option<Pattern>,
    pub cert: Option<PathBuf>,
    pub headers: Vec<(String, String)>,
    pub body: Option<String>,
}

/// The full text of an error and its causes.
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

/// The text of a failed request; a timeout says how long it waited.
fn request_error(err: &reqwest::Error, limit: Duration) -> String {
    let text = error_chain(err);
    if err.is_timeout() {
        format!("no answer within {:.1}s ({text})", limit.as_secs_f64())
    } else {
        text
    }
}

fn shorten(body: &str) -> String {
    let flat: String = body.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() > 200 {
        format!("{}...", flat.chars().take(200).collect::<String>())
    } else {
        flat
    }
}

impl HttpCheck {
    /// A client for this check (with its CA certificate).
    pub fn client(&self) -> Result<reqwest::Client, String> {
        let mut builder = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none());
        if let Some(cert) = &self.cert {
            let pem = std::fs::read(cert)
                .map_err(|e| format!("cannot read the CA certificate `{}`: {e}", cert.display()))?;
            let cert = reqwest::Certificate::from_pem(&pem)
                .map_err(|e| format!("`{}` is not a PEM certificate: {e}", cert.display()))?;
            builder = builder.add_root_certificate(cert);
        }
        builder
            .build()
            .map_err(|e| format!("cannot set up HTTP: {}", error_chain(&e)))
    }

    /// Runs the check once, the whole request (connecting, sending, reading the body) within
    /// `limit`. `Err` says what was expected and what came back.
    pub async fn run(&self, client: &reqwest::Client, limit: Duration) -> Result<(), String> {
        let method = reqwest::Method::from_bytes(self.method.as_bytes())
            .map_err(|_| format!("unknown method `{}`", self.method))?;
        let mut req = client.request(method.clone(), &self.url).timeout(limit);
        for (k, v) in &self.headers {
            req = req.header(k, v);
        }
        if let Some(b) = &self.body {
            req = req.body(b.clone());
        }
        let response = req.send().await;
        if let Some(pattern) = &self.error_match {
            return match response {
                Ok(r) => Err(format!(
                    "{method} {}: expected the request to fail with an error matching `{pattern}`, but it answered {}",
                    self.url,
                    r.status().as_u16()
                )),
                Err(e) => {
                    let text = request_error(&e, limit);
                    if pattern.regex().is_match(&text) {
                        Ok(())
                    } else {
                        Err(format!(
                            "{method} {}: expected an error matching `{pattern}`, got: {text}",
                            self.url
                        ))
                    }
                }
            };
        }
        let response =
            response.map_err(|e| format!("{method} {}: {}", self.url, request_error(&e, limit)))?;
        let status = response.status().as_u16();
        let body = response.text().await.map_err(|e| {
            format!(
                "{method} {}: reading the body: {}",
                self.url,
                request_error(&e, limit)
            )
        })?;
        if status != self.status {
            return Err(format!(
                "{method} {}: expected status {}, got {status}; body: {}",
                self.url,
                self.status,
                shorten(&body)
            ));
        }
        if let Some(pattern) = &self.body_match {
            if !pattern.regex().is_match(&body) {
                return Err(format!(
                    "{method} {}: expected the body to match `{pattern}`, got: {}",
                    self.url,
                    shorten(&body)
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::thread::JoinHandle;
    use std::time::Instant;

    /// Reads one request (headers and a `Content-Length` body) from `stream`.
    fn read_request(stream: &mut TcpStream) -> String {
        let mut data = Vec::new();
        let mut buf = [0u8; 1024];
        loop {
            let n = stream.read(&mut buf).expect("read");
            if n == 0 {
                break;
            }
            data.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&data).to_string();
            if let Some(end) = text.find("\r\n\r\n") {
                let length = text[..end]
                    .lines()
                    .find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        k.eq_ignore_ascii_case("content-length")
                            .then(|| v.trim().parse::<usize>().ok())?
                    })
                    .unwrap_or(0);
                if data.len() >= end + 4 + length {
                    break;
                }
            }
        }
        String::from_utf8_lossy(&data).into_owned()
    }

    /// A server on 127.0.0.1 that answers one request with `status` and `body` and returns
    /// the request it got.
    fn answer_once(status: &'static str, body: &'static str) -> (String, JoinHandle<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let handle = std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().expect("accept");
            let request = read_request(&mut stream);
            let answer = format!(
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            stream.write_all(answer.as_bytes()).expect("write");
            request
        });
        (url, handle)
    }

    fn check(method: &str, url: &str) -> HttpCheck {
        HttpCheck {
            method: method.into(),
            url: url.into(),
            status: 200,
            body_match: None,
            error_match: None,
            cert: None,
            headers: Vec::new(),
            body: None,
        }
    }

    async fn run(c: &HttpCheck, limit: Duration) -> Result<(), String> {
        c.run(&c.client().expect("client"), limit).await
    }

    const LIMIT: Duration = Duration::from_secs(5);

    #[tokio::test]
    async fn sends_the_method_headers_and_body() {
        let (url, server) = answer_once("201 Created", "made");
        let mut c = check("POST", &format!("{url}/api/items"));
        c.status = 201;
        c.headers = vec![
            ("X-Token".into(), "secret-42".into()),
            ("Content-Type".into(), "application/json".into()),
        ];
        c.body = Some(r#"{"ping": true}"#.into());
        c.body_match = Some(Pattern::new("^made$").unwrap());
        assert_eq!(run(&c, LIMIT).await, Ok(()));
        let request = server.join().expect("server");
        let lower = request.to_ascii_lowercase();
        assert!(
            request.starts_with("POST /api/items HTTP/1.1\r\n"),
            "{request}"
        );
        assert!(lower.contains("\r\nx-token: secret-42\r\n"), "{request}");
        assert!(
            lower.contains("\r\ncontent-type: application/json\r\n"),
            "{request}"
        );
        assert!(request.ends_with("\r\n\r\n{\"ping\": true}"), "{request}");
    }

    #[tokio::test]
    async fn a_wrong_status_says_what_was_expected_and_what_came_back() {
        let (url, server) = answer_once("404 Not Found", "no  such\n page");
        let c = check("GET", &format!("{url}/missing.html"));
        let err = run(&c, LIMIT).await.expect_err("404 is not 200");
        assert_eq!(
            err,
            format!("GET {url}/missing.html: expected status 200, got 404; body: no such page")
        );
        assert!(
            server
                .join()
                .expect("server")
                .starts_with("GET /missing.html ")
        );
    }

    #[tokio::test]
    async fn the_body_regex_is_searched_not_anchored() {
        let (url, _server) = answer_once("200 OK", "<h1>Hello from the test</h1>");
        let mut c = check("GET", &url);
        c.body_match = Some(Pattern::new("Hello from").unwrap());
        assert_eq!(run(&c, LIMIT).await, Ok(()));

        let (url, _server) = answer_once("200 OK", "<h1>Hello from the test</h1>");
        let mut c = check("GET", &url);
        c.body_match = Some(Pattern::new("goodbye").unwrap());
        assert_eq!(
            run(&c, LIMIT).await,
            Err(format!(
                "GET {url}: expected the body to match `goodbye`, got: <h1>Hello from the test</h1>"
            ))
        );
    }

    #[tokio::test]
    async fn error_match_wants_a_failing_request() {
        // A port that was free a moment ago: the connection is refused.
        let port = TcpListener::bind("127.0.0.1:0")
            .expect("bind")
            .local_addr()
            .expect("addr")
            .port();
        let mut c = check("GET", &format!("http://127.0.0.1:{port}/"));
        c.error_match = Some(Pattern::new("(?i)connect").unwrap());
        assert_eq!(run(&c, LIMIT).await, Ok(()));
        c.error_match = Some(Pattern::new("certificate").unwrap());
        let err = run(&c, LIMIT).await.expect_err("the error does not match");
        assert!(
            err.contains("expected an error matching `certificate`, got: "),
            "{err}"
        );

        let (url, _server) = answer_once("200 OK", "fine");
        let mut c = check("GET", &url);
        c.error_match = Some(Pattern::new(".").unwrap());
        assert_eq!(
            run(&c, LIMIT).await,
            Err(format!(
                "GET {url}: expected the request to fail with an error matching `.`, but it answered 200"
            ))
        );
    }

    #[tokio::test]
    async fn a_server_that_never_answers_costs_the_limit_only() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}/", listener.local_addr().expect("addr"));
        // Accepts, reads the request and keeps the connection open without a word.
        let _server = std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().expect("accept");
            let _ = read_request(&mut stream);
            std::thread::sleep(Duration::from_secs(10));
        });
        let c = check("GET", &url);
        let start = Instant::now();
        let err = run(&c, Duration::from_millis(300))
            .await
            .expect_err("no answer");
        let took = start.elapsed();
        assert!(took < Duration::from_secs(2), "took {took:?}");
        assert!(
            err.starts_with(&format!("GET {url}: no answer within 0.3s (")),
            "{err}"
        );
    }

    #[test]
    fn requests_are_bounded_by_the_time_left_within_sane_limits() {
        assert_eq!(
            request_limit(Duration::from_secs(3)),
            Duration::from_secs(3)
        );
        assert_eq!(request_limit(Duration::ZERO), MIN_REQUEST);
        assert_eq!(request_limit(Duration::from_secs(600)), MAX_REQUEST);
    }
}
