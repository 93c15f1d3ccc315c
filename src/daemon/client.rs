//! The CLI's side of the API: a blocking client over the daemon's Unix socket
//! (hyper on a small current-thread runtime, one connection per request).
use std::path::PathBuf;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::proto::Line;
use super::socket_path;
use crate::state::Roots;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot reach the daemon at {socket}: {source}")]
    Connect {
        socket: PathBuf,
        source: std::io::Error,
    },
    #[error("the daemon's answer: {0}")]
    Http(String),
    #[error("the daemon refused: {status}: {body}")]
    Status { status: StatusCode, body: String },
    #[error("the daemon's answer is not understood: {0}")]
    Decode(#[from] serde_json::Error),
    #[error("{0}")]
    Runtime(std::io::Error),
    #[error(
        "the daemon at {socket} did not answer within {secs} s: it may be stuck; \
         see its log (<run>/daemon.log or journalctl -u stack) and restart it \
         (containers keep running); {TIMEOUT_ENV}=SECONDS waits longer"
    )]
    Timeout { socket: PathBuf, secs: u64 },
    #[error(
        "the daemon at {socket} ended the stream ({why}): it stopped or restarted; \
         containers keep running, run the command again"
    )]
    Closed { socket: PathBuf, why: String },
}

/// How long the CLI waits for the daemon's answer (the headers of a stream,
/// the whole body of a JSON answer). Streams themselves (`up` progress,
/// `logs -f`) may last as long as they need.
const TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);
/// Overrides [`TIMEOUT`] (seconds).
pub const TIMEOUT_ENV: &str = "STACK_DAEMON_TIMEOUT";

fn timeout() -> std::time::Duration {
    std::env::var(TIMEOUT_ENV)
        .ok()
        .and_then(|s| s.parse().ok())
        .map(std::time::Duration::from_secs)
        .unwrap_or(TIMEOUT)
}

pub struct Client {
    socket: PathBuf,
    rt: tokio::runtime::Runtime,
}

impl Client {
    /// A client of the daemon of `roots`, when one answers there.
    pub fn connect(roots: &Roots) -> Option<Client> {
        let socket = socket_path(roots);
        // A cheap check first: most runs of the CLI find no daemon.
        std::os::unix::net::UnixStream::connect(&socket).ok()?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .ok()?;
        Some(Client { socket, rt })
    }

    /// GET `path` and decode the JSON answer.
    pub fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, Error> {
        let body = self.rt.block_on(self.bounded(async {
            let resp = self.send(Method::GET, path, Bytes::new()).await?;
            collect(resp).await
        }))?;
        Ok(serde_json::from_slice(&body)?)
    }

    /// POST `body` to `path` and decode the JSON answer.
    pub fn post<T: DeserializeOwned>(&self, path: &str, body: &impl Serialize) -> Result<T, Error> {
        let body = Bytes::from(serde_json::to_vec(body)?);
        let answer = self.rt.block_on(self.bounded(async {
            let resp = self.send(Method::POST, path, body).await?;
            collect(resp).await
        }))?;
        Ok(serde_json::from_slice(&answer)?)
    }

    /// POST `body` to `path` and hand every streamed line to `each`; returns
    /// the last line (`Done` or `Error`).
    pub fn stream(
        &self,
        path: &str,
        body: &impl Serialize,
        each: &mut dyn FnMut(&Line),
    ) -> Result<Line, Error> {
        let body = Bytes::from(serde_json::to_vec(body)?);
        let mut last = None;
        self.lines(Method::POST, path, body, &mut |line: Line| {
            each(&line);
            last = Some(line);
            true
        })?;
        last.ok_or_else(|| Error::Http("the daemon ended the answer early".into()))
    }

    /// GET `path`, a stream of JSON lines, handing each to `each` until it
    /// returns false or the stream ends.
    pub fn get_lines<T: DeserializeOwned>(
        &self,
        path: &str,
        each: &mut dyn FnMut(T) -> bool,
    ) -> Result<(), Error> {
        self.lines(Method::GET, path, Bytes::new(), each)
    }

    fn lines<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Bytes,
        each: &mut dyn FnMut(T) -> bool,
    ) -> Result<(), Error> {
        self.rt.block_on(async {
            let resp = self.bounded(self.send(method, path, body)).await?;
            let mut body = resp.into_body();
            let mut buf: Vec<u8> = Vec::new();
            while let Some(frame) = body.frame().await {
                let frame = frame.map_err(|e| Error::Closed {
                    socket: self.socket.clone(),
                    why: e.to_string(),
                })?;
                let Some(data) = frame.data_ref() else {
                    continue;
                };
                buf.extend_from_slice(data);
                while let Some(pos) = buf.iter().position(|&b| b == b'\n') {
                    let item: T = serde_json::from_slice(&buf[..pos])?;
                    buf.drain(..=pos);
                    if !each(item) {
                        return Ok(());
                    }
                }
            }
            Ok(())
        })
    }

    /// `fut`, or [`Error::Timeout`] when the daemon takes too long.
    async fn bounded<T>(
        &self,
        fut: impl std::future::Future<Output = Result<T, Error>>,
    ) -> Result<T, Error> {
        let limit = timeout();
        tokio::time::timeout(limit, fut).await.unwrap_or_else(|_| {
            Err(Error::Timeout {
                socket: self.socket.clone(),
                secs: limit.as_secs(),
            })
        })
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Bytes,
    ) -> Result<hyper::Response<hyper::body::Incoming>, Error> {
        let stream = tokio::net::UnixStream::connect(&self.socket)
            .await
            .map_err(|source| Error::Connect {
                socket: self.socket.clone(),
                source,
            })?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| Error::Http(e.to_string()))?;
        tokio::spawn(conn);
        let req = Request::builder()
            .method(method)
            .uri(path)
            .header("host", "stack")
            .header("content-type", "application/json")
            .body(Full::new(body))
            .map_err(|e| Error::Http(e.to_string()))?;
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| Error::Http(e.to_string()))?;
        if !resp.status().is_success() {
            let status = resp.status();
            let body = collect(resp).await.unwrap_or_default();
            return Err(Error::Status {
                status,
                body: String::from_utf8_lossy(&body).trim().to_string(),
            });
        }
        Ok(resp)
    }
}

async fn collect(resp: hyper::Response<hyper::body::Incoming>) -> Result<Bytes, Error> {
    Ok(resp
        .into_body()
        .collect()
        .await
        .map_err(|e| Error::Http(e.to_string()))?
        .to_bytes())
}
