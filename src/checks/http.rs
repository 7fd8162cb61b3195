//! An HTTP check from the host: method, URL, expected status, a regex the body must contain,
//! or (`error_match`) a regex the error of a failing request must match. HTTPS trusts the
//! system roots plus an optional CA certificate (PEM).

use std::path::PathBuf;
use std::time::Duration;

/// One request and what its answer must look like.
#[derive(Debug, Clone)]
pub struct HttpCheck {
    pub method: String,
    pub url: String,
    pub status: u16,
    pub body_match: Option<String>,
    pub error_match: Option<String>,
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
        let mut builder = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::none());
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

    /// Runs the check once. `Err` says what was expected and what came back.
    pub async fn run(&self, client: &reqwest::Client) -> Result<(), String> {
        let method = reqwest::Method::from_bytes(self.method.as_bytes())
            .map_err(|_| format!("unknown method `{}`", self.method))?;
        let mut req = client.request(method.clone(), &self.url);
        for (k, v) in &self.headers {
            req = req.header(k, v);
        }
        if let Some(b) = &self.body {
            req = req.body(b.clone());
        }
        let response = req.send().await;
        if let Some(pattern) = &self.error_match {
            let re = regex::Regex::new(pattern)
                .map_err(|e| format!("invalid regex `{pattern}`: {e}"))?;
            return match response {
                Ok(r) => Err(format!(
                    "{method} {}: expected the request to fail with an error matching `{pattern}`, but it answered {}",
                    self.url,
                    r.status().as_u16()
                )),
                Err(e) => {
                    let text = error_chain(&e);
                    if re.is_match(&text) {
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
            response.map_err(|e| format!("{method} {}: {}", self.url, error_chain(&e)))?;
        let status = response.status().as_u16();
        let body = response.text().await.map_err(|e| {
            format!(
                "{method} {}: reading the body: {}",
                self.url,
                error_chain(&e)
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
            let re = regex::Regex::new(pattern)
                .map_err(|e| format!("invalid regex `{pattern}`: {e}"))?;
            if !re.is_match(&body) {
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
