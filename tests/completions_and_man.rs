//! `loadmux completions` and `loadmux man`: generated from the clap definition, so
//! they list every flag; the shells and `man` accept what is generated.

mod common;

use common::loadmux;
use std::process::{Command, Stdio};

fn stdout_of(args: &[&str]) -> String {
    let out = loadmux().args(args).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn completions_cover_every_subcommand_and_flag_in_each_shell() {
    for shell in ["bash", "zsh", "fish"] {
        let script = stdout_of(&["completions", shell]);
        for word in ["run", "serve", "report", "merge", "connections", "expect", "rate-search", "listen"] {
            assert!(script.contains(word), "{shell} completions lack {word}");
        }
    }
    // bash itself parses the bash script (bash is always there; zsh and fish are not).
    let script = stdout_of(&["completions", "bash"]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("loadmux.bash");
    std::fs::write(&path, script).unwrap();
    let status = Command::new("bash").arg("-n").arg(&path).status().unwrap();
    assert!(status.success(), "bash -n rejects the completion script");
    let out = loadmux().args(["completions", "tcsh"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn the_man_pages_render_with_every_flag() {
    let page = stdout_of(&["man"]);
    assert!(page.contains(".TH loadmux 1"), "{}", &page[..page.len().min(300)]);
    let run = stdout_of(&["man", "run"]);
    assert!(run.contains(".TH loadmux-run 1"), "{}", &run[..run.len().min(300)]);
    for flag in ["connections", "expect", "max\\-response", "rate\\-search"] {
        assert!(run.contains(&format!("\\-\\-{flag}")), "man run lacks --{flag}");
    }
    assert_eq!(loadmux().args(["man", "nope"]).output().unwrap().status.code(), Some(2));
    // man(1) itself renders it, where it is installed (man-db is not in every image).
    let Ok(mut man) = Command::new("man").args(["-l", "-"]).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn() else {
        common::prereq::missing("man (man-db)", "apt-get install man-db");
        return;
    };
    use std::io::Write;
    man.stdin.take().unwrap().write_all(run.as_bytes()).unwrap();
    let out = man.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && text.contains("--connections"), "{text}");
}
