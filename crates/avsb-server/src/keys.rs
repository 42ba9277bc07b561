//! Secrets: server SDK keys and admin tokens. Each is 256 random bits, shown once, and stored as
//! its SHA-256 digest. A fast digest is right here (unlike for passwords): the secret has full
//! entropy, so no amount of hashing speed makes guessing it feasible.

use base64::Engine;
use sha2::{Digest, Sha256};

/// Which kind of secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretKind {
    /// A server SDK key: read access to one environment.
    SdkKey,
    /// An admin API token.
    AdminToken,
}

impl SecretKind {
    fn prefix(self) -> &'static str {
        match self {
            SecretKind::SdkKey => "sdk-",
            SecretKind::AdminToken => "adm-",
        }
    }
}

/// A newly made secret: the text to show once, its digest to store, and a short prefix to list.
#[derive(Debug, Clone)]
pub struct NewSecret {
    /// The secret itself (URL-safe, so it fits in `PROCTOR_API_ROOT`).
    pub secret: String,
    /// SHA-256 of the secret's bytes.
    pub digest: [u8; 32],
    /// The first characters, enough to recognise it in a list.
    pub prefix: String,
}

/// Makes a new secret from the operating system's random source.
pub fn generate(kind: SecretKind) -> Result<NewSecret, getrandom::Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)?;
    let secret = format!("{}{}", kind.prefix(), base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes));
    let prefix = secret.chars().take(kind.prefix().len() + 6).collect();
    Ok(NewSecret { digest: digest(&secret), secret, prefix })
}

/// SHA-256 of a presented secret, to look it up.
pub fn digest(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// What logs show instead of a secret found in a path.
pub const REDACTED: &str = "<redacted>";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_url_safe_unique_and_hashed() {
        let a = generate(SecretKind::SdkKey).unwrap();
        let b = generate(SecretKind::SdkKey).unwrap();
        assert_ne!(a.secret, b.secret);
        assert!(a.secret.starts_with("sdk-") && a.secret.len() == 4 + 43, "{}", a.secret);
        assert!(a.secret.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'));
        assert_eq!(a.digest, digest(&a.secret));
        assert!(a.secret.starts_with(&a.prefix) && a.prefix.len() == 10);
        assert!(generate(SecretKind::AdminToken).unwrap().secret.starts_with("adm-"));
    }
}
