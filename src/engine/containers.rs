//! Container calls: inspect, list, create, start, stop, kill, remove, rename, wait, and the
//! archive endpoint (download and upload of paths).

use std::time::Duration;

use bollard::query_parameters as qp;
use bytes::Bytes;
use futures_util::{Stream, StreamExt, TryStreamExt};

use super::bounds::Activity;
use super::{
    ByteStream, ContainerInfo, ContainerSummary, Created, Engine, EngineError, archive, classify,
    convert, label_filter, optional,
};

impl Engine {
    /// Inspects a container; `None` if it does not exist.
    pub async fn container(&self, name: &str) -> Result<Option<ContainerInfo>, EngineError> {
        let inspect = self
            .within(
                "inspecting a container",
                self.docker.inspect_container(name, None),
            )
            .await?
            .map_err(|e| classify("inspecting a container", "container", name, e));
        Ok(optional(inspect)?.map(|i| ContainerInfo::from_inspect(&i)))
    }

    /// Containers carrying all the given labels (running or not).
    pub async fn containers_with_labels(
        &self,
        labels: &[(&str, &str)],
    ) -> Result<Vec<ContainerSummary>, EngineError> {
        let opts = qp::ListContainersOptions {
            all: true,
            filters: Some(label_filter(labels)),
            ..Default::default()
        };
        let list = self
            .within(
                "listing containers",
                self.docker.list_containers(Some(opts)),
            )
            .await?
            .map_err(|e| classify("listing containers", "container", "", e))?;
        Ok(list
            .into_iter()
            .map(|c| ContainerSummary {
                id: c.id.unwrap_or_default(),
                name: c
                    .names
                    .unwrap_or_default()
                    .first()
                    .map(|n| n.trim_start_matches('/').to_string())
                    .unwrap_or_default(),
                labels: c.labels.unwrap_or_default(),
                image_id: c.image_id.unwrap_or_default(),
                running: c.state.map(|s| s.to_string()).as_deref() == Some("running"),
            })
            .collect())
    }

    /// Creates a container. Errors with `NotFound { kind: "image" }` when the image is missing.
    pub async fn create_container(
        &self,
        name: &str,
        req: convert::CreateRequest,
    ) -> Result<Created, EngineError> {
        let opts = qp::CreateContainerOptions {
            name: Some(name.to_string()),
            ..Default::default()
        };
        let call = format!("creating container `{name}`");
        self.within(&call, self.docker.create_container(Some(opts), req.body))
            .await?
            .map(|r| Created {
                id: r.id,
                warnings: r.warnings,
            })
            .map_err(|e| {
                classify(
                    &format!("creating container `{name}`"),
                    "container",
                    name,
                    e,
                )
            })
    }

    pub async fn start_container(&self, name: &str) -> Result<(), EngineError> {
        let call = format!("starting container `{name}`");
        match self
            .within(
                &call,
                self.docker
                    .start_container(name, None::<qp::StartContainerOptions>),
            )
            .await?
        {
            // 304: already running.
            Ok(())
            | Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 304, ..
            }) => Ok(()),
            Err(e) => Err(classify(&call, "container", name, e)),
        }
    }

    pub async fn stop_container(&self, name: &str, timeout: u32) -> Result<(), EngineError> {
        let opts = qp::StopContainerOptions {
            t: Some(i32::try_from(timeout).unwrap_or(i32::MAX)),
            ..Default::default()
        };
        let call = format!("stopping container `{name}`");
        // The engine answers once the container has stopped: after its grace period at most.
        let stop = self.docker.stop_container(name, Some(opts));
        let stop = self.bounded(&call, Duration::from_secs(timeout.into()), async {
            Ok(stop.await)
        });
        match stop.await? {
            // 304: already stopped.
            Ok(())
            | Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 304, ..
            }) => Ok(()),
            Err(e) => Err(classify(&call, "container", name, e)),
        }
    }

    pub async fn kill_container(&self, name: &str) -> Result<(), EngineError> {
        let call = format!("killing container `{name}`");
        self.within(
            &call,
            self.docker
                .kill_container(name, None::<qp::KillContainerOptions>),
        )
        .await?
        .map_err(|e| classify(&call, "container", name, e))
    }

    /// Removes a container; `volumes` also removes its anonymous volumes.
    pub async fn remove_container(
        &self,
        name: &str,
        volumes: bool,
        force: bool,
    ) -> Result<(), EngineError> {
        let opts = qp::RemoveContainerOptions {
            v: volumes,
            force,
            link: false,
        };
        let call = format!("removing container `{name}`");
        self.within(&call, self.docker.remove_container(name, Some(opts)))
            .await?
            .map_err(|e| classify(&call, "container", name, e))
    }

    pub async fn rename_container(&self, name: &str, new_name: &str) -> Result<(), EngineError> {
        let opts = qp::RenameContainerOptions {
            name: new_name.to_string(),
        };
        let call = format!("renaming container `{name}`");
        self.within(&call, self.docker.rename_container(name, opts))
            .await?
            .map_err(|e| classify(&call, "container", name, e))
    }

    /// Waits until the container stops and returns its exit code. Not bounded: the container
    /// runs for as long as its command does (an order's own timeout bounds it).
    pub async fn wait_container(&self, name: &str) -> Result<i64, EngineError> {
        let opts = qp::WaitContainerOptions {
            condition: "not-running".to_string(),
        };
        let mut stream = self.docker.wait_container(name, Some(opts));
        let mut code = None;
        while let Some(item) = stream.next().await {
            match item {
                Ok(r) => code = Some(r.status_code),
                // bollard reports a non-zero exit as an error; it is an answer here.
                Err(bollard::errors::Error::DockerContainerWaitError { code: c, .. }) => {
                    code = Some(c);
                }
                Err(e) => {
                    return Err(classify(
                        &format!("waiting for container `{name}`"),
                        "container",
                        name,
                        e,
                    ));
                }
            }
        }
        match code {
            Some(c) => Ok(c),
            None => Ok(self.container(name).await?.map_or(0, |c| c.exit_code)),
        }
    }

    // -- archives -----------------------------------------------------------------------------

    /// A tar stream of `path` inside the container (works on stopped containers).
    pub fn download(&self, name: &str, path: &str) -> ByteStream {
        let opts = qp::DownloadFromContainerOptions {
            path: path.to_string(),
        };
        let call = format!("reading `{path}` from `{name}`");
        let p = path.to_string();
        let context = call.clone();
        self.idle(
            &call,
            self.docker
                .download_from_container(name, Some(opts))
                .map_err(move |e| classify(&context, "path", &p, e)),
        )
    }

    /// The tar of `path` in container `name` as a blocking reader (see [`archive`]), when the
    /// engine is on a unix socket; `None` otherwise (use [`Engine::download`]). Blocks: call it
    /// on the thread that reads the archive. Reads fail once `cancel` says so.
    pub fn download_blocking(
        &self,
        name: &str,
        path: &str,
        cancel: Box<dyn Fn() -> bool + Send>,
    ) -> Option<Result<archive::ArchiveReader, EngineError>> {
        let socket = self.socket.as_deref()?;
        Some(archive::ArchiveReader::open(
            socket,
            &self.api_version,
            name,
            path,
            cancel,
            self.timeout,
        ))
    }

    /// Unpacks the tar read from `body` into `path` of container `name` (see [`archive`]), when
    /// the engine is on a unix socket; `None` otherwise (use [`Engine::upload`]). Blocks: call
    /// it on the thread that reads the archive. Gives up once `cancel` says so.
    pub fn upload_blocking(
        &self,
        name: &str,
        path: &str,
        body: &mut dyn std::io::Read,
        cancel: Box<dyn Fn() -> bool + Send>,
    ) -> Option<Result<(), archive::UploadError>> {
        let socket = self.socket.as_deref()?;
        Some(archive::upload(
            socket,
            &self.api_version,
            name,
            path,
            body,
            cancel,
            self.timeout,
        ))
    }

    /// Unpacks a tar stream into `path` inside the container.
    pub async fn upload(
        &self,
        name: &str,
        path: &str,
        body: impl Stream<Item = Bytes> + Send + 'static,
    ) -> Result<(), EngineError> {
        let opts = qp::UploadToContainerOptions {
            path: path.to_string(),
            ..Default::default()
        };
        let call = format!("writing into `{path}` of `{name}`");
        let activity = Activity::new();
        let body = bollard::body_stream(activity.track(body));
        let upload = async {
            self.docker
                .upload_to_container(name, Some(opts), body)
                .await
                .map_err(|e| classify(&call, "path", path, e))
        };
        self.watched(&call, &activity, upload).await
    }
}
