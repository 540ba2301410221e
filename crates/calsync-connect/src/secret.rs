//! Secrets at rest (refresh tokens, CalDAV passwords): AES-256-GCM with a key from
//! configuration, a fresh random nonce per secret, and the owner (e.g. the connection id) as
//! associated data, so a sealed secret cannot be moved to another connection. Keys and
//! plaintexts never appear in `Debug` output or messages.

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// The prefix of the sealed form; a later format gets a new one.
const VERSION: &str = "v1:";

/// Why a secret could not be sealed or opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    /// The configured key is not 32 bytes of base64.
    #[error("the secret key must be 32 bytes, base64-encoded (e.g. `openssl rand -base64 32`)")]
    BadKey,
    /// Wrong key, wrong owner, or altered data.
    #[error("the secret cannot be opened: wrong key, wrong owner or altered data")]
    Unreadable,
}

/// The key that seals secrets.
#[derive(Clone)]
pub struct SecretKey {
    cipher: Aes256Gcm,
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey(..)")
    }
}

impl SecretKey {
    /// A key from its base64 text (32 bytes).
    pub fn from_base64(text: &str) -> Result<SecretKey, SecretError> {
        let bytes = STANDARD.decode(text.trim()).map_err(|_| SecretError::BadKey)?;
        if bytes.len() != 32 {
            return Err(SecretError::BadKey);
        }
        let cipher = Aes256Gcm::new_from_slice(&bytes).map_err(|_| SecretError::BadKey)?;
        Ok(SecretKey { cipher })
    }

    /// `plaintext` sealed for `owner`: `v1:` and base64 of nonce, ciphertext and tag.
    pub fn seal(&self, plaintext: &str, owner: &str) -> String {
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let sealed = self
            .cipher
            .encrypt(&nonce, Payload { msg: plaintext.as_bytes(), aad: owner.as_bytes() })
            .expect("AES-GCM encryption of an in-memory buffer cannot fail");
        let mut out = nonce.to_vec();
        out.extend(sealed);
        format!("{VERSION}{}", STANDARD.encode(out))
    }

    /// The plaintext of a secret sealed for `owner`.
    pub fn open(&self, sealed: &str, owner: &str) -> Result<String, SecretError> {
        let body = sealed.strip_prefix(VERSION).ok_or(SecretError::Unreadable)?;
        let bytes = STANDARD.decode(body).map_err(|_| SecretError::Unreadable)?;
        if bytes.len() < 12 + 16 {
            return Err(SecretError::Unreadable);
        }
        let (nonce, data) = bytes.split_at(12);
        let nonce: [u8; 12] = nonce.try_into().map_err(|_| SecretError::Unreadable)?;
        let plain = self
            .cipher
            .decrypt(&Nonce::from(nonce), Payload { msg: data, aad: owner.as_bytes() })
            .map_err(|_| SecretError::Unreadable)?;
        String::from_utf8(plain).map_err(|_| SecretError::Unreadable)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "q83vEjRWeJq83vEjRWeJq83vEjRWeJq83vEjRWeJq80=";

    #[test]
    fn sealed_secrets_open_only_with_their_key_and_owner() {
        let key = SecretKey::from_base64(KEY).unwrap();
        let sealed = key.seal("1//refresh-token-of-maria", "connection-7");
        assert!(sealed.starts_with("v1:") && !sealed.contains("maria"), "{sealed}");
        assert_eq!(key.open(&sealed, "connection-7").unwrap(), "1//refresh-token-of-maria");
        assert_ne!(key.seal("1//refresh-token-of-maria", "connection-7"), sealed, "a fresh nonce each time");
        assert_eq!(key.open(&sealed, "connection-8"), Err(SecretError::Unreadable), "bound to its owner");
        let other = SecretKey::from_base64(&STANDARD.encode([7u8; 32])).unwrap();
        assert_eq!(other.open(&sealed, "connection-7"), Err(SecretError::Unreadable));
        let mut tampered = STANDARD.decode(&sealed[3..]).unwrap();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        assert_eq!(
            key.open(&format!("v1:{}", STANDARD.encode(tampered)), "connection-7"),
            Err(SecretError::Unreadable)
        );
        assert_eq!(key.open("v1:AAAA", "connection-7"), Err(SecretError::Unreadable));
        assert_eq!(key.open("plaintext", "connection-7"), Err(SecretError::Unreadable));
    }

    #[test]
    fn keys_must_be_32_bytes_of_base64_and_never_print() {
        assert_eq!(SecretKey::from_base64("short").unwrap_err(), SecretError::BadKey);
        assert_eq!(SecretKey::from_base64(&STANDARD.encode([1u8; 16])).unwrap_err(), SecretError::BadKey);
        assert_eq!(format!("{:?}", SecretKey::from_base64(KEY).unwrap()), "SecretKey(..)");
    }
}
