//! The report: what a run measured, as text and JSON.
