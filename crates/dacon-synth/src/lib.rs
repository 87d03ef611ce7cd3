//! Procedurally drawn line art: a small character in motion, with its
//! painting. Our own drawings (no third-party art) for the bundled example,
//! tests and benchmarks.
//!
//! The character is a stack of implicit shapes (ellipses and capsules, back
//! to front) with black outlines, colour-trace shadow boundaries on the face,
//! hair and shirt, eyes with iris, pupil and highlight, and a mouth. Over a
//! cut the whole figure moves, turns and zooms, the head tilts, the front arm
//! swings across the body (occlusion), the mouth opens (a new segment) and
//! the eyes blink (segments vanish) — the cases a matcher meets in real cuts.

pub mod leak;

use std::path::Path;

use image::{Rgba, RgbaImage};

use dacon_core::imageio::write_rgba_png;
use dacon_core::rng::Rng;
use dacon_core::{ColorTable, Error, LineArt, Result, Segmentation};

/// Parameters of a generated cut.
#[derive(Debug, Clone)]
pub struct CutSpec {
    /// Canvas width in pixels.
    pub width: u32,
    /// Canvas height in pixels.
    pub height: u32,
    /// Number of frames.
    pub frames: usize,
    /// Seed of the motion.
    pub seed: u64,
    /// Outline width in pixels.
    pub line_width: f64,
    /// Draw anti-aliased outlines (translucent fringe) instead of hard ones.
    pub antialias: bool,
    /// Motion per frame, 1.0 = a lively cut.
    pub motion: f64,
    /// What kind of motion the cut shows.
    pub preset: Preset,
}

/// Kinds of cut, each stressing one way real cuts break a matcher. Every
/// preset keeps the seeded determinism of [`CutSpec::seed`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Preset {
    /// The bundled example: gentle drift, turn and zoom, one arm swinging
    /// across the body, a mouth opening and a blink.
    #[default]
    Basic,
    /// Arms, gloved hands and legs swinging on their own, far and out of
    /// phase with the body, so limbs occlude the torso and each other.
    Limbs,
    /// A large rotation of the whole figure and a head turning aside (the
    /// far eye narrows and vanishes), in near-identical dark tones (hair,
    /// suit, trousers) that a matcher can swap.
    Turn,
    /// Gloved hands opening and closing: a fist becomes a palm with
    /// fingers (new segments) and back, while the arms move.
    Hands,
    /// The figure walks in across the canvas edge while a ball rolls in
    /// from the other side and out again: parts enter and leave the frame.
    Enter,
    /// A zoom in while the canvas grows from frame to frame, the figure
    /// kept at the bottom: hair cut by the top edge at first, open
    /// background above it later.
    Zoom,
    /// Limbs moving on their own, with every frame drawn anew the way a
    /// hand redraws it: outlines wobble and change thickness, fold and
    /// strand lines appear in some frames and not in others (splitting
    /// parts), and shadows are left out now and then (merging them), so
    /// segment counts differ up to about 2x between frames.
    Redraw,
    /// The whole figure tumbles: it turns about 12 degrees a frame (about
    /// 100 over ten frames, past any small-angle search) while it drifts
    /// and its limbs swing, so head and feet leave and re-enter the canvas.
    Tumble,
}

impl Preset {
    /// Every preset, in declaration order.
    pub const ALL: [Preset; 8] = [
        Preset::Basic,
        Preset::Limbs,
        Preset::Turn,
        Preset::Hands,
        Preset::Enter,
        Preset::Zoom,
        Preset::Redraw,
        Preset::Tumble,
    ];

    /// The lower-case name (as `dacon example --preset` takes it).
    pub fn name(self) -> &'static str {
        match self {
            Preset::Basic => "basic",
            Preset::Limbs => "limbs",
            Preset::Turn => "turn",
            Preset::Hands => "hands",
            Preset::Enter => "enter",
            Preset::Zoom => "zoom",
            Preset::Redraw => "redraw",
            Preset::Tumble => "tumble",
        }
    }
}

impl std::str::FromStr for Preset {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        Preset::ALL
            .into_iter()
            .find(|p| p.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                let names: Vec<&str> = Preset::ALL.iter().map(|p| p.name()).collect();
                format!("unknown preset {s:?}, expected one of {}", names.join(", "))
            })
    }
}

impl Default for CutSpec {
    fn default() -> Self {
        CutSpec {
            width: 768,
            height: 576,
            frames: 12,
            seed: 7,
            line_width: 3.0,
            antialias: false,
            motion: 1.0,
            preset: Preset::Basic,
        }
    }
}

/// One drawn frame: line art (transparent background, black outlines,
/// coloured traces) and its painting.
#[derive(Debug, Clone)]
pub struct DrawnFrame {
    /// The line layer.
    pub line: RgbaImage,
    /// The painted frame (fills and lines).
    pub gt: RgbaImage,
}

const BG: [u8; 4] = [255, 255, 255, 0];
const INK: [u8; 4] = [0, 0, 0, 255];
const SHADOW_TRACE: [u8; 4] = [60, 90, 230, 255];
const HIGHLIGHT_TRACE: [u8; 4] = [230, 60, 60, 255];

#[derive(Debug, Clone, Copy)]
enum Geom {
    /// Centre, radii, rotation.
    Ellipse([f64; 2], [f64; 2], f64),
    /// Segment ends and radius.
    Capsule([f64; 2], [f64; 2], f64),
}

impl Geom {
    /// Approximate signed distance (negative inside).
    fn sdf(&self, p: [f64; 2]) -> f64 {
        match *self {
            Geom::Ellipse(c, r, rot) => {
                let (s, co) = rot.sin_cos();
                let (dx, dy) = (p[0] - c[0], p[1] - c[1]);
                let (x, y) = (co * dx + s * dy, -s * dx + co * dy);
                let k = ((x / r[0]).powi(2) + (y / r[1]).powi(2)).sqrt();
                // Scaled so the value is close to a distance near the outline.
                (k - 1.0) * r[0].min(r[1])
            }
            Geom::Capsule(a, b, r) => {
                let (bax, bay) = (b[0] - a[0], b[1] - a[1]);
                let (pax, pay) = (p[0] - a[0], p[1] - a[1]);
                let h =
                    ((pax * bax + pay * bay) / (bax * bax + bay * bay).max(1e-9)).clamp(0.0, 1.0);
                ((pax - bax * h).powi(2) + (pay - bay * h).powi(2)).sqrt() - r
            }
        }
    }
}

/// The half-plane `normal . p > offset` of a shape, painted `fill` and
/// bounded by a colour-trace line of colour `trace`.
#[derive(Debug, Clone, Copy)]
struct Shade {
    normal: [f64; 2],
    offset: f64,
    fill: [u8; 4],
    trace: [u8; 4],
}

/// A filled shape, optionally with a shadow region bounded by a trace line.
#[derive(Debug, Clone, Copy)]
struct Shape {
    geom: Geom,
    fill: [u8; 4],
    /// A shadow or highlight inside the shape.
    shade: Option<Shade>,
    /// Drawn without outline (e.g. highlights are bounded by a trace).
    outline: bool,
}

fn shape(geom: Geom, fill: [u8; 4]) -> Shape {
    Shape {
        geom,
        fill,
        shade: None,
        outline: true,
    }
}

/// The pose of frame `t`.
#[derive(Debug, Clone, Copy)]
struct Pose {
    /// Canvas size of the frame.
    canvas: [u32; 2],
    /// Where the chest sits on the canvas before `shift`.
    centre: [f64; 2],
    shift: [f64; 2],
    turn: f64,
    zoom: f64,
    head_tilt: f64,
    /// Head turned aside, -1..1 (0 = facing us).
    yaw: f64,
    arm: f64,
    /// Swing of the back arm about its shoulder (0 = hanging).
    back_arm: f64,
    /// Swing of the legs about the hips (0 = standing).
    legs: f64,
    /// 0 = fist, 1 = open hand with fingers.
    hand_open: f64,
    /// Centre of a ball rolling through the frame, in canvas pixels.
    ball: Option<[f64; 2]>,
    mouth: f64,
    blink: f64,
}

fn poses(spec: &CutSpec) -> Vec<Pose> {
    let mut rng = Rng::new(spec.seed);
    let m = spec.motion;
    let (vx, vy) = (rng.range(-6.0, 6.0) * m, rng.range(-3.0, 3.0) * m);
    let spin = rng.range(-0.012, 0.012) * m;
    let grow = rng.range(-0.006, 0.006) * m;
    let phase = rng.range(0.0, std::f64::consts::TAU);
    let blink_at = (rng.unit() * spec.frames as f64) as usize;
    // The presets draw from their own stream, so the basic cut of a seed
    // stays what it always was.
    let mut more = Rng::new(spec.seed ^ 0x005e_ed0f_9e37_79b9);
    let phases: [f64; 4] = std::array::from_fn(|_| more.range(0.0, std::f64::consts::TAU));
    let side = if more.unit() < 0.5 { -1.0 } else { 1.0 };
    let (w, h) = (f64::from(spec.width), f64::from(spec.height));
    let last = spec.frames.saturating_sub(1).max(1) as f64;
    (0..spec.frames)
        .map(|t| {
            let tf = t as f64;
            let mut pose = Pose {
                canvas: [spec.width, spec.height],
                centre: [w * 0.5, h * 0.55],
                shift: [vx * tf, vy * tf],
                turn: spin * tf,
                zoom: 1.0 + grow * tf,
                head_tilt: 0.08 * m * (phase + 0.5 * tf).sin(),
                yaw: 0.0,
                arm: 0.25 + 0.09 * m * tf,
                back_arm: 0.0,
                legs: 0.0,
                hand_open: 0.0,
                ball: None,
                mouth: ((tf - 2.0) / 4.0).clamp(0.0, 1.0),
                blink: if t == blink_at && spec.frames > 4 {
                    1.0
                } else {
                    0.0
                },
            };
            let swing = |k: usize, rate: f64| (phases[k] + rate * tf).sin();
            match spec.preset {
                Preset::Basic => {}
                Preset::Limbs => {
                    pose.arm = 0.25 + 1.1 * m * swing(0, 0.55);
                    pose.back_arm = 0.9 * m * swing(1, 0.7);
                    pose.legs = 0.45 * m * swing(2, 0.6);
                }
                Preset::Turn => {
                    pose.turn = side * 0.06 * m * tf;
                    pose.yaw = -side * (0.12 * m * tf).min(1.0);
                }
                Preset::Hands => {
                    pose.hand_open = 0.5 - 0.5 * (phases[3] + 0.9 * tf).cos();
                    pose.arm = 0.25 + 0.5 * m * swing(0, 0.4);
                    pose.back_arm = 0.4 * m * swing(1, 0.5);
                }
                Preset::Enter => {
                    pose.shift[0] = w * (-0.45 + 0.99 * m.min(1.0) * tf / last);
                    pose.legs = 0.35 * swing(2, 1.2);
                    pose.ball = Some([
                        w * (1.1 - 1.3 * m.min(1.0) * tf / last),
                        h * 0.82 + pose.shift[1],
                    ]);
                }
                Preset::Zoom => {
                    let g = 1.0 + 0.06 * m * tf;
                    pose.canvas = [
                        (w * (1.0 + 0.03 * m * tf)).round() as u32,
                        (h * g).round() as u32,
                    ];
                    pose.centre = [
                        f64::from(pose.canvas[0]) * 0.5,
                        f64::from(pose.canvas[1]) - h * 0.45,
                    ];
                    pose.zoom = 1.22 + 0.015 * m * tf;
                    pose.shift = [0.3 * vx * tf, 0.0];
                }
                Preset::Redraw => {
                    pose.arm = 0.25 + 0.7 * m * swing(0, 0.5);
                    pose.back_arm = 0.6 * m * swing(1, 0.6);
                    pose.legs = 0.3 * m * swing(2, 0.5);
                }
                Preset::Tumble => {
                    pose.turn = side * 0.2 * m * tf;
                    pose.zoom = 0.8;
                    pose.arm = 0.25 + 0.6 * m * swing(0, 0.5);
                    pose.legs = 0.35 * m * swing(2, 0.7);
                }
            }
            pose
        })
        .collect()
}

/// Fill colours of the character.
struct Palette {
    skin: [u8; 4],
    skin_shadow: [u8; 4],
    hair: [u8; 4],
    hair_light: [u8; 4],
    shirt: [u8; 4],
    shirt_shadow: [u8; 4],
    pants: [u8; 4],
    hand: [u8; 4],
}

fn palette(preset: Preset) -> Palette {
    let skin = [250, 214, 180, 255];
    let base = Palette {
        skin,
        skin_shadow: [222, 170, 140, 255],
        hair: [120, 70, 40, 255],
        hair_light: [170, 110, 70, 255],
        shirt: [70, 140, 200, 255],
        shirt_shadow: [45, 95, 150, 255],
        pants: [60, 60, 80, 255],
        hand: skin,
    };
    match preset {
        Preset::Limbs | Preset::Hands | Preset::Redraw => Palette {
            hand: [236, 236, 226, 255],
            ..base
        },
        // Hair, suit and trousers a few levels apart: only the structure
        // tells them apart once the figure has turned.
        Preset::Turn => Palette {
            hair: [46, 40, 44, 255],
            hair_light: [72, 62, 64, 255],
            shirt: [62, 64, 72, 255],
            shirt_shadow: [46, 48, 56, 255],
            pants: [40, 42, 50, 255],
            ..base
        },
        _ => base,
    }
}

/// The shapes of the character in `pose`, back to front, in canvas units.
fn character(spec: &CutSpec, pose: &Pose) -> Vec<Shape> {
    let u = spec.height.min(spec.width) as f64 / 576.0;
    let centre = pose.centre;
    // Local coordinates (origin at the chest, y down) to canvas.
    let (ts, tc) = pose.turn.sin_cos();
    let place = |p: [f64; 2]| {
        let (x, y) = (p[0] * u * pose.zoom, p[1] * u * pose.zoom);
        [
            centre[0] + tc * x - ts * y + pose.shift[0],
            centre[1] + ts * x + tc * y + pose.shift[1],
        ]
    };
    let len = |r: f64| r * u * pose.zoom;
    // Head coordinates: rotated by the tilt about the neck.
    let neck = [0.0, -95.0];
    let (hs, hc) = pose.head_tilt.sin_cos();
    let head = |p: [f64; 2]| {
        let (x, y) = (p[0] - neck[0], p[1] - neck[1]);
        place([neck[0] + hc * x - hs * y, neck[1] + hs * x + hc * y])
    };
    let rot = pose.turn + pose.head_tilt;
    let Palette {
        skin,
        skin_shadow,
        hair,
        hair_light,
        shirt,
        shirt_shadow,
        pants,
        hand,
    } = palette(spec.preset);
    let shadow_dir = |a: f64| [(a + pose.turn).cos(), (a + pose.turn).sin()];
    let shade_plane = |dir: [f64; 2], at: [f64; 2]| dir[0] * at[0] + dir[1] * at[1];
    // Facial features slide towards the side the head turns to.
    let face_x = |x: f64| x + 24.0 * pose.yaw;

    let mut s = Vec::new();
    // Back hair.
    s.push(shape(
        Geom::Ellipse(head([0.0, -175.0]), [len(95.0), len(105.0)], rot),
        hair,
    ));
    // Legs.
    for side in [-1.0, 1.0] {
        let foot = if pose.legs == 0.0 {
            [side * 38.0, 230.0]
        } else {
            let (ls, lc) = (side * pose.legs).sin_cos();
            [
                side * 30.0 + side * 8.0 * lc - 150.0 * ls,
                80.0 + 150.0 * lc,
            ]
        };
        s.push(shape(
            Geom::Capsule(place([side * 30.0, 80.0]), place(foot), len(24.0)),
            pants,
        ));
    }
    // Back arm, with a hand when it swings on its own.
    let back_hand = if pose.back_arm == 0.0 {
        [-95.0, 40.0]
    } else {
        let (bs, bc) = pose.back_arm.sin_cos();
        [
            -62.0 - 33.0 * bc - 100.0 * bs,
            -60.0 - 33.0 * bs + 100.0 * bc,
        ]
    };
    s.push(shape(
        Geom::Capsule(place([-62.0, -60.0]), place(back_hand), len(17.0)),
        shirt_shadow,
    ));
    if pose.back_arm != 0.0 {
        s.push(shape(
            Geom::Ellipse(place(back_hand), [len(17.0), len(15.0)], pose.turn),
            hand,
        ));
    }
    // Torso with a shadow on its right side.
    let torso_c = place([0.0, 0.0]);
    let d = shadow_dir(0.0);
    let mut torso = shape(
        Geom::Ellipse(torso_c, [len(70.0), len(105.0)], pose.turn),
        shirt,
    );
    torso.shade = Some(Shade {
        normal: d,
        offset: shade_plane(d, torso_c) + len(28.0),
        fill: shirt_shadow,
        trace: SHADOW_TRACE,
    });
    s.push(torso);
    // Neck.
    s.push(shape(
        Geom::Capsule(place([0.0, -90.0]), place([0.0, -125.0]), len(16.0)),
        skin_shadow,
    ));
    // An ear shows on the side the head turns away from.
    if pose.yaw.abs() > 0.3 {
        s.push(shape(
            Geom::Ellipse(
                head([-pose.yaw.signum() * 74.0, -168.0]),
                [len(14.0), len(22.0)],
                rot,
            ),
            skin,
        ));
    }
    // Face with a shadow on its left.
    let face_c = head([0.0, -170.0]);
    let d = shadow_dir(std::f64::consts::PI - 0.3);
    let mut face = shape(Geom::Ellipse(face_c, [len(78.0), len(88.0)], rot), skin);
    face.shade = Some(Shade {
        normal: d,
        offset: shade_plane(d, face_c) + len(45.0),
        fill: skin_shadow,
        trace: SHADOW_TRACE,
    });
    s.push(face);
    // Eyes: white, iris, pupil, highlight (bounded by a trace line). The
    // eye on the far side narrows as the head turns, and is hidden when
    // the head has turned far.
    for side in [-1.0, 1.0] {
        let far = if pose.yaw * side > 0.0 {
            pose.yaw.abs()
        } else {
            0.0
        };
        if far > 0.85 {
            continue;
        }
        let narrow = 1.0 - 0.6 * far;
        let ec = head([face_x(side * 30.0), -172.0]);
        let open = 1.0 - 0.92 * pose.blink;
        s.push(shape(
            Geom::Ellipse(ec, [len(17.0) * narrow, len(21.0) * open], rot),
            [255, 255, 255, 255],
        ));
        if pose.blink < 0.5 {
            let ic = head([face_x(side * 30.0 + 3.0), -170.0]);
            s.push(shape(
                Geom::Ellipse(ic, [len(10.0) * narrow, len(13.0)], rot),
                [60, 150, 90, 255],
            ));
            s.push(shape(
                Geom::Ellipse(ic, [len(5.0) * narrow, len(6.5)], rot),
                [20, 30, 30, 255],
            ));
            let mut hl = shape(
                Geom::Ellipse(
                    head([face_x(side * 30.0 + 7.0), -176.0]),
                    [len(3.5), len(3.5)],
                    rot,
                ),
                [255, 255, 240, 255],
            );
            hl.outline = false;
            s.push(hl);
        }
    }
    // Mouth, opening over the cut.
    if pose.mouth > 0.0 {
        s.push(shape(
            Geom::Ellipse(
                head([face_x(0.0), -125.0]),
                [len(16.0), len(2.0 + 9.0 * pose.mouth)],
                rot,
            ),
            [170, 50, 60, 255],
        ));
    }
    // Fringe with a highlight band.
    for (x, r) in [(-45.0, 38.0), (0.0, 42.0), (45.0, 38.0)] {
        let c = head([x, -238.0]);
        let d = shadow_dir(-std::f64::consts::FRAC_PI_2 + 0.4);
        let mut f = shape(Geom::Ellipse(c, [len(r), len(30.0)], rot), hair);
        f.shade = Some(Shade {
            normal: d,
            offset: shade_plane(d, c) + len(12.0),
            fill: hair_light,
            trace: HIGHLIGHT_TRACE,
        });
        s.push(f);
    }
    // Front arm swinging across the body, with a hand.
    let shoulder = [62.0, -60.0];
    let (as_, ac) = pose.arm.sin_cos();
    let elbow = [
        shoulder[0] + 20.0 * ac - 80.0 * as_ * 0.2,
        shoulder[1] + 85.0,
    ];
    let wrist = [elbow[0] - 95.0 * as_, elbow[1] + 60.0 * ac];
    s.push(shape(
        Geom::Capsule(place(shoulder), place(elbow), len(18.0)),
        shirt,
    ));
    s.push(shape(
        Geom::Capsule(place(elbow), place(wrist), len(15.0)),
        skin,
    ));
    if pose.hand_open > 0.5 {
        // An open hand: palm and fingers fanning out along the forearm.
        let dir = [wrist[0] - elbow[0], wrist[1] - elbow[1]];
        let n = (dir[0] * dir[0] + dir[1] * dir[1]).sqrt().max(1e-9);
        let dir = [dir[0] / n, dir[1] / n];
        let palm = [wrist[0] + 10.0 * dir[0], wrist[1] + 10.0 * dir[1]];
        let reach = 14.0 + 24.0 * pose.hand_open;
        for k in 0..5 {
            let a = (k as f64 - 1.5) * 0.38 + if k == 4 { 0.5 } else { 0.0 };
            let (fs, fc) = a.sin_cos();
            let fd = [fc * dir[0] - fs * dir[1], fs * dir[0] + fc * dir[1]];
            let tip = [
                palm[0] + (16.0 + reach) * fd[0],
                palm[1] + (16.0 + reach) * fd[1],
            ];
            s.push(shape(
                Geom::Capsule(place(palm), place(tip), len(5.5)),
                hand,
            ));
        }
        s.push(shape(
            Geom::Ellipse(place(palm), [len(19.0), len(17.0)], pose.turn),
            hand,
        ));
    } else {
        s.push(shape(
            Geom::Ellipse(place(wrist), [len(20.0), len(18.0)], pose.turn),
            hand,
        ));
    }
    // A ball rolling through, in front of everything.
    if let Some(b) = pose.ball {
        let mut ball = shape(
            Geom::Ellipse(b, [len(42.0) / pose.zoom, len(42.0) / pose.zoom], 0.0),
            [230, 120, 40, 255],
        );
        ball.shade = Some(Shade {
            normal: [0.6, 0.8],
            offset: 0.6 * b[0] + 0.8 * b[1] + len(14.0) / pose.zoom,
            fill: [190, 85, 30, 255],
            trace: SHADOW_TRACE,
        });
        s.push(ball);
    }
    s
}

/// How one frame of [`Preset::Redraw`] departs from the clean drawing of
/// its pose: an artist never traces the same line twice.
struct Redraw {
    /// Plane waves `(wave vector, phase, amplitude)` summed into an offset
    /// of every outline, in pixels: the drawn contour wanders off the true
    /// one by a different low-frequency wobble in every frame.
    wobble: Vec<([f64; 2], f64, f64)>,
    /// Plane waves scaling the outline width (pen pressure).
    pressure: Vec<([f64; 2], f64, f64)>,
    /// Extra lines (folds, hair strands) by the shape they lie on; clipped
    /// to what shows of that shape, so each one crossing it splits it.
    strokes: Vec<(usize, Geom)>,
    /// Shapes whose shadow is not drawn in this frame.
    plain: Vec<bool>,
}

fn waves(w: &[([f64; 2], f64, f64)], p: [f64; 2]) -> f64 {
    w.iter()
        .map(|&(k, phase, amp)| amp * (k[0] * p[0] + k[1] * p[1] + phase).sin())
        .sum()
}

impl Redraw {
    fn new(spec: &CutSpec, frame: usize, shapes: &[Shape]) -> Self {
        let mut rng = Rng::new(spec.seed ^ 0x7ed7_a3b1_0c55_e11d ^ (frame as u64 + 1) << 20);
        let u = f64::from(spec.height.min(spec.width)) / 576.0;
        let mut plane = |wavelength: [f64; 2], amp: f64| {
            let a = rng.range(0.0, std::f64::consts::TAU);
            let k = std::f64::consts::TAU / (rng.range(wavelength[0], wavelength[1]) * u);
            (
                [k * a.cos(), k * a.sin()],
                rng.range(0.0, std::f64::consts::TAU),
                amp,
            )
        };
        let wobble = vec![
            plane([90.0, 160.0], 1.6 * u),
            plane([50.0, 90.0], 1.0 * u),
            plane([25.0, 45.0], 0.5 * u),
        ];
        let pressure = vec![plane([40.0, 120.0], 0.25), plane([20.0, 50.0], 0.15)];
        // How busy this frame's drawing is: from clean to a fold on most
        // parts, so neighbouring frames differ strongly in segment count.
        let busy = rng.range(0.0, 0.9);
        let mut strokes = Vec::new();
        let mut plain = vec![false; shapes.len()];
        for (k, sh) in shapes.iter().enumerate() {
            if sh.shade.is_some() && rng.unit() < 0.3 {
                plain[k] = true;
            }
            if !sh.outline {
                continue;
            }
            for n in 0..2 {
                let keep = rng.unit() < if n == 0 { busy } else { busy * busy };
                let stroke = match sh.geom {
                    Geom::Ellipse(c, r, rot) if r[0].min(r[1]) >= 14.0 * u => {
                        let (ox, oy) = (rng.range(-0.4, 0.4) * r[0], rng.range(-0.4, 0.4) * r[1]);
                        let (rs, rc) = rot.sin_cos();
                        let at = [c[0] + rc * ox - rs * oy, c[1] + rs * ox + rc * oy];
                        let a = rng.range(0.0, std::f64::consts::PI);
                        let reach = 2.5 * r[0].max(r[1]);
                        let d = [reach * a.cos(), reach * a.sin()];
                        Some(Geom::Capsule(
                            [at[0] - d[0], at[1] - d[1]],
                            [at[0] + d[0], at[1] + d[1]],
                            0.0,
                        ))
                    }
                    Geom::Capsule(a, b, r) if r >= 12.0 * u => {
                        let f = rng.range(0.2, 0.8);
                        let at = [a[0] + f * (b[0] - a[0]), a[1] + f * (b[1] - a[1])];
                        let axis = (b[1] - a[1]).atan2(b[0] - a[0]);
                        let dir = axis + std::f64::consts::FRAC_PI_2 + rng.range(-0.5, 0.5);
                        let d = [3.0 * r * dir.cos(), 3.0 * r * dir.sin()];
                        Some(Geom::Capsule(
                            [at[0] - d[0], at[1] - d[1]],
                            [at[0] + d[0], at[1] + d[1]],
                            0.0,
                        ))
                    }
                    _ => None,
                };
                if let Some(g) = stroke.filter(|_| keep) {
                    strokes.push((k, g));
                }
            }
        }
        Redraw {
            wobble,
            pressure,
            strokes,
            plain,
        }
    }
}

/// Draws `shapes` on a canvas of size `canvas` in the style of `spec`,
/// redrawn by `redraw` when given.
fn draw(spec: &CutSpec, canvas: [u32; 2], shapes: &[Shape], redraw: Option<&Redraw>) -> DrawnFrame {
    let [w, h] = canvas;
    let line_half = spec.line_width / 2.0;
    // Colour traces are one pixel wide at the default 3-px outline, and
    // scale with the outline (so a frame drawn at 4x keeps its traces).
    let trace_half = (spec.line_width / 6.0).max(0.5);
    let mut line = RgbaImage::from_pixel(w, h, Rgba(BG));
    let mut gt = RgbaImage::from_pixel(w, h, Rgba(BG));
    for y in 0..h {
        for x in 0..w {
            let p = [x as f64, y as f64];
            let (wobble, half) = match redraw {
                None => (0.0, line_half),
                Some(r) => (
                    waves(&r.wobble, p),
                    (line_half * (1.0 + waves(&r.pressure, p))).max(0.5),
                ),
            };
            // Top-most shape whose outline band or inside covers p.
            let mut ink = 0.0f64;
            let mut paint = BG;
            let mut trace = None;
            for (k, sh) in shapes.iter().enumerate().rev() {
                let d = match redraw {
                    None => sh.geom.sdf(p),
                    Some(_) => sh.geom.sdf(p) + wobble,
                };
                let reach = if sh.outline { half } else { 0.0 };
                if d >= reach + 1.0 {
                    continue;
                }
                if sh.outline && d > -half - 1.0 {
                    // Coverage of the outline band, for anti-aliasing.
                    let cov = (half + 0.5 - d.abs()).clamp(0.0, 1.0);
                    ink = ink.max(cov);
                }
                if d < reach.max(0.0) {
                    paint = sh.fill;
                    if let Some(r) = redraw {
                        for (_, g) in r.strokes.iter().filter(|s| s.0 == k) {
                            let cov = (0.8 * half + 0.5 - g.sdf(p)).clamp(0.0, 1.0);
                            ink = ink.max(cov);
                        }
                    }
                    let shade = match redraw {
                        Some(r) if r.plain[k] => None,
                        _ => sh.shade,
                    };
                    if let Some(sd) = shade {
                        let s = sd.normal[0] * p[0] + sd.normal[1] * p[1] - sd.offset;
                        if s > 0.0 {
                            paint = sd.fill;
                        }
                        if s.abs() < trace_half && d < -half {
                            trace = Some(sd.trace);
                        }
                    }
                    if !sh.outline && d > -2.0 * trace_half {
                        trace = Some(HIGHLIGHT_TRACE);
                    }
                    break;
                }
                if ink >= 1.0 {
                    break;
                }
            }
            let (lp, gp) = if spec.antialias {
                if ink > 0.0 {
                    let a = (ink * 255.0).round() as u8;
                    let g = if ink >= 0.5 { INK } else { paint };
                    ([0, 0, 0, a], g)
                } else if let Some(t) = trace {
                    (t, paint)
                } else {
                    (BG, paint)
                }
            } else if ink >= 0.5 {
                (INK, INK)
            } else if let Some(t) = trace {
                (t, paint)
            } else {
                (BG, paint)
            };
            line.put_pixel(x, y, Rgba(lp));
            gt.put_pixel(x, y, Rgba(gp));
        }
    }
    DrawnFrame { line, gt }
}

/// Draws every frame of a cut.
///
/// # Panics
/// If the canvas is empty or `frames` is 0.
pub fn draw_cut(spec: &CutSpec) -> Vec<DrawnFrame> {
    assert!(
        spec.width > 0 && spec.height > 0 && spec.frames > 0,
        "empty cut"
    );
    poses(spec)
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let shapes = character(spec, p);
            let redraw = (spec.preset == Preset::Redraw).then(|| Redraw::new(spec, i, &shapes));
            draw(spec, p.canvas, &shapes, redraw.as_ref())
        })
        .collect()
}

/// A deterministic test frame shaped like dense production line art:
/// Voronoi cells of `cells` seeds separated by 1-pixel black lines, a red
/// colour-trace stroke in every third cell, painted from a 24-colour palette.
/// `shift` moves every seed (a "next frame").
pub fn voronoi_frame(size: u32, cells: usize, shift: (i64, i64)) -> DrawnFrame {
    let mut rng = Rng::new(0x2545_f491_4f6c_dd1d);
    let s = size as i64;
    let seeds: Vec<(i64, i64)> = (0..cells)
        .map(|_| {
            (
                (rng.unit() * s as f64) as i64 + shift.0,
                (rng.unit() * s as f64) as i64 + shift.1,
            )
        })
        .collect();
    // Nearest seed per pixel, searching a coarse bucket grid.
    let bucket = ((s * s) as f64 / cells as f64).sqrt().max(8.0) as i64;
    let nb = s / bucket + 1;
    let mut grid: Vec<Vec<usize>> = vec![Vec::new(); (nb * nb) as usize];
    for (i, &(x, y)) in seeds.iter().enumerate() {
        let (bx, by) = ((x / bucket).clamp(0, nb - 1), (y / bucket).clamp(0, nb - 1));
        grid[(by * nb + bx) as usize].push(i);
    }
    let nearest = |x: i64, y: i64| -> usize {
        let (bx, by) = (x / bucket, y / bucket);
        let mut best = (i64::MAX, 0usize);
        for r in 0..nb {
            for gy in (by - r).max(0)..=(by + r).min(nb - 1) {
                for gx in (bx - r).max(0)..=(bx + r).min(nb - 1) {
                    if (gy - by).abs() != r && (gx - bx).abs() != r {
                        continue;
                    }
                    for &i in &grid[(gy * nb + gx) as usize] {
                        let d = (seeds[i].0 - x).pow(2) + (seeds[i].1 - y).pow(2);
                        if d < best.0 || (d == best.0 && i < best.1) {
                            best = (d, i);
                        }
                    }
                }
            }
            // Every seed in a further ring is at least r * bucket away.
            if best.0 < (r * bucket).pow(2) {
                break;
            }
        }
        best.1
    };
    let n = size as usize;
    let owner: Vec<usize> = (0..n * n)
        .map(|i| nearest((i % n) as i64, (i / n) as i64))
        .collect();
    let mut line = RgbaImage::from_pixel(size, size, Rgba(BG));
    let mut gt = RgbaImage::new(size, size);
    for y in 0..n {
        for x in 0..n {
            let o = owner[y * n + x];
            let edge = (x + 1 < n && owner[y * n + x + 1] != o)
                || (y + 1 < n && owner[(y + 1) * n + x] != o);
            let (sx, sy) = seeds[o];
            let trace = o % 3 == 0 && y as i64 == sy && (x as i64 - sx).abs() < 20;
            let fill = [(o * 37 % 24) as u8 * 10, (o * 11 % 7) as u8 * 30, 120, 255];
            let (px, py) = (x as u32, y as u32);
            if edge {
                line.put_pixel(px, py, Rgba(INK));
                gt.put_pixel(px, py, Rgba(INK));
            } else {
                if trace {
                    line.put_pixel(px, py, Rgba([200, 40, 40, 255]));
                }
                gt.put_pixel(px, py, Rgba(fill));
            }
        }
    }
    DrawnFrame { line, gt }
}

/// Writes a drawn cut in the benchmark layout under `dir`:
/// `line/`, `gt/`, `seg/` (labels + colour tables) for every frame, and the
/// first frame again as the design sheet `ref/{line,gt,seg}/0000.*`.
/// Returns the number of frames.
pub fn write_cut(dir: &Path, spec: &CutSpec) -> Result<usize> {
    write_frames(dir, &draw_cut(spec))
}

/// Writes drawn frames in the benchmark layout, as [`write_cut`] does.
/// Returns the number of frames.
///
/// # Panics
/// If `frames` is empty.
pub fn write_frames(dir: &Path, frames: &[DrawnFrame]) -> Result<usize> {
    assert!(!frames.is_empty(), "no frame to write");
    for sub in ["line", "gt", "seg", "ref/line", "ref/gt", "ref/seg"] {
        let d = dir.join(sub);
        std::fs::create_dir_all(&d).map_err(|e| Error::io(&d, e))?;
    }
    let write = |prefix: &Path, name: &str, f: &DrawnFrame| -> Result<()> {
        let art = LineArt::from_rgba(f.line.clone(), true);
        let seg = Segmentation::from_line_art(&art)?;
        let table = ColorTable::from_image(&seg, &f.gt)?;
        write_rgba_png(&prefix.join(format!("line/{name}.png")), &f.line)?;
        write_rgba_png(&prefix.join(format!("gt/{name}.png")), &f.gt)?;
        seg.save(&prefix.join(format!("seg/{name}.png")))?;
        table.save(&prefix.join(format!("seg/{name}.json")))
    };
    for (i, f) in frames.iter().enumerate() {
        write(dir, &format!("{i:04}"), f)?;
    }
    write(&dir.join("ref"), "0000", &frames[0])?;
    Ok(frames.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_segment_into_a_character() {
        let spec = CutSpec {
            width: 384,
            height: 288,
            frames: 3,
            ..CutSpec::default()
        };
        let frames = draw_cut(&spec);
        assert_eq!(frames.len(), 3);
        for f in &frames {
            let seg =
                Segmentation::from_line_art(&LineArt::from_rgba(f.line.clone(), true)).unwrap();
            assert!(seg.count() >= 20, "only {} segments", seg.count());
        }
        assert_ne!(frames[0].line, frames[2].line, "the character moves");
    }

    /// Segment counts of the frames of `spec`.
    fn segment_counts(frames: &[DrawnFrame]) -> Vec<u32> {
        frames
            .iter()
            .map(|f| {
                let art = LineArt::from_rgba(f.line.clone(), true);
                Segmentation::from_line_art(&art).unwrap().count()
            })
            .collect()
    }

    /// A small 8-frame cut of a preset.
    fn spec(preset: Preset) -> CutSpec {
        CutSpec {
            width: 384,
            height: 288,
            frames: 8,
            preset,
            ..CutSpec::default()
        }
    }

    #[test]
    fn every_preset_is_its_own_cut_with_parts_coming_and_going() {
        let cuts: Vec<Vec<DrawnFrame>> = Preset::ALL.iter().map(|&p| draw_cut(&spec(p))).collect();
        for (p, frames) in Preset::ALL.iter().zip(&cuts) {
            let counts = segment_counts(frames);
            let (lo, hi) = (counts.iter().min().unwrap(), counts.iter().max().unwrap());
            assert!(
                hi > lo,
                "{}: the same {lo} segments in every frame",
                p.name()
            );
            assert_ne!(frames[0].line, frames[7].line, "{}: no motion", p.name());
            // Seeded: drawn again, the cut is the same.
            assert_eq!(frames[5].gt, draw_cut(&spec(*p))[5].gt, "{}", p.name());
        }
        for i in 0..cuts.len() {
            for j in i + 1..cuts.len() {
                assert_ne!(
                    cuts[i][7].line,
                    cuts[j][7].line,
                    "{} and {}",
                    Preset::ALL[i].name(),
                    Preset::ALL[j].name()
                );
            }
        }
    }

    #[test]
    fn hands_open_into_fingers_and_the_zoom_canvas_grows() {
        // Five fingers are five segments more than a fist, at least once.
        let hands = segment_counts(&draw_cut(&spec(Preset::Hands)));
        let basic = segment_counts(&draw_cut(&spec(Preset::Basic)));
        assert!(
            hands.iter().zip(&basic).any(|(h, b)| *h >= b + 4),
            "hands {hands:?} basic {basic:?}"
        );
        let zoom = draw_cut(&spec(Preset::Zoom));
        let dims: Vec<_> = zoom.iter().map(|f| f.line.dimensions()).collect();
        assert!(dims.windows(2).all(|d| d[1].1 > d[0].1), "{dims:?}");
        // The hair is cut by the top edge at first, not at the end.
        let top_has_ink =
            |f: &DrawnFrame| (0..f.line.width()).any(|x| f.line.get_pixel(x, 0)[3] > 0);
        assert!(top_has_ink(&zoom[0]) && !top_has_ink(&zoom[7]));
    }

    #[test]
    fn redrawn_frames_differ_in_segment_count_like_real_cels() {
        let counts = segment_counts(&draw_cut(&spec(Preset::Redraw)));
        let (lo, hi) = (counts.iter().min().unwrap(), counts.iter().max().unwrap());
        assert!(*hi as f64 >= 1.5 * *lo as f64, "{counts:?}");
        // Some neighbouring frames differ by a third or more: parts split
        // and merge from one drawing to the next, not only over the cut.
        assert!(
            counts
                .windows(2)
                .any(|c| 3 * c[0].abs_diff(c[1]) >= c[0].min(c[1])),
            "{counts:?}"
        );
        // The extra lines split parts but never change their paint: every
        // painted pixel of the redrawn frame has a colour of the palette.
        let redraw = spec(Preset::Redraw);
        let frames = draw_cut(&redraw);
        let poses = poses(&redraw);
        for (f, pose) in frames.iter().zip(&poses) {
            let shapes = character(&redraw, pose);
            let known: Vec<[u8; 4]> = shapes
                .iter()
                .flat_map(|s| [Some(s.fill), s.shade.map(|d| d.fill)])
                .flatten()
                .chain([INK, BG])
                .collect();
            for p in f.gt.pixels() {
                assert!(known.contains(&p.0), "{:?} not in the palette", p.0);
            }
        }
    }

    #[test]
    fn preset_names_round_trip() {
        for p in Preset::ALL {
            assert_eq!(p.name().parse::<Preset>(), Ok(p));
        }
        assert!("nope".parse::<Preset>().unwrap_err().contains("limbs"));
    }

    #[test]
    fn voronoi_frames_have_about_as_many_segments_as_cells() {
        let f = voronoi_frame(300, 40, (0, 0));
        let seg = Segmentation::from_line_art(&LineArt::from_rgba(f.line, true)).unwrap();
        assert!((35..=60).contains(&seg.count()), "{} segments", seg.count());
    }
}
