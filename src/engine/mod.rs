//! The coordinator: starts the workers, runs the clock and signals, builds the report.
