//! One engine chosen at run time (`--engine classic|dacon`): the command
//! line, the server and validation during training colour through this one
//! type instead of matching on the engine at every call site.

use dacon_core::classic::{ClassicEngine, ClassicFeatures};
use dacon_core::{Engine, Frame, Prediction, Reference};

use crate::engine::{DaconEngine, SegmentFeatures};
use crate::error::Result;

/// The weight-free classic engine or the neural DACoN engine.
#[derive(Debug)]
pub enum AnyEngine {
    /// Weight-free matching of the line drawings.
    Classic(ClassicEngine),
    /// DINOv2 + DACoN head.
    Dacon(Box<DaconEngine>),
}

/// Features of [`AnyEngine`]: those of the engine that made them.
#[derive(Debug, Clone)]
// One value per frame in flight, never in bulk: boxing would add an
// allocation per frame to save a few hundred bytes.
#[allow(clippy::large_enum_variant)]
pub enum AnyFeatures {
    /// From [`AnyEngine::Classic`].
    Classic(ClassicFeatures),
    /// From [`AnyEngine::Dacon`].
    Dacon(SegmentFeatures),
}

impl AnyEngine {
    /// The engine's name as the command line spells it.
    pub fn name(&self) -> &'static str {
        match self {
            AnyEngine::Classic(_) => "classic",
            AnyEngine::Dacon(_) => "dacon",
        }
    }
}

/// The references' features as `F`, all made by the same engine.
///
/// # Panics
/// If a reference's features come from the other engine: features are only
/// ever made by the engine that matches them, so this is a caller bug.
fn unwrap_refs<'a, F>(
    refs: &[Reference<'a, AnyFeatures>],
    pick: impl Fn(&'a AnyFeatures) -> Option<&'a F>,
) -> Vec<Reference<'a, F>> {
    refs.iter()
        .map(|r| Reference {
            features: pick(r.features).expect("reference features made by another engine"),
            colors: r.colors,
        })
        .collect()
}

impl Engine for AnyEngine {
    type Features = AnyFeatures;
    type Error = crate::Error;

    fn features(&self, frame: &Frame) -> Result<AnyFeatures> {
        Ok(match self {
            AnyEngine::Classic(e) => AnyFeatures::Classic(e.features(frame)?),
            AnyEngine::Dacon(e) => AnyFeatures::Dacon(e.features(frame)?),
        })
    }

    fn predict(
        &self,
        refs: &[Reference<'_, AnyFeatures>],
        target: &AnyFeatures,
    ) -> Result<Prediction> {
        match (self, target) {
            (AnyEngine::Classic(e), AnyFeatures::Classic(t)) => {
                let refs = unwrap_refs(refs, |f| match f {
                    AnyFeatures::Classic(c) => Some(c),
                    AnyFeatures::Dacon(_) => None,
                });
                Ok(e.predict(&refs, t)?)
            }
            (AnyEngine::Dacon(e), AnyFeatures::Dacon(t)) => {
                let refs = unwrap_refs(refs, |f| match f {
                    AnyFeatures::Dacon(d) => Some(d),
                    AnyFeatures::Classic(_) => None,
                });
                e.predict(&refs, t)
            }
            _ => panic!("target features made by another engine"),
        }
    }
}
