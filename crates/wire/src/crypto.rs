//! AES-GCM keyring and the encrypted payload format (docs/memberlist-protocol.md section 6):
//! `vsn:u8 nonce:12 ciphertext tag:16`. Version 1 is unpadded; version 0 pads the
//! plaintext with PKCS#7 to a multiple of 16 bytes. The primary key (index 0) encrypts;
//! every key is tried to decrypt.

use crate::Error;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::aes::Aes192;
use aes_gcm::{Aes128Gcm, Aes256Gcm, AesGcm};

type Aes192Gcm = AesGcm<Aes192, aes_gcm::aead::consts::U12>;

/// Bytes of nonce.
pub const NONCE_SIZE: usize = 12;
/// Bytes of GCM tag.
pub const TAG_SIZE: usize = 16;
/// Overhead of version-1 encryption (1 + 12 + 16).
pub const ENCRYPT_OVERHEAD: usize = 1 + NONCE_SIZE + TAG_SIZE;

#[derive(Clone)]
enum Cipher {
    A128(Box<Aes128Gcm>),
    A192(Box<Aes192Gcm>),
    A256(Box<Aes256Gcm>),
}

impl Cipher {
    fn seal(&self, nonce: &[u8; NONCE_SIZE], msg: &[u8], aad: &[u8]) -> Result<Vec<u8>, Error> {
        let n = aes_gcm::Nonce::from_slice(nonce);
        let p = Payload { msg, aad };
        match self {
            Cipher::A128(c) => c.encrypt(n, p),
            Cipher::A192(c) => c.encrypt(n, p),
            Cipher::A256(c) => c.encrypt(n, p),
        }
        .map_err(|_| Error::Crypto("encryption failed"))
    }

    fn open(&self, nonce: &[u8], ct: &[u8], aad: &[u8]) -> Option<Vec<u8>> {
        let n = aes_gcm::Nonce::from_slice(nonce);
        let p = Payload { msg: ct, aad };
        match self {
            Cipher::A128(c) => c.decrypt(n, p),
            Cipher::A192(c) => c.decrypt(n, p),
            Cipher::A256(c) => c.decrypt(n, p),
        }
        .ok()
    }
}

/// One key of the keyring.
#[derive(Clone)]
pub struct Key {
    bytes: Vec<u8>,
    cipher: Cipher,
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Key(AES-{})", self.bytes.len() * 8)
    }
}

impl PartialEq for Key {
    fn eq(&self, o: &Self) -> bool {
        self.bytes == o.bytes
    }
}

impl Key {
    /// A key of 16, 24 or 32 bytes.
    pub fn new(bytes: &[u8]) -> Result<Self, Error> {
        let cipher = match bytes.len() {
            16 => Cipher::A128(Box::new(
                Aes128Gcm::new_from_slice(bytes).map_err(|_| Error::Crypto("bad key"))?,
            )),
            24 => Cipher::A192(Box::new(
                Aes192Gcm::new_from_slice(bytes).map_err(|_| Error::Crypto("bad key"))?,
            )),
            32 => Cipher::A256(Box::new(
                Aes256Gcm::new_from_slice(bytes).map_err(|_| Error::Crypto("bad key"))?,
            )),
            _ => return Err(Error::Crypto("key size must be 16, 24 or 32 bytes")),
        };
        Ok(Key {
            bytes: bytes.to_vec(),
            cipher,
        })
    }

    /// The raw key.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }
}

/// Ordered keys; index 0 is the primary.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Keyring {
    keys: Vec<Key>,
}

impl Keyring {
    /// A keyring with `primary` first and the others after it.
    pub fn new(primary: Key, others: Vec<Key>) -> Self {
        let mut kr = Keyring {
            keys: vec![primary],
        };
        for k in others {
            kr.add(k);
        }
        kr
    }

    /// All keys, primary first.
    pub fn keys(&self) -> &[Key] {
        &self.keys
    }

    /// The primary key.
    pub fn primary(&self) -> Option<&Key> {
        self.keys.first()
    }

    /// Whether encryption is on.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Installs a key (no-op if present); it becomes primary if the ring was empty.
    pub fn add(&mut self, k: Key) {
        if !self.keys.contains(&k) {
            self.keys.push(k);
        }
    }

    /// Makes an installed key primary.
    pub fn use_key(&mut self, bytes: &[u8]) -> Result<(), Error> {
        let i = self
            .keys
            .iter()
            .position(|k| k.bytes == bytes)
            .ok_or(Error::Crypto("Requested key is not in the keyring"))?;
        let k = self.keys.remove(i);
        self.keys.insert(0, k);
        Ok(())
    }

    /// Removes a non-primary key.
    pub fn remove(&mut self, bytes: &[u8]) -> Result<(), Error> {
        if self.keys.first().is_some_and(|k| k.bytes == bytes) {
            return Err(Error::Crypto("Removing the primary key is not allowed"));
        }
        self.keys.retain(|k| k.bytes != bytes);
        Ok(())
    }

    /// Encrypts with the primary key (version 1, or 0 with PKCS#7 padding).
    pub fn encrypt(
        &self,
        version: u8,
        nonce: &[u8; NONCE_SIZE],
        plain: &[u8],
        aad: &[u8],
    ) -> Result<Vec<u8>, Error> {
        let key = self.primary().ok_or(Error::Crypto("no primary key"))?;
        let sealed = if version == 0 {
            let pad = 16 - plain.len() % 16;
            let mut p = Vec::with_capacity(plain.len() + pad);
            p.extend_from_slice(plain);
            p.resize(plain.len() + pad, pad as u8);
            key.cipher.seal(nonce, &p, aad)?
        } else {
            key.cipher.seal(nonce, plain, aad)?
        };
        let mut out = Vec::with_capacity(1 + NONCE_SIZE + sealed.len());
        out.push(if version == 0 { 0 } else { 1 });
        out.extend_from_slice(nonce);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    /// Decrypts with any key.
    pub fn decrypt(&self, buf: &[u8], aad: &[u8]) -> Result<Vec<u8>, Error> {
        let (&vsn, rest) = buf.split_first().ok_or(Error::Crypto("empty payload"))?;
        if vsn > 1 {
            return Err(Error::Crypto("unsupported encryption version"));
        }
        let min = if vsn == 0 { 45 } else { ENCRYPT_OVERHEAD };
        if buf.len() < min {
            return Err(Error::Crypto("payload too small to decrypt"));
        }
        let (nonce, ct) = rest.split_at(NONCE_SIZE);
        for k in &self.keys {
            if let Some(mut plain) = k.cipher.open(nonce, ct, aad) {
                if vsn == 0 {
                    let pad = *plain.last().ok_or(Error::Crypto("bad padding"))? as usize;
                    if pad == 0 || pad > 16 || pad > plain.len() {
                        return Err(Error::Crypto("bad padding"));
                    }
                    plain.truncate(plain.len() - pad);
                }
                return Ok(plain);
            }
        }
        Err(Error::Crypto("No installed keys could decrypt the message"))
    }
}
