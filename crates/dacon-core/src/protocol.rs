//! Which frames are targets and which are their references, as the official
//! evaluation defines it, plus our extra reference windows.

use crate::dataset::Clip;

/// A positive count, or every one there is: how many design sheets a
/// keyframe task uses, how long a consecutive chunk is. Parsed from `N` or
/// `max`, as the official options are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// At most this many (at least 1).
    Count(usize),
    /// All of them.
    Max,
}

impl Limit {
    /// `n` capped by the limit.
    pub fn of(self, n: usize) -> usize {
        match self {
            Limit::Count(k) => k.min(n),
            Limit::Max => n,
        }
    }
}

impl std::str::FromStr for Limit {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        if s.eq_ignore_ascii_case("max") {
            return Ok(Limit::Max);
        }
        match s.parse::<usize>() {
            Ok(n) if n > 0 => Ok(Limit::Count(n)),
            _ => Err(format!("expected a positive number or `max`, got {s:?}")),
        }
    }
}

impl std::fmt::Display for Limit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Limit::Count(n) => write!(f, "{n}"),
            Limit::Max => f.write_str("max"),
        }
    }
}

/// An evaluation protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// Every frame is a target; references are design sheets.
    Keyframe {
        /// How many sheets (the first by name).
        ref_shot: Limit,
    },
    /// Frame i+1 is coloured from the painted frame i, for every i with
    /// (i+1) mod clip_interval != 0 (so the first frame of every chunk of
    /// `clip_interval` frames is a given keyframe, never a target).
    Consecutive {
        /// Chunk length; `Max` = the whole clip (PaintBucket-Real).
        clip_interval: Limit,
        /// How many previous painted frames are references (official: 1).
        window: usize,
        /// Also use the following painted frame (in-betweening); not official.
        next: bool,
    },
}

/// Where a reference comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefSource {
    /// Design sheet `i` of the clip (`Clip::refs`).
    Sheet(usize),
    /// Painted frame `i` of the clip (`Clip::frames`).
    Frame(usize),
}

/// One target frame and its references.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Task {
    /// Index into `Clip::frames`.
    pub target: usize,
    /// References, in order.
    pub refs: Vec<RefSource>,
}

impl Protocol {
    /// The official keyframe protocol with `n` sheets.
    pub fn keyframe(ref_shot: Limit) -> Self {
        Protocol::Keyframe { ref_shot }
    }

    /// The official consecutive protocol (one previous frame).
    pub fn consecutive(clip_interval: Limit) -> Self {
        Protocol::Consecutive {
            clip_interval,
            window: 1,
            next: false,
        }
    }

    /// The tasks of `clip` under this protocol. A keyframe protocol on a
    /// clip without sheets gives no task.
    ///
    /// # Panics
    /// If `clip_interval` or `window` is 0.
    pub fn tasks(&self, clip: &Clip) -> Vec<Task> {
        let n = clip.frames.len();
        match *self {
            Protocol::Keyframe { ref_shot } => {
                let k = ref_shot.of(clip.refs.len());
                if k == 0 {
                    return Vec::new();
                }
                (0..n)
                    .map(|target| Task {
                        target,
                        refs: (0..k).map(RefSource::Sheet).collect(),
                    })
                    .collect()
            }
            Protocol::Consecutive {
                clip_interval,
                window,
                next,
            } => {
                let interval = match clip_interval {
                    Limit::Count(k) => k,
                    Limit::Max => n.max(1),
                };
                assert!(interval > 0, "clip_interval must be at least 1");
                assert!(window > 0, "window must be at least 1");
                let mut tasks = Vec::new();
                for i in 0..n.saturating_sub(1) {
                    let t = i + 1;
                    if t % interval == 0 {
                        continue;
                    }
                    let chunk_start = t / interval * interval;
                    let chunk_end = (chunk_start + interval).min(n);
                    let first = t.saturating_sub(window).max(chunk_start);
                    let mut refs: Vec<RefSource> = (first..t).rev().map(RefSource::Frame).collect();
                    if next && t + 1 < chunk_end {
                        refs.push(RefSource::Frame(t + 1));
                    }
                    tasks.push(Task { target: t, refs });
                }
                tasks
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::FrameFiles;
    use std::path::PathBuf;

    fn clip(frames: usize, sheets: usize) -> Clip {
        let f = |i: usize| FrameFiles {
            name: format!("{i:04}"),
            line: PathBuf::new(),
            gt: None,
            seg: None,
            table: None,
        };
        Clip {
            name: "c".into(),
            dir: PathBuf::new(),
            frames: (0..frames).map(f).collect(),
            refs: (0..sheets).map(f).collect(),
        }
    }

    #[test]
    fn official_consecutive_skips_chunk_starts() {
        let t = Protocol::consecutive(Limit::Count(20)).tasks(&clip(45, 0));
        let targets: Vec<usize> = t.iter().map(|t| t.target).collect();
        assert_eq!(targets.len(), 44 - 2);
        assert!(!targets.contains(&20) && !targets.contains(&40) && !targets.contains(&0));
        assert_eq!(t[0].refs, vec![RefSource::Frame(0)]);
        let t = Protocol::consecutive(Limit::Max).tasks(&clip(5, 0));
        assert_eq!(t.len(), 4);
    }

    #[test]
    fn windows_stay_inside_their_chunk() {
        let p = Protocol::Consecutive {
            clip_interval: Limit::Count(4),
            window: 3,
            next: true,
        };
        let t = p.tasks(&clip(8, 0));
        let t5 = t.iter().find(|t| t.target == 5).unwrap();
        assert_eq!(t5.refs, vec![RefSource::Frame(4), RefSource::Frame(6)]);
        let t3 = t.iter().find(|t| t.target == 3).unwrap();
        assert_eq!(
            t3.refs,
            vec![
                RefSource::Frame(2),
                RefSource::Frame(1),
                RefSource::Frame(0)
            ]
        );
    }

    #[test]
    fn keyframe_uses_first_sheets() {
        let t = Protocol::keyframe(Limit::Count(1)).tasks(&clip(3, 2));
        assert_eq!(t.len(), 3);
        assert_eq!(t[2].refs, vec![RefSource::Sheet(0)]);
        let t = Protocol::keyframe(Limit::Count(5)).tasks(&clip(1, 2));
        assert_eq!(t[0].refs.len(), 2);
        assert!(Protocol::keyframe(Limit::Max).tasks(&clip(3, 0)).is_empty());
        assert_eq!("max".parse(), Ok(Limit::Max));
        assert_eq!("MAX".parse(), Ok(Limit::Max));
        assert_eq!("20".parse(), Ok(Limit::Count(20)));
        for bad in ["0", "-1", "x", ""] {
            assert!(bad.parse::<Limit>().is_err(), "{bad}");
        }
        assert_eq!(Limit::Count(5).to_string(), "5");
    }
}
