//! Network and volume calls: ensure (create unless present), connect, inspect, remove, list.

use std::collections::HashMap;

use bollard::query_parameters as qp;

use super::{Engine, EngineError, classify, convert, label_filter, optional};

impl Engine {
    /// Creates a network from `req` (see [`convert::network_request`]) unless one of that name
    /// exists. Returns whether it was created.
    pub async fn ensure_network(&self, req: convert::NetworkRequest) -> Result<bool, EngineError> {
        let name = req.name().to_string();
        if self.network_containers(&name).await?.is_some() {
            return Ok(false);
        }
        let call = format!("creating network `{name}`");
        match self
            .within(&call, self.docker.create_network(req.0))
            .await?
        {
            Ok(_) => Ok(true),
            // Created concurrently by a parallel order: fine.
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 409, ..
            }) => Ok(false),
            Err(e) => Err(classify(&call, "network", &name, e)),
        }
    }

    /// Attaches a container to a network under `aliases`.
    pub async fn connect_network(
        &self,
        network: &str,
        container: &str,
        aliases: Vec<String>,
    ) -> Result<(), EngineError> {
        let req = bollard::models::NetworkConnectRequest {
            container: container.to_string(),
            endpoint_config: Some(bollard::models::EndpointSettings {
                aliases: Some(aliases),
                ..Default::default()
            }),
        };
        let call = format!("connecting `{container}` to network `{network}`");
        self.within(&call, self.docker.connect_network(network, req))
            .await?
            .map_err(|e| classify(&call, "network", network, e))
    }

    /// A network as the engine describes it; `None` if it does not exist.
    async fn inspect_network(
        &self,
        name: &str,
    ) -> Result<Option<bollard::models::NetworkInspect>, EngineError> {
        let inspect = self
            .within(
                "inspecting a network",
                self.docker
                    .inspect_network(name, None::<qp::InspectNetworkOptions>),
            )
            .await?
            .map_err(|e| classify("inspecting a network", "network", name, e));
        optional(inspect)
    }

    /// Names of the containers attached to a network; `None` if the network does not exist.
    pub async fn network_containers(&self, name: &str) -> Result<Option<Vec<String>>, EngineError> {
        Ok(self.inspect_network(name).await?.map(|n| {
            n.containers
                .unwrap_or_default()
                .into_values()
                .filter_map(|c| c.name)
                .collect()
        }))
    }

    /// The labels of a network; `None` if it does not exist.
    pub async fn network_labels(
        &self,
        name: &str,
    ) -> Result<Option<HashMap<String, String>>, EngineError> {
        Ok(self
            .inspect_network(name)
            .await?
            .map(|n| n.labels.unwrap_or_default()))
    }

    pub async fn remove_network(&self, name: &str) -> Result<(), EngineError> {
        let call = format!("removing network `{name}`");
        self.within(&call, self.docker.remove_network(name))
            .await?
            .map_err(|e| classify(&call, "network", name, e))
    }

    /// Creates a named volume from `req` (see [`convert::volume_request`]) unless it exists.
    /// Returns whether it was created.
    pub async fn ensure_volume(&self, req: convert::VolumeRequest) -> Result<bool, EngineError> {
        let name = req.name().to_string();
        if self.volume_labels(&name).await?.is_some() {
            return Ok(false);
        }
        let call = format!("creating volume `{name}`");
        self.within(&call, self.docker.create_volume(req.0))
            .await?
            .map(|_| true)
            .map_err(|e| classify(&call, "volume", &name, e))
    }

    /// The labels of a volume; `None` if it does not exist.
    pub async fn volume_labels(
        &self,
        name: &str,
    ) -> Result<Option<HashMap<String, String>>, EngineError> {
        let inspect = self
            .within("inspecting a volume", self.docker.inspect_volume(name))
            .await?
            .map_err(|e| classify("inspecting a volume", "volume", name, e));
        Ok(optional(inspect)?.map(|v| v.labels))
    }

    pub async fn remove_volume(&self, name: &str) -> Result<(), EngineError> {
        let call = format!("removing volume `{name}`");
        self.within(
            &call,
            self.docker
                .remove_volume(name, None::<qp::RemoveVolumeOptions>),
        )
        .await?
        .map_err(|e| classify(&call, "volume", name, e))
    }

    /// Names of volumes carrying all the given labels.
    pub async fn volumes_with_labels(
        &self,
        labels: &[(&str, &str)],
    ) -> Result<Vec<String>, EngineError> {
        let opts = qp::ListVolumesOptions {
            filters: Some(label_filter(labels)),
        };
        let list = self
            .within("listing volumes", self.docker.list_volumes(Some(opts)))
            .await?
            .map_err(|e| classify("listing volumes", "volume", "", e))?;
        Ok(list
            .volumes
            .unwrap_or_default()
            .into_iter()
            .map(|v| v.name)
            .collect())
    }

    /// Names of networks carrying all the given labels.
    pub async fn networks_with_labels(
        &self,
        labels: &[(&str, &str)],
    ) -> Result<Vec<String>, EngineError> {
        let opts = qp::ListNetworksOptions {
            filters: Some(label_filter(labels)),
        };
        let list = self
            .within("listing networks", self.docker.list_networks(Some(opts)))
            .await?
            .map_err(|e| classify("listing networks", "network", "", e))?;
        Ok(list.into_iter().filter_map(|n| n.name).collect())
    }
}
