//! Secrets handed to callers (API keys, session tokens, email-link tokens).
//! Only their SHA-256 hash is stored; a lookup finds the row by hash and the
//! hashes are compared again in constant time.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use sqlx::PgPool;

use crate::config::{Config, Secret};
use crate::id::TenantId;

/// A freshly minted secret: what the caller sees once, and what we store.
pub struct NewSecret {
    pub plaintext: String,
    pub hash: Vec<u8>,
}

/// What kind of secret a string is; the kind is its visible prefix, so a
/// leaked secret is easy to recognise and to route.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SecretKind {
    ApiKey,
    Session,
}

impl SecretKind {
    fn prefix(self) -> &'static str {
        match self {
            SecretKind::ApiKey => "cnpk",
            SecretKind::Session => "cnps",
        }
    }
}

/// Mints `<kind>_<tenant>_<256 random bits, base64url>`. The tenant id in
/// the clear lets every lookup filter by tenant; it is not a secret.
pub fn mint(kind: SecretKind, tenant_id: TenantId) -> NewSecret {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let plaintext = format!(
        "{}_{}_{}",
        kind.prefix(),
        tenant_id,
        URL_SAFE_NO_PAD.encode(bytes)
    );
    let hash = sha256(plaintext.as_bytes());
    NewSecret { plaintext, hash }
}

/// Splits a presented secret into its kind and tenant without trusting it:
/// the hash lookup decides whether it is real.
pub fn parse(presented: &str) -> Option<(SecretKind, TenantId)> {
    let mut parts = presented.splitn(3, '_');
    let kind = match parts.next()? {
        "cnpk" => SecretKind::ApiKey,
        "cnps" => SecretKind::Session,
        _ => return None,
    };
    let tenant_id = TenantId(parts.next()?.parse().ok()?);
    let rest = parts.next()?;
    (rest.len() == 43).then_some((kind, tenant_id))
}

/// The start of a secret kept in the clear to tell keys apart: the kind,
/// the tenant and the first 8 random characters.
pub fn visible_prefix(secret: &str) -> &str {
    let random_start = secret.match_indices('_').nth(1).map_or(0, |(at, _)| at + 1);
    let end = (random_start + 8).min(secret.len());
    &secret[..end]
}

pub fn sha256(bytes: &[u8]) -> Vec<u8> {
    Sha256::digest(bytes).to_vec()
}

/// Compares two hashes in constant time.
pub fn hashes_match(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

/// The server secrets an installation knows: the current one, which makes
/// every new link, and older ones, which still rebuild the links they made
/// (a retried email carries the same link after a rotation).
#[derive(Clone, Debug)]
pub struct Keyring {
    current: Secret,
    older: Vec<Secret>,
}

impl Keyring {
    pub fn new(current: Secret, older: Vec<Secret>) -> Self {
        Self { current, older }
    }

    /// The keyring of `config`: `CANOPY_SECRET` (or, unset, the secret this
    /// installation generated at its first start and keeps in the
    /// database, shared by every process), then `CANOPY_SECRET_PREVIOUS`
    /// and the generated secret as older ones.
    pub async fn load(pool: &PgPool, config: &Config) -> anyhow::Result<Self> {
        let stored = match &config.secret {
            Some(_) => stored_secret(pool).await?,
            None => Some(generated_secret(pool).await?),
        };
        let mut all: Vec<Secret> = config
            .secret
            .iter()
            .chain(config.previous_secret.iter())
            .cloned()
            .chain(stored)
            .collect();
        all.dedup_by(|a, b| a.expose() == b.expose());
        let current = all.remove(0);
        Ok(Self::new(current, all))
    }

    /// The id of the secret that makes new links, recorded on each token.
    pub fn current_id(&self) -> String {
        secret_id(&self.current)
    }

    /// A new link's token, and the id of the secret that made it.
    pub fn issue(&self, tenant_id: TenantId, token_id: i64, purpose: &str) -> (String, String) {
        (
            link_token(&self.current, tenant_id, token_id, purpose),
            self.current_id(),
        )
    }

    /// Rebuilds the token of a link made under the secret `made_with`
    /// (none: a link from before secrets were recorded, made under the
    /// current one); `None` when that secret is no longer known.
    pub fn rebuild(
        &self,
        made_with: Option<&str>,
        tenant_id: TenantId,
        token_id: i64,
        purpose: &str,
    ) -> Option<String> {
        let secret = match made_with {
            None => Some(&self.current),
            Some(id) => std::iter::once(&self.current)
                .chain(&self.older)
                .find(|secret| secret_id(secret) == id),
        };
        secret.map(|secret| link_token(secret, tenant_id, token_id, purpose))
    }
}

/// A secret's public name: a short HMAC under it, so the id reveals
/// nothing of the secret.
fn secret_id(secret: &Secret) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.expose()).expect("HMAC takes any key");
    mac.update(b"canopy secret id");
    hex::encode(&mac.finalize().into_bytes()[..8])
}

/// Generates the installation's secret at its first start, or reads the one
/// an earlier start (of any process) generated.
async fn generated_secret(pool: &PgPool) -> anyhow::Result<Secret> {
    let mut fresh = [0u8; 32];
    rand::rng().fill_bytes(&mut fresh);
    let created: Option<i32> = sqlx::query_scalar(
        "INSERT INTO server_secrets (id, secret) VALUES (1, $1) ON CONFLICT (id) DO NOTHING RETURNING id",
    )
    .bind(fresh.as_slice())
    .fetch_optional(pool)
    .await?;
    if created.is_some() {
        tracing::info!(
            "CANOPY_SECRET is unset: generated a 256-bit server secret and kept it in the database"
        );
    } else {
        tracing::info!("CANOPY_SECRET is unset: using the server secret kept in the database");
    }
    stored_secret(pool)
        .await?
        .ok_or_else(|| anyhow::anyhow!("the generated server secret could not be read back"))
}

async fn stored_secret(pool: &PgPool) -> anyhow::Result<Option<Secret>> {
    let stored: Option<Vec<u8>> =
        sqlx::query_scalar("SELECT secret FROM server_secrets WHERE id = 1")
            .fetch_optional(pool)
            .await?;
    Ok(stored.map(Secret::new))
}

/// The token behind an email link: an HMAC of the token row's identity under
/// the server secret, so a retried email rebuilds the same link while only
/// the token's hash is stored. `<tenant>.<base64url hmac>`.
fn link_token(secret: &Secret, tenant_id: TenantId, token_id: i64, purpose: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.expose()).expect("HMAC takes any key");
    mac.update(format!("{purpose}:{tenant_id}:{token_id}").as_bytes());
    format!(
        "{}.{}",
        tenant_id,
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    )
}

/// The tenant named by a link token, before its hash is looked up.
pub fn link_token_tenant(token: &str) -> Option<TenantId> {
    token.split_once('.')?.0.parse().ok().map(TenantId)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minted_secrets_parse_back_and_differ() {
        let a = mint(SecretKind::ApiKey, TenantId(42));
        let b = mint(SecretKind::ApiKey, TenantId(42));
        assert_ne!(a.plaintext, b.plaintext);
        assert!(a.plaintext.starts_with("cnpk_42_"));
        assert_eq!(visible_prefix(&a.plaintext).len(), "cnpk_42_".len() + 8);
        assert!(a.plaintext.starts_with(visible_prefix(&a.plaintext)));
        assert_eq!(
            parse(&a.plaintext),
            Some((SecretKind::ApiKey, TenantId(42)))
        );
        assert_eq!(a.hash, sha256(a.plaintext.as_bytes()));
        assert!(hashes_match(&a.hash, &sha256(a.plaintext.as_bytes())));
        assert!(!hashes_match(&a.hash, &b.hash));
    }

    #[test]
    fn malformed_secrets_do_not_parse() {
        for bad in ["", "cnpk", "cnpk_x_abc", "nope_1_abc", "cnpk_1_short"] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn link_tokens_are_stable_per_row_and_secret() {
        let secret = Secret::new("s1");
        let token = link_token(&secret, TenantId(7), 99, "activation");
        assert_eq!(token, link_token(&secret, TenantId(7), 99, "activation"));
        assert_ne!(token, link_token(&secret, TenantId(7), 100, "activation"));
        assert_ne!(token, link_token(&secret, TenantId(7), 99, "reset"));
        assert_ne!(
            token,
            link_token(&Secret::new("s2"), TenantId(7), 99, "activation")
        );
        assert_eq!(link_token_tenant(&token), Some(TenantId(7)));
    }

    #[test]
    fn a_rotated_keyring_rebuilds_links_made_under_either_secret() {
        let old = Keyring::new(Secret::new("old"), vec![]);
        let (old_token, old_id) = old.issue(TenantId(3), 5, "ACTIVATION");
        let rotated = Keyring::new(Secret::new("new"), vec![Secret::new("old")]);
        let (new_token, new_id) = rotated.issue(TenantId(3), 6, "ACTIVATION");
        assert_ne!(old_id, new_id);
        assert_eq!(
            rotated.rebuild(Some(&old_id), TenantId(3), 5, "ACTIVATION"),
            Some(old_token)
        );
        assert_eq!(
            rotated.rebuild(Some(&new_id), TenantId(3), 6, "ACTIVATION"),
            Some(new_token.clone())
        );
        assert_eq!(
            rotated.rebuild(None, TenantId(3), 6, "ACTIVATION"),
            Some(new_token)
        );
        let forgotten = Keyring::new(Secret::new("new"), vec![]);
        assert_eq!(
            forgotten.rebuild(Some(&old_id), TenantId(3), 5, "ACTIVATION"),
            None
        );
        assert!(!old_id.contains("old") && old_id.len() == 16);
    }
}
