//! The emulated directory: users as `GET /users?$filter=…` finds them and as the owners of jobs.

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

impl World {
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
