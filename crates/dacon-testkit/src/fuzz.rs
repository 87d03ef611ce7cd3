//! A small mutation fuzzer for the readers of untrusted files, on stable
//! Rust: seed inputs are mutated (bit flips, byte edits, interesting values,
//! truncation, duplication and splicing of slices) and each mutant is given
//! to a target that must return, never panic. A panicking input is written
//! to `target/fuzz-failures/` and reported.
//!
//! The budget is `DACON_FUZZ_CASES` cases per target (default 1500, what
//! `cargo test` runs in CI), or `DACON_FUZZ_SECONDS` seconds when set (the
//! longer run), with `DACON_FUZZ_SEED` choosing the sequence.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use dacon_core::rng::Rng;

/// How long a target is fuzzed.
#[derive(Debug, Clone, Copy)]
pub enum Budget {
    /// This many mutants.
    Cases(u64),
    /// As many as fit in this time.
    Time(Duration),
}

impl Budget {
    /// The budget the environment asks for, else `default_cases`.
    pub fn from_env(default_cases: u64) -> Budget {
        let var = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<u64>().ok());
        match (var("DACON_FUZZ_SECONDS"), var("DACON_FUZZ_CASES")) {
            (Some(s), _) => Budget::Time(Duration::from_secs(s)),
            (None, Some(n)) => Budget::Cases(n),
            (None, None) => Budget::Cases(default_cases),
        }
    }
}

/// What a fuzzing run did.
#[derive(Debug, Clone, Copy)]
pub struct Report {
    /// Mutants tried.
    pub cases: u64,
    /// Of those, how many the target accepted (returned `true` for).
    pub accepted: u64,
}

/// Values that often sit at the edge of a check.
const INTERESTING: [u64; 12] = [
    0,
    1,
    0x7f,
    0x80,
    0xff,
    0x7fff,
    0xffff,
    0x7fff_ffff,
    0xffff_ffff,
    0x7fff_ffff_ffff_ffff,
    u64::MAX,
    0x4000_0000_0000_0000,
];

fn mutate(rng: &mut Rng, seeds: &[Vec<u8>], input: &mut Vec<u8>) {
    let edits = 1 + rng.below(4);
    for _ in 0..edits {
        let len = input.len();
        match rng.below(8) {
            0 if len > 0 => {
                let i = rng.below(len);
                input[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                input[i] = rng.next_u64() as u8;
            }
            2 if len > 0 => {
                // An interesting integer, little- or big-endian, 1-8 bytes.
                let v = INTERESTING[rng.below(INTERESTING.len())];
                let width = [1, 2, 4, 8][rng.below(4)];
                let bytes = if rng.below(2) == 0 {
                    v.to_le_bytes()
                } else {
                    v.to_be_bytes()
                };
                let at = rng.below(len);
                for (k, b) in bytes.iter().take(width).enumerate() {
                    if let Some(slot) = input.get_mut(at + k) {
                        *slot = *b;
                    }
                }
            }
            3 if len > 1 => input.truncate(rng.below(len)),
            4 if len > 0 => {
                // Duplicate a slice in place (repeated structures).
                let a = rng.below(len);
                let b = (a + 1 + rng.below(64)).min(len);
                let piece = input[a..b].to_vec();
                let at = rng.below(len + 1);
                input.splice(at..at, piece);
            }
            5 if len > 0 => {
                let a = rng.below(len);
                let b = (a + 1 + rng.below(64)).min(len);
                input.drain(a..b);
            }
            6 => {
                // Splice in a piece of another seed.
                let other = &seeds[rng.below(seeds.len())];
                if !other.is_empty() {
                    let a = rng.below(other.len());
                    let b = (a + 1 + rng.below(256)).min(other.len());
                    let at = rng.below(len + 1);
                    input.splice(at..at, other[a..b].iter().copied());
                }
            }
            _ => {
                let at = rng.below(len + 1);
                input.insert(at, rng.next_u64() as u8);
            }
        }
        // Keep mutants small: readers must bound their work by what the
        // data says, and big inputs only slow the loop down.
        input.truncate(1 << 20);
    }
}

/// Fuzzes `target` with mutants of `seeds`; the target returns whether it
/// accepted the input (for the report) and must never panic.
///
/// # Panics
/// When the target panics on an input (saved under
/// `target/fuzz-failures/<name>-<case>.bin`), or without seeds.
pub fn fuzz(
    name: &str,
    seeds: &[Vec<u8>],
    budget: Budget,
    target: impl Fn(&[u8]) -> bool,
) -> Report {
    assert!(!seeds.is_empty(), "fuzz {name}: no seeds");
    let seed = std::env::var("DACON_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed);
    let mut rng = Rng::new(
        seed ^ name
            .bytes()
            .fold(0u64, |h, b| h.wrapping_mul(31) ^ u64::from(b)),
    );
    let start = Instant::now();
    let mut report = Report {
        cases: 0,
        accepted: 0,
    };
    let done = |r: &Report| match budget {
        Budget::Cases(n) => r.cases >= n,
        Budget::Time(t) => start.elapsed() >= t,
    };
    let mut failure = None;
    while !done(&report) {
        let mut input = seeds[rng.below(seeds.len())].clone();
        mutate(&mut rng, seeds, &mut input);
        report.cases += 1;
        match catch_unwind(AssertUnwindSafe(|| target(&input))) {
            Ok(true) => report.accepted += 1,
            Ok(false) => {}
            Err(e) => {
                let msg = e
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                failure = Some((report.cases, input, msg));
                break;
            }
        }
    }
    if let Some((case, input, msg)) = failure {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/fuzz-failures");
        let path = dir.join(format!("{name}-{case}.bin"));
        let saved = std::fs::create_dir_all(&dir)
            .and_then(|()| std::fs::write(&path, &input))
            .is_ok();
        panic!(
            "fuzz {name}: case {case} panicked: {msg}; input{} ({} bytes)",
            if saved {
                format!(" saved to {}", path.display())
            } else {
                String::new()
            },
            input.len()
        );
    }
    eprintln!(
        "fuzz {name}: {} cases in {:.1} s, {} accepted",
        report.cases,
        start.elapsed().as_secs_f64(),
        report.accepted
    );
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panicking_target_is_caught_and_reported() {
        let r = catch_unwind(|| {
            fuzz(
                "selftest",
                &[b"abcdef".to_vec()],
                Budget::Cases(10_000),
                |b| {
                    assert!(!b.contains(&b'!'), "found it");
                    true
                },
            )
        });
        // Random insertions reach '!' (0x21) well within 10000 cases.
        let msg = r.unwrap_err();
        let msg = msg.downcast_ref::<String>().unwrap();
        assert!(msg.contains("found it"), "{msg}");
    }

    #[test]
    fn a_robust_target_runs_its_budget() {
        let r = fuzz("selftest-ok", &[vec![1, 2, 3]], Budget::Cases(500), |b| {
            b.len() < 3
        });
        assert_eq!(r.cases, 500);
        assert!(r.accepted > 0);
    }
}
