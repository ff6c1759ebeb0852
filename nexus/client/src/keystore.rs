//! ICON keystore files: what iconsdk's `KeyWallet.store` writes and `KeyWallet.load` reads.
//!
//! The Web3 Secret Storage v3 format with `"address": "hx..."` and `"coinType": "icx"`: the key
//! derived by scrypt (n=16384, r=8, p=1, as the SDK) or PBKDF2-HMAC-SHA256 encrypts the secret
//! with AES-128-CTR, and `mac = Keccak-256(derived[16..32] || ciphertext)` detects a wrong
//! password.

use aes::cipher::{KeyIvInit, StreamCipher};
use nexus_proto::{hash::keccak256, KeyPair};
use rand::RngCore;
use serde_json::{json, Value};
use std::path::Path;

type Aes128Ctr = ctr::Ctr128BE<aes::Aes128>;

/// Largest scrypt cost accepted from a file (`n`), to bound memory and time.
const MAX_SCRYPT_N: u64 = 1 << 20;
/// Largest PBKDF2 iteration count accepted from a file.
const MAX_PBKDF2_C: u32 = 10_000_000;

/// What reading or writing a keystore can fail with.
#[derive(Debug, thiserror::Error)]
pub enum KeystoreError {
    /// The file is not a usable keystore, or the password is wrong.
    #[error("keystore: {0}")]
    Invalid(String),
    /// The file could not be read or written.
    #[error("keystore: {0}")]
    Io(#[from] std::io::Error),
}

fn err(msg: impl Into<String>) -> KeystoreError {
    KeystoreError::Invalid(msg.into())
}

/// Encrypts `key` with `password` as a keystore JSON object.
pub fn encrypt(key: &KeyPair, password: &str) -> Result<Value, KeystoreError> {
    let mut salt = [0u8; 16];
    let mut iv = [0u8; 16];
    let mut id = [0u8; 16];
    let mut rng = rand::thread_rng();
    rng.fill_bytes(&mut salt);
    rng.fill_bytes(&mut iv);
    rng.fill_bytes(&mut id);
    let (log_n, r, p) = (14u8, 8u32, 1u32);
    let params = scrypt::Params::new(log_n, r, p, 32).map_err(|e| err(e.to_string()))?;
    let mut derived = [0u8; 32];
    scrypt::scrypt(password.as_bytes(), &salt, &params, &mut derived)
        .map_err(|e| err(e.to_string()))?;
    let mut ciphertext = key.secret_bytes().to_vec();
    Aes128Ctr::new(derived[..16].into(), (&iv).into()).apply_keystream(&mut ciphertext);
    let mac = keccak256(&[&derived[16..32], &ciphertext]);
    id[6] = (id[6] & 0x0f) | 0x40;
    id[8] = (id[8] & 0x3f) | 0x80;
    let h = hex::encode(id);
    let uuid = format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    );
    Ok(json!({
        "address": key.address().to_string(),
        "crypto": {
            "cipher": "aes-128-ctr",
            "cipherparams": {"iv": hex::encode(iv)},
            "ciphertext": hex::encode(&ciphertext),
            "kdf": "scrypt",
            "kdfparams": {"dklen": 32, "n": 1u32 << log_n, "r": r, "p": p, "salt": hex::encode(salt)},
            "mac": hex::encode(mac.0),
        },
        "id": uuid,
        "version": 3,
        "coinType": "icx",
    }))
}

fn hex_field(v: &Value, path: &str) -> Result<Vec<u8>, KeystoreError> {
    let s = v
        .as_str()
        .ok_or_else(|| err(format!("{path}: expected a hex string")))?;
    hex::decode(s.trim_start_matches("0x"))
        .map_err(|_| err(format!("{path}: expected hex, got {s:?}")))
}

fn uint_field(v: &Value, path: &str) -> Result<u64, KeystoreError> {
    v.as_u64()
        .ok_or_else(|| err(format!("{path}: expected an unsigned integer, got {v}")))
}

/// Decrypts a keystore JSON object.
pub fn decrypt(ks: &Value, password: &str) -> Result<KeyPair, KeystoreError> {
    let crypto = ks
        .get("crypto")
        .or_else(|| ks.get("Crypto"))
        .ok_or_else(|| err("missing `crypto`"))?;
    if crypto["cipher"] != "aes-128-ctr" {
        return Err(err(format!(
            "cipher: expected aes-128-ctr, got {}",
            crypto["cipher"]
        )));
    }
    let iv = hex_field(&crypto["cipherparams"]["iv"], "crypto.cipherparams.iv")?;
    let iv: [u8; 16] = iv
        .try_into()
        .map_err(|_| err("crypto.cipherparams.iv: expected 16 bytes"))?;
    let ciphertext = hex_field(&crypto["ciphertext"], "crypto.ciphertext")?;
    if ciphertext.len() != 32 {
        return Err(err(format!(
            "crypto.ciphertext: expected 32 bytes, got {}",
            ciphertext.len()
        )));
    }
    let kp = &crypto["kdfparams"];
    let salt = hex_field(&kp["salt"], "crypto.kdfparams.salt")?;
    let dklen = uint_field(&kp["dklen"], "crypto.kdfparams.dklen")?;
    if dklen != 32 {
        return Err(err(format!(
            "crypto.kdfparams.dklen: expected 32, got {dklen}"
        )));
    }
    let mut derived = [0u8; 32];
    match crypto["kdf"].as_str() {
        Some("scrypt") => {
            let n = uint_field(&kp["n"], "crypto.kdfparams.n")?;
            if !n.is_power_of_two() || !(2..=MAX_SCRYPT_N).contains(&n) {
                return Err(err(format!(
                    "crypto.kdfparams.n: expected a power of two up to 2^20, got {n}"
                )));
            }
            let r = u32::try_from(uint_field(&kp["r"], "crypto.kdfparams.r")?)
                .map_err(|_| err("r too large"))?;
            let p = u32::try_from(uint_field(&kp["p"], "crypto.kdfparams.p")?)
                .map_err(|_| err("p too large"))?;
            if r == 0 || p == 0 || u64::from(r) * u64::from(p) > 64 {
                return Err(err(format!("crypto.kdfparams: r={r} p={p} out of range")));
            }
            let params = scrypt::Params::new(n.trailing_zeros() as u8, r, p, 32)
                .map_err(|e| err(e.to_string()))?;
            scrypt::scrypt(password.as_bytes(), &salt, &params, &mut derived)
                .map_err(|e| err(e.to_string()))?;
        }
        Some("pbkdf2") => {
            if kp["prf"] != "hmac-sha256" {
                return Err(err(format!(
                    "crypto.kdfparams.prf: expected hmac-sha256, got {}",
                    kp["prf"]
                )));
            }
            let c = u32::try_from(uint_field(&kp["c"], "crypto.kdfparams.c")?).unwrap_or(u32::MAX);
            if c == 0 || c > MAX_PBKDF2_C {
                return Err(err(format!(
                    "crypto.kdfparams.c: expected 1..=10000000, got {c}"
                )));
            }
            pbkdf2::pbkdf2_hmac::<sha2::Sha256>(password.as_bytes(), &salt, c, &mut derived);
        }
        other => {
            return Err(err(format!(
                "kdf: expected scrypt or pbkdf2, got {other:?}"
            )))
        }
    }
    let mac = keccak256(&[&derived[16..32], &ciphertext]);
    if hex_field(&crypto["mac"], "crypto.mac")? != mac.0 {
        return Err(err("wrong password (MAC mismatch)"));
    }
    let mut secret = ciphertext;
    Aes128Ctr::new(derived[..16].into(), (&iv).into()).apply_keystream(&mut secret);
    let key = KeyPair::from_secret(&secret).map_err(|e| err(e.to_string()))?;
    if let Some(addr) = ks.get("address").and_then(Value::as_str) {
        if addr.starts_with("hx") && addr != key.address().to_string() {
            return Err(err(format!(
                "address field {addr} does not match the key's {}",
                key.address()
            )));
        }
    }
    Ok(key)
}

/// Writes a new keystore file (refusing to overwrite one).
pub fn store(path: &Path, key: &KeyPair, password: &str) -> Result<(), KeystoreError> {
    if path.exists() {
        return Err(err(format!("{} already exists", path.display())));
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let text =
        serde_json::to_string_pretty(&encrypt(key, password)?).map_err(|e| err(e.to_string()))?;
    write_private(path, text.as_bytes())?;
    Ok(())
}

/// Writes a file only its owner may read or write (mode 0600 from the start, not after):
/// keystores, passwords and node identities.
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// Reads and decrypts a keystore file.
pub fn load(path: &Path, password: &str) -> Result<KeyPair, KeystoreError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| err(format!("cannot read {}: {e}", path.display())))?;
    let v: Value = serde_json::from_str(&text)
        .map_err(|e| err(format!("{}: not JSON: {e}", path.display())))?;
    decrypt(&v, password)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keystores_are_written_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("nexus-ks-{}", std::process::id()));
        let path = dir.join("k.json");
        let _ = std::fs::remove_dir_all(&dir);
        store(&path, &KeyPair::generate(), "pw").unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(mode, 0o600);
    }

    #[test]
    fn round_trip_and_wrong_password() {
        let k = KeyPair::generate();
        let ks = encrypt(&k, "pa55word!").unwrap();
        assert_eq!(ks["address"], k.address().to_string());
        assert_eq!(decrypt(&ks, "pa55word!").unwrap().address(), k.address());
        assert!(decrypt(&ks, "wrong")
            .unwrap_err()
            .to_string()
            .contains("wrong password"));
    }

    #[test]
    fn reads_a_pbkdf2_keystore() {
        // Known-answer test: a PBKDF2 keystore built here by hand from the format's rules.
        let k = KeyPair::from_secret(&[7u8; 32]).unwrap();
        let salt = [1u8; 16];
        let iv = [2u8; 16];
        let mut derived = [0u8; 32];
        pbkdf2::pbkdf2_hmac::<sha2::Sha256>(b"pw", &salt, 1000, &mut derived);
        let mut ct = k.secret_bytes().to_vec();
        Aes128Ctr::new(derived[..16].into(), (&iv).into()).apply_keystream(&mut ct);
        let mac = keccak256(&[&derived[16..32], &ct]);
        let ks = json!({"address": k.address().to_string(), "crypto": {"cipher": "aes-128-ctr",
            "cipherparams": {"iv": hex::encode(iv)}, "ciphertext": hex::encode(&ct), "kdf": "pbkdf2",
            "kdfparams": {"c": 1000, "dklen": 32, "prf": "hmac-sha256", "salt": hex::encode(salt)},
            "mac": hex::encode(mac.0)}, "version": 3, "coinType": "icx"});
        assert_eq!(decrypt(&ks, "pw").unwrap().address(), k.address());
    }
}
