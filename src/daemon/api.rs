//! The HTTP/JSON API on the daemon's Unix socket (docs/api.md; every route is
//! in docs/api/openapi.yaml, which `openapi.rs` keeps true).
//!
//! Every request is checked against the caller's credentials (SO_PEERCRED):
//! root and members of the `stack` group may do everything, members of
//! `stack-ro` only what reads (GET); anyone else gets 403, and every refusal
//! is logged.
use std::sync::Arc;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{Method, Request, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio::sync::mpsc;

use super::auth::{Access, Peer};
use super::engine::{Engine, Out};
use super::proto::{
    ContainersRequest, DownRequest, Line, RmRequest, RunRequest, UpRequest, Version,
};

/// The API; on a `read_only` socket (systemd's `api-ro`) only GET requests.
pub fn router(engine: Arc<Engine>, read_only: bool) -> axum::Router {
    let router = axum::Router::new()
        .route("/v1/version", get(version))
        .route("/v1/stacks/up", post(up))
        .route("/v1/stacks/run", post(run))
        .route("/v1/stacks", get(stacks))
        .route("/v1/stacks/{name}", get(stack))
        .route("/v1/stacks/{name}/ps", get(ps))
        .route("/v1/stacks/{name}/inspect", get(inspect))
        .route("/v1/stacks/{name}/logs", get(logs))
        .route("/v1/stacks/{name}/events", get(events))
        .route("/v1/stacks/{name}/down", post(down))
        .route("/v1/stacks/{name}/rm", post(rm))
        .route("/v1/stacks/{name}/{verb}", post(containers))
        .layer(middleware::from_fn(authorize));
    let router = if read_only {
        router.layer(middleware::from_fn(reads_only))
    } else {
        router
    };
    router.with_state(engine)
}

/// The read-only socket refuses what is not a GET, whoever asks.
async fn reads_only(req: Request<Body>, next: Next) -> Response {
    if req.method() == Method::GET {
        return next.run(req).await;
    }
    tracing::warn!(method = %req.method(), path = %req.uri().path(), "request refused: read-only socket");
    (
        StatusCode::FORBIDDEN,
        "permission denied: this is the read-only socket (listing, logs, events); use stack.sock\n",
    )
        .into_response()
}

async fn authorize(
    ConnectInfo(peer): ConnectInfo<Peer>,
    req: Request<Body>,
    next: Next,
) -> Response {
    let allowed = match peer.access() {
        Access::Full => true,
        Access::ReadOnly => req.method() == Method::GET,
        Access::None => false,
    };
    if allowed {
        return next.run(req).await;
    }
    tracing::warn!(
        uid = peer.uid,
        gid = peer.gid,
        pid = peer.pid,
        method = %req.method(),
        path = %req.uri().path(),
        "request refused: not root and not in the `stack` group (or read-only)"
    );
    (
        StatusCode::FORBIDDEN,
        "permission denied: root or a member of the `stack` group only (`stack-ro`: reading only)\n",
    )
        .into_response()
}

async fn version(State(engine): State<Arc<Engine>>) -> Json<Version> {
    let watched = crate::reconcile::stacks::StackRecord::all(&engine.roots)
        .into_iter()
        .filter(|r| r.watch)
        .map(|r| (r.name, r.files))
        .collect();
    Json(Version {
        version: env!("CARGO_PKG_VERSION").into(),
        pid: std::process::id(),
        watched,
    })
}

async fn stack(State(engine): State<Arc<Engine>>, Path(name): Path<String>) -> Response {
    match engine.stack_info(&name) {
        Some(info) => Json(info).into_response(),
        None => (StatusCode::NOT_FOUND, format!("no stack {name}\n")).into_response(),
    }
}

async fn stacks(State(engine): State<Arc<Engine>>) -> Response {
    let roots = engine.roots.clone();
    read(move || crate::ops::ls::stacks(&roots)).await
}

async fn ps(State(engine): State<Arc<Engine>>, Path(name): Path<String>) -> Response {
    let roots = engine.roots.clone();
    read(move || crate::ops::ps::rows(&roots, &name)).await
}

async fn inspect(State(engine): State<Arc<Engine>>, Path(name): Path<String>) -> Response {
    let roots = engine.roots.clone();
    read(move || crate::ops::inspect::documents(&roots, &name)).await
}

async fn logs(
    State(engine): State<Arc<Engine>>,
    Path(name): Path<String>,
    Query(q): Query<crate::ops::logs::Query>,
) -> Response {
    let roots = engine.roots.clone();
    lines(move |tx| {
        let stop = || tx.is_closed();
        crate::ops::logs::stream(&roots, &name, &q, &stop, &mut |line| tx.send(line).is_ok())
    })
}

async fn events(
    State(engine): State<Arc<Engine>>,
    Path(name): Path<String>,
    Query(q): Query<crate::supervisor::events::Query>,
) -> Response {
    let roots = engine.roots.clone();
    lines(move |tx| {
        let stop = || tx.is_closed();
        crate::supervisor::events::stream(&roots.lib, &name, &q, &stop, &mut |e| tx.send(e).is_ok())
    })
}

/// Stream what a blocking producer sends as JSON lines; it runs until it is
/// done or the caller goes away (its sends fail, `is_closed` turns true).
fn lines<T, E>(
    produce: impl FnOnce(&mpsc::UnboundedSender<T>) -> Result<(), E> + Send + 'static,
) -> Response
where
    T: serde::Serialize + Send + 'static,
    E: std::fmt::Display,
{
    let (tx, rx) = mpsc::unbounded_channel::<T>();
    tokio::task::spawn_blocking(move || {
        if let Err(e) = produce(&tx) {
            tracing::warn!(error = %e, "a streamed read failed");
        }
    });
    ndjson(rx)
}

/// Answer with what a blocking read computes, as JSON.
async fn read<T, E>(f: impl FnOnce() -> Result<T, E> + Send + 'static) -> Response
where
    T: serde::Serialize + Send + 'static,
    E: std::fmt::Display + Send + 'static,
{
    match super::engine::blocking(f).await {
        Ok(v) => Json(v).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response(),
    }
}

async fn up(State(engine): State<Arc<Engine>>, Json(req): Json<UpRequest>) -> Response {
    stream(move |out| async move { engine.up(req, out).await })
}

async fn run(State(engine): State<Arc<Engine>>, Json(req): Json<RunRequest>) -> Response {
    stream(move |out| async move { engine.run(req, out).await })
}

async fn down(
    State(engine): State<Arc<Engine>>,
    Path(name): Path<String>,
    Json(req): Json<DownRequest>,
) -> Response {
    stream(move |out| async move { engine.down(name, req, out).await })
}

async fn rm(
    State(engine): State<Arc<Engine>>,
    Path(name): Path<String>,
    Json(req): Json<RmRequest>,
) -> Response {
    match engine.rm(name, req).await {
        Ok(removed) => Json(removed).into_response(),
        Err(e) => (StatusCode::BAD_REQUEST, format!("{e}\n")).into_response(),
    }
}

async fn containers(
    State(engine): State<Arc<Engine>>,
    Path((name, verb)): Path<(String, String)>,
    Json(req): Json<ContainersRequest>,
) -> Response {
    match verb.as_str() {
        "stop" => stream(move |out| async move { engine.stop(name, req, out).await }),
        "start" => stream(move |out| async move { engine.start(name, req, out).await }),
        "restart" => stream(move |out| async move { engine.restart(name, req, out).await }),
        "kill" => stream(move |out| async move { engine.kill(name, req, out).await }),
        _ => (StatusCode::NOT_FOUND, format!("no such action: {verb}\n")).into_response(),
    }
}

/// Run `op` as its own task (it finishes even when the caller goes away) and
/// stream what it writes as JSON lines.
fn stream<F, Fut>(op: F) -> Response
where
    F: FnOnce(Out) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = mpsc::unbounded_channel::<Line>();
    tokio::spawn(op(tx));
    ndjson(rx)
}

/// A response that writes what `rx` receives, one JSON object per line.
fn ndjson<T: serde::Serialize + Send + 'static>(rx: mpsc::UnboundedReceiver<T>) -> Response {
    let body = futures_util::stream::unfold(rx, |mut rx| async move {
        let item = rx.recv().await?;
        let mut bytes = serde_json::to_vec(&item).unwrap_or_default();
        bytes.push(b'\n');
        Some((Ok::<_, std::convert::Infallible>(Bytes::from(bytes)), rx))
    });
    Response::builder()
        .header("content-type", "application/x-ndjson")
        .body(Body::from_stream(body))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}
