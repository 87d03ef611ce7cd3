//! The interface every colorization engine implements, and its output.
//!
//! An engine turns a frame into features once ([`Matcher::features`]); a
//! target is then matched against any number of coloured references
//! ([`Matcher::predict`]). Features of a finished frame can be reused when it
//! becomes a reference for the next one (consecutive-frame work).

use serde::Serialize;

use crate::lineart::LineArt;
use crate::palette::{ColorTable, Rgba};
use crate::segment::Segmentation;

/// A frame ready for matching: its line art and its segments.
#[derive(Debug, Clone)]
pub struct Frame {
    /// The line art as drawn.
    pub art: LineArt,
    /// Its segmentation (computed, or the dataset's own).
    pub seg: Segmentation,
}

/// A coloured reference: an engine's features of a frame and the colours of
/// that frame's segments.
#[derive(Debug, Clone, Copy)]
pub struct Reference<'a, F> {
    /// Features from [`Matcher::features`].
    pub features: &'a F,
    /// The colour of every segment of the reference.
    pub colors: &'a ColorTable,
}

/// How sure the engine is of one segment's colour.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Confidence {
    /// Similarity of the best reference segment (cosine for the neural
    /// engine, a 0..1 score for the classic one).
    pub similarity: f32,
    /// Best similarity minus the best similarity of a reference segment of a
    /// different colour (0 when every candidate has the same colour: then
    /// the margin is the full similarity). Small margins deserve review.
    pub margin: f32,
}

/// An engine's answer for one target frame.
#[derive(Debug, Clone, PartialEq)]
pub struct Prediction {
    /// The colour of every target segment.
    pub colors: ColorTable,
    /// Confidence of every target segment, in segment order.
    pub confidence: Vec<Confidence>,
}

impl Prediction {
    /// The confidence sidecar: `{"1": {"color": [...], "similarity": s,
    /// "margin": m}, ...}`, one segment per line.
    pub fn confidence_json(&self) -> String {
        let mut rows = Vec::with_capacity(self.confidence.len());
        for (i, c) in self.confidence.iter().enumerate() {
            let id = i as u32 + 1;
            let color = self.colors.get(id).unwrap_or([0, 0, 0, 0]);
            rows.push(format!(
                "  \"{id}\": {{\"color\": [{}, {}, {}, {}], \"similarity\": {}, \"margin\": {}}}",
                color[0],
                color[1],
                color[2],
                color[3],
                json_f32(c.similarity),
                json_f32(c.margin)
            ));
        }
        format!("{{\n{}\n}}\n", rows.join(",\n"))
    }

    /// The `n` least confident segments (smallest margin first), with their
    /// colour: what a painter should check first.
    pub fn review(&self, n: usize) -> Vec<(u32, Rgba, Confidence)> {
        let mut ids: Vec<u32> = (1..=self.confidence.len() as u32).collect();
        ids.sort_by(|&a, &b| {
            let (ca, cb) = (
                self.confidence[a as usize - 1],
                self.confidence[b as usize - 1],
            );
            ca.margin.total_cmp(&cb.margin).then(a.cmp(&b))
        });
        ids.into_iter()
            .take(n)
            .map(|id| {
                (
                    id,
                    self.colors.get(id).unwrap_or([0, 0, 0, 0]),
                    self.confidence[id as usize - 1],
                )
            })
            .collect()
    }
}

fn json_f32(x: f32) -> String {
    if x.is_finite() {
        format!("{:.6}", x)
    } else {
        "null".into()
    }
}

/// A colorization engine.
pub trait Matcher: Sync {
    /// Per-frame features, computed once per frame.
    type Features: Send + Sync;
    /// The engine's error type.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Computes the features of a frame.
    fn features(&self, frame: &Frame) -> Result<Self::Features, Self::Error>;

    /// Colours every segment of `target` from `refs` (at least one).
    fn predict(
        &self,
        refs: &[Reference<'_, Self::Features>],
        target: &Self::Features,
    ) -> Result<Prediction, Self::Error>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn review_orders_by_margin() {
        let p = Prediction {
            colors: ColorTable::from_colors([[1, 1, 1, 255], [2, 2, 2, 255], [3, 3, 3, 255]]),
            confidence: vec![
                Confidence {
                    similarity: 0.9,
                    margin: 0.5,
                },
                Confidence {
                    similarity: 0.8,
                    margin: 0.01,
                },
                Confidence {
                    similarity: 0.7,
                    margin: 0.2,
                },
            ],
        };
        let r = p.review(2);
        assert_eq!(r[0].0, 2);
        assert_eq!(r[1].0, 3);
        let j: serde_json::Value = serde_json::from_str(&p.confidence_json()).unwrap();
        assert_eq!(j["2"]["color"], serde_json::json!([2, 2, 2, 255]));
        assert!((j["2"]["margin"].as_f64().unwrap() - 0.01).abs() < 1e-6);
    }
}
