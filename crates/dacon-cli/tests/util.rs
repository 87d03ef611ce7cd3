//! Helpers: run the binary in a temp dir, draw small line art.

use std::path::Path;
use std::process::{Command, Output};

use image::{Rgba, RgbaImage};

pub struct Run {
    pub out: Output,
}

impl Run {
    pub fn code(&self) -> i32 {
        self.out.status.code().unwrap_or(-1)
    }
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.out.stdout).into_owned()
    }
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.out.stderr).into_owned()
    }
    #[track_caller]
    pub fn ok(self) -> Self {
        assert_eq!(self.code(), 0, "stderr: {}", self.stderr());
        self
    }
    #[track_caller]
    pub fn fails(self) -> Self {
        assert_ne!(self.code(), 0, "unexpected success: {}", self.stderr());
        assert!(!self.stderr().contains("panicked"), "{}", self.stderr());
        self
    }
}

pub fn dacon(dir: &Path, args: &[&str]) -> Run {
    dacon_env(dir, args, &[])
}

/// [`dacon`] with extra environment variables.
pub fn dacon_env(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_dacon"))
        .current_dir(dir)
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("run dacon");
    Run { out }
}

pub use dacon_testkit::shared;

pub const CLEAR: [u8; 4] = [255, 255, 255, 0];
pub const BLACK: [u8; 4] = [0, 0, 0, 255];

/// A 40x30 frame: a black box outline split by a black vertical line, with a
/// red colour-trace line in the left half. Returns (line art, painted frame).
pub fn boxes() -> (RgbaImage, RgbaImage) {
    let (w, h) = (40, 30);
    let mut line = RgbaImage::from_pixel(w, h, Rgba(CLEAR));
    let mut gt = RgbaImage::from_pixel(w, h, Rgba(CLEAR));
    for y in 0..h {
        for x in 0..w {
            let border = (5..35).contains(&x) && (5..25).contains(&y);
            let edge = x == 5 || x == 34 || y == 5 || y == 24 || x == 20;
            if border && edge {
                line.put_pixel(x, y, Rgba(BLACK));
                gt.put_pixel(x, y, Rgba(BLACK));
            } else if border && y == 15 && x < 20 {
                line.put_pixel(x, y, Rgba([200, 0, 0, 255]));
                gt.put_pixel(x, y, Rgba([90, 90, 200, 255]));
            } else if border && x < 20 {
                let c = if y < 15 {
                    [250, 200, 180, 255]
                } else {
                    [90, 90, 200, 255]
                };
                gt.put_pixel(x, y, Rgba(c));
            } else if border {
                gt.put_pixel(x, y, Rgba([20, 160, 60, 255]));
            }
        }
    }
    (line, gt)
}

pub fn save(img: &RgbaImage, path: &Path) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    img.save(path).unwrap();
}

pub fn files_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|r| {
            r.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}
