//! Image checks: presence (with a pull attempt), content id, and what the image says about
//! users (read through a never-started probe container).

use std::time::Duration;

use bollard::models::ContainerCreateBody;
use bollard::query_parameters::{
    CreateImageOptionsBuilder, DownloadFromContainerOptionsBuilder, RemoveContainerOptionsBuilder,
};
use futures_util::StreamExt;

use super::{docker_err, is_not_found, Controller};
use crate::{Error, Result};

/// How long a pull may take before we give up (no registry is a common case).
const PULL_TIMEOUT: Duration = Duration::from_secs(60);

impl Controller {
    /// The content id (`sha256:...`) of `image` if it exists locally.
    pub async fn image_id(&self, image: &str) -> Result<Option<String>> {
        match self.docker.inspect_image(image).await {
            Ok(i) => Ok(i.id),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(docker_err(format_args!("inspecting image {image}"), e)),
        }
    }

    /// The image's content id, pulling it first when it is missing. A missing image that cannot
    /// be pulled is an error saying how to build or import one offline.
    pub(crate) async fn ensure_image(&self, image: &str) -> Result<String> {
        if let Some(id) = self.image_id(image).await? {
            return Ok(id);
        }
        tracing::info!(%image, "image not present locally; trying to pull it");
        let opts = CreateImageOptionsBuilder::default()
            .from_image(image)
            .build();
        let pull = async {
            let mut s = self.docker.create_image(Some(opts), None, None);
            while let Some(item) = s.next().await {
                item?;
            }
            Ok::<_, bollard::errors::Error>(())
        };
        let why = match tokio::time::timeout(PULL_TIMEOUT, pull).await {
            Ok(Ok(())) => match self.image_id(image).await? {
                Some(id) => return Ok(id),
                None => "the pull finished but the image is still missing".to_string(),
            },
            Ok(Err(e)) => e.to_string(),
            Err(_) => format!("the pull timed out after {}s", PULL_TIMEOUT.as_secs()),
        };
        Err(Error::Container(format!(
            "image {image} is not present locally and cannot be pulled ({why}). Build it \
             (`docker build -t {image} .`), load a saved one (`docker load -i image.tar`), or import \
             a root filesystem offline (`tar -C rootfs -c . | docker import - {image}`); or set \
             [defaults] image / --image to an image you have (`docker images`)"
        )))
    }

    /// Reads what `up` needs to know about `image`'s users through a never-started container
    /// (removed again): `/etc/passwd`, `/etc/group`, whether `/bin/bash` exists, and whether
    /// the path `home_of` picks (given the passwd and group texts) exists.
    pub(super) async fn image_facts(
        &self,
        image: &str,
        home_of: impl FnOnce(&ImageFacts) -> Option<String>,
    ) -> Result<ImageFacts> {
        let body = ContainerCreateBody {
            image: Some(image.to_string()),
            entrypoint: Some(vec!["/nonexistent-wsfs-probe".into()]),
            cmd: Some(vec![]),
            network_disabled: Some(true),
            ..Default::default()
        };
        let probe = self
            .docker
            .create_container(None, body)
            .await
            .map_err(|e| docker_err(format_args!("creating a probe container from {image}"), e))?;
        let read = async {
            let text =
                |b: Option<Vec<u8>>| String::from_utf8_lossy(&b.unwrap_or_default()).into_owned();
            let mut facts = ImageFacts {
                passwd: text(self.probe_file(&probe.id, image, "/etc/passwd").await?),
                group: text(self.probe_file(&probe.id, image, "/etc/group").await?),
                has_bash: self.probe_exists(&probe.id, image, "/bin/bash").await?,
                home_exists: false,
            };
            if let Some(home) = home_of(&facts) {
                facts.home_exists = self.probe_exists(&probe.id, image, &home).await?;
            }
            Ok(facts)
        };
        let result = read.await;
        let rm = RemoveContainerOptionsBuilder::default().force(true).build();
        if let Err(e) = self.docker.remove_container(&probe.id, Some(rm)).await {
            tracing::warn!(id = %probe.id, "removing the probe container: {e}");
        }
        result
    }

    /// The content of regular file `path` in the probe container, `None` when it is missing.
    async fn probe_file(&self, id: &str, image: &str, path: &str) -> Result<Option<Vec<u8>>> {
        let opts = DownloadFromContainerOptionsBuilder::default()
            .path(path)
            .build();
        let mut stream = self.docker.download_from_container(id, Some(opts));
        let mut tar = Vec::new();
        while let Some(chunk) = stream.next().await {
            match chunk {
                Ok(b) => tar.extend_from_slice(&b),
                Err(e) if is_not_found(&e) => return Ok(None),
                Err(e) => return Err(docker_err(format_args!("reading {path} of {image}"), e)),
            }
        }
        let entries = super::tar::read_entries(&tar)
            .map_err(|e| Error::Container(format!("reading {path} of {image}: {e}")))?;
        Ok(entries.into_iter().find(|e| e.is_file).map(|e| e.data))
    }

    /// Whether `path` exists in the probe container (reads only the archive's first chunk).
    async fn probe_exists(&self, id: &str, image: &str, path: &str) -> Result<bool> {
        let opts = DownloadFromContainerOptionsBuilder::default()
            .path(path)
            .build();
        let mut stream = self.docker.download_from_container(id, Some(opts));
        match stream.next().await {
            None | Some(Ok(_)) => Ok(true),
            Some(Err(e)) if is_not_found(&e) => Ok(false),
            Some(Err(e)) => Err(docker_err(format_args!("looking up {path} in {image}"), e)),
        }
    }
}

/// What `up` learnt about an image's users (see [`Controller::image_facts`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct ImageFacts {
    /// `/etc/passwd` (empty when missing).
    pub passwd: String,
    /// `/etc/group` (empty when missing).
    pub group: String,
    /// `/bin/bash` exists.
    pub has_bash: bool,
    /// The home directory asked about exists in the image.
    pub home_exists: bool,
}
