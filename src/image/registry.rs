//! `stack pull`: the OCI distribution protocol through oci-client (it handles the
//! WWW-Authenticate challenge, Bearer tokens and Basic auth, and HTTP details).
//!
//! Flow: authenticate -> fetch the manifest (following an index or Docker manifest
//! list to the wanted platform) -> fetch the config -> download the layers
//! concurrently, each unpacked as soon as it is complete -> commit the image with
//! the same code path as a local import.
//!
//! Guarantees: every blob is verified (size and sha256) before it enters the store;
//! a corrupt blob fails the pull and records nothing. Blobs already in the store are
//! not downloaded. An interrupted download resumes with a Range request (up to
//! `RETRIES` times) and keeps hashing where it stopped.
//!
//! Caveats: plain HTTP is used only for `--insecure`, for the registries listed in
//! `STACK_INSECURE_REGISTRIES` (`host:port,...`; also what `stack up` pulls with),
//! and for loopback registries (`localhost`, `127.0.0.0/8`, `[::1]`), as Docker does.
use std::sync::Arc;
use std::time::Duration;

use futures_util::{StreamExt, TryStreamExt};
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::manifest::OciDescriptor;
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, RegistryOperation};

use super::manifest::{self, BlobSource, Descriptor, Index, Manifest, Platform};
use super::store::MAX_JSON_BLOB;
use super::{Digest, Error, ImageId, Reference, Result, Store, auth};

const RETRIES: u32 = 3;
const PARALLEL_DOWNLOADS: usize = 3;

const ACCEPT: &[&str] = &[
    manifest::OCI_MANIFEST,
    manifest::OCI_INDEX,
    manifest::DOCKER_MANIFEST,
    manifest::DOCKER_LIST,
];

/// What a pull reports as it goes (the CLI draws bars or prints lines).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PullEvent {
    /// A layer download begins: digest and size.
    Start(Digest, u64),
    /// Bytes of a layer arrived.
    Progress(Digest, u64),
    /// A layer is downloaded and verified.
    Downloaded(Digest),
    /// Already in the store.
    Exists(Digest),
    /// The layer is unpacked.
    Unpacked(Digest),
}

/// Options of a pull.
#[derive(Clone, Default)]
pub struct PullOptions {
    /// Default: this machine's platform.
    pub platform: Option<Platform>,
    /// Allow plain HTTP to this registry.
    pub insecure: bool,
    /// Username and password; default: the auth files Docker and podman write.
    pub credentials: Option<(String, String)>,
    pub progress: Option<Arc<dyn Fn(PullEvent) + Send + Sync>>,
}

impl std::fmt::Debug for PullOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PullOptions")
            .field("platform", &self.platform)
            .field("insecure", &self.insecure)
            .field("credentials", &self.credentials.as_ref().map(|(u, _)| u))
            .finish()
    }
}

fn registry_err(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Registry(format!("{what}: {e}"))
}

fn is_loopback(registry: &str) -> bool {
    let host = match registry.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(rest),
        None => registry.split(':').next().unwrap_or(registry),
    };
    host == "localhost"
        || host == "::1"
        || host
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The environment variable listing registries that may be reached over plain HTTP.
const INSECURE_REGISTRIES_ENV: &str = "STACK_INSECURE_REGISTRIES";

fn listed_insecure(registry: &str) -> bool {
    std::env::var(INSECURE_REGISTRIES_ENV).is_ok_and(|list| is_listed(&list, registry))
}

fn is_listed(list: &str, registry: &str) -> bool {
    list.split(',').any(|r| r.trim() == registry)
}

fn oci_reference(r: &Reference) -> oci_client::Reference {
    match (&r.tag, &r.digest) {
        (Some(tag), Some(d)) => oci_client::Reference::with_tag_and_digest(
            r.registry.clone(),
            r.repository.clone(),
            tag.clone(),
            d.to_string(),
        ),
        (_, Some(d)) => oci_client::Reference::with_digest(
            r.registry.clone(),
            r.repository.clone(),
            d.to_string(),
        ),
        (tag, None) => oci_client::Reference::with_tag(
            r.registry.clone(),
            r.repository.clone(),
            tag.clone().unwrap_or_else(|| "latest".into()),
        ),
    }
}

fn oci_descriptor(d: &Descriptor) -> OciDescriptor {
    OciDescriptor {
        media_type: d.media_type.clone(),
        digest: d.digest.to_string(),
        size: i64::try_from(d.size).unwrap_or(i64::MAX),
        ..Default::default()
    }
}

/// After a pull every blob is in the store; the import reads them from there.
struct InStore;

impl BlobSource for InStore {
    fn open_blob(&self, desc: &Descriptor) -> Result<Box<dyn std::io::Read + Send + '_>> {
        Err(Error::NotFound(format!(
            "blob {} (not downloaded)",
            desc.digest
        )))
    }
    fn describe(&self) -> String {
        "registry".into()
    }
}

struct Session<'a> {
    store: &'a Store,
    /// Shared by the concurrent unpacks of this pull (the import that follows
    /// checks the whole image again, with the layers that were already present).
    budget: Arc<super::limits::ImageBudget>,
    client: Client,
    auth: RegistryAuth,
    reference: oci_client::Reference,
    opts: &'a PullOptions,
}

impl Store {
    /// Pull `reference` into the store (blocking; runs its own tokio runtime, on a
    /// separate thread when called from inside one). Async code can await
    /// [`Store::pull_async`] instead.
    pub fn pull(&self, reference: &str, opts: &PullOptions) -> Result<ImageId> {
        let run = || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .map_err(|e| Error::io(self.root(), e))?;
            rt.block_on(self.pull_async(reference, opts))
        };
        if tokio::runtime::Handle::try_current().is_err() {
            return run();
        }
        std::thread::scope(|s| {
            s.spawn(run)
                .join()
                .unwrap_or_else(|_| Err(registry_err("pull", "worker thread panicked")))
        })
    }

    /// Pull `reference` (`busybox`, `127.0.0.1:5000/app:1`, `name@sha256:...`).
    pub async fn pull_async(&self, reference: &str, opts: &PullOptions) -> Result<ImageId> {
        let parsed: Reference = reference.parse()?;
        let mut config = ClientConfig {
            max_concurrent_download: PARALLEL_DOWNLOADS,
            connect_timeout: Some(Duration::from_secs(30)),
            read_timeout: Some(Duration::from_secs(60)),
            ..Default::default()
        };
        if opts.insecure || is_loopback(&parsed.registry) || listed_insecure(&parsed.registry) {
            config.protocol = ClientProtocol::HttpsExcept(vec![parsed.registry.clone()]);
        }
        let credentials = match &opts.credentials {
            Some(c) => Some(c.clone()),
            // A credential helper is a process that may block: off the runtime.
            None => {
                let registry = parsed.registry.clone();
                tokio::task::spawn_blocking(move || auth::credentials_for(&registry))
                    .await
                    .map_err(|e| registry_err("credentials", e))??
            }
        };
        let session = Session {
            store: self,
            budget: Arc::new(self.image_budget()),
            client: Client::new(config),
            auth: match credentials {
                Some((u, p)) => RegistryAuth::Basic(u, p),
                None => RegistryAuth::Anonymous,
            },
            reference: oci_reference(&parsed),
            opts,
        };
        session
            .client
            .auth(&session.reference, &session.auth, RegistryOperation::Pull)
            .await
            .map_err(|e| registry_err(&format!("authenticating to {}", parsed.registry), e))?;
        let _content = self.content_lock(false)?;
        let platform = opts.platform.clone().unwrap_or_else(Platform::host);
        let top = session.fetch_manifests(&parsed, &platform).await?;
        let store = self.clone();
        let imported =
            tokio::task::spawn_blocking(move || store.import_from(&InStore, &top, &platform))
                .await
                .map_err(|e| registry_err("import", e))??;
        let mut name = parsed.clone();
        if name.tag.is_some() {
            name.digest = None;
        }
        let id = self.commit(imported, std::slice::from_ref(&name))?;
        self.mark_pulled(&name)?;
        Ok(id)
    }
}

impl Session<'_> {
    /// Download the manifest chain, the config and the layers; returns the top
    /// descriptor (what the reference names).
    async fn fetch_manifests(&self, parsed: &Reference, platform: &Platform) -> Result<Descriptor> {
        let top = self
            .fetch_manifest(&self.reference, parsed.digest.as_ref())
            .await?;
        let mut desc = top.clone();
        let mut data = self.store.read_blob(&desc.digest)?;
        for _ in 0..4 {
            if !manifest::is_index(&desc.media_type) {
                break;
            }
            let index: Index = serde_json::from_slice(&data).map_err(|source| Error::Json {
                what: "image index".into(),
                source,
            })?;
            let child = manifest::select_platform(&index, platform, &parsed.to_string())?.clone();
            let child_ref = self.reference.clone_with_digest(child.digest.to_string());
            let got = self.fetch_manifest(&child_ref, Some(&child.digest)).await?;
            if got.size != child.size {
                return Err(Error::SizeMismatch {
                    what: format!("manifest {}", child.digest),
                    expected: child.size,
                    actual: got.size,
                });
            }
            data = self.store.read_blob(&child.digest)?;
            desc = got;
        }
        let manifest: Manifest = serde_json::from_slice(&data).map_err(|source| Error::Json {
            what: "image manifest".into(),
            source,
        })?;
        if manifest.config.size > MAX_JSON_BLOB {
            return Err(Error::Unsupported(format!(
                "image config of {} bytes",
                manifest.config.size
            )));
        }
        self.download(&manifest.config, false).await?;
        let config_data = self.store.read_blob(&manifest.config.digest)?;
        let config: oci_spec::image::ImageConfiguration = serde_json::from_slice(&config_data)
            .map_err(|source| Error::Json {
                what: "image config".into(),
                source,
            })?;
        let diff_ids: Vec<Digest> = config
            .rootfs()
            .diff_ids()
            .iter()
            .map(|d| d.parse())
            .collect::<Result<_>>()?;
        if diff_ids.len() != manifest.layers.len() {
            return Err(Error::Unsupported(format!(
                "manifest has {} layers but the config lists {} diff_ids",
                manifest.layers.len(),
                diff_ids.len()
            )));
        }
        self.fetch_layers(&manifest.layers, &diff_ids).await?;
        Ok(top)
    }

    /// Fetch a manifest or index, verify it against `expected` when known, store it.
    async fn fetch_manifest(
        &self,
        r: &oci_client::Reference,
        expected: Option<&Digest>,
    ) -> Result<Descriptor> {
        let (bytes, _) = self
            .client
            .pull_manifest_raw(r, &self.auth, ACCEPT)
            .await
            .map_err(|e| registry_err(&format!("fetching manifest of {r}"), e))?;
        if bytes.len() as u64 > MAX_JSON_BLOB {
            return Err(Error::Unsupported(format!(
                "manifest of {} bytes",
                bytes.len()
            )));
        }
        let digest = Digest::of(&bytes);
        if let Some(expected) = expected
            && *expected != digest
        {
            return Err(Error::DigestMismatch {
                what: format!("manifest of {r}"),
                expected: expected.clone(),
                actual: digest,
            });
        }
        self.store.put_bytes(&bytes)?;
        #[derive(serde::Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Probe {
            media_type: Option<String>,
            manifests: Option<serde_json::Value>,
        }
        let probe: Probe = serde_json::from_slice(&bytes).map_err(|source| Error::Json {
            what: format!("manifest of {r}"),
            source,
        })?;
        let media_type = match (probe.media_type, probe.manifests) {
            (Some(m), _) => m,
            (None, Some(_)) => manifest::OCI_INDEX.to_string(),
            (None, None) => manifest::OCI_MANIFEST.to_string(),
        };
        if media_type.contains("distribution.manifest.v1") {
            return Err(Error::Unsupported(format!(
                "{r} uses the obsolete Docker schema 1 manifest"
            )));
        }
        Ok(Descriptor {
            media_type,
            digest,
            size: bytes.len() as u64,
            platform: None,
            annotations: Default::default(),
        })
    }

    async fn fetch_layers(&self, layers: &[Descriptor], diff_ids: &[Digest]) -> Result<()> {
        let jobs = layers
            .iter()
            .zip(diff_ids)
            .map(|(desc, diff_id)| async move {
                if self.store.layer_path(diff_id).is_dir() && self.store.has_blob(&desc.digest) {
                    self.report(PullEvent::Exists(desc.digest.clone()));
                    return Ok(());
                }
                self.download(desc, true).await?;
                let (store, budget) = (self.store.clone(), self.budget.clone());
                let (blob, diff) = (desc.digest.clone(), diff_id.clone());
                tokio::task::spawn_blocking(move || store.ensure_layer(&blob, &diff, &budget))
                    .await
                    .map_err(|e| registry_err("unpack", e))??;
                self.report(PullEvent::Unpacked(desc.digest.clone()));
                Ok::<(), Error>(())
            });
        futures_util::stream::iter(jobs)
            .buffer_unordered(PARALLEL_DOWNLOADS)
            .try_collect::<Vec<()>>()
            .await?;
        Ok(())
    }

    fn report(&self, event: PullEvent) {
        if let Some(cb) = &self.opts.progress {
            cb(event);
        }
    }

    /// Download one blob into the store, resuming after transient errors.
    async fn download(&self, desc: &Descriptor, report: bool) -> Result<()> {
        if self.store.has_blob(&desc.digest) {
            if report {
                self.report(PullEvent::Exists(desc.digest.clone()));
            }
            return Ok(());
        }
        if report {
            self.report(PullEvent::Start(desc.digest.clone(), desc.size));
        }
        let what = format!("blob {}", desc.digest);
        let odesc = oci_descriptor(desc);
        let mut writer = self.store.blob_writer()?;
        let mut attempt = 0;
        loop {
            match self.stream_into(&odesc, desc, &mut writer, report).await {
                Ok(()) => break,
                // Every byte arrived: a failure now is the content, not the network.
                Err(_) if writer.count() == desc.size => break,
                Err(e) if attempt < RETRIES && !matches!(e, Error::SizeMismatch { .. }) => {
                    attempt += 1;
                    tracing::warn!(blob = %desc.digest, attempt, error = %e, "download interrupted; resuming");
                    tokio::time::sleep(Duration::from_millis(250 * u64::from(attempt))).await;
                }
                Err(e) => return Err(e),
            }
        }
        writer.commit(self.store, &desc.digest, desc.size, &what)?;
        if report {
            self.report(PullEvent::Downloaded(desc.digest.clone()));
        }
        Ok(())
    }

    async fn stream_into(
        &self,
        odesc: &OciDescriptor,
        desc: &Descriptor,
        writer: &mut super::blobs::BlobWriter,
        report: bool,
    ) -> Result<()> {
        let offset = writer.count();
        let mut stream = if offset == 0 {
            // A ranged request (`bytes=0-`): oci-client then leaves the digest check
            // to us, so a corrupt blob gets our clear error.
            self.client
                .pull_blob_stream_partial(&self.reference, odesc, 0, None)
                .await
                .map_err(|e| registry_err(&format!("downloading {}", desc.digest), e))?
        } else {
            self.client
                .pull_blob_stream_partial(&self.reference, odesc, offset, None)
                .await
                .map_err(|e| registry_err(&format!("resuming {}", desc.digest), e))?
        };
        if offset > 0 && matches!(stream, oci_client::client::BlobResponse::Full(_)) {
            writer.reset()?; // the server ignored the range
        }
        let stream = match &mut stream {
            oci_client::client::BlobResponse::Full(s)
            | oci_client::client::BlobResponse::Partial(s) => s,
        };
        while let Some(chunk) = stream.next().await {
            let chunk =
                chunk.map_err(|e| registry_err(&format!("downloading {}", desc.digest), e))?;
            if writer.count() + chunk.len() as u64 > desc.size {
                return Err(Error::SizeMismatch {
                    what: format!("blob {}", desc.digest),
                    expected: desc.size,
                    actual: writer.count() + chunk.len() as u64,
                });
            }
            writer.write(&chunk)?;
            if report {
                self.report(PullEvent::Progress(desc.digest.clone(), chunk.len() as u64));
            }
        }
        if writer.count() < desc.size {
            return Err(registry_err(
                &format!("downloading {}", desc.digest),
                "connection closed early",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_registries_may_use_http() {
        assert!(is_loopback("localhost:5000"));
        assert!(is_loopback("127.0.0.1:5000"));
        assert!(is_loopback("[::1]:5000"));
        assert!(!is_loopback("registry.example:5000"));
        assert!(!is_loopback("docker.io"));
        assert!(is_listed("a:5000, reg.lan:5000", "reg.lan:5000"));
        assert!(!is_listed("reg.lan:5000", "reg.lan"));
    }
}
