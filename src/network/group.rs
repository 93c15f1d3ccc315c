//! Group commit: the state changes that threads of one process ask for at the
//! same time share one state lock, one load, one durable save and one
//! nftables apply.
//!
//! Why: a durable save is an fsync of the file and one of its directory
//! (about 8 ms on this project's VMs). `up` attaches the containers of a level
//! concurrently; one lock and one save each made 20 containers wait for 20
//! fsyncs in a row (measured: the lock wait, not netlink, was most of attach).
//!
//! Flow: a caller queues its change (a closure over the state) and, when no
//! batch is running, becomes the leader. The leader takes the state lock
//! (`flock`, so other processes still wait their turn), loads the state and
//! applies every queued change in queue order, each to a copy that is kept only
//! when the change succeeds; then it saves once, applies the nftables table once
//! if a kept change asked for it, releases the lock and hands every caller its
//! result. Changes queued while a batch ran form the next batch of the same
//! leader; the leader returns when the queue is empty.
//!
//! Guarantees (the same as one lock per operation):
//! - a change is saved before its caller acts on the kernel (intent first, so a
//!   crash leaves a record for `recover`/`remove_stack`);
//! - each change sees every change queued before it, so two requests in one
//!   batch never get the same address or host port;
//! - a failing change changes nothing; a failing save fails every change of
//!   the batch (none is on disk); a failing nftables apply fails the changes that
//!   needed it, after their `undo` (a `publish` that cannot be applied is not
//!   left in the state).
//!
//! Caveat: a change must not queue another change (it would wait for itself).
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, mpsc};

use super::manager::Manager;
use super::store::NetState;
use super::{Error, Result};

/// What a change returns: its value for the caller and what the batch must do
/// for it after the save.
pub(crate) struct Step<T> {
    pub value: T,
    /// The nftables table must be rebuilt from the new state.
    pub firewall: bool,
    /// Reverts this change when the nftables apply fails.
    pub undo: Option<Undo>,
}

pub(crate) type Undo = Box<dyn FnOnce(&mut NetState) + Send>;

impl<T> Step<T> {
    /// A change that needs only the save.
    pub fn saved(value: T) -> Step<T> {
        Step {
            value,
            firewall: false,
            undo: None,
        }
    }
}

/// The queue shared by every clone of one [`Manager`].
#[derive(Default)]
pub(crate) struct Group {
    queue: Mutex<Queue>,
}

#[derive(Default)]
struct Queue {
    /// A leader is running batches.
    busy: bool,
    jobs: Vec<Box<dyn Job>>,
}

/// One queued change, type-erased.
trait Job: Send {
    /// Apply to `st` (only when it succeeds); `None` when it failed and its
    /// caller already has the error.
    fn apply(self: Box<Self>, st: &mut NetState) -> Option<Applied>;
    /// The batch failed before this job ran.
    fn abort(self: Box<Self>, e: Error);
}

/// A change that was applied to the batch's state and awaits the save.
struct Applied {
    changed: bool,
    firewall: bool,
    undo: Option<Undo>,
    deliver: Box<dyn FnOnce(Result<()>) + Send>,
}

struct Request<T, F> {
    change: F,
    reply: mpsc::Sender<Result<T>>,
}

impl<T, F> Job for Request<T, F>
where
    T: Send + 'static,
    F: FnOnce(&mut NetState) -> Result<Step<T>> + Send + 'static,
{
    fn apply(self: Box<Self>, st: &mut NetState) -> Option<Applied> {
        let Request { change, reply } = *self;
        let mut next = st.clone();
        match change(&mut next) {
            Err(e) => {
                let _ = reply.send(Err(e));
                None
            }
            Ok(Step {
                value,
                firewall,
                undo,
            }) => {
                let changed = next != *st;
                *st = next;
                Some(Applied {
                    changed,
                    firewall,
                    undo,
                    deliver: Box::new(move |r: Result<()>| {
                        let _ = reply.send(r.map(|()| value));
                    }),
                })
            }
        }
    }

    fn abort(self: Box<Self>, e: Error) {
        let _ = self.reply.send(Err(e));
    }
}

impl Group {
    fn queue(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Resets `busy` and fails what is queued if a leader unwinds, so later
/// callers do not wait for a leader that is gone.
struct LeaderGuard<'a>(&'a Group);

impl Drop for LeaderGuard<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let mut q = self.0.queue();
            q.busy = false;
            q.jobs.clear(); // drops the reply senders: their callers get an error
        }
    }
}

impl Manager {
    /// Apply `change` to the network state together with whatever other
    /// threads of this process ask for at the same time, and return its value
    /// once the state (and the nftables table, when the change asks for it)
    /// is saved.
    pub(crate) fn submit<T, F>(&self, change: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut NetState) -> Result<Step<T>> + Send + 'static,
    {
        let (reply, answer) = mpsc::channel();
        let lead = {
            let mut q = self.group().queue();
            q.jobs.push(Box::new(Request { change, reply }));
            !std::mem::replace(&mut q.busy, true)
        };
        if lead {
            self.lead();
        }
        answer.recv().unwrap_or_else(|_| {
            Err(Error::io("network state batch")(std::io::Error::other(
                "the thread running the batch panicked",
            )))
        })
    }

    /// Run batches until the queue is empty.
    fn lead(&self) {
        let group: Arc<Group> = Arc::clone(self.group());
        let _guard = LeaderGuard(&group);
        loop {
            let jobs = {
                let mut q = group.queue();
                if q.jobs.is_empty() {
                    q.busy = false;
                    return;
                }
                std::mem::take(&mut q.jobs)
            };
            self.run_batch(jobs);
        }
    }

    fn run_batch(&self, jobs: Vec<Box<dyn Job>>) {
        let mut locked = match self.lock() {
            Ok(l) => l,
            Err(e) => {
                let e = Arc::new(e);
                for j in jobs {
                    j.abort(Error::Shared(Arc::clone(&e)));
                }
                return;
            }
        };
        let mut applied: Vec<Applied> = jobs
            .into_iter()
            .filter_map(|j| j.apply(&mut locked.state))
            .collect();
        if applied.iter().any(|a| a.changed)
            && let Err(e) = self.commit(&locked)
        {
            drop(locked);
            let e = Arc::new(e);
            for a in applied {
                (a.deliver)(Err(Error::Shared(Arc::clone(&e))));
            }
            return;
        }
        let firewall = applied.iter().any(|a| a.firewall && a.changed);
        let failed = match firewall {
            true => self.sync_firewall(&locked.state).err().map(Arc::new),
            false => None,
        };
        if failed.is_some() {
            let mut undone = false;
            for a in &mut applied {
                if let Some(undo) = a.undo.take() {
                    undo(&mut locked.state);
                    undone = true;
                }
            }
            if undone {
                // Best effort: the error above is what the callers get.
                let _ = self.commit(&locked);
                let _ = self.sync_firewall(&locked.state);
            }
        }
        drop(locked);
        for a in applied {
            let r = match &failed {
                Some(e) if a.firewall => Err(Error::Shared(Arc::clone(e))),
                _ => Ok(()),
            };
            (a.deliver)(r);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::network::NoFirewall;
    use crate::network::store::Published;
    use crate::state::Roots;

    fn manager(dir: &std::path::Path) -> Manager {
        Manager::with(&Roots::new(Some(dir)), None, Arc::new(NoFirewall))
    }

    /// Each change claims the lowest free number, so a lost or interleaved
    /// change would show as a duplicate or a gap.
    fn claim(m: &Manager, who: String) -> Result<usize> {
        m.submit(move |st| {
            let n = (0..).find(|i| !st.owners.values().any(|v| *v == i.to_string()));
            let n = n.unwrap_or_default();
            st.owners.insert(who, n.to_string());
            Ok(Step::saved(n))
        })
    }

    #[test]
    fn concurrent_changes_all_land_each_seeing_the_ones_before() {
        let dir = tempfile::tempdir().unwrap();
        let m = manager(dir.path());
        let mut got: Vec<usize> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..32)
                .map(|i| {
                    let m = m.clone();
                    s.spawn(move || claim(&m, format!("c{i}")).unwrap())
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        got.sort();
        assert_eq!(got, (0..32).collect::<Vec<_>>());
        // on disk, and seen by a manager of another "process"
        assert_eq!(manager(dir.path()).snapshot().unwrap().owners.len(), 32);
    }

    #[test]
    fn a_failing_change_changes_nothing_and_spares_the_others() {
        let dir = tempfile::tempdir().unwrap();
        let m = manager(dir.path());
        let results: Vec<Result<usize>> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..8)
                .map(|i| {
                    let m = m.clone();
                    s.spawn(move || {
                        m.submit(move |st| {
                            st.owners.insert(format!("c{i}"), "x".into());
                            if i % 2 == 1 {
                                return Err(Error::Nftables(format!("refused {i}")));
                            }
                            Ok(Step::saved(i))
                        })
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for (i, r) in results.iter().enumerate() {
            assert_eq!(r.is_ok(), i % 2 == 0, "{i}: {r:?}");
        }
        let owners = m.snapshot().unwrap().owners;
        let kept: Vec<&String> = owners.keys().collect();
        assert_eq!(kept, ["c0", "c2", "c4", "c6"]);
    }

    /// A firewall that refuses every batch.
    struct Refuse;
    impl crate::network::Firewall for Refuse {
        fn apply(&self, _: &nftables::schema::Nftables) -> Result<()> {
            Err(Error::Nftables("refused".into()))
        }
    }

    #[test]
    fn a_failed_firewall_apply_undoes_the_changes_that_needed_it() {
        let dir = tempfile::tempdir().unwrap();
        let m = Manager::with(&Roots::new(Some(dir.path())), None, Arc::new(Refuse));
        let err = m
            .submit(|st| {
                st.published.insert(
                    "c1".into(),
                    Published {
                        stack: "s".into(),
                        ports: vec![],
                        group: None,
                        serving: true,
                    },
                );
                Ok(Step {
                    value: (),
                    firewall: true,
                    undo: Some(Box::new(|st: &mut NetState| {
                        st.published.remove("c1");
                    })),
                })
            })
            .unwrap_err();
        assert!(err.to_string().contains("refused"), "{err}");
        assert!(m.snapshot().unwrap().published.is_empty());
        // a change that needs no firewall goes through
        assert_eq!(claim(&m, "c2".into()).unwrap(), 0);
    }
}
