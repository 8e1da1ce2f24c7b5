//! Property tests for every parser that reads user or server input: for any input,
//! a value or an error, never a panic.

use loadmux::assert::Threshold;
use loadmux::framing::Framing;
use loadmux::payload::{unescape, Fields, Template};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn escapes_and_templates_never_panic(text in ".{0,80}") {
        if let Ok(bytes) = unescape(&text) {
            if let Ok(t) = Template::parse(bytes) {
                let mut out = Vec::new();
                t.render_into(&Fields { conn: u64::MAX, seq: 7, worker: 1 }, &mut out);
                prop_assert!(out.len() <= t.max_len());
            }
        }
    }

    #[test]
    fn template_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..120)) {
        let _ = Template::parse(bytes);
    }

    #[test]
    fn framing_specs_never_panic(spec in "[a-z0-9:\\\\x]{0,20}") {
        let _ = Framing::parse(&spec);
    }

    #[test]
    fn threshold_expressions_never_panic(expr in "[a-z_0-9.<>=%µ ]{0,24}") {
        let _ = Threshold::parse(&expr);
    }

    #[test]
    fn the_recording_reader_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = loadmux::replay::Recording::parse(&bytes);
    }

    #[test]
    fn a_recording_header_then_any_bytes_never_panics(tail in proptest::collection::vec(any::<u8>(), 0..300)) {
        // Past the magic, so the record parser itself is exercised, not just the check.
        let mut bytes = b"LMXREC\r\n\x01\x00".to_vec();
        bytes.extend_from_slice(&tail);
        let _ = loadmux::replay::Recording::parse(&bytes);
    }

    #[test]
    fn the_report_reader_never_panics(json in "\\{.{0,200}\\}") {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.json");
        std::fs::write(&path, json).unwrap();
        let _ = loadmux::report::read_report(&path);
    }
}

#[test]
fn a_mutated_real_report_is_read_or_rejected_never_a_panic() {
    let text = std::fs::read_to_string("tests/data/report-small.json").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.json");
    // Cut the real report at every 97th byte, and corrupt its histogram.
    for cut in (0..text.len()).step_by(97) {
        std::fs::write(&path, &text[..cut]).unwrap();
        assert!(loadmux::report::read_report(&path).is_err());
    }
    let broken = text.replacen("HISTF", "XXXXX", 1);
    std::fs::write(&path, broken).unwrap();
    let report = loadmux::report::read_report(&path).expect("still valid JSON");
    let merged = loadmux::report::merge(&[report], &["r.json".to_string()]);
    assert!(merged.unwrap_err().contains("r.json"), "a bad histogram is named, not a panic");
}
