//! A real registry for tests: Debian's `docker-registry` on 127.0.0.1, with no
//! auth, htpasswd (Basic) auth, or token auth backed by a tiny token server that
//! signs RS256 JWTs with openssl. Everything stops on drop.
#![allow(dead_code)]
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use base64::Engine as _;

pub const USER: &str = "alice";
pub const PASSWORD: &str = "wonderland";

pub enum Auth {
    None,
    Htpasswd,
    Token,
}

pub struct Registry {
    pub addr: String,
    pub storage: PathBuf,
    child: Child,
    token_server: Option<TokenServer>,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Registry {
    pub fn start(dir: &Path, auth: Auth) -> Registry {
        assert!(
            Path::new("/usr/bin/docker-registry").exists(),
            "this test needs Debian's docker-registry (apt-get install -y docker-registry)"
        );
        let storage = dir.join("registry-data");
        std::fs::create_dir_all(&storage).unwrap();
        let port = free_port();
        let addr = format!("127.0.0.1:{port}");
        let mut token_server = None;
        let auth_yaml = match auth {
            Auth::None => String::new(),
            Auth::Htpasswd => {
                let file = dir.join("htpasswd");
                run(Command::new("htpasswd")
                    .args(["-Bbc"])
                    .arg(&file)
                    .args([USER, PASSWORD]));
                format!(
                    "auth:\n  htpasswd:\n    realm: test\n    path: {}\n",
                    file.display()
                )
            }
            Auth::Token => {
                let ts = TokenServer::start(dir);
                let yaml = format!(
                    "auth:\n  token:\n    realm: http://{}/token\n    service: test-registry\n    issuer: test-issuer\n    rootcertbundle: {}\n",
                    ts.addr,
                    ts.cert.display()
                );
                token_server = Some(ts);
                yaml
            }
        };
        let config = dir.join("registry.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {addr}\n{auth_yaml}",
                storage.display()
            ),
        )
        .unwrap();
        let log = std::fs::File::create(dir.join("registry.log")).unwrap();
        let child = Command::new("/usr/bin/docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let reg = Registry {
            addr,
            storage,
            child,
            token_server,
        };
        reg.wait_ready(dir);
        reg
    }

    fn wait_ready(&self, dir: &Path) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(mut s) = TcpStream::connect(&self.addr) {
                let _ = s.write_all(b"GET /v2/ HTTP/1.0\r\n\r\n");
                let mut buf = [0u8; 12];
                if s.read_exact(&mut buf).is_ok() && buf.starts_with(b"HTTP/1.") {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "docker-registry did not come up on {}: {}",
            self.addr,
            std::fs::read_to_string(dir.join("registry.log")).unwrap_or_default()
        );
    }

    /// A registry in `dir` serving busybox (from [`crate::common::busybox_oci_layout`])
    /// as `repo_tag`, pushed with credentials when `auth` asks for them; also
    /// the image's reference and the layout it came from.
    #[allow(dead_code)] // not every test file serves busybox
    pub fn with_busybox(dir: &Path, auth: Auth, repo_tag: &str) -> (Registry, String, PathBuf) {
        let creds = !matches!(auth, Auth::None);
        let layout = crate::common::busybox_oci_layout(dir);
        let reg = Registry::start(dir, auth);
        reg.push(&format!("oci:{}:latest", layout.display()), repo_tag, creds);
        let reference = format!("{}/{repo_tag}", reg.addr);
        (reg, reference, layout)
    }

    /// Push an OCI layout image with skopeo (`--all` keeps an index whole).
    pub fn push(&self, src: &str, repo_tag: &str, creds: bool) {
        self.push_with(src, repo_tag, creds, &[]);
    }

    /// [`Registry::push`] with extra skopeo arguments (`--format v2s2` for Docker
    /// media types).
    pub fn push_with(&self, src: &str, repo_tag: &str, creds: bool, extra: &[&str]) {
        let mut cmd = Command::new("skopeo");
        cmd.args(["copy", "-q", "--all", "--dest-tls-verify=false"])
            .args(extra);
        if creds {
            cmd.arg(format!("--dest-creds={USER}:{PASSWORD}"));
        }
        cmd.arg(src)
            .arg(format!("docker://{}/{repo_tag}", self.addr));
        run(&mut cmd);
    }

    /// Path of a blob's data file inside the registry's storage.
    pub fn blob_file(&self, hex: &str) -> PathBuf {
        self.storage.join(format!(
            "docker/registry/v2/blobs/sha256/{}/{hex}/data",
            &hex[..2]
        ))
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Issues registry tokens (docker distribution's token auth) to alice.
struct TokenServer {
    addr: String,
    cert: PathBuf,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

fn b64url(data: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(data)
}

impl TokenServer {
    fn start(dir: &Path) -> TokenServer {
        let key = dir.join("token.key");
        let cert = dir.join("token.crt");
        run(Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "1",
                "-subj",
                "/CN=test-issuer",
                "-keyout",
            ])
            .arg(&key)
            .arg("-out")
            .arg(&cert));
        let der = Command::new("openssl")
            .args(["x509", "-outform", "DER", "-in"])
            .arg(&cert)
            .output()
            .unwrap()
            .stdout;
        let x5c = base64::engine::general_purpose::STANDARD.encode(der);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let thread = std::thread::spawn(move || {
            // Bounded: the test's lifetime, at most 10 minutes.
            let deadline = Instant::now() + Duration::from_secs(600);
            while !stop2.load(Ordering::Relaxed) && Instant::now() < deadline {
                match listener.accept() {
                    Ok((stream, _)) => serve_token(stream, &key, &x5c),
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        });
        TokenServer {
            addr,
            cert,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for TokenServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve_token(stream: TcpStream, key: &Path, x5c: &str) {
    let _ = stream.set_nonblocking(false);
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut request_line = String::new();
    let _ = reader.read_line(&mut request_line);
    let mut authorized = false;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            break;
        }
        if let Some(v) = line
            .strip_prefix("Authorization: Basic ")
            .or_else(|| line.strip_prefix("authorization: Basic "))
        {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(v.trim())
                .unwrap_or_default();
            authorized = decoded == format!("{USER}:{PASSWORD}").as_bytes();
        }
    }
    let mut out = stream;
    if !authorized {
        let _ = out.write_all(
            b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        );
        return;
    }
    // scope=repository:NAME:pull,push (possibly several)
    let query = request_line
        .split_whitespace()
        .nth(1)
        .unwrap_or("")
        .split_once('?')
        .map(|(_, q)| q.to_string())
        .unwrap_or_default();
    let mut access = Vec::new();
    for pair in query.split('&') {
        if let Some(scope) = pair.strip_prefix("scope=") {
            let scope = scope
                .replace("%3A", ":")
                .replace("%2C", ",")
                .replace("%2F", "/");
            let parts: Vec<&str> = scope.split(':').collect();
            if parts.len() == 3 {
                let actions: Vec<String> =
                    parts[2].split(',').map(|a| format!("\"{a}\"")).collect();
                access.push(format!(
                    "{{\"type\":\"{}\",\"name\":\"{}\",\"actions\":[{}]}}",
                    parts[0],
                    parts[1],
                    actions.join(",")
                ));
            }
        }
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let header = format!("{{\"alg\":\"RS256\",\"typ\":\"JWT\",\"x5c\":[\"{x5c}\"]}}");
    let claims = format!(
        "{{\"iss\":\"test-issuer\",\"sub\":\"{USER}\",\"aud\":\"test-registry\",\"exp\":{},\"nbf\":{},\"iat\":{},\"jti\":\"{now}\",\"access\":[{}]}}",
        now + 300,
        now - 10,
        now - 10,
        access.join(",")
    );
    let signing_input = format!(
        "{}.{}",
        b64url(header.as_bytes()),
        b64url(claims.as_bytes())
    );
    let mut child = Command::new("openssl")
        .args(["dgst", "-sha256", "-sign"])
        .arg(key)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(signing_input.as_bytes())
        .unwrap();
    let sig = child.wait_with_output().unwrap().stdout;
    let token = format!("{signing_input}.{}", b64url(&sig));
    let body = format!("{{\"token\":\"{token}\",\"access_token\":\"{token}\",\"expires_in\":300}}");
    let _ = write!(
        out,
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}
