//! Row formats: PostgreSQL's COPY text format (what plugins and the COPY
//! protocol speak), CSV with a header row (what people have in files), and
//! the binary COPY format loads write.

pub mod binary;
pub mod csv;
pub mod text;
