//! The signature of a webhook request: `X-Collab-Signature: sha256=<hex>`,
//! the lowercase hex HMAC-SHA256 of the exact body bytes, keyed with the
//! UTF-8 bytes of `webhooks.secret`.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// The header that carries the signature.
pub const SIGNATURE_HEADER: &str = "X-Collab-Signature";

/// Why a key cannot sign (HMAC takes keys of any length, so in practice
/// never).
#[derive(Debug, thiserror::Error)]
#[error("webhooks.secret cannot key HMAC-SHA256")]
pub struct InvalidKey;

/// Signs bodies with one key; cheap to clone.
#[derive(Clone)]
pub struct Signer {
    /// Keyed once; each body is signed by a clone of it.
    keyed: Hmac<Sha256>,
}

impl Signer {
    /// A signer keyed with `secret`; `Ok(None)` for an empty secret
    /// (requests are then sent unsigned).
    pub fn new(secret: &str) -> Result<Option<Signer>, InvalidKey> {
        if secret.is_empty() {
            return Ok(None);
        }
        let keyed = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).map_err(|_| InvalidKey)?;
        Ok(Some(Signer { keyed }))
    }

    /// The header value for `body`: `sha256=` and 64 lowercase hex digits.
    pub fn sign(&self, body: &[u8]) -> String {
        let mut mac = self.keyed.clone();
        mac.update(body);
        let digest = mac.finalize().into_bytes();
        let mut value = String::with_capacity(7 + 2 * digest.len());
        value.push_str("sha256=");
        for byte in digest.iter() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            value.push(char::from(HEX[usize::from(byte >> 4)]));
            value.push(char::from(HEX[usize::from(byte & 0x0f)]));
        }
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_like_rfc_4231() {
        // RFC 4231, test case 2.
        let signer = Signer::new("Jefe").expect("key").expect("a signer");
        assert_eq!(
            signer.sign(b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // The same signer again: nothing of the first body is left in it.
        assert_eq!(
            signer.sign(b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn an_empty_secret_signs_nothing() {
        assert!(Signer::new("").expect("no key").is_none());
    }
}
