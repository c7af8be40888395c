//! Results → bytes: CSV, JSON and tables. Exporters never compute; [`atomic`] does every write.

pub mod atomic;
pub mod audit;
pub mod csv;
pub mod json;
pub mod latex;
pub mod markdown;
pub mod npy;
pub mod series;
pub mod table;

pub use atomic::{
    OutputDirectory, StagedFile, commit_all, prepare_output_directory, stage_all, write_all_atomic,
    write_atomic,
};
