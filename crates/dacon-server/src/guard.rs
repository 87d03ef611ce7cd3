//! What a request must satisfy before any handler sees it: a `Host` that
//! names this machine, the token, and file paths that stay inside the cut
//! and output folders.

use std::net::IpAddr;
use std::path::{Component, Path, PathBuf};

use crate::error::ApiError;

/// Whether a `Host` header value is acceptable: `localhost` or an IP address
/// (only loopback ones unless `any_ip`), or one of `allowed` names; any port.
/// Refusing other names stops DNS rebinding: a page of another site whose
/// name was re-pointed at this machine still sends its own name.
pub fn host_allowed(host: &str, any_ip: bool, allowed: &[String]) -> bool {
    let name = match host.strip_prefix('[') {
        // [v6]:port
        Some(rest) => match rest.split_once(']') {
            Some((ip, port)) if port.is_empty() || port.starts_with(':') => ip,
            _ => return false,
        },
        None => host.rsplit_once(':').map_or(host, |(n, _)| n),
    };
    if name.eq_ignore_ascii_case("localhost") {
        return true;
    }
    if let Ok(ip) = name.parse::<IpAddr>() {
        return any_ip || ip.is_loopback();
    }
    allowed.iter().any(|a| a.eq_ignore_ascii_case(name))
}

/// Compares without stopping at the first difference, so the time taken
/// does not tell how much of a guess was right.
pub fn token_matches(given: &str, token: &str) -> bool {
    let (a, b) = (given.as_bytes(), token.as_bytes());
    let mut diff = a.len() ^ b.len();
    for (i, &t) in b.iter().enumerate() {
        diff |= usize::from(a.get(i).copied().unwrap_or(0) ^ t);
    }
    diff == 0
}

/// The token of a request: `Authorization: Bearer T`, or `token=T` in the
/// query (event streams and download links cannot set headers).
pub fn request_token<'a>(auth: Option<&'a str>, query: Option<&'a str>) -> Option<&'a str> {
    if let Some(t) = auth.and_then(|a| a.strip_prefix("Bearer ")) {
        return Some(t.trim());
    }
    query?.split('&').find_map(|kv| kv.strip_prefix("token="))
}

/// `rel` resolved inside `root` (canonical), refusing anything that could
/// leave it: absolute paths, `..`, `.`, empty parts, backslashes, NUL, and
/// symbolic links that lead outside.
///
/// # Errors
/// 403 for a path outside, 404 for one that does not exist.
pub fn resolve_inside(root: &Path, rel: &str) -> Result<PathBuf, ApiError> {
    let outside = || ApiError::forbidden(format!("{rel:?} is outside the cut and output folders"));
    if rel.is_empty() || rel.contains(['\\', '\0']) || rel.starts_with('/') {
        return Err(outside());
    }
    let mut path = root.to_path_buf();
    for part in rel.split('/') {
        let mut comps = Path::new(part).components();
        match (comps.next(), comps.next()) {
            (Some(Component::Normal(c)), None) if !part.is_empty() && part != "." => {
                path.push(c);
            }
            _ => return Err(outside()),
        }
    }
    let real = path
        .canonicalize()
        .map_err(|_| ApiError::not_found(format!("no file {rel:?}")))?;
    if !real.starts_with(root) {
        return Err(outside());
    }
    Ok(real)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts() {
        let none: &[String] = &[];
        for ok in [
            "localhost",
            "localhost:8080",
            "127.0.0.1:9",
            "[::1]:80",
            "[::1]",
        ] {
            assert!(host_allowed(ok, false, none), "{ok}");
        }
        for bad in [
            "evil.example",
            "evil.example:80",
            "10.0.0.2:80",
            "[::1",
            "[::1]x",
            "",
        ] {
            assert!(!host_allowed(bad, false, none), "{bad}");
        }
        assert!(host_allowed("10.0.0.2:80", true, none));
        assert!(!host_allowed("evil.example", true, none));
        assert!(host_allowed("Studio-Box:80", true, &["studio-box".into()]));
    }

    #[test]
    fn tokens() {
        assert!(token_matches("abc", "abc"));
        for bad in ["", "ab", "abd", "abcd"] {
            assert!(!token_matches(bad, "abc"), "{bad}");
        }
        assert_eq!(
            request_token(Some("Bearer t1"), Some("token=t2")),
            Some("t1")
        );
        assert_eq!(request_token(None, Some("a=1&token=t2")), Some("t2"));
        assert_eq!(request_token(Some("Basic x"), None), None);
    }

    #[test]
    fn paths_stay_inside() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join("a")).unwrap();
        std::fs::write(root.join("a/f.txt"), "x").unwrap();
        std::fs::write(dir.path().join("secret"), "s").unwrap();
        let root = root.canonicalize().unwrap();
        assert!(resolve_inside(&root, "a/f.txt").is_ok());
        for bad in [
            "../secret",
            "a/../../secret",
            "/etc/passwd",
            "a//f.txt",
            "./a/f.txt",
            "a\\f.txt",
            "",
        ] {
            let e = resolve_inside(&root, bad).unwrap_err();
            assert_eq!(e.status(), axum::http::StatusCode::FORBIDDEN, "{bad}");
        }
        assert_eq!(
            resolve_inside(&root, "a/none").unwrap_err().status(),
            axum::http::StatusCode::NOT_FOUND
        );
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(dir.path().join("secret"), root.join("a/link")).unwrap();
            let e = resolve_inside(&root, "a/link").unwrap_err();
            assert_eq!(e.status(), axum::http::StatusCode::FORBIDDEN);
        }
    }
}
