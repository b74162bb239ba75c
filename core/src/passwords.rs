//! Passwords: Argon2id with the argon2 crate's recommended parameters, and
//! the policy every password must meet.

use std::sync::LazyLock;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use rand::RngCore;

pub const MIN_CHARS: usize = 8;
pub const MAX_CHARS: usize = 128;

/// Why a password is not acceptable.
pub fn policy_violation(password: &str) -> Option<String> {
    let chars = password.chars().count();
    if chars < MIN_CHARS {
        return Some(format!("password must be at least {MIN_CHARS} characters"));
    }
    if chars > MAX_CHARS {
        return Some(format!("password must be at most {MAX_CHARS} characters"));
    }
    if password.trim().is_empty() {
        return Some("password must not be blank".to_owned());
    }
    None
}

/// Hashes a password (PHC string). Slow on purpose: call it off the async
/// threads (`tokio::task::spawn_blocking`).
pub fn hash(password: &str) -> String {
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).expect("16 bytes is a valid salt");
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .expect("Argon2 hashes any password with default parameters")
        .to_string()
}

/// A hash of no one's password, verified against when the address is
/// unknown, so a refused login costs the same either way.
static DECOY: LazyLock<String> = LazyLock::new(|| hash("decoy password for unknown users"));

/// Checks `password` against `stored`, or against the decoy when there is
/// no stored hash; the work is the same.
pub fn verify(password: &str, stored: Option<&str>) -> bool {
    let matched = |phc: &str| {
        PasswordHash::new(phc)
            .map(|parsed| {
                Argon2::default()
                    .verify_password(password.as_bytes(), &parsed)
                    .is_ok()
            })
            .unwrap_or(false)
    };
    match stored {
        Some(phc) => matched(phc),
        None => {
            matched(&DECOY);
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_only_the_right_password() {
        let stored = hash("correct horse");
        assert!(stored.starts_with("$argon2id$"));
        assert!(verify("correct horse", Some(&stored)));
        assert!(!verify("wrong horse", Some(&stored)));
        assert!(!verify("correct horse", None));
        assert_ne!(hash("correct horse"), stored, "salted");
    }

    #[test]
    fn the_policy_bounds_length() {
        assert!(policy_violation("1234567").is_some());
        assert!(policy_violation("12345678").is_none());
        assert!(policy_violation(&"x".repeat(128)).is_none());
        assert!(policy_violation(&"x".repeat(129)).is_some());
        assert!(policy_violation("         ").is_some());
    }
}
