//! Network namespaces the tests create themselves (and delete): a private loopback,
//! port space and TIME_WAIT table. The netns fault tests shape traffic in one; the
//! scale tests open 19 000 connections and churn for seconds in one, so that the
//! TIME_WAIT sockets they leave (up to the whole ephemeral range, for 60 s) die
//! with the namespace instead of starving the test binaries that run next.
//! Needs root and iproute2: under `CI=true` a missing one fails the test.

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_loadmux");

/// Where `serve` listens inside a namespace: the namespace is private, so a fixed
/// port cannot collide with anything.
pub const SERVER: &str = "127.0.0.1:7001";

/// A network namespace with loopback up, deleted on drop.
pub struct Netns {
    name: String,
}

impl Netns {
    /// A new namespace, or `None` after saying loudly why not (a failure under CI).
    pub fn create() -> Option<Netns> {
        static N: AtomicU32 = AtomicU32::new(0);
        let name = format!("lmx-{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed));
        let ok =
            Command::new("ip").args(["netns", "add", &name]).stderr(Stdio::null()).status().is_ok_and(|s| s.success());
        if !ok {
            super::prereq::missing("a network namespace (`ip netns add` needs root and iproute2)", "run as root");
            return None;
        }
        let ns = Netns { name };
        ns.run(&["ip", "link", "set", "lo", "up"]);
        Some(ns)
    }

    /// A command that runs `program` inside (`ip netns exec` execs it, so its pid is
    /// the program's).
    pub fn command(&self, program: &str) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", &self.name, program]);
        command
    }

    /// Runs a command inside; panics if it fails.
    pub fn run(&self, cmd: &[&str]) {
        let status = self.command(cmd[0]).args(&cmd[1..]).status().unwrap();
        assert!(status.success(), "{cmd:?} failed in {}", self.name);
    }

    /// Starts `loadmux serve ARGS --listen SERVER` inside and waits until it listens.
    pub fn serve(&self, args: &[&str]) -> Owned {
        let child = self
            .command(BIN)
            .args(["serve", "--listen", SERVER])
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while !self.listening() {
            assert!(Instant::now() < deadline, "loadmux serve {args:?} did not listen in {}", self.name);
            std::thread::sleep(Duration::from_millis(20));
        }
        Owned(child)
    }

    /// Whether something listens on SERVER inside (asked with `ss`).
    fn listening(&self) -> bool {
        let out = self.command("ss").args(["-Hltn", "sport", "=", ":7001"]).output().unwrap();
        !out.stdout.is_empty()
    }

    /// A TCP counter of this namespace's own `/proc/net/netstat` (the kernel keeps
    /// one set per namespace), named as `nstat` names it without its prefix:
    /// `counter("TcpExt", "ListenOverflows")`.
    pub fn counter(&self, group: &str, name: &str) -> u64 {
        let out = self.command("cat").arg("/proc/net/netstat").output().expect("read /proc/net/netstat");
        let text = String::from_utf8_lossy(&out.stdout);
        // Each group is two lines: "TcpExt: Name1 Name2 ..." then "TcpExt: 1 2 ...".
        let prefix = format!("{group}:");
        let mut lines = text.lines().filter(|line| line.starts_with(&prefix));
        let (Some(names), Some(values)) = (lines.next(), lines.next()) else {
            panic!("no {group} counters in /proc/net/netstat of {}", self.name);
        };
        let position = names.split_whitespace().position(|n| n == name);
        let position = position.unwrap_or_else(|| panic!("no counter {group}:{name} in /proc/net/netstat"));
        values.split_whitespace().nth(position).and_then(|v| v.parse().ok()).expect("a number")
    }

    /// Runs `loadmux run SERVER ARGS` inside and returns its report (exit code 0).
    pub fn load(&self, args: &[&str]) -> Value {
        let out = self.command(BIN).args(["run", SERVER, "-q", "--json", "-"]).args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.name]).status();
    }
}

/// A child process, killed on drop.
pub struct Owned(pub Child);

impl Drop for Owned {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
