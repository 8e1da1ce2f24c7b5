//! Live control input: keys on a terminal, or lines on stdin (`--control stdin`),
//! turned into [`Command`]s for the coordinator.
//!
//! Each source is read by a thread of its own, blocking on stdin: the coordinator
//! never blocks on input. After each command the thread rings the coordinator's
//! waker, so a change takes effect within a poll, not at the next second.

use std::io::{self, Read};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;

use mio::Waker;

use super::run::Control;
use crate::engine::control::{Action, Command};
use crate::engine::ControlStart;

/// The factor one `+` multiplies the rate by (and `-` divides it by).
const KEY_STEP: f64 = 1.1;

/// The longest control line read; the rest of a longer line is dropped, so a
/// runaway writer cannot grow a buffer without bound.
const MAX_LINE: usize = 256;

/// A control source ready to start, and the terminal mode to restore after the run.
pub struct ControlInput {
    /// Starts the reader thread; `None` without live control.
    pub start: Option<ControlStart>,
    /// Keys only: the terminal in non-canonical mode until this is dropped.
    pub terminal: Option<RawTerminal>,
}

/// Prepares the input `control` names. For keys the terminal is switched to
/// non-canonical mode now (and back when the result is dropped), and stderr says
/// which keys work.
pub fn prepare(control: Control) -> ControlInput {
    match control {
        Control::None => ControlInput { start: None, terminal: None },
        Control::Stdin => {
            ControlInput { start: Some(Box::new(|waker| spawn_reader("stdin", waker, read_lines))), terminal: None }
        }
        Control::Keys => match RawTerminal::enter() {
            Ok(terminal) => {
                eprintln!("loadmux: keys: + rate up 10%, - rate down 10%, p pause/resume, Ctrl-C stop");
                let start: ControlStart = Box::new(|waker| spawn_reader("key", waker, read_keys));
                ControlInput { start: Some(start), terminal: Some(terminal) }
            }
            Err(e) => {
                eprintln!("loadmux: keys disabled: cannot set up the terminal: {e}");
                ControlInput { start: None, terminal: None }
            }
        },
    }
}

/// Where a reader sends what it read: the coordinator's channel and waker.
struct Outbox {
    commands: mpsc::Sender<Command>,
    waker: Arc<Waker>,
    source: &'static str,
}

impl Outbox {
    /// Sends one command and wakes the coordinator. False once the run is over.
    fn send(&self, action: Action) -> bool {
        let sent = self.commands.send(Command { action, source: self.source }).is_ok();
        let _ = self.waker.wake();
        sent
    }
}

/// Starts `read` on a thread of its own; returns the channel its commands arrive on.
fn spawn_reader(source: &'static str, waker: Arc<Waker>, read: fn(&Outbox)) -> mpsc::Receiver<Command> {
    let (commands, received) = mpsc::channel();
    let outbox = Outbox { commands, waker, source };
    // Blocks on stdin until the process exits; nothing waits for it.
    let spawned = thread::Builder::new().name(format!("loadmux-control-{source}")).spawn(move || read(&outbox));
    if let Err(e) = spawned {
        eprintln!("loadmux: live control disabled: cannot start its thread: {e}");
    }
    received
}

/// `--control stdin`: one command per line until EOF (after which the run just
/// goes on). A bad line gets one line on stderr and is skipped.
fn read_lines(outbox: &Outbox) {
    let mut stdin = io::stdin().lock();
    let mut line = Vec::with_capacity(MAX_LINE);
    let mut byte = [0u8; 1];
    let mut too_long = false;
    loop {
        // Byte by byte: commands are a few a second at most, and this bounds the
        // line without a second buffer.
        match stdin.read(&mut byte) {
            Ok(0) => return, // EOF: no more commands.
            Ok(_) if byte[0] == b'\n' => {
                if too_long {
                    eprintln!("loadmux: control: a line longer than {MAX_LINE} bytes: ignored");
                } else if let Some(action) = report_bad(parse_line(&String::from_utf8_lossy(&line))) {
                    if !outbox.send(action) {
                        return;
                    }
                }
                line.clear();
                too_long = false;
            }
            Ok(_) if line.len() < MAX_LINE => line.push(byte[0]),
            Ok(_) => too_long = true,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {} // A signal: read again.
            Err(e) => {
                eprintln!("loadmux: control: cannot read stdin: {e}");
                return;
            }
        }
    }
}

/// Prints a refused line's reason; passes a good line's action through.
fn report_bad(parsed: Result<Option<Action>, String>) -> Option<Action> {
    parsed.unwrap_or_else(|reason| {
        eprintln!("loadmux: control: {reason}: ignored");
        None
    })
}

/// Parses one control line: `rate N`, `pause`, `resume` or `stop`. Blank lines and
/// `#` comments are `Ok(None)`.
pub fn parse_line(line: &str) -> Result<Option<Action>, String> {
    let line = line.trim();
    let mut words = line.split_whitespace();
    let action = match (words.next(), words.next(), words.next()) {
        (None, _, _) => return Ok(None),
        (Some(word), _, _) if word.starts_with('#') => return Ok(None),
        (Some("rate"), Some(n), None) => match n.parse::<f64>() {
            Ok(rate) if rate.is_finite() && rate >= 0.0 => Action::SetRate(rate),
            _ => return Err(format!("'{line}': '{n}' is not a rate (a number of requests per second, 0 or more)")),
        },
        (Some("pause"), None, _) => Action::Pause,
        (Some("resume"), None, _) => Action::Resume,
        (Some("stop"), None, _) => Action::Stop,
        _ => return Err(format!("'{line}' is not a command (expected: rate N, pause, resume, stop)")),
    };
    Ok(Some(action))
}

/// Keys on the terminal: `+`/`=` faster, `-`/`_` slower, `p` pause or resume.
/// Other keys are ignored (Ctrl-C still arrives as SIGINT: the terminal keeps ISIG).
fn read_keys(outbox: &Outbox) {
    let mut stdin = io::stdin().lock();
    let mut byte = [0u8; 1];
    loop {
        let action = match stdin.read(&mut byte) {
            Ok(0) => return, // The terminal went away.
            Ok(_) => match byte[0] {
                b'+' | b'=' => Action::Scale(KEY_STEP),
                b'-' | b'_' => Action::Scale(1.0 / KEY_STEP),
                b'p' | b'P' => Action::TogglePause,
                _ => continue,
            },
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return,
        };
        if !outbox.send(action) {
            return;
        }
    }
}

/// The terminal settings saved before entering non-canonical mode; restored by the
/// guard's drop, and by the panic hook if a panic comes first.
static SAVED: Mutex<Option<libc::termios>> = Mutex::new(None);

/// Stdin's terminal in non-canonical mode without echo (keys arrive one at a time
/// and are not printed), until dropped. Signals (ISIG) stay on, so Ctrl-C is still
/// a SIGINT and ends the run with its report.
pub struct RawTerminal(());

impl RawTerminal {
    /// Saves stdin's terminal settings and switches off ICANON and ECHO. Also
    /// installs a panic hook that puts the settings back before the message prints.
    fn enter() -> io::Result<RawTerminal> {
        // A background job that changes the terminal is stopped by SIGTTOU; only
        // the foreground process group may.
        // SAFETY: plain queries of this process's group and stdin's foreground group.
        if unsafe { libc::tcgetpgrp(libc::STDIN_FILENO) != libc::getpgrp() } {
            return Err(io::Error::other("not in the terminal's foreground"));
        }
        // SAFETY: tcgetattr writes a termios into the zeroed struct we own; fd 0 is
        // stdin, which the caller checked is a terminal.
        let mut saved: libc::termios = unsafe { std::mem::zeroed() };
        if unsafe { libc::tcgetattr(libc::STDIN_FILENO, &mut saved) } != 0 {
            return Err(io::Error::last_os_error());
        }
        let mut raw = saved;
        raw.c_lflag &= !(libc::ICANON | libc::ECHO);
        raw.c_cc[libc::VMIN] = 1;
        raw.c_cc[libc::VTIME] = 0;
        *SAVED.lock().unwrap_or_else(|p| p.into_inner()) = Some(saved);
        // SAFETY: sets stdin's attributes from a termios derived from its own.
        if unsafe { libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, &raw) } != 0 {
            return Err(io::Error::last_os_error());
        }
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore_terminal();
            previous(info);
        }));
        Ok(RawTerminal(()))
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        restore_terminal();
    }
}

/// Puts back the saved terminal settings, once (later calls do nothing).
fn restore_terminal() {
    let saved = SAVED.lock().unwrap_or_else(|p| p.into_inner()).take();
    if let Some(saved) = saved {
        // SAFETY: restores the attributes tcgetattr returned for the same fd.
        unsafe { libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, &saved) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_lines_parse_to_actions() {
        assert_eq!(parse_line("rate 2000"), Ok(Some(Action::SetRate(2000.0))));
        assert_eq!(parse_line("  rate 0.5 \r"), Ok(Some(Action::SetRate(0.5))));
        assert_eq!(parse_line("pause"), Ok(Some(Action::Pause)));
        assert_eq!(parse_line("resume"), Ok(Some(Action::Resume)));
        assert_eq!(parse_line("stop"), Ok(Some(Action::Stop)));
        assert_eq!(parse_line(""), Ok(None));
        assert_eq!(parse_line("# a comment"), Ok(None));
    }

    #[test]
    fn bad_control_lines_say_why() {
        for (line, needle) in [
            ("rate", "not a command"),
            ("rate fast", "not a rate"),
            ("rate -5", "not a rate"),
            ("rate NaN", "not a rate"),
            ("rate inf", "not a rate"),
            ("rate 1 2", "not a command"),
            ("faster", "not a command"),
            ("stop now", "not a command"),
        ] {
            let e = parse_line(line).unwrap_err();
            assert!(e.contains(needle), "{line}: {e}");
        }
    }
}
