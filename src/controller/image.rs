//! Image checks: presence (with a pull attempt), content id, and the code user in /etc/passwd.

use std::time::Duration;

use bollard::models::ContainerCreateBody;
use bollard::query_parameters::{
    CreateImageOptionsBuilder, DownloadFromContainerOptionsBuilder, RemoveContainerOptionsBuilder,
};
use futures_util::StreamExt;

use super::{docker_err, is_not_found, Controller};
use crate::config::{passwd_entries, PasswdEntry};
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

    /// Reads `/etc/passwd` from `image` through a never-started container.
    pub(super) async fn image_passwd(&self, image: &str) -> Result<Option<String>> {
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
        let opts = DownloadFromContainerOptionsBuilder::default()
            .path("/etc/passwd")
            .build();
        let mut stream = self.docker.download_from_container(&probe.id, Some(opts));
        let mut tar = Vec::new();
        let mut result: Result<Option<String>> = Ok(None);
        while let Some(chunk) = stream.next().await {
            match chunk {
                Ok(b) => tar.extend_from_slice(&b),
                Err(e) if is_not_found(&e) => {
                    tar.clear();
                    break;
                }
                Err(e) => {
                    result = Err(docker_err(
                        format_args!("reading /etc/passwd of {image}"),
                        e,
                    ));
                    break;
                }
            }
        }
        if result.is_ok() && !tar.is_empty() {
            result = super::tar::read_entries(&tar)
                .map_err(|e| Error::Container(format!("reading /etc/passwd of {image}: {e}")))
                .map(|entries| {
                    entries
                        .into_iter()
                        .find(|e| e.is_file)
                        .map(|e| String::from_utf8_lossy(&e.data).into_owned())
                });
        }
        let rm = RemoveContainerOptionsBuilder::default().force(true).build();
        if let Err(e) = self.docker.remove_container(&probe.id, Some(rm)).await {
            tracing::warn!(id = %probe.id, "removing the probe container: {e}");
        }
        result
    }

    /// The passwd entry of `user` in `image`; errors when it is missing or its uid differs from
    /// `uid`, naming the user and image and saying how to fix it.
    pub(super) async fn image_user(
        &self,
        image: &str,
        user: &str,
        uid: u32,
    ) -> Result<PasswdEntry> {
        let passwd = self.image_passwd(image).await?.unwrap_or_default();
        let fix = format!(
            "Build an image with that user (e.g. `RUN useradd -u {uid} -m {user}` in its \
             Dockerfile), or set [container] code_user (and code_uid/code_gid) in the wsfs config \
             (or --user/--uid/--gid) to a user the image has"
        );
        let Some(entry) = passwd_entries(&passwd).find(|e| e.name == user) else {
            return Err(Error::Container(format!(
                "user {user} does not exist in image {image} (no entry in its /etc/passwd). {fix}"
            )));
        };
        if entry.uid != uid {
            return Err(Error::Container(format!(
                "user {user} in image {image} has uid {}, but the configured code_uid is {uid}. {fix}",
                entry.uid
            )));
        }
        Ok(entry)
    }
}
