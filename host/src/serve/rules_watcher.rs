//! Watches the rules directory and reloads on change: file notifications
//! (inotify and its kin) for speed, debounced so an editor's or a deploy
//! tool's burst of writes is one reload; and a periodic re-read of the
//! ruleset's content for file systems where notifications get lost. Both
//! only reload when the content hash changed, so either may fire freely.

use std::sync::Arc;
use std::time::Duration;

use notify::{RecursiveMode, Watcher};
use tokio::sync::mpsc;

use super::live_rules::{reload_in_background, LiveRules};

/// Quiet time after the last file event before reloading.
const DEBOUNCE: Duration = Duration::from_millis(50);

/// Runs until the task is dropped. Returns once the watcher is set up; a
/// directory that cannot be watched falls back to polling alone.
pub fn spawn(live: Arc<LiveRules>, poll: Duration) -> tokio::task::JoinHandle<()> {
    let (events, mut changes) = mpsc::unbounded_channel::<()>();
    let dir = live.dir();
    let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if event.is_ok_and(|e| !matches!(e.kind, notify::EventKind::Access(_))) {
            let _ = events.send(());
        }
    })
    .and_then(|mut w| w.watch(&dir, RecursiveMode::Recursive).map(|()| w));
    let watcher = match watcher {
        Ok(w) => Some(w),
        Err(err) => {
            tracing::warn!(dir = %dir.display(), "cannot watch the rules directory ({err}); checking it every {poll:?} instead");
            None
        }
    };
    tokio::spawn(async move {
        // Owned by the task: dropping it would stop the notifications.
        let _watcher = watcher;
        let mut ticker = tokio::time::interval(poll);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                Some(()) = changes.recv() => {
                    // Let the burst finish: wait until DEBOUNCE passes without an event.
                    while let Ok(Some(())) = tokio::time::timeout(DEBOUNCE, changes.recv()).await {}
                }
                _ = ticker.tick() => {}
            }
            if let Err(err) = reload_in_background(live.clone(), false).await {
                tracing::error!("rules reload failed to run: {err:#}");
            }
        }
    })
}
