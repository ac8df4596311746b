//! Small, careful helpers for secrets: random tokens and constant-time comparison.
//!
//! Station keys, the admin key, session tokens and the webhook `clientState` are all compared
//! here, so that how long a comparison takes never tells an attacker how much of a guess was right.

use base64::Engine as _;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Compares two secrets in time independent of where they differ and of their lengths.
///
/// Both sides are hashed first, so the comparison always runs over 32 bytes: a plain
/// `ConstantTimeEq` on slices returns early when the lengths differ, which leaks the length.
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    let a = Sha256::digest(a.as_bytes());
    let b = Sha256::digest(b.as_bytes());
    a.ct_eq(&b).into()
}

/// A fresh random token of 32 bytes (256 bits), URL-safe base64 without padding.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    // The thread RNG is a CSPRNG seeded from the operating system.
    rand::fill(&mut bytes[..]);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// The SHA-256 of a token, hex-encoded: what is kept in memory or on disk instead of the token.
pub fn token_digest(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_secrets_compare_equal_and_different_ones_do_not() {
        assert!(constant_time_eq("station-key-123", "station-key-123"));
        assert!(!constant_time_eq("station-key-123", "station-key-124"));
        assert!(!constant_time_eq("station-key-123", "station-key-1234"));
        assert!(!constant_time_eq("", "x"));
    }

    #[test]
    fn random_tokens_are_long_and_distinct() {
        let a = random_token();
        let b = random_token();
        assert_eq!(a.len(), 43);
        assert_ne!(a, b);
    }

    #[test]
    fn a_token_digest_is_stable_and_hides_the_token() {
        let d = token_digest("abc");
        assert_eq!(d, token_digest("abc"));
        assert_eq!(d.len(), 64);
        assert!(!d.contains("abc"));
    }
}
