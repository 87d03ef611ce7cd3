//! The interface every colorization engine implements, and its output.
//!
//! An engine turns a frame into features once ([`Engine::features`]); a
//! target is then matched against any number of coloured references
//! ([`Engine::predict`]). Features of a finished frame can be reused when it
//! becomes a reference for the next one (consecutive-frame work).

use std::path::Path;

use serde::Serialize;

use crate::color_table::{ColorTable, Rgba};
use crate::error::{Error, Result, ResultExt};
use crate::frame::Frame;

/// A coloured reference: an engine's features of a frame and the colours of
/// that frame's segments.
#[derive(Debug, Clone, Copy)]
pub struct Reference<'a, F> {
    /// Features from [`Engine::features`].
    pub features: &'a F,
    /// The colour of every segment of the reference.
    pub colors: &'a ColorTable,
}

/// Where a target segment's colour came from: a segment of one reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Source {
    /// Index of the reference in the slice given to [`Engine::predict`].
    pub reference: usize,
    /// The 1-based segment of that reference.
    pub segment: u32,
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
    /// The reference segment the colour was taken from (`None` when no
    /// reference segment supported it).
    pub source: Option<Source>,
}

impl Confidence {
    /// The values as the confidence sidecar stores them (6 decimals).
    pub fn as_stored(self) -> Confidence {
        let round = |x: f32| {
            if x.is_finite() {
                json_f32(x).parse().unwrap_or(x)
            } else {
                x
            }
        };
        Confidence {
            similarity: round(self.similarity),
            margin: round(self.margin),
            source: self.source,
        }
    }
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
    /// "margin": m, "reference": r, "source_segment": s}, ...}`, one segment
    /// per line; `reference` indexes the references in the order they were
    /// given, and both are absent when no reference segment was the source.
    pub fn confidence_json(&self) -> String {
        let mut rows = Vec::with_capacity(self.confidence.len());
        for (i, c) in self.confidence.iter().enumerate() {
            let id = i as u32 + 1;
            let color = self.colors.get(id).unwrap_or([0, 0, 0, 0]);
            let source = c.source.map_or(String::new(), |s| {
                format!(
                    ", \"reference\": {}, \"source_segment\": {}",
                    s.reference, s.segment
                )
            });
            rows.push(format!(
                "  \"{id}\": {{\"color\": [{}, {}, {}, {}], \"similarity\": {}, \"margin\": {}{source}}}",
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

    /// Reads a prediction back from its table (`NAME.json`) and confidence
    /// sidecar ([`Prediction::confidence_json`]) for a frame of `segments`
    /// segments.
    ///
    /// # Errors
    /// Read errors, [`Error::Sidecar`] when the sidecar lacks a segment or
    /// is malformed, naming the file.
    pub fn read(table: &Path, confidence: &Path, segments: u32) -> Result<Prediction> {
        let colors = ColorTable::open(table)?;
        let text = std::fs::read_to_string(confidence).map_err(|e| Error::io(confidence, e))?;
        let confidence_rows = parse_confidence(&text, segments).at(confidence)?;
        Ok(Prediction {
            colors,
            confidence: confidence_rows,
        })
    }

    /// This prediction carried over to another segmentation of the same
    /// frame: segment `i` there takes the colour and confidence of segment
    /// `map[i]` here (see [`crate::Segmentation::majority_of`]); a segment
    /// mapped to 0 gets no colour and no confidence.
    pub fn carried_over(&self, map: &[u32]) -> Prediction {
        let none = Confidence {
            similarity: 0.0,
            margin: 0.0,
            source: None,
        };
        let mut colors = ColorTable::default();
        let mut confidence = Vec::with_capacity(map.len().saturating_sub(1));
        for (id, &from) in map.iter().enumerate().skip(1) {
            if let Some(c) = self.colors.get(from) {
                colors.set(id as u32, c);
            }
            let k = (from as usize).checked_sub(1);
            confidence.push(
                k.and_then(|k| self.confidence.get(k))
                    .copied()
                    .unwrap_or(none),
            );
        }
        Prediction { colors, confidence }
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

fn parse_confidence(text: &str, segments: u32) -> Result<Vec<Confidence>> {
    let bad = |reason: String| Error::Sidecar { reason };
    let map: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(text).map_err(|e| bad(format!("not a JSON object: {e}")))?;
    (1..=segments)
        .map(|id| {
            let row = map
                .get(&id.to_string())
                .ok_or_else(|| bad(format!("no entry for segment {id}")))?;
            // `null` stands for a non-finite value (JSON has none).
            let number = |key: &str| match row.get(key) {
                Some(serde_json::Value::Null) => Ok(f32::NAN),
                Some(v) => v
                    .as_f64()
                    .map(|x| x as f32)
                    .ok_or_else(|| bad(format!("segment {id}: {key} is not a number"))),
                None => Err(bad(format!("segment {id}: no {key}"))),
            };
            let source = match (row.get("reference"), row.get("source_segment")) {
                (Some(r), Some(s)) => Some(Source {
                    reference: r
                        .as_u64()
                        .and_then(|r| usize::try_from(r).ok())
                        .ok_or_else(|| bad(format!("segment {id}: bad reference")))?,
                    segment: s
                        .as_u64()
                        .and_then(|s| u32::try_from(s).ok())
                        .ok_or_else(|| bad(format!("segment {id}: bad source_segment")))?,
                }),
                _ => None,
            };
            Ok(Confidence {
                similarity: number("similarity")?,
                margin: number("margin")?,
                source,
            })
        })
        .collect()
}

fn json_f32(x: f32) -> String {
    if x.is_finite() {
        format!("{:.6}", x)
    } else {
        "null".into()
    }
}

/// A colorization engine.
pub trait Engine: Sync {
    /// Per-frame features, computed once per frame.
    type Features: Send + Sync;
    /// The engine's error type; it carries the core's errors.
    type Error: std::error::Error + Send + Sync + 'static + From<Error>;

    /// Computes the features of a frame.
    fn features(&self, frame: &Frame) -> Result<Self::Features, Self::Error>;

    /// Colours every segment of `target` from `refs`.
    ///
    /// # Errors
    /// [`Error::NoReferences`] when `refs` is empty.
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
                    source: None,
                },
                Confidence {
                    similarity: 0.8,
                    margin: 0.01,
                    source: Some(Source {
                        reference: 1,
                        segment: 7,
                    }),
                },
                Confidence {
                    similarity: 0.7,
                    margin: 0.2,
                    source: None,
                },
            ],
        };
        let r = p.review(2);
        assert_eq!(r[0].0, 2);
        assert_eq!(r[1].0, 3);
        let j: serde_json::Value = serde_json::from_str(&p.confidence_json()).unwrap();
        assert_eq!(j["2"]["color"], serde_json::json!([2, 2, 2, 255]));
        assert!((j["2"]["margin"].as_f64().unwrap() - 0.01).abs() < 1e-6);
        assert_eq!(j["2"]["reference"], 1);
        assert_eq!(j["2"]["source_segment"], 7);
        assert!(j["1"].get("reference").is_none());
        let back = parse_confidence(&p.confidence_json(), 3).unwrap();
        for (a, b) in back.iter().zip(&p.confidence) {
            assert_eq!(a.source, b.source);
            assert!((a.margin - b.margin).abs() < 1e-6);
        }
        assert!(parse_confidence(&p.confidence_json(), 4).is_err());
        assert!(parse_confidence("[1]", 1).is_err());
    }
}
