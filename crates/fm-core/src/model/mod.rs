//! The pipeline model: reading a file, validating and compiling it.

pub mod compile;
pub mod dialect;
pub mod flowmason;
pub mod graph;
mod input_paths;
mod outcome;
pub mod path;
pub mod pipeline;
pub mod reader;
pub mod source;
pub mod stage_fields;
pub mod value_template;

pub use compile::{compile, CompileOptions};
pub use dialect::Dialect;
pub use pipeline::*;
pub use reader::{ConfigReader, StageRefRole};
pub use source::Source;
pub use value_template::ValueTemplate;
