//! End-to-end tests of the `dacon` binary, a module per topic.

mod util;

mod bad_input;
mod engine;
mod gaps;
mod neural;
mod parity;
mod pipeline;
mod train;
