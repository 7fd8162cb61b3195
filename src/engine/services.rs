//! Swarm calls: the engine's place in a swarm, services (inspect, list, create, update,
//! scale, remove) and their tasks. Engine-neutral answers: [`ServiceInfo`], [`TaskInfo`].

use std::collections::HashMap;

use bollard::models::{ServiceSpec, ServiceUpdateStatusStateEnum};
use bollard::query_parameters as qp;

use super::service_spec::{LABEL_IMAGE, ServiceRequest};
use super::{Engine, EngineError, classify, label_filter, optional};

/// The engine's place in a swarm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SwarmRole {
    /// Not in a swarm (`inactive`), or in one that does not work (`pending`, `error`,
    /// `locked`: the state).
    Outside(String),
    /// A worker: it runs tasks but cannot create services.
    Worker,
    Manager,
}

/// What dstart needs to know about a service.
#[derive(Debug, Clone, Default)]
pub struct ServiceInfo {
    pub id: String,
    pub name: String,
    /// The spec's version, which an update must name.
    pub version: u64,
    pub labels: HashMap<String, String>,
    /// Desired tasks (`None`: a global service).
    pub replicas: Option<u64>,
    /// The image the tasks run (an ID, or a reference for a service dstart did not make).
    pub image: String,
    /// `dstart.image`: the reference the unit names the image by.
    pub image_name: Option<String>,
    /// A rolling update: `updating`, `paused`, `completed`, `rollback_started`, ...
    pub update_state: Option<String>,
    /// Why an update paused or rolled back.
    pub update_message: Option<String>,
    /// Published ports: (target port/protocol, published port).
    pub ports: Vec<(String, u16)>,
    /// The hash of its task template: a task made from the current spec has the same.
    pub task_hash: String,
    /// The spec as the engine holds it, for updates that change one thing (scale, force).
    pub spec: HeldSpec,
}

/// A service's spec as the engine holds it; only `engine` reads it.
#[derive(Debug, Clone, Default)]
pub struct HeldSpec(ServiceSpec);

/// A task of a service.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskInfo {
    pub id: String,
    /// The node it is assigned to (an ID).
    pub node: String,
    /// `new`, `pending`, ..., `starting`, `running`, `complete`, `failed`, `rejected`, ...
    pub state: String,
    /// `running` or `shutdown`.
    pub desired: String,
    /// The engine's message and error (`No such image: ...`).
    pub message: String,
    pub error: Option<String>,
    /// The container of the task on its node, once it has one.
    pub container: Option<String>,
    /// The exit code of its container, once it exited.
    pub exit_code: Option<i64>,
    /// The service version the task runs (its spec's `ForceUpdate` and image help tell).
    pub slot: Option<i64>,
    pub created_at: String,
    /// The hash of the task's spec (see [`ServiceInfo::task_hash`]).
    pub spec_hash: String,
}

impl ServiceInfo {
    fn from_service(s: bollard::models::Service) -> ServiceInfo {
        let spec = s.spec.clone().unwrap_or_default();
        let labels = spec.labels.clone().unwrap_or_default();
        let replicas = spec
            .mode
            .as_ref()
            .and_then(|m| m.replicated.as_ref())
            .map(|r| r.replicas.unwrap_or(1).max(0).unsigned_abs());
        let image = spec
            .task_template
            .as_ref()
            .and_then(|t| t.container_spec.as_ref())
            .and_then(|c| c.image.clone())
            .unwrap_or_default();
        let update = s.update_status.clone();
        let mut ports: Vec<(String, u16)> = s
            .endpoint
            .as_ref()
            .and_then(|e| e.ports.clone())
            .unwrap_or_default()
            .into_iter()
            .filter_map(|p| {
                let published = u16::try_from(p.published_port?).ok()?;
                let proto = p
                    .protocol
                    .map_or_else(|| "tcp".to_string(), |p| p.to_string());
                Some((format!("{}/{proto}", p.target_port.unwrap_or(0)), published))
            })
            .collect();
        ports.sort();
        ServiceInfo {
            id: s.id.unwrap_or_default(),
            name: spec.name.clone().unwrap_or_default(),
            version: s.version.and_then(|v| v.index).unwrap_or(0),
            image_name: labels.get(LABEL_IMAGE).cloned(),
            labels,
            replicas,
            image,
            update_state: update
                .as_ref()
                .and_then(|u| u.state)
                .filter(|s| *s != ServiceUpdateStatusStateEnum::EMPTY)
                .map(|s| s.to_string()),
            update_message: update.and_then(|u| u.message).filter(|m| !m.is_empty()),
            ports,
            task_hash: fingerprint(spec.task_template.as_ref()),
            spec: HeldSpec(spec),
        }
    }

    /// The image ID the tasks run, without a digest suffix a reference may carry.
    pub fn image_id(&self) -> &str {
        self.image.split('@').next().unwrap_or_default()
    }

    /// How many times the tasks were restarted by force (`restart`).
    pub fn force_update(&self) -> u64 {
        self.spec
            .0
            .task_template
            .as_ref()
            .and_then(|t| t.force_update)
            .unwrap_or(0)
    }
}

/// The parts of a task spec that a task copies from its service unchanged (the engine fills
/// in defaults such as `DNSConfig`, `Placement` or the restart delay on the service only), so
/// a task made from the service's current spec has the service's fingerprint.
fn fingerprint(spec: Option<&bollard::models::TaskSpec>) -> String {
    let spec = spec.cloned().unwrap_or_default();
    let mut container = spec.container_spec.unwrap_or_default();
    container.dns_config = None;
    super::convert::config_hash(&(
        container,
        spec.resources,
        spec.networks,
        spec.force_update.unwrap_or(0),
    ))
}

fn task_info(t: bollard::models::Task) -> TaskInfo {
    let status = t.status.unwrap_or_default();
    TaskInfo {
        id: t.id.unwrap_or_default(),
        node: t.node_id.unwrap_or_default(),
        state: status.state.map(|s| s.to_string()).unwrap_or_default(),
        desired: t.desired_state.map(|s| s.to_string()).unwrap_or_default(),
        message: status.message.unwrap_or_default(),
        error: status.err.filter(|e| !e.is_empty()),
        exit_code: status.container_status.as_ref().and_then(|c| c.exit_code),
        container: status
            .container_status
            .and_then(|c| c.container_id)
            .filter(|c| !c.is_empty()),
        slot: t.slot,
        spec_hash: fingerprint(t.spec.as_ref()),
        created_at: t.created_at.unwrap_or_default(),
    }
}

impl Engine {
    /// Whether the engine manages a swarm.
    pub async fn swarm_role(&self) -> Result<SwarmRole, EngineError> {
        let info = self
            .within("reading the engine's information", self.docker.info())
            .await?
            .map_err(|e| classify("reading the engine's information", "engine", "", e))?;
        let swarm = info.swarm.unwrap_or_default();
        let state = swarm
            .local_node_state
            .map(|s| s.to_string())
            .unwrap_or_default();
        Ok(match (state.as_str(), swarm.control_available) {
            ("active", Some(true)) => SwarmRole::Manager,
            ("active", _) => SwarmRole::Worker,
            ("", _) => SwarmRole::Outside("inactive".into()),
            (other, _) => SwarmRole::Outside(other.to_string()),
        })
    }

    /// The node ID of this engine in its swarm (empty outside a swarm).
    pub async fn own_node(&self) -> Result<String, EngineError> {
        let info = self
            .within("reading the engine's information", self.docker.info())
            .await?
            .map_err(|e| classify("reading the engine's information", "engine", "", e))?;
        Ok(info.swarm.and_then(|s| s.node_id).unwrap_or_default())
    }

    /// Inspects a service; `None` if it does not exist.
    pub async fn service(&self, name: &str) -> Result<Option<ServiceInfo>, EngineError> {
        let call = "inspecting a service";
        let inspect = self
            .within(
                call,
                self.docker
                    .inspect_service(name, None::<qp::InspectServiceOptions>),
            )
            .await?
            .map_err(|e| classify(call, "service", name, e));
        Ok(optional(inspect)?.map(ServiceInfo::from_service))
    }

    /// Services carrying all the given labels.
    pub async fn services_with_labels(
        &self,
        labels: &[(&str, &str)],
    ) -> Result<Vec<ServiceInfo>, EngineError> {
        let opts = qp::ListServicesOptions {
            filters: Some(label_filter(labels)),
            ..Default::default()
        };
        let list = self
            .within("listing services", self.docker.list_services(Some(opts)))
            .await?
            .map_err(|e| classify("listing services", "service", "", e))?;
        Ok(list.into_iter().map(ServiceInfo::from_service).collect())
    }

    /// Creates the service of `req`. Returns its ID.
    pub async fn create_service(&self, req: ServiceRequest) -> Result<String, EngineError> {
        let name = req.name().to_string();
        let call = format!("creating service `{name}`");
        let created = self
            .within(&call, self.docker.create_service(req.spec, None))
            .await?
            .map_err(|e| classify(&call, "service", &name, e))?;
        Ok(created.id.unwrap_or_default())
    }

    /// Replaces the spec of `old` by `req` (a rolling update as its `update_config` says).
    pub async fn update_service(
        &self,
        old: &ServiceInfo,
        req: ServiceRequest,
    ) -> Result<Vec<String>, EngineError> {
        let mut spec = req.spec;
        // Carry the count of forced restarts over: a lower one would restart the tasks again.
        if let Some(t) = spec.task_template.as_mut() {
            t.force_update = Some(old.force_update());
        }
        self.put_service(old, spec).await
    }

    /// Sets the number of tasks of `old` and its labels `set` (`None` removes a label).
    pub async fn scale_service(
        &self,
        old: &ServiceInfo,
        replicas: u64,
        set: &[(&str, Option<String>)],
    ) -> Result<Vec<String>, EngineError> {
        let mut spec = old.spec.0.clone();
        spec.mode = Some(bollard::models::ServiceSpecMode {
            replicated: Some(bollard::models::ServiceSpecModeReplicated {
                replicas: Some(i64::try_from(replicas).unwrap_or(i64::MAX)),
            }),
            ..Default::default()
        });
        let labels = spec.labels.get_or_insert_with(HashMap::new);
        for (k, v) in set {
            match v {
                Some(v) => labels.insert((*k).to_string(), v.clone()),
                None => labels.remove(*k),
            };
        }
        self.put_service(old, spec).await
    }

    /// Replaces every task of `old` by a new one (`docker service update --force`).
    pub async fn force_update_service(
        &self,
        old: &ServiceInfo,
    ) -> Result<Vec<String>, EngineError> {
        let mut spec = old.spec.0.clone();
        if let Some(t) = spec.task_template.as_mut() {
            t.force_update = Some(old.force_update() + 1);
        }
        self.put_service(old, spec).await
    }

    async fn put_service(
        &self,
        old: &ServiceInfo,
        spec: ServiceSpec,
    ) -> Result<Vec<String>, EngineError> {
        let call = format!("updating service `{}`", old.name);
        let opts = qp::UpdateServiceOptions {
            version: i32::try_from(old.version).unwrap_or(i32::MAX),
            ..Default::default()
        };
        let answer = self
            .within(&call, self.docker.update_service(&old.id, spec, opts, None))
            .await?
            .map_err(|e| classify(&call, "service", &old.name, e))?;
        Ok(answer.warnings.unwrap_or_default())
    }

    pub async fn remove_service(&self, name: &str) -> Result<(), EngineError> {
        let call = format!("removing service `{name}`");
        self.within(&call, self.docker.delete_service(name))
            .await?
            .map_err(|e| classify(&call, "service", name, e))
    }

    /// The tasks of a service (all of them: running, starting, shut down).
    pub async fn service_tasks(&self, service: &str) -> Result<Vec<TaskInfo>, EngineError> {
        let mut filters = HashMap::new();
        filters.insert("service".to_string(), vec![service.to_string()]);
        let opts = qp::ListTasksOptions {
            filters: Some(filters),
        };
        let list = self
            .within("listing tasks", self.docker.list_tasks(Some(opts)))
            .await?
            .map_err(|e| classify("listing tasks", "service", service, e))?;
        let mut tasks: Vec<TaskInfo> = list.into_iter().map(task_info).collect();
        tasks.sort_by(|a, b| (a.slot, &a.created_at).cmp(&(b.slot, &b.created_at)));
        Ok(tasks)
    }

    /// The hostname of a node (its ID when the engine cannot tell).
    pub async fn node_name(&self, id: &str) -> Result<String, EngineError> {
        let node = self
            .within("inspecting a node", self.docker.inspect_node(id))
            .await?
            .map_err(|e| classify("inspecting a node", "node", id, e));
        Ok(optional(node)?
            .and_then(|n| n.description)
            .and_then(|d| d.hostname)
            .unwrap_or_else(|| id.to_string()))
    }
}

impl Engine {
    /// The ID of the secret `name`; `None` if there is none.
    pub async fn secret_id(&self, name: &str) -> Result<Option<String>, EngineError> {
        let call = "inspecting a secret";
        let inspect = self
            .within(call, self.docker.inspect_secret(name))
            .await?
            .map_err(|e| classify(call, "secret", name, e));
        Ok(optional(inspect)?.and_then(|s| s.id))
    }

    /// Creates the secret `name` holding `data` unless it exists (a secret's data never
    /// changes: another content has another name). Returns its ID.
    pub async fn ensure_secret(
        &self,
        name: &str,
        data: &[u8],
        labels: HashMap<String, String>,
    ) -> Result<String, EngineError> {
        use base64::Engine as _;
        if let Some(id) = self.secret_id(name).await? {
            return Ok(id);
        }
        let call = format!("creating secret `{name}`");
        let spec = bollard::models::SecretSpec {
            name: Some(name.to_string()),
            labels: Some(labels),
            data: Some(base64::engine::general_purpose::STANDARD.encode(data)),
            ..Default::default()
        };
        let created = self
            .within(&call, self.docker.create_secret(spec))
            .await?
            .map_err(|e| classify(&call, "secret", name, e))?;
        Ok(created.id)
    }

    /// Names of the secrets carrying all the given labels.
    pub async fn secrets_with_labels(
        &self,
        labels: &[(&str, &str)],
    ) -> Result<Vec<String>, EngineError> {
        let opts = qp::ListSecretsOptions {
            filters: Some(label_filter(labels)),
        };
        let list = self
            .within("listing secrets", self.docker.list_secrets(Some(opts)))
            .await?
            .map_err(|e| classify("listing secrets", "secret", "", e))?;
        Ok(list
            .into_iter()
            .filter_map(|s| s.spec.and_then(|s| s.name))
            .collect())
    }

    pub async fn remove_secret(&self, name: &str) -> Result<(), EngineError> {
        let call = format!("removing secret `{name}`");
        self.within(&call, self.docker.delete_secret(name))
            .await?
            .map_err(|e| classify(&call, "secret", name, e))
    }
}
