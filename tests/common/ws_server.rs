//! Debian's python3-websockets running `tests/data/ws_server.py` in one of its modes
//! (echo, fragment, ping, close, headers, push), on a port it picks and prints.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, ChildStdout, Command, Stdio};

/// Debian's interpreter (a pyenv `python3` earlier on PATH lacks the package).
pub const PYTHON: &str = "/usr/bin/python3";

/// Starts `tests/data/ws_server.py MODE` and reads the port from its first line:
/// the child (the caller kills it by pid), the rest of its stdout, and its address.
/// None after saying loudly that python3-websockets is missing (a failure under CI).
pub fn start(mode: &str) -> Option<(Child, BufReader<ChildStdout>, SocketAddr)> {
    let present = Command::new(PYTHON).args(["-c", "import websockets"]).status().is_ok_and(|s| s.success());
    if !present {
        super::prereq::missing("python3-websockets", "scripts/test.sh installs it");
        return None;
    }
    let mut child = Command::new(PYTHON)
        .args([concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/ws_server.py"), mode])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn the websockets server");
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let port: u16 = line.trim().parse().unwrap_or_else(|_| panic!("no port from the server: {line:?}"));
    Some((child, stdout, SocketAddr::from(([127, 0, 0, 1], port))))
}
