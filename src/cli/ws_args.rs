//! The WebSocket flags of `loadmux run` (`--ws`, `-H`, `--ws-protocol`,
//! `--ws-binary`), and their conversion into the core's [`WsSettings`].

use clap::Args;

use crate::plan::{err, PlanError};
use crate::session::websocket::{WsPlace, WsSettings};

/// WebSocket flags, flattened into `run`'s arguments under their own help heading.
#[derive(Args, Debug, Clone, Default)]
pub struct WsArgs {
    /// Open a WebSocket session (RFC 6455) on every connection, with an upgrade to
    /// PATH [default: /]; as a ws:// (or wss://) target does. Each request goes out
    /// as one masked frame.
    #[arg(long, value_name = "PATH", num_args = 0..=1, default_missing_value = "/", help_heading = "WebSocket")]
    pub ws: Option<String>,

    /// An extra header for the WebSocket upgrade request, as 'Name: value'. Repeatable.
    #[arg(short = 'H', long = "header", value_name = "HEADER", help_heading = "WebSocket")]
    pub headers: Vec<String>,

    /// A subprotocol to offer (Sec-WebSocket-Protocol). Repeatable, in order of
    /// preference; the server must choose one of them, or none.
    #[arg(long = "ws-protocol", value_name = "P", help_heading = "WebSocket")]
    pub protocols: Vec<String>,

    /// Send binary frames [default: text frames].
    #[arg(long, help_heading = "WebSocket")]
    pub ws_binary: bool,
}

/// A target's WebSocket part, as its URL gave it (`ws://HOST:PORT/PATH`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WsUrl {
    /// `HOST:PORT` as written: the upgrade's `Host` header.
    pub authority: String,
    /// The path, `/` when the URL has none.
    pub path: String,
}

impl WsArgs {
    /// The run's WebSocket settings: `None` when no target is a ws:// URL and `--ws`
    /// is not given. `targets` holds, per target, its URL's WebSocket part (if it was
    /// a ws:// or wss:// URL) and its `HOST:PORT`.
    pub fn settings(&self, targets: &[(Option<WsUrl>, String)]) -> Result<Option<WsSettings>, PlanError> {
        let urls = targets.iter().filter(|(url, _)| url.is_some()).count();
        if urls == 0 && self.ws.is_none() {
            if !self.headers.is_empty() || !self.protocols.is_empty() || self.ws_binary {
                return err("-H, --ws-protocol and --ws-binary apply to WebSocket: add --ws, or use a ws:// target");
            }
            return Ok(None);
        }
        if urls > 0 && urls < targets.len() && self.ws.is_none() {
            return err("the targets mix ws:// and plain ones; give --ws to speak WebSocket to all of them");
        }
        if let Some(path) = &self.ws {
            if !path.starts_with('/') {
                return err(format!(
                    "--ws '{path}': a path starts with / (put the target before --ws, or write --ws=/PATH)"
                ));
            }
        }
        let places = targets
            .iter()
            .map(|(url, host_port)| match url {
                Some(url) => WsPlace { host: url.authority.clone(), path: url.path.clone() },
                None => WsPlace { host: host_port.clone(), path: self.ws.clone().unwrap_or_else(|| "/".into()) },
            })
            .collect();
        let headers = self.headers.iter().map(|h| parse_header(h)).collect::<Result<Vec<_>, _>>()?;
        for protocol in &self.protocols {
            if protocol.is_empty() || !protocol.bytes().all(is_token_byte) {
                return err(format!(
                    "--ws-protocol '{protocol}': a subprotocol is a token (letters, digits, !#$%&'*+-.^_`|~)"
                ));
            }
        }
        Ok(Some(WsSettings { places, headers, protocols: self.protocols.clone(), binary: self.ws_binary }))
    }
}

/// Splits `-H 'Name: value'`, refusing what would break the request or the
/// handshake's own headers.
fn parse_header(text: &str) -> Result<(String, String), PlanError> {
    let Some((name, value)) = text.split_once(':') else {
        return err(format!("-H '{text}': expected 'Name: value'"));
    };
    let (name, value) = (name.trim(), value.trim());
    if name.is_empty() || !name.bytes().all(is_token_byte) {
        return err(format!("-H '{text}': '{name}' is not a header name"));
    }
    if value.bytes().any(|b| b == b'\r' || b == b'\n') {
        return err(format!("-H '{text}': a header value cannot hold a line break"));
    }
    const OWN: [&str; 6] =
        ["host", "upgrade", "connection", "sec-websocket-key", "sec-websocket-version", "sec-websocket-protocol"];
    if OWN.iter().any(|own| name.eq_ignore_ascii_case(own)) {
        return err(format!("-H '{text}': loadmux writes {name} itself (use --ws-protocol for subprotocols)"));
    }
    Ok((name.to_string(), value.to_string()))
}

/// A byte allowed in an HTTP token (RFC 9110 section 5.6.2).
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Splits the rest of a ws:// or wss:// URL (after the scheme) into `HOST[:PORT]`
/// and the path.
pub fn split_ws_url(rest: &str) -> (&str, String) {
    match rest.find('/') {
        Some(at) => (&rest[..at], rest[at..].to_string()),
        None => (rest, "/".to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(ws: Option<&str>, headers: &[&str]) -> WsArgs {
        WsArgs {
            ws: ws.map(str::to_string),
            headers: headers.iter().map(|h| h.to_string()).collect(),
            ..WsArgs::default()
        }
    }

    #[test]
    fn no_websocket_without_a_ws_target_or_flag_and_its_flags_need_one() {
        let plain = [(None, "127.0.0.1:80".to_string())];
        assert_eq!(args(None, &[]).settings(&plain).unwrap(), None);
        assert!(args(None, &["X-A: 1"]).settings(&plain).unwrap_err().0.contains("apply to WebSocket"));
    }

    #[test]
    fn ws_flag_gives_every_target_the_path_and_headers_are_checked() {
        let plain = [(None, "127.0.0.1:80".to_string())];
        let s = args(Some("/chat"), &["X-Token: abc"]).settings(&plain).unwrap().unwrap();
        assert_eq!(s.places, vec![WsPlace { host: "127.0.0.1:80".into(), path: "/chat".into() }]);
        assert_eq!(s.headers, vec![("X-Token".into(), "abc".into())]);
        assert!(args(Some("127.0.0.1:80"), &[]).settings(&plain).unwrap_err().0.contains("starts with /"));
        for bad in ["NoColon", "Bad Name: x", "Host: other", "Sec-WebSocket-Key: x"] {
            assert!(args(Some("/"), &[bad]).settings(&plain).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_ws_url_keeps_its_authority_and_path() {
        assert_eq!(split_ws_url("h:1/a/b?x=1"), ("h:1", "/a/b?x=1".to_string()));
        assert_eq!(split_ws_url("h:1"), ("h:1", "/".to_string()));
        let url = WsUrl { authority: "h:1".into(), path: "/a".into() };
        let mixed = [(Some(url), "h:1".to_string()), (None, "h:2".to_string())];
        assert!(args(None, &[]).settings(&mixed).unwrap_err().0.contains("mix ws://"));
    }
}
