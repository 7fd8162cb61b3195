//! A container's output and commands in running containers: logs, attach, exec.

use bytes::Bytes;
use futures_util::StreamExt;

use bollard::query_parameters as qp;

use super::{Engine, EngineError, OutputChunk, OutputStream, classify};

impl Engine {
    /// The container's output: `since` a UNIX time (0 = from the start), following new output
    /// when `follow`, only the last `tail` lines when given.
    pub fn logs(&self, name: &str, follow: bool, since: i64, tail: Option<usize>) -> OutputStream {
        self.logs_with(name, follow, since, tail, false)
    }

    /// The container's output as [`Engine::logs`] gives it, each line starting with the
    /// engine's timestamp (RFC 3339 with nanoseconds) and a space.
    pub fn logs_stamped(
        &self,
        name: &str,
        follow: bool,
        since: i64,
        tail: Option<usize>,
    ) -> OutputStream {
        self.logs_with(name, follow, since, tail, true)
    }

    /// The container's output logged after the instant `after` (all of it when `None`),
    /// following new output when `follow`. The engine's `since` counts whole seconds, so the
    /// lines are read with their timestamps and those up to `after` are dropped here.
    pub fn logs_after(
        &self,
        name: &str,
        follow: bool,
        after: Option<chrono::DateTime<chrono::Utc>>,
    ) -> OutputStream {
        let Some(after) = after else {
            return self.logs(name, follow, 0, None);
        };
        let stream = self.logs_with(name, follow, after.timestamp().max(0), None, true);
        Box::pin(stream.filter_map(move |item| {
            let item = item.map(|chunk| OutputChunk {
                data: lines_after(&chunk.data, after),
                ..chunk
            });
            std::future::ready(match item {
                Ok(chunk) if chunk.data.is_empty() => None,
                other => Some(other),
            })
        }))
    }

    fn logs_with(
        &self,
        name: &str,
        follow: bool,
        since: i64,
        tail: Option<usize>,
        timestamps: bool,
    ) -> OutputStream {
        let opts = qp::LogsOptions {
            follow,
            stdout: true,
            stderr: true,
            since: i32::try_from(since).unwrap_or(0),
            until: 0,
            timestamps,
            tail: tail.map_or_else(|| "all".to_string(), |t| t.to_string()),
        };
        let call = format!("reading the output of `{name}`");
        let context = call.clone();
        let owned = name.to_string();
        let stream = self.docker.logs(name, Some(opts)).map(move |item| {
            item.map(log_chunk)
                .map_err(|e| classify(&context, "container", &owned, e))
        });
        // Following waits for output for as long as the container runs (the caller bounds
        // that wait); the logs so far come without a gap.
        if follow {
            Box::pin(stream)
        } else {
            self.idle(&call, stream)
        }
    }

    /// Attaches to the container's output stream (before starting it, to miss nothing).
    pub async fn attach(&self, name: &str) -> Result<OutputStream, EngineError> {
        let opts = qp::AttachContainerOptions {
            stdin: false,
            stdout: true,
            stderr: true,
            stream: true,
            logs: false,
            detach_keys: None,
        };
        let call = format!("attaching to `{name}`");
        let results = self
            .within(&call, self.docker.attach_container(name, Some(opts)))
            .await?
            .map_err(|e| classify(&call, "container", name, e))?;
        let name = name.to_string();
        Ok(Box::pin(results.output.map(move |item| {
            item.map(log_chunk).map_err(|e| {
                classify(
                    &format!("reading the output of `{name}`"),
                    "container",
                    &name,
                    e,
                )
            })
        })))
    }

    /// Runs a command in a running container; returns its exit code and output. Its creation,
    /// start and inspection are bounded; its run is not (it runs as long as the command does).
    pub async fn exec(
        &self,
        name: &str,
        cmd: Vec<String>,
        env: Vec<String>,
        user: Option<String>,
        working_dir: Option<String>,
        mut on_output: impl FnMut(&OutputChunk) + Send,
    ) -> Result<i64, EngineError> {
        let context = format!("running a command in `{name}`");
        let config = bollard::models::ExecConfig {
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            cmd: Some(cmd),
            env: if env.is_empty() { None } else { Some(env) },
            user,
            working_dir,
            ..Default::default()
        };
        let created = self
            .within(&context, self.docker.create_exec(name, config))
            .await?
            .map_err(|e| classify(&context, "container", name, e))?;
        let started = self
            .within(
                &context,
                self.docker
                    .start_exec(&created.id, None::<bollard::exec::StartExecOptions>),
            )
            .await?
            .map_err(|e| classify(&context, "container", name, e))?;
        if let bollard::exec::StartExecResults::Attached { mut output, .. } = started {
            while let Some(item) = output.next().await {
                let chunk = log_chunk(item.map_err(|e| classify(&context, "container", name, e))?);
                on_output(&chunk);
            }
        }
        let inspect = self
            .within(&context, self.docker.inspect_exec(&created.id))
            .await?
            .map_err(|e| classify(&context, "container", name, e))?;
        Ok(inspect.exit_code.unwrap_or(-1))
    }
}

/// The lines of timestamped log output (`<RFC 3339 time> <text>`) logged after `after`,
/// without their timestamps. A line without a timestamp (the rest of a long line) is kept.
fn lines_after(data: &[u8], after: chrono::DateTime<chrono::Utc>) -> Bytes {
    let mut out = Vec::with_capacity(data.len());
    for line in data.split_inclusive(|b| *b == b'\n') {
        let stamped = line.iter().position(|b| *b == b' ').and_then(|i| {
            let time = std::str::from_utf8(&line[..i]).ok()?;
            let time = chrono::DateTime::parse_from_rfc3339(time).ok()?;
            Some((time, &line[i + 1..]))
        });
        match stamped {
            Some((time, text)) => {
                if time > after {
                    out.extend_from_slice(text);
                }
            }
            None => out.extend_from_slice(line),
        }
    }
    Bytes::from(out)
}

fn log_chunk(out: bollard::container::LogOutput) -> OutputChunk {
    use bollard::container::LogOutput as L;
    match out {
        L::StdErr { message } => OutputChunk {
            stderr: true,
            data: message,
        },
        L::StdOut { message } | L::Console { message } | L::StdIn { message } => OutputChunk {
            stderr: false,
            data: message,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamped_lines_up_to_an_instant_are_dropped() {
        let after = chrono::DateTime::parse_from_rfc3339("2026-01-02T03:04:05.500000000Z")
            .unwrap()
            .to_utc();
        let data = b"2026-01-02T03:04:05.400000000Z old\n2026-01-02T03:04:05.500000000Z edge\n2026-01-02T03:04:05.600000000Z new\n";
        assert_eq!(&lines_after(data, after)[..], b"new\n");
        assert_eq!(&lines_after(b"no stamp\n", after)[..], b"no stamp\n");
    }
}
