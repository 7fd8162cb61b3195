//! The ways to reach an engine that bollard does not offer as dstart needs them: tcp with the
//! TLS the Docker CLI allows (a CA or the system's roots, an optional client certificate,
//! `SkipTLSVerify`), and ssh as the Docker CLI does it, one `ssh … docker system dial-stdio`
//! per connection, HTTP spoken over the child's stdin and stdout. A failed ssh shows what ssh
//! wrote on stderr.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::process::ExitStatus;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bollard::{BollardRequest, Docker};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::{Connect, Connected, Connection, HttpConnector};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::process::{ChildStdin, ChildStdout};

use super::address::{SshTarget, Tls};
use super::{CLIENT_TIMEOUT_SECS, EngineError};

/// The most of ssh's stderr kept for an error message.
const STDERR_KEPT: u64 = 8 << 10;

/// A bollard client whose requests go through `connector`, addressed as `base`
/// (`https://host:port`, or `http://…` when the connector ignores the address).
fn custom<C>(connector: C, base: &str) -> Result<Docker, bollard::errors::Error>
where
    C: Connect + Clone + Send + Sync + 'static,
{
    let client = Arc::new(Client::builder(TokioExecutor::new()).build(connector));
    Docker::connect_with_custom_transport(
        move |request: BollardRequest| {
            let client = Arc::clone(&client);
            async move { client.request(request).await.map_err(Into::into) }
        },
        Some(base),
        CLIENT_TIMEOUT_SECS,
        bollard::API_DEFAULT_VERSION,
    )
}

/// An engine on tcp with TLS.
pub(super) fn tls(host: &str, tls: &Tls, shown: &str) -> Result<Docker, EngineError> {
    let unreachable = |message: String| EngineError::Unreachable {
        address: shown.to_string(),
        message,
    };
    let config = client_config(tls).map_err(unreachable)?;
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    let connector = hyper_rustls::HttpsConnector::from((http, Arc::new(config)));
    custom(connector, &format!("https://{host}")).map_err(|e| unreachable(e.to_string()))
}

/// The rustls configuration for `tls`, as the Docker CLI builds its own.
fn client_config(tls: &Tls) -> Result<rustls::ClientConfig, String> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?;
    let builder = if tls.verify {
        let mut roots = rustls::RootCertStore::empty();
        match &tls.ca {
            Some(ca) => {
                if !ca.is_file() {
                    return Err(format!(
                        "TLS is on ({}) but `{}` is missing",
                        tls.source,
                        ca.display()
                    ));
                }
                let certs = CertificateDer::pem_file_iter(ca)
                    .and_then(Iterator::collect::<Result<Vec<_>, _>>)
                    .map_err(|e| format!("cannot read the CA `{}`: {e}", ca.display()))?;
                let (added, _) = roots.add_parsable_certificates(certs);
                if added == 0 {
                    return Err(format!("`{}` holds no CA certificate", ca.display()));
                }
            }
            None => {
                roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
            }
        }
        builder.with_root_certificates(roots)
    } else {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyServer(provider)))
    };
    // The Docker CLI leaves out a client certificate whose files do not exist.
    let cert = tls.cert.as_ref().filter(|p| p.is_file());
    let key = tls.key.as_ref().filter(|p| p.is_file());
    match (cert, key) {
        (Some(cert), Some(key)) => {
            let chain = CertificateDer::pem_file_iter(cert)
                .and_then(Iterator::collect::<Result<Vec<_>, _>>)
                .map_err(|e| format!("cannot read `{}`: {e}", cert.display()))?;
            let key = PrivateKeyDer::from_pem_file(key)
                .map_err(|e| format!("cannot read the key `{}`: {e}", key.display()))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| format!("the client certificate `{}`: {e}", cert.display()))
        }
        _ => Ok(builder.with_no_client_auth()),
    }
}

/// `SkipTLSVerify`: any server certificate is accepted; signatures are still checked.
#[derive(Debug)]
struct AnyServer(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyServer {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// An engine behind ssh.
pub(super) fn ssh(target: &SshTarget, shown: &str) -> Result<Docker, EngineError> {
    // The address is never dialed: every connection is a new ssh child.
    custom(
        SshConnector {
            args: Arc::new(target.ssh_args()),
        },
        "http://docker.example.com",
    )
    .map_err(|e| EngineError::Unreachable {
        address: shown.to_string(),
        message: e.to_string(),
    })
}

#[derive(Clone)]
struct SshConnector {
    args: Arc<Vec<String>>,
}

impl tower_service::Service<http::Uri> for SshConnector {
    type Response = TokioIo<SshStream>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<Self::Response>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: http::Uri) -> Self::Future {
        let args = Arc::clone(&self.args);
        Box::pin(async move { SshStream::spawn(&args).map(TokioIo::new) })
    }
}

type Exit = Pin<Box<dyn Future<Output = (io::Result<ExitStatus>, String)> + Send>>;

/// One `ssh … docker system dial-stdio`: its stdout read, its stdin written. When its stdout
/// ends or its stdin breaks, the child's exit says whether that was an error (with its stderr).
pub struct SshStream {
    stdin: Option<ChildStdin>,
    stdout: ChildStdout,
    exit: Exit,
    /// The outcome once the child has exited: `Err` holds the message.
    ended: Option<Result<(), String>>,
    command: String,
}

impl SshStream {
    fn spawn(args: &[String]) -> io::Result<SshStream> {
        let command = format!("ssh {}", args.join(" "));
        let mut child = tokio::process::Command::new("ssh")
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            // The child ends with its connection (the exit future owns it).
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| io::Error::new(e.kind(), format!("cannot run `ssh`: {e}")))?;
        let (Some(stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            return Err(io::Error::other("ssh started without its pipes"));
        };
        let exit = Box::pin(async move {
            let mut text = Vec::new();
            let _ = stderr.take(STDERR_KEPT).read_to_end(&mut text).await;
            let status = child.wait().await;
            (status, String::from_utf8_lossy(&text).trim().to_string())
        });
        Ok(SshStream {
            stdin: Some(stdin),
            stdout,
            exit,
            ended: None,
            command,
        })
    }

    /// Waits for the child to exit; `Err` with ssh's own words when it failed.
    fn poll_exit(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), String>> {
        if self.ended.is_none() {
            let (status, stderr) = ready!(self.exit.as_mut().poll(cx));
            let outcome = match status {
                Ok(s) if s.success() => Ok(()),
                Ok(s) => Err(format!(
                    "`{}` failed ({s}){}",
                    self.command,
                    if stderr.is_empty() {
                        String::new()
                    } else {
                        format!(": {stderr}")
                    }
                )),
                Err(e) => Err(format!("`{}`: {e}", self.command)),
            };
            self.ended = Some(outcome);
        }
        Poll::Ready(self.ended.clone().unwrap_or(Ok(())))
    }
}

impl AsyncRead for SshStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        ready!(Pin::new(&mut this.stdout).poll_read(cx, buf))?;
        if buf.filled().len() > before || buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        // The end of ssh's output: an error if ssh failed.
        match ready!(this.poll_exit(cx)) {
            Ok(()) => Poll::Ready(Ok(())),
            Err(message) => Poll::Ready(Err(io::Error::other(message))),
        }
    }
}

impl AsyncWrite for SshStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let Some(stdin) = this.stdin.as_mut() else {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        };
        match ready!(Pin::new(stdin).poll_write(cx, data)) {
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => match ready!(this.poll_exit(cx)) {
                Err(message) => Poll::Ready(Err(io::Error::other(message))),
                Ok(()) => Poll::Ready(Err(e)),
            },
            other => Poll::Ready(other),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut().stdin.as_mut() {
            Some(stdin) => Pin::new(stdin).poll_flush(cx),
            None => Poll::Ready(Ok(())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Some(stdin) = this.stdin.as_mut() {
            ready!(Pin::new(stdin).poll_shutdown(cx))?;
        }
        // Closing stdin is how the other end learns that nothing more comes.
        this.stdin = None;
        Poll::Ready(Ok(()))
    }
}

impl Connection for SshStream {
    fn connected(&self) -> Connected {
        Connected::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_ca_is_named() {
        let tls = Tls {
            ca: Some("/nonexistent/ca.pem".into()),
            verify: true,
            source: "DOCKER_TLS_VERIFY".into(),
            ..Tls::default()
        };
        assert_eq!(
            client_config(&tls).unwrap_err(),
            "TLS is on (DOCKER_TLS_VERIFY) but `/nonexistent/ca.pem` is missing"
        );
        // Skipping verification needs no CA and no client certificate.
        let skip = Tls {
            verify: false,
            ..Tls::default()
        };
        assert!(client_config(&skip).is_ok());
    }
}
