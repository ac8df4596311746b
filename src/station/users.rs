//! The users file: who may release jobs, their badge card number and their PIN hash.
//!
//! ```toml
//! [[user]]
//! upn = "ada.lovelace@contoso.com"
//! display_name = "Ada Lovelace"
//! card = "0004521337"                      # what the card reader types
//! pin_hash = "$argon2id$v=19$m=19456,t=2,p=1$…"   # from `pullprintd hash-pin`
//! delegates = ["grace.hopper@contoso.com"]   # may see and release Ada's jobs
//! delegate_group = "f448435d-3ca7-4073-8152-a1fd73c0fd09"   # so may this Entra ID group's members
//! ```
//!
//! Invariants after [`UserDirectory::load`]: UPNs and cards are unique (UPNs compared
//! case-insensitively, as Entra ID does), every PIN hash is a valid argon2id PHC string, and every
//! delegate is a UPN other than the person's own (a delegate need not be in the file: someone known
//! by an Entra ID card lookup may be one). PINs are
//! never stored or logged in clear; a PIN check for an unknown user still costs one argon2 run, so the
//! time a sign-in takes does not reveal whether the user exists.

use std::collections::HashMap;
use std::path::Path;

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use serde::Deserialize;

/// One person who may release jobs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// The user principal name, as Graph reports it as the job owner.
    pub upn: String,
    /// The name shown at the station.
    pub display_name: String,
    /// The badge number the card reader types, if the user has a card.
    pub card: Option<String>,
    pin_hash: Option<String>,
}

impl User {
    /// A user known from the directory (Entra ID card lookup): card sign-in only, no PIN.
    pub fn from_directory(upn: String, display_name: String, card: String) -> Self {
        Self {
            upn,
            display_name,
            card: Some(card),
            pin_hash: None,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UsersFile {
    #[serde(default)]
    user: Vec<UserEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UserEntry {
    upn: String,
    display_name: String,
    #[serde(default)]
    card: Option<String>,
    #[serde(default)]
    pin_hash: Option<String>,
    #[serde(default)]
    delegates: Vec<String>,
    #[serde(default)]
    delegate_group: Option<String>,
}

/// A problem with the users file, said so that an administrator can fix it.
#[derive(Debug, thiserror::Error)]
#[error("users file {path}: {problem}")]
pub struct UsersFileError {
    path: String,
    problem: String,
}

/// Everyone who may sign in at a station, indexed by UPN and by card.
#[derive(Debug, Default, Clone)]
pub struct UserDirectory {
    by_upn: HashMap<String, User>,
    by_card: HashMap<String, String>,
    /// Delegate (lower-case UPN) → the people whose jobs they may see and release.
    delegators: HashMap<String, Vec<String>>,
    /// `(group object id, owner UPN)`: the group's members may see and release the owner's jobs.
    delegate_groups: Vec<(String, String)>,
}

/// A PIN hash that no PIN matches, verified against when the user is unknown or has no PIN, so
/// that a failed sign-in always costs the same.
const DECOY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$YWJjZGVmZ2hpamtsbW5vcA$Zmn8yLv8kaAtxwIoovxlLQ9IH+1/zZc4E9Pm8+FmOBU";

impl UserDirectory {
    /// Reads and checks the users file.
    pub fn load(path: &Path) -> Result<Self, UsersFileError> {
        let fail = |problem: String| UsersFileError {
            path: path.display().to_string(),
            problem,
        };
        let text = std::fs::read_to_string(path).map_err(|err| {
            fail(format!(
                "cannot read it: {err}; check [users] file and that the pullprintd user may read it"
            ))
        })?;
        Self::parse(&text).map_err(fail)
    }

    /// Parses the text of a users file.
    pub fn parse(text: &str) -> Result<Self, String> {
        let file: UsersFile =
            toml::from_str(text).map_err(|err| format!("not a valid users file: {err}"))?;
        let mut directory = Self::default();
        for (index, entry) in file.user.into_iter().enumerate() {
            let at = format!("user[{index}]");
            let upn = entry.upn.trim().to_owned();
            if upn.is_empty() || !upn.contains('@') {
                return Err(format!(
                    "{at}: upn `{upn}` is not a user principal name (name@domain)"
                ));
            }
            if let Some(hash) = &entry.pin_hash {
                let parsed = PasswordHash::new(hash).map_err(|err| {
                    format!("{at} ({upn}): pin_hash is not a PHC string ({err}); make one with `pullprintd hash-pin`")
                })?;
                if parsed.algorithm.as_str() != "argon2id" {
                    return Err(format!(
                        "{at} ({upn}): pin_hash uses {}, not argon2id; make one with `pullprintd hash-pin`",
                        parsed.algorithm
                    ));
                }
            }
            let card = entry
                .card
                .map(|c| c.trim().to_owned())
                .filter(|c| !c.is_empty());
            let key = upn.to_lowercase();
            if directory.by_upn.contains_key(&key) {
                return Err(format!("{at}: upn `{upn}` appears twice"));
            }
            for delegate in &entry.delegates {
                let delegate = delegate.trim().to_lowercase();
                if !delegate.contains('@') {
                    return Err(format!(
                        "{at} ({upn}): delegate `{delegate}` is not a user principal name (name@domain)"
                    ));
                }
                if delegate == key {
                    return Err(format!(
                        "{at} ({upn}): a person cannot be their own delegate; remove `{delegate}` from delegates"
                    ));
                }
                let owners = directory.delegators.entry(delegate).or_default();
                if !owners.contains(&upn) {
                    owners.push(upn.clone());
                }
            }
            if let Some(group) = &entry.delegate_group {
                let group = group.trim().to_lowercase();
                if uuid::Uuid::parse_str(&group).is_err() || group.len() != 36 {
                    return Err(format!(
                        "{at} ({upn}): delegate_group `{group}` is not a group's object id; copy it from \
                         Entra admin center → Groups → the group → Object ID"
                    ));
                }
                directory.delegate_groups.push((group, upn.clone()));
            }
            if let Some(card) = &card
                && let Some(other) = directory.by_card.insert(card.clone(), key.clone())
            {
                return Err(format!(
                    "{at}: card `{card}` is also the card of `{other}`; cards must be unique"
                ));
            }
            directory.by_upn.insert(
                key,
                User {
                    upn,
                    display_name: entry.display_name,
                    card,
                    pin_hash: entry.pin_hash,
                },
            );
        }
        Ok(directory)
    }

    /// The user with this card number.
    pub fn by_card(&self, card: &str) -> Option<&User> {
        self.by_card
            .get(card.trim())
            .and_then(|key| self.by_upn.get(key))
    }

    /// The user with this UPN (case-insensitive).
    pub fn by_upn(&self, upn: &str) -> Option<&User> {
        self.by_upn.get(&upn.trim().to_lowercase())
    }

    /// The people who named `upn` their delegate: `upn` may see and release their jobs.
    pub fn delegators_of(&self, upn: &str) -> &[String] {
        self.delegators
            .get(&upn.trim().to_lowercase())
            .map_or(&[], Vec::as_slice)
    }

    /// Every Entra ID group named as a `delegate_group`, once each.
    pub fn delegate_groups(&self) -> Vec<String> {
        let mut groups: Vec<String> = Vec::new();
        for (group, _) in &self.delegate_groups {
            if !groups.contains(group) {
                groups.push(group.clone());
            }
        }
        groups
    }

    /// The people whose `delegate_group` is one of `groups` (the groups a delegate is in).
    pub fn owners_delegating_to(&self, groups: &[String]) -> Vec<String> {
        self.delegate_groups
            .iter()
            .filter(|(group, _)| groups.contains(group))
            .map(|(_, owner)| owner.clone())
            .collect()
    }

    /// How many users there are.
    pub fn len(&self) -> usize {
        self.by_upn.len()
    }

    /// Whether there are no users.
    pub fn is_empty(&self) -> bool {
        self.by_upn.is_empty()
    }

    /// Checks a UPN + PIN sign-in. CPU-heavy (argon2): call it from `spawn_blocking`.
    pub fn verify_pin(&self, upn: &str, pin: &str) -> Option<&User> {
        let user = self.by_upn(upn);
        let hash = user
            .and_then(|u| u.pin_hash.as_deref())
            .unwrap_or(DECOY_HASH);
        let matches = PasswordHash::new(hash).is_ok_and(|parsed| {
            Argon2::default()
                .verify_password(pin.as_bytes(), &parsed)
                .is_ok()
        });
        match user {
            Some(u) if matches && u.pin_hash.is_some() => Some(u),
            _ => None,
        }
    }
}

/// Hashes a PIN into an argon2id PHC string for the users file.
pub fn hash_pin(pin: &str) -> Result<String, String> {
    let pin = pin.trim_end_matches(['\r', '\n']);
    if pin.chars().count() < 4 {
        return Err("a PIN needs at least 4 characters".to_owned());
    }
    Argon2::default()
        .hash_password(pin.as_bytes())
        .map(|hash| hash.to_string())
        .map_err(|err| format!("cannot hash the PIN: {err}"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn delegates_are_indexed_by_delegate_and_checked() {
        let users = UserDirectory::parse(
            r#"
            [[user]]
            upn = "ceo@contoso.com"
            display_name = "The CEO"
            delegates = ["Assistant@contoso.com"]
            [[user]]
            upn = "cfo@contoso.com"
            display_name = "The CFO"
            delegates = ["assistant@contoso.com"]
            "#,
        )
        .unwrap();
        assert_eq!(
            users.delegators_of("ASSISTANT@contoso.com"),
            ["ceo@contoso.com", "cfo@contoso.com"]
        );
        assert!(users.delegators_of("ceo@contoso.com").is_empty());
        let own = UserDirectory::parse(
            "[[user]]\nupn = \"a@b.c\"\ndisplay_name = \"A\"\ndelegates = [\"A@b.c\"]\n",
        )
        .unwrap_err();
        assert!(own.contains("their own delegate"), "{own}");
        let shape = UserDirectory::parse(
            "[[user]]\nupn = \"a@b.c\"\ndisplay_name = \"A\"\ndelegates = [\"bob\"]\n",
        )
        .unwrap_err();
        assert!(shape.contains("not a user principal name"), "{shape}");
        let grouped = UserDirectory::parse(
            "[[user]]\nupn = \"ceo@b.c\"\ndisplay_name = \"C\"\n\
             delegate_group = \"3F2E1D0C-9B8A-4765-A432-10FEDCBA9876\"\n",
        )
        .unwrap();
        let group = "3f2e1d0c-9b8a-4765-a432-10fedcba9876".to_owned();
        assert_eq!(grouped.delegate_groups(), std::slice::from_ref(&group));
        assert_eq!(grouped.owners_delegating_to(&[group]), ["ceo@b.c"]);
        let bad = UserDirectory::parse(
            "[[user]]\nupn = \"ceo@b.c\"\ndisplay_name = \"C\"\ndelegate_group = \"Assistants\"\n",
        )
        .unwrap_err();
        assert!(bad.contains("Object ID"), "{bad}");
    }

    fn directory() -> UserDirectory {
        let hash = hash_pin("2468").unwrap();
        UserDirectory::parse(&format!(
            r#"
            [[user]]
            upn = "Ada.Lovelace@contoso.com"
            display_name = "Ada Lovelace"
            card = "0004521337"
            pin_hash = "{hash}"

            [[user]]
            upn = "grace@contoso.com"
            display_name = "Grace Hopper"
            "#
        ))
        .unwrap()
    }

    #[test]
    fn a_user_is_found_by_card_and_by_upn_in_any_case() {
        let d = directory();
        assert_eq!(
            d.by_card(" 0004521337 ").unwrap().display_name,
            "Ada Lovelace"
        );
        assert_eq!(
            d.by_upn("ada.lovelace@CONTOSO.com")
                .unwrap()
                .card
                .as_deref(),
            Some("0004521337")
        );
        assert!(d.by_card("999").is_none());
        assert_eq!(d.len(), 2);
    }

    #[test]
    fn the_right_pin_signs_in_and_a_wrong_one_does_not() {
        let d = directory();
        assert_eq!(
            d.verify_pin("ada.lovelace@contoso.com", "2468")
                .unwrap()
                .upn,
            "Ada.Lovelace@contoso.com"
        );
        assert!(d.verify_pin("ada.lovelace@contoso.com", "2469").is_none());
    }

    #[test]
    fn a_user_without_a_pin_or_an_unknown_user_cannot_sign_in_with_a_pin() {
        let d = directory();
        assert!(d.verify_pin("grace@contoso.com", "").is_none());
        assert!(d.verify_pin("grace@contoso.com", "2468").is_none());
        assert!(d.verify_pin("nobody@contoso.com", "2468").is_none());
    }

    #[test]
    fn the_decoy_hash_is_a_valid_argon2id_string() {
        let parsed = PasswordHash::new(DECOY_HASH).unwrap();
        assert_eq!(parsed.algorithm.as_str(), "argon2id");
    }

    #[test]
    fn duplicate_cards_are_refused_naming_both_users() {
        let e = UserDirectory::parse(
            "[[user]]\nupn=\"a@x\"\ndisplay_name=\"A\"\ncard=\"1\"\n[[user]]\nupn=\"b@x\"\ndisplay_name=\"B\"\ncard=\"1\"\n",
        )
        .unwrap_err();
        assert!(e.contains("card `1`") && e.contains("a@x"), "{e}");
    }

    #[test]
    fn a_pin_hash_that_is_not_argon2id_is_refused_with_the_fix() {
        let e =
            UserDirectory::parse("[[user]]\nupn=\"a@x\"\ndisplay_name=\"A\"\npin_hash=\"1234\"\n")
                .unwrap_err();
        assert!(e.contains("pullprintd hash-pin"), "{e}");
    }

    #[test]
    fn a_short_pin_is_refused_by_hash_pin() {
        assert!(hash_pin("12\n").is_err());
        assert!(hash_pin("1234\n").unwrap().starts_with("$argon2id$"));
    }
}
