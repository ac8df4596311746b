//! A person's membership of a fixed set of Entra ID groups: the groups `[[rules]]` name
//! (`match.groups`, read by intake before the rules decide) and the users file's `delegate_group`s
//! (read by the station when a delegate signs in). `GET /groups/{id}` says whether each group
//! exists, and one `POST /users/{upn}/checkMemberGroups` (transitive, at most 20 ids a call) which of
//! them the person is in.
//!
//! Both are cached with a bounded size: memberships for [`MEMBERSHIP_CACHE`] per owner (at most
//! [`MEMBERSHIP_CACHE_SIZE`] owners), a group's existence for [`GROUP_CACHE`], so a burst of jobs
//! from one person costs one call, and a membership change is seen within minutes. A group that does
//! not exist, or a membership Graph cannot tell, is not guessed: [`Membership`] says so, and the rule
//! that names the group holds the job with the reason in the audit log.

use std::sync::Arc;

use time::Duration;

use crate::cache::{Fetch, TtlCache};
use crate::clock::SharedClock;
use crate::graph::GraphClient;
use crate::job::Membership;

/// How long an owner's memberships are kept.
pub const MEMBERSHIP_CACHE: Duration = Duration::minutes(5);

/// How many owners' memberships are kept at most.
pub const MEMBERSHIP_CACHE_SIZE: usize = 10_000;

/// How long a group's existence is kept.
pub const GROUP_CACHE: Duration = Duration::minutes(10);

/// Reads people's memberships of a set of groups, cached. Cheap to clone.
#[derive(Debug, Clone)]
pub struct GroupLookup {
    groups: Arc<Vec<String>>,
    exists: Arc<TtlCache<bool>>,
    members: Arc<TtlCache<Vec<String>>>,
}

impl GroupLookup {
    /// A lookup of the memberships of `groups` (object ids, lower-case).
    pub fn new(graph: GraphClient, clock: SharedClock, groups: Vec<String>) -> Self {
        let groups = Arc::new(groups);
        let exists_graph = graph.clone();
        let fetch_exists: Fetch<bool> = Arc::new(move |group: String| {
            let graph = exists_graph.clone();
            Box::pin(async move { Ok(graph.get_group(&group).await?.is_some()) })
        });
        let exists = Arc::new(
            TtlCache::new("group", GROUP_CACHE, clock.clone(), fetch_exists)
                .with_capacity(groups.len().max(1)),
        );
        let (named, known) = (Arc::clone(&groups), Arc::clone(&exists));
        let fetch_members: Fetch<Vec<String>> = Arc::new(move |upn: String| {
            let (graph, named, known) = (graph.clone(), Arc::clone(&named), Arc::clone(&known));
            Box::pin(async move {
                // Only groups that exist are asked about: Graph does not say what checkMemberGroups
                // does with an id that names nothing.
                let mut present = Vec::with_capacity(named.len());
                for group in named.iter() {
                    if known.get(group).await? {
                        present.push(group.clone());
                    }
                }
                if present.is_empty() {
                    return Ok(Vec::new());
                }
                let ids = graph.check_member_groups(&upn, &present).await?;
                Ok(ids.into_iter().map(|id| id.to_lowercase()).collect())
            })
        });
        let members = Arc::new(
            TtlCache::new("group membership", MEMBERSHIP_CACHE, clock, fetch_members)
                .with_capacity(MEMBERSHIP_CACHE_SIZE),
        );
        Self {
            groups,
            exists,
            members,
        }
    }

    /// What Entra ID says about `upn`'s membership of the named groups.
    pub async fn membership(&self, upn: &str) -> Membership {
        let mut membership = Membership::default();
        for group in self.groups.iter() {
            match self.exists.get(group).await {
                Ok(true) => {}
                Ok(false) => {
                    tracing::warn!(group = %group, "an Entra ID group named in the configuration or the users file does not exist");
                    membership.missing.push(group.clone());
                }
                Err(error) => {
                    membership.unavailable = Some(error.to_string());
                    return membership;
                }
            }
        }
        match self.members.get(&upn.trim().to_lowercase()).await {
            Ok(ids) => membership.member_of = ids,
            Err(error) => membership.unavailable = Some(error.to_string()),
        }
        membership
    }
}
