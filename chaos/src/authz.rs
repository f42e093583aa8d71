//! The authorization phases: `has_permission` over a deep permission graph and
//! `share_check` through one application-resource share.
//!
//! Both build their data with the tenant's secret server key before the timed part (the
//! `has_permission` setup time is reported), then run `concurrency` workers on the
//! workload's connections like the other request phases. A reply that contradicts the
//! setup (a held permission denied, an unheld one granted) is counted as an error.

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use gatehouse_protocol::sdk::{Client, Credentials};
use gatehouse_protocol::v1;
use tokio::task::JoinSet;

use crate::budget::Budget;
use crate::error::ChaosError;
use crate::stats::PhaseSummary;
use crate::workload::{Step, code, run_workers};

/// Chains of the `has_permission` graph.
pub const CHAINS: usize = 100;
/// Levels of each chain: `p{chain}_0` (granted) contains `p{chain}_1`, and so on down to
/// `p{chain}_{DEPTH - 1}`, the level every held check asks for.
pub const DEPTH: usize = 10;
/// Standalone permissions defined next to the chains and granted to nobody.
pub const NOT_HELD: usize = 4;
/// One `has_permission` check in this many, on average, asks for an unheld permission.
pub const NOT_HELD_ONE_IN: u64 = 20;
/// The tenant permission the `share_check` owner holds and shares.
pub const SHARE_PERMISSION: &str = "document.read";
/// The application resource type of the `share_check` share.
pub const SHARE_RESOURCE_TYPE: &str = "document";
/// The application resource id of the `share_check` share.
pub const SHARE_RESOURCE_ID: &str = "load-document-1";

/// How often setup polls for the node's cached permission graph to show new definitions.
const GRAPH_POLL: Duration = Duration::from_millis(20);

/// The id of level `level` of chain `chain`.
pub fn chain_permission(chain: usize, level: usize) -> String {
    format!("p{chain}_{level}")
}

/// The id of the `index`th permission nobody holds.
pub fn not_held_permission(index: usize) -> String {
    format!("unheld_{index}")
}

/// The tenant-scoped definition of level `level` of chain `chain`, containing the next one.
pub fn chain_definition(chain: usize, level: usize) -> v1::PermissionDefinition {
    let contains = if level + 1 < DEPTH {
        vec![chain_permission(chain, level + 1)]
    } else {
        Vec::new()
    };
    tenant_definition(
        chain_permission(chain, level),
        format!("gatehouse-load chain {chain}, level {level}"),
        contains,
    )
}

fn tenant_definition(
    permission_id: String,
    description: String,
    contains: Vec<String>,
) -> v1::PermissionDefinition {
    v1::PermissionDefinition {
        permission_id,
        description,
        contains,
        scope: v1::PermissionScope::Tenant as i32,
    }
}

/// `connections` with the tenant's secret server key instead of the client key.
pub fn server_clients(connections: &[Client], secret_key: &str) -> Vec<Client> {
    connections
        .iter()
        .map(|client| {
            client.with_credentials(Credentials::Server {
                secret_key: secret_key.to_owned(),
            })
        })
        .collect()
}

/// The `has_permission` data, ready to be checked.
#[derive(Debug, Clone)]
pub struct PermissionGraphSetup {
    /// The user holding every chain root.
    pub user_id: String,
}

/// Defines the chains and the unheld permissions, creates a user, grants it every chain
/// root and checks that the graph answers as expected. Untimed; bounded by `limit`.
pub async fn prepare_permission_graph(
    server: &[Client],
    limit: Duration,
) -> Result<PermissionGraphSetup, ChaosError> {
    let user_id = within(limit, "has_permission setup", async {
        let definitions = CHAINS + NOT_HELD;
        in_parallel(server, definitions, |client, item| async move {
            if item < CHAINS {
                // Contained permissions must exist first: define the deepest level first.
                for level in (0..DEPTH).rev() {
                    define(&client, chain_definition(item, level)).await?;
                }
                Ok(())
            } else {
                let id = not_held_permission(item - CHAINS);
                let description = "gatehouse-load: granted to nobody".to_owned();
                define(&client, tenant_definition(id, description, Vec::new())).await
            }
        })
        .await?;
        let mut wanted: BTreeSet<String> = (0..CHAINS)
            .flat_map(|chain| (0..DEPTH).map(move |level| chain_permission(chain, level)))
            .collect();
        wanted.extend((0..NOT_HELD).map(not_held_permission));
        let first = first_client(server)?;
        await_definitions(first, &wanted).await?;

        let user_id = create_user(first, "perm").await?;
        let user = Arc::new(user_id.clone());
        in_parallel(server, CHAINS, move |client, chain| {
            let user = Arc::clone(&user);
            async move { grant(&client, &user, &chain_permission(chain, 0)).await }
        })
        .await?;

        // Every deepest level is held through its chain; the standalone ones are not.
        let user = Arc::new(user_id.clone());
        in_parallel(server, CHAINS + NOT_HELD, move |client, item| {
            let user = Arc::clone(&user);
            async move {
                let (permission_id, expected) = if item < CHAINS {
                    (chain_permission(item, DEPTH - 1), true)
                } else {
                    (not_held_permission(item - CHAINS), false)
                };
                let granted = check(&client, &user, &permission_id)
                    .await
                    .map_err(|error| ChaosError::api(format!("check {permission_id}"), error))?;
                if granted == expected {
                    Ok(())
                } else {
                    Err(ChaosError::Local(format!(
                        "check {permission_id}: granted is {granted}, expected {expected}"
                    )))
                }
            }
        })
        .await?;
        Ok(user_id)
    })
    .await?;
    Ok(PermissionGraphSetup { user_id })
}

/// Runs the `has_permission` phase: each operation checks, with the server key, a random
/// deepest-level permission of the user, or now and then one it does not hold.
pub async fn run_has_permission(
    server: &[Client],
    setup: &PermissionGraphSetup,
    budget: Arc<Budget>,
) -> PhaseSummary {
    let workers = server
        .iter()
        .enumerate()
        .map(|(index, client)| HasPermissionWorker {
            client: client.clone(),
            user_id: setup.user_id.clone(),
            random: SplitMix64::new(index as u64),
        })
        .collect();
    run_workers(workers, budget).await
}

/// Defines the shared permission, creates its owner (holding it) and a recipient user,
/// shares an application resource with the recipient (no expiry, use or rate limit), reads
/// through it once and returns its token. Untimed; bounded by `limit`.
pub async fn prepare_share(
    server: &Client,
    reader: &Client,
    limit: Duration,
) -> Result<String, ChaosError> {
    within(limit, "share_check setup", async {
        define(
            server,
            tenant_definition(
                SHARE_PERMISSION.to_owned(),
                "gatehouse-load: read a document".to_owned(),
                Vec::new(),
            ),
        )
        .await?;
        await_definitions(server, &BTreeSet::from([SHARE_PERMISSION.to_owned()])).await?;
        let owner = create_user(server, "share-owner").await?;
        let recipient = create_user(server, "share-recipient").await?;
        grant(server, &owner, SHARE_PERMISSION).await?;
        let created = server
            .create_share(share_request(&owner, &recipient))
            .await
            .map_err(|error| ChaosError::api("create share", error))?;
        if created.share_token.is_empty() {
            return Err(ChaosError::Local(
                "create share: reply has no token".to_owned(),
            ));
        }
        reader
            .without_access_token()
            .read_through_share(use_by_token(&created.share_token))
            .await
            .map_err(|error| ChaosError::api("first read through the share", error))?;
        Ok(created.share_token)
    })
    .await
}

/// The `share_check` share: `owner` gives `recipient` read access to one document.
pub fn share_request(owner: &str, recipient: &str) -> v1::CreateShareRequest {
    v1::CreateShareRequest {
        owner_user_id: owner.to_owned(),
        recipient: Some(v1::create_share_request::Recipient::RecipientUserId(
            recipient.to_owned(),
        )),
        resource_type: SHARE_RESOURCE_TYPE.to_owned(),
        resource_id: SHARE_RESOURCE_ID.to_owned(),
        permissions: vec![SHARE_PERMISSION.to_owned()],
        field_mask: Vec::new(),
        mode: v1::ShareMode::ReadOnly as i32,
        expires_at: None,
        max_uses: 0,
        rate_limit_per_minute: 0,
        ..v1::CreateShareRequest::default()
    }
}

/// A use of the share holding `token`.
pub fn use_by_token(token: &str) -> v1::UseShareRequest {
    v1::UseShareRequest {
        share: Some(v1::use_share_request::Share::ShareToken(token.to_owned())),
    }
}

/// Runs the `share_check` phase: each operation reads through the share by its token with
/// the client key and no user token.
pub async fn run_share_check(
    connections: &[Client],
    token: &str,
    budget: Arc<Budget>,
) -> PhaseSummary {
    let workers = connections
        .iter()
        .map(|client| ShareCheckWorker {
            client: client.without_access_token(),
            request: use_by_token(token),
        })
        .collect();
    run_workers(workers, budget).await
}

struct HasPermissionWorker {
    client: Client,
    user_id: String,
    random: SplitMix64,
}

impl Step for HasPermissionWorker {
    async fn step(&mut self) -> Result<(), String> {
        let (permission_id, expected) = pick_check(&mut self.random);
        let granted = check(&self.client, &self.user_id, &permission_id)
            .await
            .map_err(|error| code(&error))?;
        match (granted, expected) {
            (true, true) | (false, false) => Ok(()),
            (false, true) => Err("HELD_PERMISSION_DENIED".to_owned()),
            (true, false) => Err("UNHELD_PERMISSION_GRANTED".to_owned()),
        }
    }
}

/// The permission one check asks for and whether the user holds it.
fn pick_check(random: &mut SplitMix64) -> (String, bool) {
    if random.below(NOT_HELD_ONE_IN) == 0 {
        (not_held_permission(random.below_usize(NOT_HELD)), false)
    } else {
        (
            chain_permission(random.below_usize(CHAINS), DEPTH - 1),
            true,
        )
    }
}

struct ShareCheckWorker {
    client: Client,
    request: v1::UseShareRequest,
}

impl Step for ShareCheckWorker {
    async fn step(&mut self) -> Result<(), String> {
        let reply = self
            .client
            .read_through_share(self.request.clone())
            .await
            .map_err(|error| code(&error))?;
        match reply.share {
            Some(share) if !share.revoked => Ok(()),
            Some(_) => Err("SHARE_REVOKED".to_owned()),
            None => Err("NO_SHARE_IN_REPLY".to_owned()),
        }
    }
}

async fn define(client: &Client, definition: v1::PermissionDefinition) -> Result<(), ChaosError> {
    let id = definition.permission_id.clone();
    client
        .define_permission(v1::DefinePermissionRequest {
            definition: Some(definition),
            create_only: true,
        })
        .await
        .map(drop)
        .map_err(|error| ChaosError::api(format!("define permission {id}"), error))
}

/// Waits until the node's cached graph, which grants and checks read, knows every id.
async fn await_definitions(client: &Client, wanted: &BTreeSet<String>) -> Result<(), ChaosError> {
    loop {
        let reply = client
            .list_permission_definitions(v1::ListPermissionDefinitionsRequest {})
            .await
            .map_err(|error| ChaosError::api("list permission definitions", error))?;
        let known = reply
            .definitions
            .iter()
            .filter(|definition| wanted.contains(&definition.permission_id))
            .count();
        if known == wanted.len() {
            return Ok(());
        }
        tokio::time::sleep(GRAPH_POLL).await;
    }
}

async fn create_user(server: &Client, label: &str) -> Result<String, ChaosError> {
    let unique = uuid::Uuid::new_v4().simple().to_string();
    let user = server
        .create_user(v1::CreateUserRequest {
            email: format!("load-{label}-{}@example.com", &unique[..12]),
            password: None,
            display_name: format!("gatehouse-load {label}"),
            email_verified: true,
        })
        .await
        .map_err(|error| ChaosError::api(format!("create {label} user"), error))?;
    if user.user_id.is_empty() {
        return Err(ChaosError::Local(format!(
            "create {label} user: reply has no user id"
        )));
    }
    Ok(user.user_id)
}

async fn grant(client: &Client, user_id: &str, permission_id: &str) -> Result<(), ChaosError> {
    client
        .grant_permission(v1::GrantPermissionRequest {
            user_id: user_id.to_owned(),
            permission_id: permission_id.to_owned(),
            team_id: String::new(),
        })
        .await
        .map(drop)
        .map_err(|error| ChaosError::api(format!("grant {permission_id}"), error))
}

async fn check(
    client: &Client,
    user_id: &str,
    permission_id: &str,
) -> Result<bool, gatehouse_protocol::ApiError> {
    let reply = client
        .has_permission(v1::HasPermissionRequest {
            user_id: user_id.to_owned(),
            permission_id: permission_id.to_owned(),
            team_id: String::new(),
        })
        .await?;
    Ok(reply.granted)
}

fn first_client(clients: &[Client]) -> Result<&Client, ChaosError> {
    clients
        .first()
        .ok_or_else(|| ChaosError::Local("no connection to set up with".to_owned()))
}

/// Runs `work`, failing once `limit` has passed.
async fn within<T>(
    limit: Duration,
    what: &str,
    work: impl Future<Output = Result<T, ChaosError>>,
) -> Result<T, ChaosError> {
    tokio::time::timeout(limit, work)
        .await
        .map_err(|_| ChaosError::Local(format!("{what} took longer than {limit:?}")))?
}

/// Runs `operation(client, item)` for every item in `0..items`, one worker per client,
/// and stops handing out items after the first failure, which it returns.
async fn in_parallel<F, Fut>(
    clients: &[Client],
    items: usize,
    operation: F,
) -> Result<(), ChaosError>
where
    F: Fn(Client, usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), ChaosError>> + Send + 'static,
{
    if clients.is_empty() {
        return Err(ChaosError::Local("no connection to set up with".to_owned()));
    }
    let operation = Arc::new(operation);
    let next = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicBool::new(false));
    // Dropping the set (on a timeout) aborts the workers.
    let mut workers = JoinSet::new();
    for client in clients.iter().take(items) {
        let client = client.clone();
        let (operation, next, failed) = (
            Arc::clone(&operation),
            Arc::clone(&next),
            Arc::clone(&failed),
        );
        workers.spawn(async move {
            while !failed.load(Ordering::Relaxed) {
                let item = next.fetch_add(1, Ordering::Relaxed);
                if item >= items {
                    break;
                }
                if let Err(error) = operation(client.clone(), item).await {
                    failed.store(true, Ordering::Relaxed);
                    return Err(error);
                }
            }
            Ok(())
        });
    }
    let mut first_error = None;
    while let Some(joined) = workers.join_next().await {
        let outcome = joined.unwrap_or_else(|error| {
            Err(ChaosError::Local(format!("setup worker failed: {error}")))
        });
        if let Err(error) = outcome {
            first_error.get_or_insert(error);
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// A small, seedable pseudo-random sequence (SplitMix64), enough to spread checks.
#[derive(Debug, Clone)]
struct SplitMix64(u64);

impl SplitMix64 {
    fn new(seed: u64) -> Self {
        SplitMix64(seed ^ 0x5DEE_CE66_D1CE_4E5B)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A value in `0..bound` (`bound` > 0; the modulo bias is negligible for small bounds).
    fn below(&mut self, bound: u64) -> u64 {
        self.next_u64() % bound.max(1)
    }

    fn below_usize(&mut self, bound: usize) -> usize {
        usize::try_from(self.below(bound as u64)).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The node's rule for permission ids.
    fn valid_permission_id(id: &str) -> bool {
        (1..=100).contains(&id.len())
            && id.chars().all(|c| {
                c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | ':' | '.' | '-')
            })
    }

    #[test]
    fn chains_nest_ten_deep_over_a_thousand_valid_ids() {
        let mut ids = BTreeSet::new();
        for chain in 0..CHAINS {
            for level in 0..DEPTH {
                let definition = chain_definition(chain, level);
                assert!(valid_permission_id(&definition.permission_id));
                assert_eq!(definition.scope, v1::PermissionScope::Tenant as i32);
                let expected: Vec<String> = if level + 1 < DEPTH {
                    vec![chain_permission(chain, level + 1)]
                } else {
                    Vec::new()
                };
                assert_eq!(definition.contains, expected);
                ids.insert(definition.permission_id);
            }
        }
        assert_eq!(ids.len(), 1_000);
        for index in 0..NOT_HELD {
            let id = not_held_permission(index);
            assert!(valid_permission_id(&id));
            assert!(!ids.contains(&id));
        }
        assert!(valid_permission_id(SHARE_PERMISSION));
        assert!(!ids.contains(SHARE_PERMISSION));
    }

    #[test]
    fn checks_ask_for_deepest_levels_and_sometimes_unheld_ones() {
        let mut random = SplitMix64::new(7);
        let deepest: BTreeSet<String> = (0..CHAINS)
            .map(|chain| chain_permission(chain, DEPTH - 1))
            .collect();
        let unheld: BTreeSet<String> = (0..NOT_HELD).map(not_held_permission).collect();
        let mut asked = BTreeSet::new();
        let mut not_held = 0;
        let rounds = 20_000;
        for _ in 0..rounds {
            let (id, expected) = pick_check(&mut random);
            if expected {
                assert!(deepest.contains(&id), "{id}");
            } else {
                assert!(unheld.contains(&id), "{id}");
                not_held += 1;
            }
            asked.insert(id);
        }
        assert_eq!(asked.len(), CHAINS + NOT_HELD, "every candidate gets asked");
        let share = f64::from(not_held) / f64::from(rounds);
        assert!((0.03..0.07).contains(&share), "unheld share {share}");
    }

    #[test]
    fn share_is_an_unlimited_read_of_an_application_resource() {
        let request = share_request("owner", "recipient");
        assert_eq!(request.resource_type, "document");
        assert_eq!(request.permissions, vec![SHARE_PERMISSION.to_owned()]);
        assert_eq!(request.mode, v1::ShareMode::ReadOnly as i32);
        assert_eq!((request.max_uses, request.rate_limit_per_minute), (0, 0));
        assert!(request.expires_at.is_none());
        assert!(matches!(
            use_by_token("tok").share,
            Some(v1::use_share_request::Share::ShareToken(token)) if token == "tok"
        ));
    }
}
