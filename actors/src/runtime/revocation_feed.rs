//! The loop that keeps this node's live-session cache true: it polls the revocation feed
//! (`domain::sessions::liveness`) and drops the cache shards whose counters moved.

use std::sync::{Arc, Weak};
use std::time::Duration;

use gatehouse_storage::RangeOptions;

use crate::domain::keyspace;
use crate::domain::sessions::liveness::FEED_SHARDS;
use crate::error::{DomainError, DomainResult};
use crate::runtime::services::NodeServices;

/// The counters of every feed shard, by shard (empty when never bumped).
async fn read_feed(services: &NodeServices) -> DomainResult<Vec<Vec<u8>>> {
    let subspace = keyspace::revocation_feed_subspace();
    let (begin, end) = subspace.range();
    let entries = services
        .db
        .run(|tx| {
            let (begin, end) = (&begin, &end);
            async move {
                let options = RangeOptions {
                    snapshot: true,
                    ..RangeOptions::default()
                };
                Ok::<_, DomainError>(tx.get_range(begin, end, options).await?)
            }
        })
        .await?;
    let mut counters = vec![Vec::new(); usize::from(FEED_SHARDS)];
    for (key, value) in entries {
        let (shard,) = subspace
            .unpack::<(u16,)>(&key)
            .map_err(|error| DomainError::Internal(format!("revocation feed key: {error}")))?;
        if let Some(counter) = counters.get_mut(usize::from(shard)) {
            *counter = value;
        }
    }
    Ok(counters)
}

/// Reads the feed once (before any call can fill the cache, so no change slips between),
/// then polls it every `every` while `alive` lives.
pub(crate) async fn spawn(
    services: Arc<NodeServices>,
    every: Duration,
    alive: Weak<()>,
) -> DomainResult<()> {
    let mut last = read_feed(&services).await?;
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(every).await;
            if alive.upgrade().is_none() {
                return;
            }
            let cache = &services.context.live_sessions;
            match read_feed(&services).await {
                Ok(counters) => {
                    for (shard, (old, new)) in (0..FEED_SHARDS).zip(last.iter().zip(&counters)) {
                        if old != new {
                            cache.drop_shard(shard);
                            metrics::counter!("gatehouse_live_session_cache_invalidations_total")
                                .increment(1);
                        }
                    }
                    last = counters;
                }
                Err(error) => {
                    // Whatever changed meanwhile is unknown: start over from storage.
                    cache.drop_all();
                    tracing::warn!(%error, "cannot poll the revocation feed");
                }
            }
        }
    });
    Ok(())
}
