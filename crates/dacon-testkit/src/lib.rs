//! Test support shared by every dacon crate.
//!
//! Tests that compare with the official code read `../shared` beside the
//! repository (or `$DACON_SHARED`). Where it is absent they skip with a
//! visible `SKIPPED` line, so a clone without it still tests everything
//! else; CI sets `DACON_REQUIRE_SHARED=1`, which turns such a skip into a
//! failure, so a green CI always means the parity tests ran.
#![warn(missing_docs)]

pub mod fuzz;
pub mod pth;

use std::path::{Path, PathBuf};

/// The variable that turns a skipped parity test into a failure.
pub const REQUIRE_VAR: &str = "DACON_REQUIRE_SHARED";

/// The `shared` folder: `$DACON_SHARED`, else `../shared` beside the
/// repository.
pub fn shared_root() -> PathBuf {
    std::env::var_os("DACON_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared"))
}

/// `shared/<sub>` (canonical) when it exists; otherwise prints `SKIPPED`
/// and returns `None`.
///
/// # Panics
/// When it is missing and `DACON_REQUIRE_SHARED` is set to anything but `0`
/// or empty: a run that promised the vectors must not pass without them.
pub fn shared(sub: &str) -> Option<PathBuf> {
    let p = shared_root().join(sub);
    if let Ok(c) = p.canonicalize() {
        if c.is_dir() {
            return Some(c);
        }
    }
    let required = std::env::var(REQUIRE_VAR).is_ok_and(|v| !v.is_empty() && v != "0");
    assert!(
        !required,
        "{} not found but {REQUIRE_VAR} is set: the parity tests must run here (set DACON_SHARED)",
        p.display()
    );
    eprintln!("SKIPPED: {} not found (set DACON_SHARED)", p.display());
    None
}

/// The parity vectors of the official code, `shared/vectors/parity-v1`.
pub fn vectors() -> Option<PathBuf> {
    shared("vectors/parity-v1")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_folder_is_skipped_or_refused() {
        let sub = "no/such/folder/anywhere";
        if std::env::var(REQUIRE_VAR).is_ok_and(|v| !v.is_empty() && v != "0") {
            assert!(std::panic::catch_unwind(|| shared(sub)).is_err());
        } else {
            assert_eq!(shared(sub), None);
        }
    }
}
