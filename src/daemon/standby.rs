//! Containers on standby served by the daemon: a new replica that starts
//! next to serving ones gets traffic only once it is ready
//! (src/reconcile/standby.rs). The `up` that started it waits for that, but
//! it may give up (not ready in time), die, or die with the daemon; and the
//! supervisor may restart a standby container. This task serves every such
//! container once it is ready, without another `up`.
//!
//! Flow: asleep until notified (the daemon started, a container was watched
//! or restarted, an `up` ended) -> survey every container on standby ->
//! serve the ready ones, each stack under its lock -> poll again while one
//! may still get ready (or its stack was busy) -> asleep. Level-triggered
//! (each pass reads the records afresh), and an idle daemon does no work:
//! nothing polls while no container on standby runs. One that runs but never
//! gets ready is polled until it ends or is removed: a few small file reads
//! per poll.
use std::sync::Arc;
use std::time::Duration;

use super::engine::{Engine, blocking};
use crate::reconcile::standby;

/// How often the containers on standby are looked at while one may get
/// ready.
const POLL: Duration = Duration::from_millis(100);

impl Engine {
    /// Runs for the daemon's life. A notification that comes during a pass
    /// is kept by the `Notify` (one permit) and brings one more pass.
    pub(super) async fn serve_standby(self: Arc<Self>) {
        // The first pass: what a dead daemon's `up` left waiting.
        self.standby.notify_one();
        loop {
            self.standby.notified().await;
            while self.serve_standby_pass().await {
                tokio::time::sleep(POLL).await;
            }
        }
    }

    /// Serve what is ready; whether a container on standby may still get
    /// ready, or waits to be served.
    async fn serve_standby_pass(self: &Arc<Self>) -> bool {
        let me = self.clone();
        let survey = blocking(move || standby::survey(&me.ctx)).await;
        let mut waiting = survey.waiting;
        let mut locked = Vec::new();
        for stack in survey.ready {
            // An operation on the stack (an `up` waiting for this very
            // container, say) holds its lock: the next pass tries again,
            // and other stacks need not wait for it.
            match self.try_lock(&stack) {
                Some(guard) => locked.push((stack, guard)),
                None => waiting = true,
            }
        }
        let me = self.clone();
        blocking(move || {
            for (stack, _guard) in &locked {
                standby::serve_ready(&me.ctx, stack);
            }
        })
        .await;
        waiting
    }
}
