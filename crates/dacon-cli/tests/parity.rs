//! The acceptance interfaces on `../shared/vectors/parity-v1`.

use std::path::Path;

use crate::util::*;

fn labels_of(p: &Path) -> image::RgbImage {
    image::open(p).unwrap().to_rgb8()
}

#[test]
fn segment_and_colors_reproduce_official_files() {
    let Some(v) = shared("vectors/parity-v1") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    for ch in ["charA", "charB", "charC"] {
        let clip = v.join("clips").join(ch);
        let exp = v.join("expected/seg").join(ch);
        let out = d.join(ch);
        let line = clip.join("line/target.png");
        dacon(
            d,
            &[
                "segment",
                line.to_str().unwrap(),
                "--out",
                out.to_str().unwrap(),
                "-q",
            ],
        )
        .ok();
        assert!(
            labels_of(&out.join("target.png")) == labels_of(&exp.join("seg/target.png")),
            "{ch}: labels differ"
        );
        let table = out.join("target.json");
        dacon(
            d,
            &[
                "colors",
                clip.join("gt/target.png").to_str().unwrap(),
                out.join("target.png").to_str().unwrap(),
                "--out",
                table.to_str().unwrap(),
            ],
        )
        .ok();
        assert_eq!(
            std::fs::read_to_string(&table).unwrap(),
            std::fs::read_to_string(exp.join("seg/target.json")).unwrap(),
            "{ch}: table differs"
        );
        // The references, as a folder.
        let refs_out = out.join("ref");
        dacon(
            d,
            &[
                "segment",
                clip.join("ref/line").to_str().unwrap(),
                "--out",
                refs_out.to_str().unwrap(),
                "-q",
            ],
        )
        .ok();
        for f in files_in(&exp.join("ref/seg"))
            .iter()
            .filter(|f| f.ends_with(".png"))
        {
            assert!(
                labels_of(&refs_out.join(f)) == labels_of(&exp.join("ref/seg").join(f)),
                "{ch}/ref/{f}: labels differ"
            );
        }
    }
}
