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

/// Decrypts an Ethereum keystore (Web3 Secret Storage v3, as geth, Foundry's `cast wallet` and
/// web3.py write) as [`decrypt`] does; its `address` field, when it has one, must be the key's
/// Ethereum address (40 hex digits, with or without 0x).
pub fn decrypt_eth(ks: &Value, password: &str) -> Result<KeyPair, KeystoreError> {
    let key = decrypt(ks, password)?;
    if let Some(a) = ks
        .get("address")
        .and_then(Value::as_str)
        .filter(|a| !a.starts_with("hx"))
    {
        let named = hex::decode(a.trim_start_matches("0x"))
            .ok()
            .filter(|b| b.len() == 20)
            .ok_or_else(|| err(format!("address field {a:?}: expected 40 hex digits")))?;
        let have = nexus_proto::signature::eth_address(&key);
        if named != have {
            return Err(err(format!(
                "address field {a} does not match the key's 0x{}",
                hex::encode(have)
            )));
        }
    }
    Ok(key)
}

/// Reads an Ethereum keystore file and decrypts it ([`decrypt_eth`]).
pub fn load_eth(path: &Path, password: &str) -> Result<KeyPair, KeystoreError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| err(format!("cannot read {}: {e}", path.display())))?;
    let v: Value = serde_json::from_str(&text)
        .map_err(|e| err(format!("{}: not a keystore: {e}", path.display())))?;
    decrypt_eth(&v, password)
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

    /// The secret of the keystores below: written by web3.py's `eth_keyfile` (the library
    /// ICON's Python SDK uses), password `testpassword`.
    const ETH_SECRET: &str = "7a28b5ba57c53603b0b07b56bba752f7784bf506fa95edc395f5cf6c7514fe9d";
    const ETH_ADDRESS: &str = "008aeeda4d805471df9b2a5b0f38a0c3bcba786b";
    const SCRYPT_KEYSTORE: &str = r#"{"address": "008AeEda4D805471dF9b2A5B0f38A0C3bCBA786b", "crypto": {"cipher": "aes-128-ctr", "cipherparams": {"iv": "0c5688668ddf72341e822f2e21c1ac9f"}, "ciphertext": "f4ebd5331d03ee46ca8e92c6e06695a97d2b8b288fdd44d16eeff706799a54d5", "kdf": "scrypt", "kdfparams": {"dklen": 32, "n": 1024, "r": 8, "p": 1, "salt": "06f3aec2de754f82a21b12924cec25e4"}, "mac": "2c11ce10c025a31304f610cb705df425cb4068fd963a550cca737e458ce39aba"}, "id": "d500b1b9-8552-4080-9fda-513b010d5c1c", "version": 3}"#;
    const PBKDF2_KEYSTORE: &str = r#"{"address": "008AeEda4D805471dF9b2A5B0f38A0C3bCBA786b", "crypto": {"cipher": "aes-128-ctr", "cipherparams": {"iv": "88ebf49a61990b90f6f6950c874b56f7"}, "ciphertext": "9e24e809249c1c4933380794cbe8e357643358db9a5a664947f2c003e6a0f529", "kdf": "pbkdf2", "kdfparams": {"c": 1000, "dklen": 32, "prf": "hmac-sha256", "salt": "8dd8f1406be13acf77762ca211ded25c"}, "mac": "c7e32bae7f50cee59e672a05a16178479b7727b0129930523ca0d362e88ce03b"}, "id": "1fdb483a-cf19-4aef-bdcc-b1d46fc4bb25", "version": 3}"#;

    #[test]
    fn ethereum_keystores_of_web3_py_decrypt_to_their_key() {
        for text in [SCRYPT_KEYSTORE, PBKDF2_KEYSTORE] {
            let ks: Value = serde_json::from_str(text).unwrap();
            let key = decrypt_eth(&ks, "testpassword").unwrap();
            assert_eq!(hex::encode(key.secret_bytes()), ETH_SECRET);
            assert_eq!(
                hex::encode(nexus_proto::signature::eth_address(&key)),
                ETH_ADDRESS
            );
            assert!(decrypt_eth(&ks, "testpassworD")
                .unwrap_err()
                .to_string()
                .contains("wrong password"));
        }
    }

    #[test]
    fn an_ethereum_keystore_naming_another_address_is_refused() {
        for (address, why) in [
            ("118AeEda4D805471dF9b2A5B0f38A0C3bCBA786b", "does not match"),
            ("0x008AeEda", "40 hex digits"),
        ] {
            let mut ks: Value = serde_json::from_str(SCRYPT_KEYSTORE).unwrap();
            ks["address"] = address.into();
            let e = decrypt_eth(&ks, "testpassword").unwrap_err().to_string();
            assert!(e.contains(why), "{e}");
        }
        let mut ks: Value = serde_json::from_str(SCRYPT_KEYSTORE).unwrap();
        ks["address"] = format!("0x{ETH_ADDRESS}").into();
        assert!(decrypt_eth(&ks, "testpassword").is_ok(), "with 0x");
    }

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
