//! Cluster membership as the domain sees it, and rendezvous placement of actors over it.
//!
//! The node wires gossip (chitchat) into a [`MembershipView`]; the domain only reads it.
//! Placement is highest-random-weight hashing of `(kind, key)` over the members that
//! gossip `status=serving`, so a join or leave moves only the keys that the changed member
//! wins or held — about 1/N of them.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::watch;

/// Lifecycle of a member as gossiped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum MemberStatus {
    /// Started, not yet serving: owns nothing.
    Joining,
    /// Serving: takes part in placement.
    Serving,
    /// Draining before exit: owns nothing.
    Leaving,
}

impl MemberStatus {
    /// The gossiped spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            MemberStatus::Joining => "joining",
            MemberStatus::Serving => "serving",
            MemberStatus::Leaving => "leaving",
        }
    }

    /// Parses the gossiped spelling.
    pub fn parse(text: &str) -> Option<MemberStatus> {
        match text {
            "joining" => Some(MemberStatus::Joining),
            "serving" => Some(MemberStatus::Serving),
            "leaving" => Some(MemberStatus::Leaving),
            _ => None,
        }
    }
}

/// A live member of the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// Stable node name.
    pub node_id: String,
    /// Incremented on every restart, so a restarted node is told apart from its old self.
    pub generation: u64,
    /// Where its gRPC API listens.
    pub grpc_addr: String,
    /// Where its HTTP endpoint listens.
    pub http_addr: String,
    /// Lifecycle state.
    pub status: MemberStatus,
    /// Live actors per kind, as last gossiped.
    pub actors: Vec<(String, u64)>,
}

/// The membership one node currently sees.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Membership {
    /// This node's id.
    pub self_id: String,
    /// Every live member, self included, sorted by id.
    pub members: Vec<Member>,
}

impl Membership {
    /// A membership with only this node, serving.
    pub fn single(self_id: &str) -> Membership {
        Membership {
            self_id: self_id.to_owned(),
            members: Vec::new(),
        }
    }

    /// Members that take part in placement.
    pub fn serving(&self) -> impl Iterator<Item = &Member> {
        self.members
            .iter()
            .filter(|member| member.status == MemberStatus::Serving)
    }

    /// Where `(kind, key)` lives: `None` means "here" (no cluster, or no serving member).
    pub fn owner(&self, kind: ActorKind, key: &str) -> Option<&Member> {
        place(kind, key, self.serving())
    }

    /// Whether this node owns `(kind, key)`.
    pub fn is_local(&self, kind: ActorKind, key: &str) -> bool {
        self.owner(kind, key)
            .is_none_or(|owner| owner.node_id == self.self_id)
    }
}

/// The kinds of placed actors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ActorKind {
    /// `TenantActor`.
    Tenant,
    /// `SessionActor`.
    Session,
    /// `ShareActor`.
    Share,
    /// `ConnectedAccountActor`.
    ConnectedAccount,
}

impl ActorKind {
    /// Name used in hashing, metrics and the internal protocol.
    pub fn as_str(self) -> &'static str {
        match self {
            ActorKind::Tenant => "tenant",
            ActorKind::Session => "session",
            ActorKind::Share => "share",
            ActorKind::ConnectedAccount => "connected_account",
        }
    }
}

/// Rendezvous weight of `node_id` for `(kind, key)`: stable across processes and versions.
fn weight(kind: ActorKind, key: &str, node_id: &str) -> u64 {
    let mut hasher = Sha256::new();
    for part in [kind.as_str(), key, node_id] {
        hasher.update((part.len() as u64).to_le_bytes());
        hasher.update(part.as_bytes());
    }
    let digest = hasher.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_le_bytes(first)
}

/// The member with the highest weight for `(kind, key)`.
pub fn place<'a>(
    kind: ActorKind,
    key: &str,
    members: impl IntoIterator<Item = &'a Member>,
) -> Option<&'a Member> {
    members
        .into_iter()
        .max_by_key(|member| (weight(kind, key, &member.node_id), member.node_id.as_str()))
}

/// A shared, updatable view of the membership.
#[derive(Debug, Clone)]
pub struct MembershipView {
    receiver: watch::Receiver<Arc<Membership>>,
}

/// The writing side of a [`MembershipView`], held by the gossip wiring.
#[derive(Debug)]
pub struct MembershipPublisher {
    sender: watch::Sender<Arc<Membership>>,
}

impl MembershipView {
    /// A view and its publisher, starting from `initial`.
    pub fn new(initial: Membership) -> (MembershipPublisher, MembershipView) {
        let (sender, receiver) = watch::channel(Arc::new(initial));
        (MembershipPublisher { sender }, MembershipView { receiver })
    }

    /// The current membership.
    pub fn current(&self) -> Arc<Membership> {
        self.receiver.borrow().clone()
    }

    /// A receiver that reports changes after the current membership.
    pub fn subscribe(&self) -> watch::Receiver<Arc<Membership>> {
        let mut receiver = self.receiver.clone();
        // A clone starts from the original's seen version, which may be far behind.
        receiver.borrow_and_update();
        receiver
    }

    /// Waits until the membership changes or `timeout` passes.
    pub async fn changed_within(&self, timeout: std::time::Duration) {
        let mut receiver = self.subscribe();
        let _ = tokio::time::timeout(timeout, receiver.changed()).await;
    }
}

impl MembershipPublisher {
    /// Publishes a new membership; returns whether it differs from the last one.
    pub fn publish(&self, membership: Membership) -> bool {
        self.sender.send_if_modified(|current| {
            if **current == membership {
                false
            } else {
                *current = Arc::new(membership);
                true
            }
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::collections::HashMap;

    fn member(id: &str) -> Member {
        Member {
            node_id: id.to_owned(),
            generation: 1,
            grpc_addr: String::new(),
            http_addr: String::new(),
            status: MemberStatus::Serving,
            actors: Vec::new(),
        }
    }

    fn keys() -> Vec<String> {
        (0..10_000)
            .map(|index| format!("tenant/{index:05}"))
            .collect()
    }

    fn owners(members: &[Member]) -> HashMap<String, String> {
        keys()
            .into_iter()
            .map(|key| {
                let owner = place(ActorKind::Session, &key, members)
                    .unwrap()
                    .node_id
                    .clone();
                (key, owner)
            })
            .collect()
    }

    #[test]
    fn ten_thousand_keys_spread_over_five_nodes_within_fifteen_percent() {
        let members: Vec<_> = ["a", "b", "c", "d", "e"].into_iter().map(member).collect();
        let mut counts: HashMap<String, usize> = HashMap::new();
        for owner in owners(&members).into_values() {
            *counts.entry(owner).or_default() += 1;
        }
        assert_eq!(counts.len(), 5);
        for (node, count) in counts {
            let deviation = (count as f64 - 2000.0).abs() / 2000.0;
            assert!(deviation <= 0.15, "{node} owns {count} keys");
        }
    }

    #[test]
    fn a_join_moves_only_about_one_in_n_keys_and_only_to_the_new_node() {
        let four: Vec<_> = ["a", "b", "c", "d"].into_iter().map(member).collect();
        let mut five = four.clone();
        five.push(member("e"));
        let before = owners(&four);
        let after = owners(&five);
        let moved: Vec<_> = keys()
            .into_iter()
            .filter(|key| before[key] != after[key])
            .collect();
        assert!(
            moved.iter().all(|key| after[key] == "e"),
            "keys moved between old nodes"
        );
        let share = moved.len() as f64 / 10_000.0;
        assert!((0.15..=0.25).contains(&share), "moved {share}");
    }

    #[test]
    fn a_leave_moves_only_the_leavers_keys() {
        let five: Vec<_> = ["a", "b", "c", "d", "e"].into_iter().map(member).collect();
        let four: Vec<_> = five.iter().filter(|m| m.node_id != "c").cloned().collect();
        let before = owners(&five);
        let after = owners(&four);
        for key in keys() {
            if before[&key] != "c" {
                assert_eq!(before[&key], after[&key]);
            }
        }
    }

    #[test]
    fn only_serving_members_own_and_no_members_means_local() {
        let mut membership = Membership::single("a");
        assert!(membership.is_local(ActorKind::Tenant, "acme"));
        let mut leaving = member("b");
        leaving.status = MemberStatus::Leaving;
        membership.members = vec![member("a"), leaving];
        for key in keys().iter().take(100) {
            assert!(membership.is_local(ActorKind::Session, key));
        }
    }

    #[test]
    fn subscribers_see_only_changes_after_they_subscribe() {
        let (publisher, view) = MembershipView::new(Membership::single("a"));
        assert!(publisher.publish(Membership {
            self_id: "a".to_owned(),
            members: vec![member("a")],
        }));
        // A change published before subscribing is not reported again (no busy loops).
        let changes = view.subscribe();
        assert!(!changes.has_changed().unwrap());
        assert!(
            !publisher.publish(view.current().as_ref().clone()),
            "same membership"
        );
        assert!(!changes.has_changed().unwrap());
        assert!(publisher.publish(Membership {
            self_id: "a".to_owned(),
            members: vec![member("a"), member("b")],
        }));
        assert!(changes.has_changed().unwrap());
    }

    #[test]
    fn placement_depends_on_kind() {
        let members: Vec<_> = ["a", "b", "c"].into_iter().map(member).collect();
        let differs = keys().iter().take(200).any(|key| {
            place(ActorKind::Tenant, key, &members).unwrap().node_id
                != place(ActorKind::Session, key, &members).unwrap().node_id
        });
        assert!(differs);
    }
}
