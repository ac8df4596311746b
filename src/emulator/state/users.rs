//! The emulated directory: users as `GET /users?$filter=…` finds them and as the owners of jobs, and
//! security groups for `POST /users/{id}/checkMemberGroups` and `GET /groups/{id}`.
//!
//! As documented: `checkMemberGroups` takes `{"groupIds": [...]}` (at most 20), is transitive (a
//! member of a group that is a member of a listed group is a member of it), and answers the listed
//! ids the user is a member of as `{"value": [...]}`; `{id}` is the user's object id or UPN. Where
//! Microsoft is silent: an id in `groupIds` that names no group is left out of the answer like a
//! group the user is not in (the daemon checks that a group exists with `GET /groups/{id}`, which
//! answers 404 `Request_ResourceNotFound`), and a `groupIds` entry that is not a GUID is 400.

use super::*;

/// A user in the emulated directory, for `GET /users?$filter=…` and as job owners.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct DirectoryUser {
    /// Object id; generated when empty.
    #[serde(default)]
    pub id: String,
    /// Sign-in name, e.g. `adele@contoso.example`.
    pub user_principal_name: String,
    /// Display name.
    pub display_name: String,
    /// HR employee id (badge lookups), if any.
    #[serde(default)]
    pub employee_id: Option<String>,
}

/// A security group in the emulated directory (control API `POST /_emulator/groups`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct DirectoryGroup {
    /// Object id; generated when empty.
    #[serde(default)]
    pub id: String,
    /// Display name.
    pub display_name: String,
    /// Direct members: users' UPNs or object ids, or other groups' ids (nested groups).
    #[serde(default)]
    pub members: Vec<String>,
}

/// The most group ids one `checkMemberGroups` call takes (Microsoft's documented limit).
pub const MAX_CHECKED_GROUPS: usize = 20;

impl World {
    /// Adds or replaces a group by id (control API).
    pub fn upsert_group(&mut self, mut group: DirectoryGroup) -> DirectoryGroup {
        if group.id.is_empty() {
            group.id = new_id();
        }
        self.groups.retain(|g| g.id != group.id);
        self.groups.push(group.clone());
        group
    }

    /// `GET /groups/{id}`.
    pub fn get_group(&self, root: &str, id: &str) -> Result<Value, GraphError> {
        let group = self
            .groups
            .iter()
            .find(|g| g.id.eq_ignore_ascii_case(id))
            .ok_or_else(|| {
                GraphError::new(
                    axum::http::StatusCode::NOT_FOUND,
                    "Request_ResourceNotFound",
                    format!("Resource '{id}' does not exist or one of its queried reference-property objects are not present."),
                )
            })?;
        Ok(json!({
            "@odata.context": format!("{root}/$metadata#groups/$entity"),
            "id": group.id,
            "displayName": group.display_name,
            "securityEnabled": true,
            "mailEnabled": false,
            "groupTypes": [],
        }))
    }

    /// `POST /users/{id}/checkMemberGroups`.
    pub fn check_member_groups(
        &self,
        root: &str,
        user: &str,
        body: &Value,
    ) -> Result<Value, GraphError> {
        let user = self
            .users
            .iter()
            .find(|u| u.id.eq_ignore_ascii_case(user) || u.user_principal_name.eq_ignore_ascii_case(user))
            .ok_or_else(|| {
                GraphError::new(
                    axum::http::StatusCode::NOT_FOUND,
                    "Request_ResourceNotFound",
                    format!("Resource '{user}' does not exist or one of its queried reference-property objects are not present."),
                )
            })?;
        let ids = body
            .get("groupIds")
            .and_then(Value::as_array)
            .ok_or_else(|| {
                GraphError::invalid_request(
                    "The request body needs groupIds, a collection of strings.",
                )
            })?;
        if ids.len() > MAX_CHECKED_GROUPS {
            return Err(GraphError::invalid_request(format!(
                "groupIds holds {} ids; at most {MAX_CHECKED_GROUPS} are checked per request.",
                ids.len()
            )));
        }
        let mut member_of = Vec::new();
        for id in ids {
            let id = id
                .as_str()
                .filter(|id| uuid::Uuid::parse_str(id).is_ok())
                .ok_or_else(|| {
                    GraphError::invalid_request(format!("Invalid GUID in groupIds: {id}"))
                })?;
            if self.is_member(&user.id, &user.user_principal_name, id, 0) {
                member_of.push(json!(id));
            }
        }
        Ok(json!({
            "@odata.context": format!("{root}/$metadata#Collection(Edm.String)"),
            "value": member_of,
        }))
    }

    /// Whether the user (by object id or UPN) is in `group`, directly or through nested groups.
    fn is_member(&self, user_id: &str, upn: &str, group: &str, depth: usize) -> bool {
        // Nesting deeper than this is a loop in the test's world, not a membership.
        if depth > 16 {
            return false;
        }
        let Some(group) = self
            .groups
            .iter()
            .find(|g| g.id.eq_ignore_ascii_case(group))
        else {
            return false;
        };
        group.members.iter().any(|member| {
            member.eq_ignore_ascii_case(user_id)
                || member.eq_ignore_ascii_case(upn)
                || self.is_member(user_id, upn, member, depth + 1)
        })
    }

    /// `GET /users?$filter=employeeId eq '…'` (or `userPrincipalName eq '…'`).
    pub fn list_users(&self, root: &str, filter: Option<&str>) -> Result<Value, GraphError> {
        let Some(filter) = filter else {
            return Err(GraphError::invalid_request(
                "The emulator only supports GET /users with $filter=employeeId eq '…' or userPrincipalName eq '…'.",
            ));
        };
        let users: Vec<&DirectoryUser> = if let Some(id) = parse_eq_filter(filter, "employeeId") {
            self.users
                .iter()
                .filter(|u| u.employee_id.as_deref() == Some(id.as_str()))
                .collect()
        } else if let Some(upn) = parse_eq_filter(filter, "userPrincipalName") {
            self.users
                .iter()
                .filter(|u| u.user_principal_name.eq_ignore_ascii_case(&upn))
                .collect()
        } else {
            return Err(GraphError::invalid_request(format!(
                "Unsupported or invalid filter clause: {filter}"
            )));
        };
        let value: Vec<Value> = users
            .iter()
            .map(|u| json!({"id": u.id, "displayName": u.display_name, "userPrincipalName": u.user_principal_name, "employeeId": u.employee_id}))
            .collect();
        Ok(json!({"@odata.context": format!("{root}/$metadata#users"), "value": value}))
    }

    /// Adds or replaces a directory user (control API).
    pub fn upsert_user(&mut self, mut user: DirectoryUser) -> DirectoryUser {
        if user.id.is_empty() {
            user.id = new_id();
        }
        self.users.retain(|u| {
            !u.user_principal_name
                .eq_ignore_ascii_case(&user.user_principal_name)
        });
        self.users.push(user.clone());
        user
    }
}
