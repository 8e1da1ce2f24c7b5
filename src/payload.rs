//! What a connection sends: message literals with escapes.

/// Turns a message literal into bytes, resolving `\r \n \t \0 \\ \xNN`.
///
/// Any other backslash sequence is an error, so a typo like `\m` is reported
/// rather than sent.
pub fn unescape(text: &str) -> Result<Vec<u8>, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'\\' {
            out.push(bytes[i]);
            i += 1;
            continue;
        }
        let Some(&code) = bytes.get(i + 1) else {
            return Err("message ends with a lone backslash (write \\\\ for a backslash)".into());
        };
        i += 2;
        let byte = match code {
            b'r' => b'\r',
            b'n' => b'\n',
            b't' => b'\t',
            b'0' => 0,
            b'\\' => b'\\',
            b'x' => {
                let hex = bytes
                    .get(i..i + 2)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| "\\x must be followed by two hex digits, as in \\x0a".to_string())?;
                i += 2;
                hex
            }
            other => {
                return Err(format!(
                    "unknown escape \\{} (known: \\r \\n \\t \\0 \\\\ \\xNN)",
                    char::from(other).escape_default()
                ))
            }
        };
        out.push(byte);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_unchanged() {
        assert_eq!(unescape("hello world").unwrap(), b"hello world");
    }

    #[test]
    fn every_escape_resolves() {
        assert_eq!(unescape(r"a\r\n\t\0\\b").unwrap(), b"a\r\n\t\0\\b");
        assert_eq!(unescape(r"\x00\xff\x0A").unwrap(), vec![0, 255, 10]);
        assert_eq!(unescape(r"PING\r\n").unwrap(), b"PING\r\n");
    }

    #[test]
    fn malformed_escapes_are_errors() {
        assert!(unescape("trailing\\").is_err());
        assert!(unescape(r"\x4").is_err());
        assert!(unescape(r"\xzz").is_err());
        assert!(unescape(r"\q").unwrap_err().contains("\\q"));
    }

    #[test]
    fn utf8_passes_through() {
        assert_eq!(unescape("héllo").unwrap(), "héllo".as_bytes());
    }
}
