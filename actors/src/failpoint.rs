//! Failure points for tests: places where a test build (cargo feature
//! `failpoints`) panics on purpose when the data passing through carries a marker,
//! so tests can prove that a crash in any stage of the pipeline fails only its own
//! job. In every other build [`hit`] is empty and its argument is never evaluated.

/// The text that makes point `point` panic: `__orderflow_panic_<point>__`.
pub fn marker(point: &str) -> String {
    format!("__orderflow_panic_{point}__")
}

/// Panics if this is a `failpoints` build and `text()` contains [`marker`]`(point)`.
#[cfg(feature = "failpoints")]
pub fn hit(point: &str, text: impl FnOnce() -> String) {
    if text().contains(&marker(point)) {
        panic!("failpoint {point} hit");
    }
}

/// Does nothing: this build has no failure points.
#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub fn hit(_point: &str, _text: impl FnOnce() -> String) {}
