//! Image calls: inspect, build, pull, push, tag, commit, remove, list.

use bollard::query_parameters as qp;
use bytes::Bytes;
use futures_util::{Stream, StreamExt};

use super::bounds::Activity;
use super::registry::RegistryAuth;
use super::{
    BuildEvent, BuildParams, Engine, EngineError, ImageInfo, ImageSummary, Progress, classify,
    label_filter, optional,
};

impl Engine {
    /// Inspects an image; `None` if it does not exist.
    pub async fn image(&self, name: &str) -> Result<Option<ImageInfo>, EngineError> {
        let inspect = self
            .within("inspecting an image", self.docker.inspect_image(name))
            .await?
            .map_err(|e| classify("inspecting an image", "image", name, e));
        Ok(optional(inspect)?.map(|i| {
            let raw = serde_json::to_value(&i).unwrap_or(serde_json::Value::Null);
            let config = i.config.unwrap_or_default();
            let mut exposed_ports: Vec<String> = config.exposed_ports.unwrap_or_default();
            exposed_ports.sort();
            let mut volumes: Vec<String> = config.volumes.unwrap_or_default();
            volumes.sort();
            ImageInfo {
                id: i.id.unwrap_or_default(),
                labels: config.labels.unwrap_or_default(),
                env: config.env.unwrap_or_default(),
                exposed_ports,
                volumes,
                raw,
            }
        }))
    }

    /// Builds an image from a tar context stream. Errors in the build stream fail the build.
    pub async fn build(
        &self,
        params: &BuildParams,
        context: impl Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static,
        mut on_event: impl FnMut(BuildEvent) + Send,
    ) -> Result<Option<String>, EngineError> {
        let what = params.tag.clone().unwrap_or_else(|| "an image".into());
        let ctx = format!("building `{what}`");
        let opts = qp::BuildImageOptions {
            dockerfile: params.dockerfile.clone(),
            t: params.tag.clone(),
            rm: params.rm,
            forcerm: params.forcerm,
            nocache: params.nocache,
            pull: params.pull.then(|| "1".to_string()),
            buildargs: if params.buildargs.is_empty() {
                None
            } else {
                Some(params.buildargs.clone())
            },
            labels: if params.labels.is_empty() {
                None
            } else {
                Some(params.labels.clone())
            },
            target: params.target.clone().unwrap_or_default(),
            networkmode: params.network_mode.clone(),
            ..Default::default()
        };
        // Sending the context and reading the output both count as the build moving.
        let activity = Activity::new();
        let body = bollard::body_try_stream(activity.track(context));
        let mut stream = activity.track(self.docker.build_image(opts, None, Some(body)));
        let build = async {
            let mut image_id = None;
            while let Some(item) = stream.next().await {
                let info = item.map_err(|e| classify(&ctx, "image", &what, e))?;
                if let Some(detail) = info.error_detail {
                    return Err(EngineError::Api {
                        context: ctx.clone(),
                        status: 0,
                        message: detail
                            .message
                            .unwrap_or_else(|| "the build failed".into())
                            .trim()
                            .to_string(),
                    });
                }
                if let Some(line) = info.stream {
                    on_event(BuildEvent::Line(line));
                }
                if let Some(aux) = info.aux {
                    if let Some(id) = aux.id {
                        image_id = Some(id);
                    }
                }
            }
            Ok(image_id)
        };
        self.watched(&ctx, &activity, Box::pin(build)).await
    }

    /// Pulls an image (`name` may carry a tag), with the registry's credentials when given.
    pub async fn pull(
        &self,
        name: &str,
        auth: Option<&RegistryAuth>,
        on_progress: impl FnMut(Progress) + Send,
    ) -> Result<(), EngineError> {
        let (repo, tag) = crate::unit::container::split_image(name);
        let opts = qp::CreateImageOptions {
            from_image: Some(repo),
            tag: Some(tag),
            ..Default::default()
        };
        let creds = auth.map(RegistryAuth::to_bollard);
        let stream = self.docker.create_image(Some(opts), None, creds);
        self.follow_progress(
            stream,
            &format!("pulling `{name}`"),
            name,
            on_progress,
            |i| {
                (
                    i.error_detail.map(|d| d.message.unwrap_or_default()),
                    Progress::from_stream(i.id, i.status, i.progress_detail),
                )
            },
        )
        .await
    }

    pub async fn remove_image(
        &self,
        name: &str,
        force: bool,
        noprune: bool,
    ) -> Result<(), EngineError> {
        let opts = qp::RemoveImageOptions {
            force,
            noprune,
            ..Default::default()
        };
        let call = format!("removing image `{name}`");
        self.within(&call, self.docker.remove_image(name, Some(opts), None))
            .await?
            .map(|_| ())
            .map_err(|e| classify(&call, "image", name, e))
    }

    pub async fn tag_image(&self, source: &str, repo: &str, tag: &str) -> Result<(), EngineError> {
        let opts = qp::TagImageOptions {
            repo: Some(repo.to_string()),
            tag: Some(tag.to_string()),
        };
        let call = format!("tagging `{source}` as `{repo}:{tag}`");
        self.within(&call, self.docker.tag_image(source, Some(opts)))
            .await?
            .map_err(|e| classify(&call, "image", source, e))
    }

    pub async fn commit(
        &self,
        container: &str,
        repo: &str,
        tag: &str,
        message: Option<String>,
        author: Option<String>,
    ) -> Result<String, EngineError> {
        let opts = qp::CommitContainerOptions {
            container: Some(container.to_string()),
            repo: Some(repo.to_string()),
            tag: Some(tag.to_string()),
            comment: message,
            author,
            pause: true,
            ..Default::default()
        };
        let call = format!("committing `{container}`");
        self.within(
            &call,
            self.docker
                .commit_container(opts, bollard::models::ContainerConfig::default()),
        )
        .await?
        .map(|r| r.id)
        .map_err(|e| classify(&call, "container", container, e))
    }

    /// Pushes `repo:tag`, with the registry's credentials when given.
    pub async fn push(
        &self,
        repo: &str,
        tag: &str,
        auth: Option<&RegistryAuth>,
        on_progress: impl FnMut(Progress) + Send,
    ) -> Result<(), EngineError> {
        let opts = qp::PushImageOptions {
            tag: Some(tag.to_string()),
            ..Default::default()
        };
        let creds = auth.map_or_else(
            bollard::auth::DockerCredentials::default,
            RegistryAuth::to_bollard,
        );
        let stream = self.docker.push_image(repo, Some(opts), Some(creds));
        self.follow_progress(
            stream,
            &format!("pushing `{repo}:{tag}`"),
            repo,
            on_progress,
            |i| {
                (
                    i.error_detail.map(|d| d.message.unwrap_or_default()),
                    // bollard's push item has no layer ID.
                    Progress::from_stream(None, i.status, i.progress_detail),
                )
            },
        )
        .await
    }

    /// Images carrying all the given labels (as `repo:tag` names, or IDs when untagged).
    pub async fn images_with_labels(
        &self,
        labels: &[(&str, &str)],
    ) -> Result<Vec<String>, EngineError> {
        Ok(self
            .image_summaries(labels)
            .await?
            .into_iter()
            .flat_map(|i| {
                if i.tags.is_empty() {
                    vec![i.id]
                } else {
                    i.tags
                }
            })
            .collect())
    }

    /// Images carrying all the given labels, dangling ones included.
    pub async fn image_summaries(
        &self,
        labels: &[(&str, &str)],
    ) -> Result<Vec<ImageSummary>, EngineError> {
        let opts = qp::ListImagesOptions {
            filters: Some(label_filter(labels)),
            ..Default::default()
        };
        let list = self
            .within("listing images", self.docker.list_images(Some(opts)))
            .await?
            .map_err(|e| classify("listing images", "image", "", e))?;
        Ok(list
            .into_iter()
            .map(|i| ImageSummary {
                id: i.id,
                created: i.created,
                tags: i
                    .repo_tags
                    .into_iter()
                    .filter(|t| t != "<none>:<none>")
                    .collect(),
            })
            .collect())
    }

    /// The IDs of the images of all containers (running or not).
    pub async fn images_in_use(&self) -> Result<std::collections::HashSet<String>, EngineError> {
        Ok(self
            .containers_with_labels(&[])
            .await?
            .into_iter()
            .map(|c| c.image_id)
            .collect())
    }

    /// Follows a pull or push progress stream: reports each status, fails on an error in the
    /// stream or when nothing arrives for the bound. `split` takes (error message, progress)
    /// out of an item.
    async fn follow_progress<T>(
        &self,
        mut stream: impl Stream<Item = Result<T, bollard::errors::Error>> + Unpin,
        context: &str,
        name: &str,
        mut on_progress: impl FnMut(Progress) + Send,
        split: impl Fn(T) -> (Option<String>, Option<Progress>),
    ) -> Result<(), EngineError> {
        while let Some(item) = self.next_within(&mut stream, context).await? {
            let (error, progress) = split(item.map_err(|e| classify(context, "image", name, e))?);
            if let Some(message) = error {
                return Err(EngineError::Api {
                    context: context.to_string(),
                    status: 0,
                    message,
                });
            }
            if let Some(p) = progress {
                on_progress(p);
            }
        }
        Ok(())
    }
}
