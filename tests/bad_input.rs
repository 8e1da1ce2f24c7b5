//! Every bad input: one line on stderr, exit code 2, nothing run, never a panic.

mod common;

use common::loadmux;

fn assert_usage_error(args: &[&str], needle: &str) {
    let out = loadmux().args(args).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "{args:?} must print one line, got: {stderr}");
    assert!(stderr.contains(needle), "{args:?}: expected '{needle}' in: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(out.stdout.is_empty(), "nothing is run: {}", String::from_utf8_lossy(&out.stdout));
}

#[test]
fn an_unknown_flag_is_a_usage_error() {
    assert_usage_error(&["run", "--frobnicate"], "--frobnicate");
}

#[test]
fn an_unknown_subcommand_is_a_usage_error() {
    assert_usage_error(&["explode"], "explode");
}

#[test]
fn a_bad_duration_is_a_usage_error() {
    assert_usage_error(&["run", "127.0.0.1:1", "-d", "soon"], "not a duration");
    assert_usage_error(&["run", "127.0.0.1:1", "-d", "0s"], "--duration");
    assert_usage_error(&["run", "127.0.0.1:1", "--timeout", "-1"], "-1");
    assert_usage_error(&["run", "127.0.0.1:1", "--timeout=-1"], "out of range");
}

#[test]
fn zero_connections_is_a_usage_error() {
    assert_usage_error(&["run", "127.0.0.1:1", "-c", "0"], "-c/--connections");
    assert_usage_error(&["run", "127.0.0.1:1", "-c", "many"], "many");
    assert_usage_error(&["run", "127.0.0.1:1", "-t", "0"], "-t/--threads");
    assert_usage_error(&["run", "127.0.0.1:1", "-n", "0"], "-n/--requests");
}

#[test]
fn an_unresolvable_host_is_a_usage_error() {
    assert_usage_error(&["run", "no-such-host.invalid:80"], "cannot resolve host");
}

#[test]
fn a_bad_port_is_a_usage_error() {
    assert_usage_error(&["run", "127.0.0.1:70000"], "out of range");
    assert_usage_error(&["run", "127.0.0.1"], "needs a port");
    assert_usage_error(&["run", "127.0.0.1:http"], "not a port");
}

#[test]
fn a_bad_message_or_framing_is_a_usage_error() {
    assert_usage_error(&["run", "127.0.0.1:1", "-m", "bad\\q"], "unknown escape");
    assert_usage_error(&["run", "127.0.0.1:1", "--expect", "telepathy"], "--expect");
    assert_usage_error(&["run", "127.0.0.1:1", "--reconnect-backoff", "2s..1s"], "--reconnect-backoff");
    assert_usage_error(&["run", "127.0.0.1:1", "--max-response", "0"], "--max-response");
    assert_usage_error(&["run", "127.0.0.1:1", "--max-response", "lots"], "lots");
}

#[test]
fn more_connections_than_file_descriptors_fails_up_front() {
    // Far above any hard limit this machine allows.
    assert_usage_error(&["run", "127.0.0.1:1", "-c", "50000000"], "file descriptors");
}

#[test]
fn an_unwritable_json_path_fails_before_the_run() {
    assert_usage_error(&["run", "127.0.0.1:1", "--json", "/nonexistent-dir/r.json"], "/nonexistent-dir");
}

#[test]
fn help_and_version_exit_zero() {
    let help = loadmux().args(["run", "--help"]).output().unwrap();
    assert_eq!(help.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&help.stdout).contains("--connections"));
    let version = loadmux().arg("--version").output().unwrap();
    assert_eq!(version.status.code(), Some(0));
}

/// Every range, checked where the value is parsed: the line names the flag, the
/// value and what is allowed. Each of these panicked (exit 101) or hung before.
#[test]
fn out_of_range_values_name_the_flag_the_value_and_the_range() {
    let t = "127.0.0.1:1";
    let cases: &[(&[&str], &[&str])] = &[
        (&["-d", "1e20"], &["--duration", "1e20", "365 days"]),
        (&["-d", "366days"], &["--duration", "366days", "365 days"]),
        (&["-r", "1e-20"], &["--rate", "1e-20", "1e9"]),
        (&["-r", "NaN"], &["--rate", "NaN", "1e9"]),
        (&["-r", "inf"], &["--rate", "inf", "1e9"]),
        (&["--rate=-1"], &["--rate", "-1", "1e9"]),
        (&["--connect-rate", "1e-30"], &["--connect-rate", "1e-30", "1e9"]),
        (&["--warmup", "1e19"], &["--warmup", "1e19", "365 days"]),
        (&["--timeout", "1e19"], &["--timeout", "1e19", "365 days"]),
        (&["--connect-timeout", "1e19"], &["--connect-timeout", "1e19", "365 days"]),
        (&["--reconnect-backoff", "1e19..1e20"], &["--reconnect-backoff", "1e19", "365 days"]),
        (&["--start-at", "1e20"], &["--start-at", "1e20", "year 9999"]),
        (&["--start-at", "9999999999"], &["--start-at", "9999999999", "365 days"]),
        (&["--max-response", "2G"], &["--max-response", "2G", "1GiB"]),
        (&["--max-response", "18446744073709551616"], &["--max-response", "18446744073709551616", "1GiB"]),
        (&["--message-size", "4G"], &["--message-size", "4G", "1GiB"]),
        (&["--sndbuf", "1e300"], &["--sndbuf", "1e300", "1GiB"]),
        (&["--expect", "bytes:2000", "--max-response", "1k"], &["--expect bytes:2000", "--max-response 1024"]),
        (
            &["--first-message", "hi", "--first-expect", "bytes:4096", "--max-response", "1k"],
            &["--first-expect bytes:4096", "--max-response 1024"],
        ),
        (&["--assert", "p99<-1ms"], &["p99<-1ms", "not a duration"]),
        (&["--assert", "errors<-1"], &["errors<-1", "negative"]),
        (&["--assert", "errors<101%"], &["errors<101%", "100%"]),
        (&["--assert", "p101<1ms"], &["p101<1ms", "unknown metric"]),
        (&["-c", "18446744073709551616"], &["--connections", "18446744073709551616"]),
    ];
    for (args, needles) in cases {
        let mut all = vec!["run", t];
        all.extend_from_slice(args);
        let out = loadmux().args(&all).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{args:?} must print one line, got: {stderr}");
        for needle in *needles {
            assert!(stderr.contains(needle), "{args:?}: expected '{needle}' in: {stderr}");
        }
    }
}

#[test]
fn port_zero_and_an_empty_target_are_rejected_but_no_target_is_the_demo() {
    assert_usage_error(&["run", "127.0.0.1:0"], "port 0 is out of range");
    assert_usage_error(&["run", "localhost:0"], "out of range");
    assert_usage_error(&["run", ""], "empty");
    // No target at all still means: load the built-in echo server.
    let out = loadmux().args(["run", "-d", "0.2", "-c", "1", "-q"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("built-in echo server"));
}

/// The property: whatever value any `run` flag gets, loadmux exits 0, 1 or 2 within
/// its duration plus 2 s, and never panics. The flags come from the clap
/// definition itself, so a flag added later is covered without touching this test.
mod every_flag {
    use std::path::Path;
    use std::process::Stdio;
    use std::time::{Duration, Instant};

    use clap::CommandFactory;
    use proptest::prelude::*;

    /// The extremes every flag gets, always.
    const EXTREMES: &[&str] =
        &["1e-300", "1e300", "NaN", "inf", "-inf", "-1", "0", "18446744073709551616", "", "-0", "1e", "\u{7f}é"];

    /// How long one run may take: its -d, plus the 2 s allowance.
    const DURATION: &str = "0.2";

    /// (long name, short) of every `run` flag that takes a value, positional
    /// TARGET included (as "").
    fn flags() -> Vec<(String, Option<char>)> {
        let cli = loadmux::cli::Cli::command();
        let run = cli.find_subcommand("run").expect("a run subcommand").clone();
        run.get_arguments()
            .filter(|a| a.get_action().takes_values())
            .filter(|a| !matches!(a.get_id().as_str(), "help" | "version"))
            .map(|a| (a.get_long().map(str::to_string).unwrap_or_default(), a.get_short()))
            .collect()
    }

    /// Values that would make a valid run legitimately long (a 10-minute
    /// warm-up, a start an hour ahead) or heavy (a gigabyte message) say nothing
    /// about panics and hangs, so they are left out.
    fn legitimately_slow(long: &str, value: &str) -> bool {
        use loadmux::units::{parse_duration, parse_size, parse_start_at};
        match long {
            "duration" | "warmup" => parse_duration(value).is_ok_and(|d| d > Duration::from_secs(1)),
            "start-at" => parse_start_at(value).is_ok_and(|t| t > std::time::SystemTime::now()),
            "message-size" => parse_size(value).is_ok_and(|n| n > 1 << 20),
            "connections" => value.trim().parse::<u64>().is_ok_and(|c| c > 200),
            _ => false,
        }
    }

    /// Runs `loadmux run TARGET -d 0.2 -c 2 -t 1 -q FLAG VALUE` in `dir` and checks
    /// the property. The base flags that FLAG itself is are left out, so clap never
    /// rejects a repeated flag before the value is even looked at.
    fn check(dir: &Path, target: &str, long: &str, short: Option<char>, value: &str) -> Result<(), String> {
        let mut args: Vec<String> = vec!["run".into()];
        let base = [("", target), ("duration", DURATION), ("connections", "1"), ("threads", "1")];
        for (name, v) in base {
            if name != long {
                if !name.is_empty() {
                    args.push(format!("--{name}"));
                }
                args.push(v.into());
            }
        }
        if long != "quiet" && long != "progress" {
            args.push("--progress=none".into());
        }
        let flag = match (long, short) {
            ("", _) => None,
            (_, Some(c)) if long.is_empty() => Some(format!("-{c}")),
            _ => Some(format!("--{long}")),
        };
        match flag {
            // `--flag=VALUE`, so that a value starting with '-' is still a value.
            Some(flag) => args.push(format!("{flag}={value}")),
            None => args.push(value.into()),
        }
        // --rate-search runs up to 9 steps of -d each.
        let allowed =
            if long == "rate-search" { Duration::from_secs(10 * 200 / 1000 + 2) } else { Duration::from_millis(2200) };
        let mut child = super::loadmux()
            .args(&args)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("spawn: {e}"))?;
        let started = Instant::now();
        // Generous for a loaded 2-core machine: process start-up counts too.
        let deadline = allowed + Duration::from_secs(3);
        let status = loop {
            if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
                break status;
            }
            if started.elapsed() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("{args:?} still running after {deadline:?}: a hang"));
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        let mut stderr = String::new();
        use std::io::Read;
        let _ = child.stderr.take().map(|mut e| e.read_to_string(&mut stderr));
        match status.code() {
            Some(0..=2) if !stderr.contains("panicked") => Ok(()),
            code => Err(format!("{args:?}: exit {code:?}, stderr: {stderr}")),
        }
    }

    /// One echo server for every case: starting hundreds would only use up ports.
    fn target() -> String {
        static SERVER: std::sync::OnceLock<loadmux::server::ServerHandle> = std::sync::OnceLock::new();
        SERVER.get_or_init(super::common::echo_server).local_addr().to_string()
    }

    #[test]
    fn every_flag_survives_every_extreme_value() {
        let target = target();
        let dir = tempfile::tempdir().unwrap();
        let flags = flags();
        assert!(flags.len() >= 25, "the run flags were not found: {flags:?}");
        let mut failures = Vec::new();
        for (long, short) in &flags {
            for value in EXTREMES {
                if let Err(e) = check(dir.path(), &target, long, *short, value) {
                    failures.push(e);
                }
            }
        }
        assert!(failures.is_empty(), "{} failures:\n{}", failures.len(), failures.join("\n"));
    }

    /// `loadmux serve` runs until a signal, so its property is: every flag value
    /// either fails at once (exit 2, one line, no panic) or gives a server that
    /// listens and stops cleanly on SIGTERM (exit 0).
    #[test]
    fn every_serve_flag_survives_every_extreme_value() {
        use std::io::BufRead;
        let cli = loadmux::cli::Cli::command();
        let serve = cli.find_subcommand("serve").expect("a serve subcommand").clone();
        let flags: Vec<String> = serve
            .get_arguments()
            .filter(|a| a.get_action().takes_values() && a.get_long().is_some_and(|l| l != "listen"))
            .map(|a| a.get_long().unwrap().to_string())
            .collect();
        assert!(flags.len() >= 10, "the serve flags were not found: {flags:?}");
        let mut failures = Vec::new();
        for flag in &flags {
            for value in EXTREMES {
                let args = ["serve".to_string(), "--listen=127.0.0.1:0".into(), format!("--{flag}={value}")];
                let mut child = super::loadmux()
                    .args(&args)
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap();
                let mut first = String::new();
                let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
                let _ = stderr.read_line(&mut first);
                if first.contains("listening on") {
                    // SAFETY: kill(2) on the pid of a child this test spawned and has not reaped.
                    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
                }
                let started = Instant::now();
                let status = loop {
                    if let Some(status) = child.try_wait().unwrap() {
                        break Some(status);
                    }
                    if started.elapsed() > Duration::from_secs(5) {
                        let _ = child.kill();
                        let _ = child.wait();
                        break None;
                    }
                    std::thread::sleep(Duration::from_millis(5));
                };
                let mut rest = String::new();
                let _ = std::io::Read::read_to_string(&mut stderr, &mut rest);
                let all = format!("{first}{rest}");
                let ok = match status.and_then(|s| s.code()) {
                    Some(0) => first.contains("listening on"),
                    Some(2) => all.lines().count() == 1,
                    _ => false,
                };
                if !ok || all.contains("panicked") {
                    failures.push(format!("{args:?}: {status:?}: {all}"));
                }
            }
        }
        assert!(failures.is_empty(), "{} failures:\n{}", failures.len(), failures.join("\n"));
    }

    proptest! {
        // Each case starts a process; 96 keeps the test to seconds on 2 cores.
        #![proptest_config(ProptestConfig { cases: 96, failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn every_flag_survives_random_values(
            flag in any::<prop::sample::Index>(),
            value in prop_oneof![
                "[ -~]{0,16}",
                any::<f64>().prop_map(|f| f.to_string()),
                any::<u64>().prop_map(|n| n.to_string()),
                any::<i64>().prop_map(|n| n.to_string()),
                (any::<u32>(), prop::sample::select(vec!["ms", "s", "k", "MiB", "%", "..1s", "/3"]))
                    .prop_map(|(n, unit)| format!("{n}{unit}")),
            ],
        ) {
            let flags = flags();
            let (long, short) = flag.get(&flags);
            prop_assume!(!legitimately_slow(long, &value));
            // A random target is only tried as an IP address: a host name would ask DNS.
            prop_assume!(!long.is_empty() || value.parse::<std::net::SocketAddr>().is_ok() || value.is_empty());
            let dir = tempfile::tempdir().unwrap();
            let result = check(dir.path(), &target(), long, *short, &value);
            prop_assert!(result.is_ok(), "{}", result.unwrap_err());
        }
    }
}

/// A small valid recording: one session, one step.
fn valid_recording() -> Vec<u8> {
    use loadmux::replay::format::{Kind, RecordWriter};
    use std::time::Duration;
    let mut w = RecordWriter::new(Vec::new()).unwrap();
    w.write(Kind::Open, 0, Duration::ZERO, &[]).unwrap();
    w.write(Kind::Client, 0, Duration::from_millis(1), b"PING\r\n").unwrap();
    w.write(Kind::Server, 0, Duration::from_millis(1), b"+PONG\r\n").unwrap();
    w.finish().unwrap()
}

#[test]
fn a_truncated_foreign_or_newer_recording_is_one_line_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.lmxrec");
    let p = path.to_str().unwrap();
    let good = valid_recording();
    std::fs::write(&path, &good).unwrap();
    let out = loadmux().args(["replay-info", p]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("1 sessions, 1 steps, 6 request bytes, 7 answer bytes"));

    std::fs::write(&path, &good[..good.len() - 3]).unwrap();
    assert_usage_error(&["replay-info", p], "truncated");
    std::fs::write(&path, b"{\"tool\":\"loadmux\",\"schema\":1}").unwrap();
    assert_usage_error(&["replay-info", p], "not a loadmux recording");
    let mut newer = good.clone();
    newer[8] = 9;
    std::fs::write(&path, &newer).unwrap();
    assert_usage_error(&["replay-info", p], "version 9 is newer");
    assert_usage_error(&["replay-info", "/nonexistent/r.lmxrec"], "cannot read");
}

#[test]
fn record_with_a_bad_upstream_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r.lmxrec");
    let o = out.to_str().unwrap();
    assert_usage_error(&["record", "--listen", "127.0.0.1:0", "--upstream", "nohostport", "-o", o], "--upstream");
    assert_usage_error(&["record", "--listen", "127.0.0.1:0", "--upstream", "unix:", "-o", o], "needs a path");
    let record = |upstream: &str, flags: &[&str], expected: &str| {
        let args = [&["record", "--listen", "127.0.0.1:0", "--upstream", upstream, "-o", o], flags].concat();
        assert_usage_error(&args, expected);
    };
    record("tls://nohost.invalid:443", &[], "--upstream tls://nohost.invalid:443");
    record("tls://127.0.0.1", &[], "--upstream tls://127.0.0.1");
    record("tls://127.0.0.1:1", &["--cacert", "/nonexistent/ca.pem"], "--cacert /nonexistent/ca.pem");
    record("tls://127.0.0.1:1", &["--cacert", "/dev/null", "--insecure"], "contradict");
    record("127.0.0.1:1", &["--insecure"], "need a tls:// upstream");
    record("unix:/tmp/x.sock", &["--sni", "example.com"], "need a tls:// upstream");
    assert_usage_error(
        &["record", "--listen", "127.0.0.1:0", "--upstream", "127.0.0.1:1", "-o", "/nonexistent/x"],
        "cannot create",
    );
    assert!(!out.exists());
}

#[test]
fn replay_flags_that_do_not_fit_are_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.lmxrec");
    std::fs::write(&path, valid_recording()).unwrap();
    let p = path.to_str().unwrap();
    assert_usage_error(&["run", "127.0.0.1:1", "--expect", "replay"], "needs --replay");
    assert_usage_error(&["run", "127.0.0.1:1", "--replay", p, "--mode", "stream"], "request mode");
    assert_usage_error(&["run", "127.0.0.1:1", "--replay", p, "--expect", "echo"], "--expect echo");
    assert_usage_error(&["run", "127.0.0.1:1", "--replay", p, "--replay-speed=-1"], "--replay-speed");
    assert_usage_error(&["run", "127.0.0.1:1", "--replay", p, "-m", "PING"], "--replay");
    assert_usage_error(&["run", "127.0.0.1:1", "--replay", p, "--max-response", "4"], "above --max-response");
    assert_usage_error(&["run", "127.0.0.1:1", "--replay-speed", "2"], "--replay");
    std::fs::write(&path, &valid_recording()[..20]).unwrap();
    assert_usage_error(&["run", "127.0.0.1:1", "--replay", p], "truncated");
}

#[test]
fn a_bad_resp_command_or_value_field_is_a_usage_error() {
    assert_usage_error(&["run", "127.0.0.1:1", "--resp", "-m", ""], "the command is empty");
    assert_usage_error(&["run", "127.0.0.1:1", "--resp", "-m", "  \\r\\n"], "the command is empty");
    assert_usage_error(&["run", "127.0.0.1:1", "--resp", "-m", "SET \"k v"], "quote");
    assert_usage_error(&["run", "127.0.0.1:1", "--resp", "--first-message", "\"", "-m", "PING"], "--first-message");
    assert_usage_error(&["run", "127.0.0.1:1", "-m", "SET k {value:0}\\r\\n"], "{value:N}");
    assert_usage_error(&["run", "127.0.0.1:1", "--resp", "-m", "SET k {value:99999999999}"], "{value:N}");
    assert_usage_error(&["run", "127.0.0.1:1", "--resp", "--message-size", "10"], "--resp");
    assert_usage_error(&["run", "127.0.0.1:1", "--expect", "resp:3"], "--expect");
}

#[test]
fn bad_tls_and_target_flags_are_one_line_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let not_pem = dir.path().join("not.pem");
    std::fs::write(&not_pem, "hello").unwrap();
    let not_pem = not_pem.to_str().unwrap();
    assert_usage_error(&["run", "127.0.0.1:1", "--cacert", not_pem], "--cacert applies to TLS");
    assert_usage_error(
        &["run", "tls://127.0.0.1:1", "--cacert", "/nonexistent/ca.pem"],
        "--cacert /nonexistent/ca.pem",
    );
    assert_usage_error(&["run", "tls://127.0.0.1:1", "--cacert", not_pem], "no certificate");
    assert_usage_error(&["run", "tls://127.0.0.1:1", "--tls-version", "1.4"], "1.2 or 1.3");
    assert_usage_error(&["run", "tls://127.0.0.1:1", "--sni", "bad name!"], "--sni");
    assert_usage_error(&["run", "tls://127.0.0.1:1", "--insecure", "--cacert", not_pem], "contradict");
    assert_usage_error(&["run", "tls://127.0.0.1:1", "--cert", not_pem], "--key");
    assert_usage_error(&["run", "tls://127.0.0.1:1", "127.0.0.1:2"], "mix tls:// and plain");
    assert_usage_error(&["run", "ftp://127.0.0.1:1"], "only tls://, https://, ws://, wss:// and unix:");
    assert_usage_error(&["run", "unix:"], "has no path");
    assert_usage_error(&["run", "127.0.0.1:1", "--first-expect", "line"], "--first-message");
    assert_usage_error(&["run", "127.0.0.1:1", "--first-message", "x", "--first-expect", "nope"], "--first-expect");
}
