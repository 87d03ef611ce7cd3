//! End-to-end tests of the `dacon` binary, a module per topic.

mod util;

mod bad_input;
mod deploy;
mod engine;
mod gaps;
mod hardening;
mod neural;
mod parity;
mod pipeline;
mod review;
mod train;
