//! The JSON report reader used by `loadmux merge`, and the merge itself.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let dir = std::env::temp_dir().join(format!("loadmux-fuzz-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join("report.json");
    if std::fs::write(&path, data).is_err() {
        return;
    }
    if let Ok(report) = loadmux::report::read_report(&path) {
        let _ = loadmux::report::merge(&[report.clone(), report], &["a".into(), "b".into()]);
    }
});
