//! The shared token's encryption: AES-256-GCM under a key derived (HKDF-SHA256) from the client
//! secret, so a dump of Redis alone reveals no token. The key name is bound in as associated
//! data: a value copied under another key does not open.

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use hkdf::Hkdf;
use secrecy::zeroize::Zeroizing;
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

const SALT: &[u8] = b"outbound fleet token v1";
const NONCE_LEN: usize = 12;

/// Seals and opens values stored under one key.
pub(super) struct Seal {
    cipher: Aes256Gcm,
    key_name: Vec<u8>,
}

impl Seal {
    /// The seal of values under `key_name`, keyed by `secret`.
    pub(super) fn new(secret: &SecretString, key_name: &str) -> Seal {
        let hkdf = Hkdf::<Sha256>::new(Some(SALT), secret.expose_secret().as_bytes());
        let mut key = Zeroizing::new([0u8; 32]);
        // 32 bytes is far below HKDF-SHA256's limit of 255 blocks: this cannot fail.
        let _ = hkdf.expand(key_name.as_bytes(), key.as_mut());
        Seal {
            cipher: Aes256Gcm::new(key.as_ref().into()),
            key_name: key_name.as_bytes().to_vec(),
        }
    }

    /// `plaintext` encrypted under a fresh random nonce: `nonce || ciphertext || tag`.
    pub(super) fn seal(&self, plaintext: &[u8]) -> Option<Vec<u8>> {
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let payload = Payload {
            msg: plaintext,
            aad: &self.key_name,
        };
        let sealed = self.cipher.encrypt(&nonce, payload).ok()?;
        let mut out = Vec::with_capacity(NONCE_LEN + sealed.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Some(out)
    }

    /// The plaintext of a value this seal made; `None` for anything else (another secret,
    /// another key, a truncated or altered value).
    pub(super) fn open(&self, sealed: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
        if sealed.len() < NONCE_LEN {
            return None;
        }
        let (nonce, rest) = sealed.split_at(NONCE_LEN);
        let payload = Payload {
            msg: rest,
            aad: &self.key_name,
        };
        self.cipher
            .decrypt(Nonce::from_slice(nonce), payload)
            .ok()
            .map(Zeroizing::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seal(secret: &str, key: &str) -> Seal {
        Seal::new(&SecretString::from(secret), key)
    }

    #[test]
    fn a_sealed_value_opens_only_with_the_same_secret_and_key() {
        let sealed = seal("s3cret", "k").seal(b"token-value").expect("sealed");
        assert!(!sealed.windows(11).any(|w| w == b"token-value"));
        assert_eq!(
            seal("s3cret", "k")
                .open(&sealed)
                .as_deref()
                .map(Vec::as_slice),
            Some(&b"token-value"[..])
        );
        assert!(seal("rotated", "k").open(&sealed).is_none());
        assert!(seal("s3cret", "other").open(&sealed).is_none());
    }

    #[test]
    fn altered_or_short_values_do_not_open() {
        let s = seal("s3cret", "k");
        let sealed = s.seal(b"token-value").expect("sealed");
        for i in 0..sealed.len() {
            let mut altered = sealed.clone();
            altered[i] ^= 1;
            assert!(s.open(&altered).is_none(), "byte {i}");
        }
        for len in 0..sealed.len() {
            assert!(s.open(&sealed[..len]).is_none(), "length {len}");
        }
    }

    #[test]
    fn two_seals_of_one_value_differ() {
        let s = seal("s3cret", "k");
        assert_ne!(s.seal(b"t"), s.seal(b"t"));
    }
}
