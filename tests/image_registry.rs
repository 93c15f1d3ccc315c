//! `stack pull` against Debian's docker-registry on 127.0.0.1 (needs root for the
//! layer owners, docker-registry, skopeo, htpasswd and openssl).
mod common;
mod image_support;
mod registry_support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use image_support::multi_arch_layout;
use registry_support::{Auth, PASSWORD, Registry, USER};
use stack::image::{Error, Platform, PullOptions, Store};
use stack::storage;

struct Mounted(PathBuf);
impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = storage::unmount_rootfs(&self.0);
    }
}

fn creds() -> PullOptions {
    PullOptions {
        credentials: Some((USER.into(), PASSWORD.into())),
        ..Default::default()
    }
}

fn run_busybox(store: &Store, reference: &str, t: &Path) -> String {
    let image = store.resolve(reference).unwrap();
    let cdir = t.join("c");
    let target = t.join("rootfs");
    fs::create_dir_all(&cdir).unwrap();
    fs::create_dir_all(&target).unwrap();
    storage::mount_rootfs(&storage::rootfs_plan(&cdir, &image.layers, false), &target).unwrap();
    let _m = Mounted(target.clone());
    let out = Command::new("chroot")
        .arg(&target)
        .args(["/bin/sh", "-c", "echo pulled-and-ran"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn pull_anonymous_then_run() {
    common::require_root();
    let t = tempfile::tempdir().unwrap();
    let (_reg, reference, _layout) =
        Registry::with_busybox(t.path(), Auth::None, "library/busybox:1");
    let store = Store::open(&t.path().join("lib")).unwrap();
    let id = store.pull(&reference, &PullOptions::default()).unwrap();
    assert_eq!(store.resolve(&reference).unwrap().id, Some(id.clone()));
    let size = store.list().unwrap()[0].size;
    assert!(
        size > 1_000_000,
        "busybox is about 2 MB unpacked, listed as {size}"
    );
    assert_eq!(
        run_busybox(&store, &reference, t.path()),
        "pulled-and-ran\n"
    );
    // A second pull finds everything present.
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen2 = seen.clone();
    let opts = PullOptions {
        progress: Some(std::sync::Arc::new(move |e| seen2.lock().unwrap().push(e))),
        ..Default::default()
    };
    assert_eq!(store.pull(&reference, &opts).unwrap(), id);
    let events = seen.lock().unwrap();
    assert!(
        !events.is_empty()
            && events
                .iter()
                .all(|e| matches!(e, stack::image::PullEvent::Exists(_))),
        "{events:?}"
    );
}

#[test]
fn pull_with_htpasswd_basic_auth() {
    common::require_root();
    let t = tempfile::tempdir().unwrap();
    let (_reg, reference, _layout) =
        Registry::with_busybox(t.path(), Auth::Htpasswd, "private/bb:latest");
    let store = Store::open(&t.path().join("lib")).unwrap();
    let err = store.pull(&reference, &PullOptions::default()).unwrap_err();
    assert!(
        matches!(err, Error::Registry(_)),
        "anonymous pull must fail: {err}"
    );
    store.pull(&reference, &creds()).unwrap();
    assert!(store.resolve(&reference).is_ok());
}

#[test]
fn pull_with_bearer_token_auth_and_docker_config_credentials() {
    common::require_root();
    let t = tempfile::tempdir().unwrap();
    let (reg, reference, _layout) = Registry::with_busybox(t.path(), Auth::Token, "team/bb:v1");
    // Credentials come from ~/.docker/config.json (here: $DOCKER_CONFIG).
    let docker_config = t.path().join("docker-config");
    fs::create_dir_all(&docker_config).unwrap();
    let auth = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        format!("{USER}:{PASSWORD}"),
    );
    fs::write(
        docker_config.join("config.json"),
        format!("{{\"auths\":{{\"{}\":{{\"auth\":\"{auth}\"}}}}}}", reg.addr),
    )
    .unwrap();
    let root = t.path().join("root");
    let out = Command::new(common::stack_bin())
        .arg("--root")
        .arg(&root)
        .args(["pull", "--quiet", &reference])
        .env("DOCKER_CONFIG", &docker_config)
        .env_remove("REGISTRY_AUTH_FILE")
        .env_remove("XDG_RUNTIME_DIR")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "stack pull: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("pulled sha256:"));
    let store = Store::open(&root.join("lib")).unwrap();
    assert_eq!(
        run_busybox(&store, &reference, t.path()),
        "pulled-and-ran\n"
    );
    // Wrong credentials are refused by the token server.
    let bad = PullOptions {
        credentials: Some((USER.into(), "wrong".into())),
        ..Default::default()
    };
    let other = Store::open(&t.path().join("other")).unwrap();
    assert!(other.pull(&reference, &bad).is_err());
}

#[test]
fn multi_arch_index_selects_the_platform() {
    common::require_root();
    let t = tempfile::tempdir().unwrap();
    let layout = multi_arch_layout(t.path());
    let reg = Registry::start(t.path(), Auth::None);
    reg.push(
        &format!("oci:{}:multi", layout.display()),
        "multi:latest",
        false,
    );
    let reference = format!("{}/multi:latest", reg.addr);
    let arch_of = |platform: &str| {
        let store =
            Store::open(&t.path().join(format!("lib-{}", platform.replace('/', "-")))).unwrap();
        let opts = PullOptions {
            platform: Some(Platform::parse(platform).unwrap()),
            ..Default::default()
        };
        store.pull(&reference, &opts).unwrap();
        let image = store.resolve(&reference).unwrap();
        fs::read_to_string(image.layers[0].join("arch")).unwrap()
    };
    assert_eq!(arch_of("linux/amd64"), "amd64");
    assert_eq!(arch_of("linux/arm64"), "arm64");
    // The same as a Docker manifest list with Docker v2 schema 2 manifests.
    reg.push_with(
        &format!("oci:{}:multi", layout.display()),
        "multi:docker",
        false,
        &["--format", "v2s2"],
    );
    let docker_ref = format!("{}/multi:docker", reg.addr);
    let out = Command::new("skopeo")
        .args([
            "inspect",
            "--raw",
            "--tls-verify=false",
            &format!("docker://{docker_ref}"),
        ])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains("application/vnd.docker.distribution.manifest.list.v2+json")
    );
    let store = Store::open(&t.path().join("lib-docker")).unwrap();
    let opts = PullOptions {
        platform: Some(Platform::parse("linux/arm64").unwrap()),
        ..Default::default()
    };
    store.pull(&docker_ref, &opts).unwrap();
    let image = store.resolve(&docker_ref).unwrap();
    assert_eq!(
        fs::read_to_string(image.layers[0].join("arch")).unwrap(),
        "arm64"
    );
    // The same index straight from the layout, for a stack file's `platform:`.
    let store = Store::open(&t.path().join("lib-layout")).unwrap();
    let src = stack::image::Source::OciLayout {
        path: layout.clone(),
        tag: Some("multi".into()),
    };
    let opts = PullOptions {
        platform: Some(Platform::parse("linux/arm64").unwrap()),
        ..Default::default()
    };
    let image = store
        .ensure_with(&src, stack::image::PullPolicy::Never, &opts)
        .unwrap();
    assert_eq!(
        fs::read_to_string(image.layers[0].join("arch")).unwrap(),
        "arm64"
    );
    let store = Store::open(&t.path().join("lib-none")).unwrap();
    let opts = PullOptions {
        platform: Some(Platform::parse("linux/s390x").unwrap()),
        ..Default::default()
    };
    let err = store.pull(&reference, &opts).unwrap_err();
    assert!(
        err.to_string()
            .contains("no image for platform linux/s390x"),
        "{err}"
    );
}

#[test]
fn corrupted_blob_in_the_registry_is_rejected() {
    common::require_root();
    let t = tempfile::tempdir().unwrap();
    let (reg, reference, layout) = Registry::with_busybox(t.path(), Auth::None, "bb:latest");
    // Flip one byte of the layer as the registry stores it (size unchanged).
    let biggest = fs::read_dir(layout.join("blobs/sha256"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .max_by_key(|p| fs::metadata(p).unwrap().len())
        .unwrap();
    let data_file = reg.blob_file(biggest.file_name().unwrap().to_str().unwrap());
    let mut data = fs::read(&data_file).unwrap();
    let mid = data.len() / 2;
    data[mid] ^= 0x55;
    fs::write(&data_file, &data).unwrap();
    let store = Store::open(&t.path().join("lib")).unwrap();
    let err = store.pull(&reference, &PullOptions::default()).unwrap_err();
    assert!(matches!(err, Error::DigestMismatch { .. }), "{err}");
    assert!(store.list().unwrap().is_empty());
    assert_eq!(
        fs::read_dir(store.root().join("layers")).unwrap().count(),
        0
    );
    assert_eq!(fs::read_dir(store.root().join("tmp")).unwrap().count(), 0);
    assert!(
        !store
            .root()
            .join("blobs/sha256")
            .join(biggest.file_name().unwrap())
            .exists()
    );
}

/// A TCP proxy to the registry that cuts the first connection which carries more
/// than `cut_after` bytes towards the client (a dropped download). Bounded: it
/// stops with the test.
struct FlakyProxy {
    addr: String,
    cuts: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl FlakyProxy {
    fn start(upstream: String, cut_after: usize) -> FlakyProxy {
        use std::io::{Read, Write};
        use std::net::{Shutdown, TcpListener, TcpStream};
        use std::sync::atomic::Ordering;
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let cuts = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let cuts2 = cuts.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().take(64) {
                let Ok(client) = client else { break };
                let Ok(server) = TcpStream::connect(&upstream) else {
                    break;
                };
                let (mut c_read, mut s_write) =
                    (client.try_clone().unwrap(), server.try_clone().unwrap());
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut c_read, &mut s_write);
                    let _ = s_write.shutdown(Shutdown::Write);
                });
                let cuts = cuts2.clone();
                std::thread::spawn(move || {
                    let (mut s_read, mut c_write) = (server, client);
                    let mut sent = 0usize;
                    let mut buf = [0u8; 16384];
                    loop {
                        let n = match s_read.read(&mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => n,
                        };
                        if sent + n > cut_after && cuts.load(Ordering::SeqCst) == 0 {
                            cuts.store(1, Ordering::SeqCst);
                            let _ = c_write.write_all(&buf[..cut_after - sent]);
                            let _ = c_write.shutdown(Shutdown::Both);
                            let _ = s_read.shutdown(Shutdown::Both);
                            return;
                        }
                        if c_write.write_all(&buf[..n]).is_err() {
                            break;
                        }
                        sent += n;
                    }
                    let _ = c_write.shutdown(Shutdown::Write);
                });
            }
        });
        FlakyProxy { addr, cuts }
    }
}

#[test]
fn interrupted_download_resumes() {
    common::require_root();
    let t = tempfile::tempdir().unwrap();
    let (reg, _, _layout) = Registry::with_busybox(t.path(), Auth::None, "bb:latest");
    let proxy = FlakyProxy::start(reg.addr.clone(), 300_000);
    let store = Store::open(&t.path().join("lib")).unwrap();
    let reference = format!("{}/bb:latest", proxy.addr);
    store.pull(&reference, &PullOptions::default()).unwrap();
    assert_eq!(
        proxy.cuts.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "the proxy never cut a download"
    );
    assert_eq!(
        run_busybox(&store, &reference, t.path()),
        "pulled-and-ran\n"
    );
}

/// A `docker-credential-fake` on PATH: it logs each server it is asked about and
/// knows alice's password for `addr` only.
fn fake_helper(dir: &Path, addr: &str) -> (PathBuf, PathBuf) {
    let bin = dir.join("helper-bin");
    fs::create_dir_all(&bin).unwrap();
    let calls = dir.join("helper-calls");
    let script = format!(
        "#!/bin/sh\n[ \"$1\" = get ] || exit 3\nserver=$(cat)\necho \"$server\" >> {calls}\n\
         if [ \"$server\" = \"{addr}\" ]; then\n  printf '{{\"ServerURL\":\"%s\",\"Username\":\"{USER}\",\"Secret\":\"{PASSWORD}\"}}' \"$server\"\n\
         else\n  echo 'credentials not found in native keychain'\n  exit 1\nfi\n",
        calls = calls.display()
    );
    let path = bin.join("docker-credential-fake");
    fs::write(&path, script).unwrap();
    fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    (bin, calls)
}

#[test]
fn credential_helpers_from_creds_store_and_cred_helpers() {
    common::require_root();
    let t = tempfile::tempdir().unwrap();
    let (reg, reference, _layout) = Registry::with_busybox(t.path(), Auth::Token, "team/bb:v1");
    let (bin, calls) = fake_helper(t.path(), &reg.addr);
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let pull = |root: &str, home: &Path, docker_config: Option<&Path>| {
        let mut cmd = Command::new(common::stack_bin());
        cmd.arg("--root")
            .arg(t.path().join(root))
            .args(["pull", "--quiet", &reference])
            .env("PATH", &path)
            .env("HOME", home)
            .env_remove("REGISTRY_AUTH_FILE")
            .env_remove("XDG_RUNTIME_DIR")
            .env_remove("DOCKER_CONFIG");
        if let Some(dc) = docker_config {
            cmd.env("DOCKER_CONFIG", dc);
        }
        cmd.output().unwrap()
    };
    let config = |dir: &str, json: String| {
        let d = t.path().join(dir);
        fs::create_dir_all(&d).unwrap();
        fs::write(d.join("config.json"), json).unwrap();
        d
    };
    // `credsStore` in ~/.docker/config.json.
    let home = t.path().join("home");
    config("home/.docker", r#"{"credsStore":"fake"}"#.to_string());
    let out = pull("r1", &home, None);
    assert!(
        out.status.success(),
        "credsStore: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        fs::read_to_string(&calls).unwrap().trim(),
        reg.addr,
        "the helper was asked for the registry host"
    );
    let store = Store::open(&t.path().join("r1/lib")).unwrap();
    assert_eq!(
        run_busybox(&store, &reference, t.path()),
        "pulled-and-ran\n"
    );
    // `credHelpers` for this registry wins over a broken default helper and over a
    // wrong inline password.
    let wrong = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        format!("{USER}:wrong"),
    );
    let dc = config(
        "dc2",
        format!(
            r#"{{"credsStore":"missing","credHelpers":{{"{0}":"fake"}},"auths":{{"{0}":{{"auth":"{wrong}"}}}}}}"#,
            reg.addr
        ),
    );
    let out = pull("r2", &home, Some(&dc));
    assert!(
        out.status.success(),
        "credHelpers: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A helper that is not installed is named in the error.
    let dc = config("dc3", r#"{"credsStore":"missing"}"#.to_string());
    let out = pull("r3", &home, Some(&dc));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("docker-credential-missing") && err.contains("dc3"),
        "{err}"
    );
    // A helper without credentials for the registry: an anonymous attempt, refused.
    let dc = config(
        "dc4",
        r#"{"credHelpers":{"other.example":"fake"},"credsStore":"fake"}"#.to_string(),
    );
    fs::remove_file(&calls).unwrap();
    let bad_ref = reference.replace("127.0.0.1", "localhost");
    let out = Command::new(common::stack_bin())
        .arg("--root")
        .arg(t.path().join("r4"))
        .args(["pull", "--quiet", &bad_ref])
        .env("PATH", &path)
        .env("DOCKER_CONFIG", &dc)
        .env_remove("REGISTRY_AUTH_FILE")
        .env_remove("XDG_RUNTIME_DIR")
        .output()
        .unwrap();
    assert!(!out.status.success(), "an anonymous pull must be refused");
    assert_eq!(
        fs::read_to_string(&calls).unwrap().trim(),
        bad_ref.split('/').next().unwrap(),
        "the default helper was asked and had nothing"
    );
}
