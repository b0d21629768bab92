//! The threads that keep each database's memory cache in step with its
//! notifications, and the handle that owns and stops them.
//!
//! They are threads of their own, not tasks on the application's runtime:
//! a libpq call can block for as long as the network lets it, and must
//! neither hold one of the runtime's blocking threads for good nor keep
//! the runtime from shutting down.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use diesel_avatar::changes::{Notice, Subscription, Unsubscribed, POLL};

use crate::cache::Cache;

/// How often a listener whose database is a hot standby (which cannot
/// LISTEN) checks whether it has been promoted.
const STANDBY_RECHECK: Duration = Duration::from_secs(30);
/// The longest wait between attempts to reach a database that is down.
const MAX_BACKOFF: Duration = Duration::from_secs(2);
/// How long [`Listeners::shutdown`] waits for a listener stuck in a call
/// to its database; past it, the thread is left to end when the call does.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// The route's listeners. They stop when [`Listeners::shutdown`] is
/// awaited or the handle is dropped, within one [`POLL`] unless a call to
/// the database is blocked.
#[derive(Debug, Default)]
pub struct Listeners {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl Listeners {
    /// Starts a listener for `cache`.
    pub(crate) fn start(&mut self, url: String, cache: Arc<Cache>) {
        if !cache.keeps_anything() {
            return;
        }
        let stop = self.stop.clone();
        let thread = std::thread::Builder::new()
            .name("avatar-listener".into())
            .spawn(move || run(&url, &cache, &stop))
            .expect("spawning a listener thread");
        self.threads.push(thread);
    }

    /// Stops every listener, and waits (up to two seconds) until each has
    /// closed its connection.
    pub async fn shutdown(mut self) {
        self.stop.store(true, Ordering::Release);
        let deadline = Instant::now() + SHUTDOWN_GRACE;
        while self.threads.iter().any(|t| !t.is_finished()) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let stuck = self.threads.iter().filter(|t| !t.is_finished()).count();
        if stuck > 0 {
            tracing::warn!(
                listeners = stuck,
                "avatar cache listeners still blocked on their database; they end when it answers"
            );
        }
        // Finished threads are joined; stuck ones are detached, and exit
        // as soon as their call returns and they see `stop`.
        for thread in std::mem::take(&mut self.threads) {
            if thread.is_finished() {
                let _ = thread.join();
            }
        }
    }
}

impl Drop for Listeners {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
    }
}

/// Listens on `url` until told to stop, reconnecting after failures, and
/// evicts what each notification names. While it is not subscribed the
/// cache is bypassed, because notifications sent meanwhile are lost.
fn run(url: &str, cache: &Cache, stop: &AtomicBool) {
    let mut backoff = POLL;
    let mut told_standby = false;
    let mut told_unreachable = false;
    while !stop.load(Ordering::Acquire) {
        // libpq's messages can name the database, so they are not logged.
        let wait = match Subscription::connect(url) {
            Ok(subscription) => {
                told_unreachable = false;
                follow(subscription, cache, stop);
                cache.reset(false);
                if stop.load(Ordering::Acquire) {
                    break;
                }
                tracing::warn!("avatar cache listener lost its connection; cache bypassed");
                backoff = POLL;
                backoff
            }
            Err(Unsubscribed::Standby) => {
                cache.reset(false);
                if !told_standby {
                    tracing::info!(
                        "a hot standby cannot LISTEN: serving it without the memory cache"
                    );
                    told_standby = true;
                }
                STANDBY_RECHECK
            }
            Err(Unsubscribed::Unreachable) => {
                cache.reset(false);
                if !told_unreachable {
                    tracing::warn!(
                        "avatar cache listener cannot subscribe; cache bypassed until it can"
                    );
                    told_unreachable = true;
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
                backoff
            }
        };
        pause(wait, stop);
    }
    cache.reset(false);
}

/// Applies notifications until the connection is lost or `stop` is set.
fn follow(mut subscription: Subscription, cache: &Cache, stop: &AtomicBool) {
    // Anything cached before this point may have missed a notification.
    cache.reset(true);
    while !stop.load(Ordering::Acquire) {
        let polled = subscription.poll();
        // A poll that blocked (a ping to a database that stopped answering)
        // let the cache go untrusted meanwhile; what it held may have
        // missed notifications still on their way, so it starts afresh.
        if !cache.is_live() {
            cache.reset(true);
        }
        let Ok(notices) = polled else {
            return;
        };
        for notice in notices {
            match notice {
                Notice::Avatar(change) => cache.evict(change.id),
                Notice::Address(digests) => cache.evict_address(&digests),
                // Any role may NOTIFY on these channels, and pg_avatar only
                // sends what parses, so a forgery is ignored: emptying the
                // memory for it would hand every role a switch to do so.
                Notice::Malformed => tracing::debug!("ignored a malformed notification"),
            }
        }
        cache.heard_at(subscription.last_heard());
        std::thread::sleep(POLL);
    }
}

/// Sleeps for `wait`, or until `stop` is set.
fn pause(wait: Duration, stop: &AtomicBool) {
    let until = Instant::now() + wait;
    while !stop.load(Ordering::Acquire) {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return;
        }
        std::thread::sleep(left.min(POLL));
    }
}
