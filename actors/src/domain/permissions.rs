//! The permission graph: permissions that contain other permissions (transitively, no
//! cycles), granted tenant-wide or within a team, and checked against a cached closure.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use gatehouse_storage::{RangeOptions, Transaction, codec};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::domain::keyspace;
use crate::error::{DomainError, DomainResult};

/// Built-in team permissions that the domain itself checks.
pub mod system {
    /// Read a team's member list.
    pub const READ_MEMBERS: &str = "$read_members";
    /// Change a team's profile.
    pub const UPDATE_TEAM: &str = "$update_team";
    /// Delete a team.
    pub const DELETE_TEAM: &str = "$delete_team";
    /// Invite members.
    pub const INVITE_MEMBERS: &str = "$invite_members";
    /// Remove members.
    pub const REMOVE_MEMBERS: &str = "$remove_members";
    /// Grant and revoke team permissions.
    pub const MANAGE_PERMISSIONS: &str = "$manage_permissions";
    /// Create, list and revoke the team's API keys.
    pub const MANAGE_API_KEYS: &str = "$manage_api_keys";
    /// Every system permission.
    pub const ALL: &[&str] = &[
        READ_MEMBERS,
        UPDATE_TEAM,
        DELETE_TEAM,
        INVITE_MEMBERS,
        REMOVE_MEMBERS,
        MANAGE_PERMISSIONS,
        MANAGE_API_KEYS,
    ];
}

/// Default team role for members.
pub const TEAM_MEMBER: &str = "team_member";
/// Default team role for creators.
pub const TEAM_ADMIN: &str = "team_admin";

/// Where a permission can be granted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PermissionScope {
    /// Granted tenant-wide.
    Tenant,
    /// Granted within one team.
    Team,
}

/// A permission and the permissions it contains.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PermissionDefinition {
    /// Id, e.g. `read:invoices` or `team_admin`.
    pub permission_id: String,
    /// Human description.
    pub description: String,
    /// Directly contained permissions.
    pub contains: Vec<String>,
    /// Where it may be granted.
    pub scope: PermissionScope,
}

/// The definitions every tenant starts with.
pub fn default_definitions() -> Vec<PermissionDefinition> {
    vec![
        PermissionDefinition {
            permission_id: TEAM_MEMBER.to_owned(),
            description: "Member of a team".to_owned(),
            contains: vec![system::READ_MEMBERS.to_owned()],
            scope: PermissionScope::Team,
        },
        PermissionDefinition {
            permission_id: TEAM_ADMIN.to_owned(),
            description: "Administrator of a team".to_owned(),
            contains: [TEAM_MEMBER]
                .into_iter()
                .chain(system::ALL.iter().copied())
                .map(str::to_owned)
                .collect(),
            scope: PermissionScope::Team,
        },
    ]
}

/// Checks a permission id: 1..=100 of `[a-z0-9_:.-]` (the `$` prefix is reserved).
pub fn validate_permission_id(field: &'static str, id: &str) -> DomainResult<()> {
    let valid = (1..=100).contains(&id.len())
        && id.chars().all(|c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | ':' | '.' | '-')
        });
    if valid {
        Ok(())
    } else {
        Err(DomainError::invalid(
            field,
            "must be 1 to 100 characters of a-z, 0-9, _ : . -",
        ))
    }
}

/// A tenant's definitions with every permission's transitive closure precomputed.
#[derive(Debug, Clone, Default)]
pub struct PermissionGraph {
    definitions: BTreeMap<String, PermissionDefinition>,
    closures: HashMap<String, BTreeSet<String>>,
}

impl PermissionGraph {
    /// Builds the graph, rejecting unknown references and cycles.
    pub fn new(definitions: Vec<PermissionDefinition>) -> DomainResult<PermissionGraph> {
        let definitions: BTreeMap<String, PermissionDefinition> = definitions
            .into_iter()
            .map(|definition| (definition.permission_id.clone(), definition))
            .collect();
        for definition in definitions.values() {
            for contained in &definition.contains {
                if !definitions.contains_key(contained)
                    && !system::ALL.contains(&contained.as_str())
                {
                    return Err(DomainError::invalid(
                        "contains",
                        format!("unknown permission {contained}"),
                    ));
                }
            }
        }
        let mut closures = HashMap::new();
        for id in definitions.keys() {
            let mut closure = BTreeSet::new();
            let mut path = Vec::new();
            collect(&definitions, id, &mut closure, &mut path)?;
            closures.insert(id.clone(), closure);
        }
        for id in system::ALL {
            closures.insert((*id).to_owned(), BTreeSet::from([(*id).to_owned()]));
        }
        Ok(PermissionGraph {
            definitions,
            closures,
        })
    }

    /// Every definition.
    pub fn definitions(&self) -> impl Iterator<Item = &PermissionDefinition> {
        self.definitions.values()
    }

    /// A definition by id.
    pub fn get(&self, id: &str) -> Option<&PermissionDefinition> {
        self.definitions.get(id)
    }

    /// Whether `id` names a defined or system permission.
    pub fn knows(&self, id: &str) -> bool {
        self.closures.contains_key(id)
    }

    /// Everything `granted` implies, itself included.
    pub fn closure(&self, granted: &str) -> Option<&BTreeSet<String>> {
        self.closures.get(granted)
    }

    /// Whether holding `granted` implies `wanted`.
    pub fn implies(&self, granted: &str, wanted: &str) -> bool {
        self.closures
            .get(granted)
            .is_some_and(|closure| closure.contains(wanted))
    }

    /// The graph with `definition` added or replaced; fails on cycles or unknown references.
    pub fn with(&self, definition: PermissionDefinition) -> DomainResult<PermissionGraph> {
        let mut definitions: Vec<_> = self
            .definitions
            .values()
            .filter(|existing| existing.permission_id != definition.permission_id)
            .cloned()
            .collect();
        definitions.push(definition);
        PermissionGraph::new(definitions)
    }
}

fn collect(
    definitions: &BTreeMap<String, PermissionDefinition>,
    id: &str,
    closure: &mut BTreeSet<String>,
    path: &mut Vec<String>,
) -> DomainResult<()> {
    if path.iter().any(|on_path| on_path == id) {
        path.push(id.to_owned());
        return Err(DomainError::invalid(
            "contains",
            format!("permission cycle: {}", path.join(" -> ")),
        ));
    }
    if !closure.insert(id.to_owned()) {
        return Ok(());
    }
    if let Some(definition) = definitions.get(id) {
        path.push(id.to_owned());
        for contained in &definition.contains {
            collect(definitions, contained, closure, path)?;
        }
        path.pop();
    }
    Ok(())
}

/// Reads every definition of a tenant.
pub async fn read_definitions(
    tx: &Transaction,
    tenant: &str,
) -> DomainResult<Vec<PermissionDefinition>> {
    let (begin, end) = keyspace::permissions_subspace(tenant).range();
    tx.get_range(&begin, &end, RangeOptions::default())
        .await?
        .into_iter()
        .map(|(_, value)| codec::decode(&value).map_err(DomainError::from))
        .collect()
}

/// Stores a definition (the caller validated it against the graph).
pub fn write_definition(
    tx: &Transaction,
    tenant: &str,
    definition: &PermissionDefinition,
) -> DomainResult<()> {
    tx.set(
        &keyspace::permission(tenant, &definition.permission_id),
        &codec::encode(definition)?,
    )?;
    Ok(())
}

/// Removes a definition, its grants, and references to it from other definitions.
pub async fn delete_definition(
    tx: &Transaction,
    tenant: &str,
    permission_id: &str,
) -> DomainResult<()> {
    let definitions = read_definitions(tx, tenant).await?;
    if !definitions
        .iter()
        .any(|definition| definition.permission_id == permission_id)
    {
        return Err(DomainError::PermissionNotFound);
    }
    for mut definition in definitions {
        if definition
            .contains
            .iter()
            .any(|contained| contained == permission_id)
        {
            definition
                .contains
                .retain(|contained| contained != permission_id);
            write_definition(tx, tenant, &definition)?;
        }
    }
    let subspace = keyspace::grants_by_permission_subspace(tenant, permission_id);
    let (begin, end) = subspace.range();
    for (key, _) in tx.get_range(&begin, &end, RangeOptions::default()).await? {
        let (scope, user_id): (String, Uuid) = subspace
            .unpack(&key)
            .map_err(|error| DomainError::Internal(format!("grant index key: {error}")))?;
        tx.clear(&keyspace::grant(tenant, &scope, user_id, permission_id))?;
    }
    tx.clear_range(&begin, &end)?;
    tx.clear(&keyspace::permission(tenant, permission_id))?;
    Ok(())
}

/// The grant scope key: `""` for tenant-wide, the team id otherwise.
pub fn scope_key(team_id: Option<Uuid>) -> String {
    team_id.map(|team| team.to_string()).unwrap_or_default()
}

/// Grants `permission_id`; returns `false` if it was already granted.
pub async fn grant(
    tx: &Transaction,
    tenant: &str,
    team_id: Option<Uuid>,
    user_id: Uuid,
    permission_id: &str,
) -> DomainResult<bool> {
    let scope = scope_key(team_id);
    let key = keyspace::grant(tenant, &scope, user_id, permission_id);
    if tx.get(&key).await?.is_some() {
        return Ok(false);
    }
    tx.set(&key, b"")?;
    tx.set(
        &keyspace::grant_by_permission(tenant, permission_id, &scope, user_id),
        b"",
    )?;
    Ok(true)
}

/// Revokes a direct grant; returns `false` if there was none.
pub async fn revoke(
    tx: &Transaction,
    tenant: &str,
    team_id: Option<Uuid>,
    user_id: Uuid,
    permission_id: &str,
) -> DomainResult<bool> {
    let scope = scope_key(team_id);
    let key = keyspace::grant(tenant, &scope, user_id, permission_id);
    if tx.get(&key).await?.is_none() {
        return Ok(false);
    }
    tx.clear(&key)?;
    tx.clear(&keyspace::grant_by_permission(
        tenant,
        permission_id,
        &scope,
        user_id,
    ))?;
    Ok(true)
}

/// A user's direct grants in a scope.
pub async fn direct_grants(
    tx: &Transaction,
    tenant: &str,
    team_id: Option<Uuid>,
    user_id: Uuid,
) -> DomainResult<Vec<String>> {
    let subspace = keyspace::user_grants_subspace(tenant, &scope_key(team_id), user_id);
    let (begin, end) = subspace.range();
    tx.get_range(&begin, &end, RangeOptions::default())
        .await?
        .into_iter()
        .map(|(key, _)| {
            subspace
                .unpack::<(String,)>(&key)
                .map(|(permission,)| permission)
                .map_err(|error| DomainError::Internal(format!("grant key: {error}")))
        })
        .collect()
}

/// Removes every grant a user holds in a team (when they leave it).
pub async fn clear_team_grants(
    tx: &Transaction,
    tenant: &str,
    team_id: Uuid,
    user_id: Uuid,
) -> DomainResult<()> {
    for permission in direct_grants(tx, tenant, Some(team_id), user_id).await? {
        revoke(tx, tenant, Some(team_id), user_id, &permission).await?;
    }
    Ok(())
}

/// Everything a user holds in a scope, through the graph.
pub fn effective(graph: &PermissionGraph, direct: &[String]) -> BTreeSet<String> {
    direct
        .iter()
        .filter_map(|granted| graph.closure(granted))
        .flatten()
        .cloned()
        .collect()
}

/// Whether the direct grants imply `wanted`.
pub fn holds(graph: &PermissionGraph, direct: &[String], wanted: &str) -> bool {
    direct.iter().any(|granted| graph.implies(granted, wanted))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn definition(id: &str, contains: &[&str]) -> PermissionDefinition {
        PermissionDefinition {
            permission_id: id.to_owned(),
            description: String::new(),
            contains: contains.iter().map(|c| (*c).to_owned()).collect(),
            scope: PermissionScope::Tenant,
        }
    }

    #[test]
    fn containment_is_transitive() {
        let graph = PermissionGraph::new(vec![
            definition("admin", &["editor"]),
            definition("editor", &["viewer"]),
            definition("viewer", &[]),
        ])
        .unwrap();
        assert!(graph.implies("admin", "viewer"));
        assert!(graph.implies("editor", "viewer"));
        assert!(!graph.implies("viewer", "editor"));
        assert_eq!(
            effective(&graph, &["editor".to_owned()]),
            BTreeSet::from(["editor".to_owned(), "viewer".to_owned()])
        );
    }

    #[test]
    fn cycles_and_unknown_references_are_rejected() {
        let graph =
            PermissionGraph::new(vec![definition("a", &["b"]), definition("b", &[])]).unwrap();
        let cycle = graph.with(definition("b", &["a"])).unwrap_err();
        assert!(cycle.to_string().contains("cycle"), "{cycle}");
        assert!(
            graph.with(definition("c", &["c"])).is_err(),
            "self-containment is a cycle"
        );
        assert!(graph.with(definition("d", &["missing"])).is_err());
    }

    #[test]
    fn defaults_give_admins_every_system_permission() {
        let graph = PermissionGraph::new(default_definitions()).unwrap();
        for system in system::ALL {
            assert!(graph.implies(TEAM_ADMIN, system));
        }
        assert!(graph.implies(TEAM_MEMBER, system::READ_MEMBERS));
        assert!(!graph.implies(TEAM_MEMBER, system::INVITE_MEMBERS));
    }

    #[test]
    fn ids_are_validated() {
        assert!(validate_permission_id("id", "read:invoices").is_ok());
        for bad in ["", "$read", "Read", "a b", &"a".repeat(101)] {
            assert!(validate_permission_id("id", bad).is_err(), "{bad}");
        }
    }
}
