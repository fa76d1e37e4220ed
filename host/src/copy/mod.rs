//! Row formats: PostgreSQL's COPY text format (what plugins and the COPY
//! protocol speak) and CSV with a header row (what people have in files).

pub mod csv;
pub mod text;
