//! CSRF tokens: HMAC-SHA256 over the authenticated user and the hour, keyed by a
//! secret file of the page's own. A token is good for the hour it was made in and the
//! next, so a page open at a quarter to keeps working; the live refresh brings new
//! ones. Without the secret nobody can make one, and one user's token is not another's.

use crate::base::fsio;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// How long a token's window is, in seconds.
pub const WINDOW_SECS: u64 = 3600;
const SECRET_LEN: usize = 32;

fn mac(secret: &[u8], user: &str, window: u64) -> Hmac<Sha256> {
    let mut m = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    // The user is length-prefixed: no (user, window) pair reads as another.
    m.update(b"hakit-cgi-csrf\0");
    m.update(&(user.len() as u64).to_le_bytes());
    m.update(user.as_bytes());
    m.update(&window.to_le_bytes());
    m
}

/// The token for `user` at `unix_secs`.
pub fn token(secret: &[u8], user: &str, unix_secs: u64) -> String {
    let tag = mac(secret, user, unix_secs / WINDOW_SECS).finalize().into_bytes();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(tag)
}

/// Whether `given` is `user`'s token of this window or the one before (compared in
/// constant time).
pub fn verify(secret: &[u8], user: &str, given: &str, unix_secs: u64) -> bool {
    let Ok(tag) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(given.as_bytes()) else {
        return false;
    };
    let w = unix_secs / WINDOW_SECS;
    [w, w.saturating_sub(1)]
        .iter()
        .any(|&w| mac(secret, user, w).verify_slice(&tag).is_ok())
}

/// The secret at `path`, made (random, mode 0600) if missing. Refused when it is not a
/// regular file of ours or root's, or when others may read or write it.
pub fn load_or_create(path: &Path) -> Result<Vec<u8>, String> {
    if std::fs::symlink_metadata(path).is_err() {
        let mut fresh = [0u8; SECRET_LEN];
        std::fs::File::open("/dev/urandom")
            .and_then(|mut f| f.read_exact(&mut fresh))
            .map_err(|e| format!("/dev/urandom: {e}"))?;
        // Of two first requests at once, the first file stays and both use it.
        fsio::create_once(path, &fresh, 0o600)?;
    }
    let mut f = fsio::open_read_trusted(path, fsio::Whose::Ours)?;
    let m = f.metadata().map_err(|e| format!("{}: {e}", path.display()))?;
    if m.mode() & 0o077 != 0 {
        return Err(format!(
            "{}: mode {:04o}: others may read the CSRF secret; make it 0600",
            path.display(),
            m.mode() & 0o7777
        ));
    }
    let mut s = Vec::new();
    f.by_ref()
        .take(4096)
        .read_to_end(&mut s)
        .map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
    if s.len() < 16 {
        return Err(format!(
            "{}: {} bytes; a CSRF secret needs at least 16",
            path.display(),
            s.len()
        ));
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_token_is_the_users_and_the_hours() {
        let k = b"0123456789abcdef0123456789abcdef";
        let t0 = 1_800_000_000;
        let t = token(k, "alice", t0);
        assert!(verify(k, "alice", &t, t0));
        assert!(verify(k, "alice", &t, t0 + WINDOW_SECS), "good in the next window");
        assert!(!verify(k, "alice", &t, t0 + 2 * WINDOW_SECS + 1), "not after");
        assert!(!verify(k, "bob", &t, t0), "not another user's");
        assert!(!verify(b"another secret, another key....", "alice", &t, t0));
        assert!(!verify(k, "alice", "", t0));
        assert!(!verify(k, "alice", "!!not base64!!", t0));
        let mut bad = t.clone().into_bytes();
        bad[3] = if bad[3] == b'A' { b'B' } else { b'A' };
        assert!(!verify(k, "alice", std::str::from_utf8(&bad).unwrap(), t0));
    }

    #[test]
    fn the_secret_is_made_once_and_never_adopted_when_open() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("sub/secret");
        let s = load_or_create(&p).unwrap();
        assert_eq!(s.len(), SECRET_LEN);
        assert_eq!(std::fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(load_or_create(&p).unwrap(), s, "the same one next time");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o620)).unwrap();
        let e = load_or_create(&p).unwrap_err();
        assert!(e.contains("write"), "{e}");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o640)).unwrap();
        let e = load_or_create(&p).unwrap_err();
        assert!(e.contains("others may read"), "{e}");
        let link = d.path().join("link");
        std::os::unix::fs::symlink(&p, &link).unwrap();
        let e = load_or_create(&link).unwrap_err();
        assert!(e.contains("symbolic link"), "{e}");
    }
}
