//! The page, built into the binary: plain ES modules, one per view, no
//! build step and nothing fetched from elsewhere.

/// `(name, content type, bytes)` of every file of the page.
const FILES: &[(&str, &str, &str)] = &[
    (
        "index.html",
        "text/html; charset=utf-8",
        include_str!("../page/index.html"),
    ),
    (
        "style.css",
        "text/css; charset=utf-8",
        include_str!("../page/style.css"),
    ),
    (
        "main.js",
        "text/javascript; charset=utf-8",
        include_str!("../page/main.js"),
    ),
    (
        "api.js",
        "text/javascript; charset=utf-8",
        include_str!("../page/api.js"),
    ),
    (
        "strip.js",
        "text/javascript; charset=utf-8",
        include_str!("../page/strip.js"),
    ),
    (
        "canvas.js",
        "text/javascript; charset=utf-8",
        include_str!("../page/canvas.js"),
    ),
    (
        "frame.js",
        "text/javascript; charset=utf-8",
        include_str!("../page/frame.js"),
    ),
    (
        "reference.js",
        "text/javascript; charset=utf-8",
        include_str!("../page/reference.js"),
    ),
    (
        "palette.js",
        "text/javascript; charset=utf-8",
        include_str!("../page/palette.js"),
    ),
];

/// The file `name` of the page, looked up by exact name (no paths).
pub fn get(name: &str) -> Option<(&'static str, &'static str)> {
    FILES
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|(_, t, b)| (*t, *b))
}
