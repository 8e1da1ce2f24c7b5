//! The edges of `--expect` parsing and of the names reports use: each test here was
//! written for a mutant `cargo mutants` found no unit test noticing (docs/testing.md).

use super::super::*;

#[test]
fn replay_is_a_framing_of_its_own() {
    assert_eq!(Framing::parse("replay"), Ok(Framing::Replay));
    assert_eq!(Framing::Replay.name(), "replay");
}

#[test]
fn a_delimiter_may_be_max_delimiter_bytes_and_no_longer() {
    let longest = "x".repeat(MAX_DELIMITER);
    assert_eq!(Framing::parse(&format!("delim:{longest}")), Ok(Framing::Delim(longest.clone().into_bytes())));
    let too_long = format!("delim:{longest}x");
    let err = Framing::parse(&too_long).unwrap_err();
    assert!(err.contains(&format!("1 to {MAX_DELIMITER} bytes")), "{err}");
}

#[test]
fn a_protocol_error_displays_its_message() {
    assert_eq!(ProtocolError("bad frame".into()).to_string(), "bad frame");
}

#[test]
fn memcache_replies_have_distinct_report_names_and_three_are_errors() {
    let names: Vec<&str> = MemcacheReply::ALL.iter().map(|r| r.name()).collect();
    let mut unique = names.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), names.len(), "{names:?}");
    assert!(names.iter().all(|n| n.chars().all(|c| c.is_ascii_lowercase() || c == '_') && !n.is_empty()));
    assert_eq!(MemcacheReply::Hit.name(), "get_hits");
    assert_eq!(MemcacheReply::ServerError.name(), "server_error");
    let errors: Vec<MemcacheReply> = MemcacheReply::ALL.iter().copied().filter(|r| r.is_error()).collect();
    assert_eq!(errors, [MemcacheReply::Error, MemcacheReply::ClientError, MemcacheReply::ServerError]);
}

#[test]
fn a_fixed_size_of_exactly_max_response_is_accepted_and_one_more_is_not() {
    let mut decoder = Decoder::default();
    let step = decoder.feed(&Framing::Bytes(4), b"abcd", b"", 4).unwrap();
    assert_eq!(step, Step::Complete { consumed: 4, response: Response::default() });
    let err = Decoder::default().feed(&Framing::Bytes(5), b"abcde", b"", 4).unwrap_err();
    assert!(err.0.contains("over --max-response"), "{err}");
}

/// Feeds `parts` to a fresh decoder with the limit `max`: `Ok(true)` when a response
/// completed, `Ok(false)` when it still needs more.
fn completes(framing: &Framing, parts: &[&[u8]], max: usize) -> Result<bool, ProtocolError> {
    let mut decoder = Decoder::default();
    for part in parts {
        if let Step::Complete { .. } = decoder.feed(framing, part, b"", max)? {
            return Ok(true);
        }
    }
    Ok(false)
}

#[test]
fn an_http_response_of_exactly_max_response_is_accepted_and_one_more_byte_is_not() {
    let http = Framing::parse("http").unwrap();
    let head: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n";
    let response = [head, &[b'x'; 10]].concat();
    let max = response.len();
    assert_eq!(completes(&http, &[&response], max), Ok(true));
    assert!(completes(&http, &[&response], max - 1).is_err());
    // A chunked body's size is known only as it arrives, so the limit counts the
    // bytes of earlier reads too: the head and a chunk in one read, the rest next.
    let chunked: &[u8] = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n";
    let (first, second) = chunked.split_at(chunked.len() - 5);
    let max = chunked.len();
    assert_eq!(completes(&http, &[first, second], max), Ok(true));
    assert!(completes(&http, &[first, second], max - 1).is_err());
}

#[test]
fn an_http_head_of_exactly_max_response_split_across_reads_completes() {
    let http = Framing::parse("http").unwrap();
    let head: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nX-Pad: abcdefgh\r\n\r\n";
    for at in 1..head.len() {
        let (first, second) = head.split_at(at);
        assert_eq!(completes(&http, &[first, second], head.len()), Ok(true), "split at {at}");
        assert!(completes(&http, &[first, second], head.len() - 1).is_err(), "split at {at}");
    }
}

#[test]
fn an_http_head_not_ended_within_max_response_bytes_is_rejected_at_once() {
    let http = Framing::parse("http").unwrap();
    let unended: &[u8] = b"HTTP/1.1 200 OK\r\nX-Pad: abcdefghijklmnop";
    let max = unended.len();
    // `max` bytes without the end of the head: over the limit, known now, whether
    // they came in one read or two.
    let err = Decoder::default().feed(&http, unended, b"", max).unwrap_err();
    assert!(err.0.contains("larger than --max-response"), "{err}");
    for at in 1..max {
        let (first, second) = unended.split_at(at);
        let mut decoder = Decoder::default();
        assert_eq!(decoder.feed(&http, first, b"", max), Ok(Step::NeedMore), "split at {at}");
        assert!(decoder.feed(&http, second, b"", max).is_err(), "split at {at}");
    }
    // One byte fewer could still be the start of a head that fits.
    assert_eq!(Decoder::default().feed(&http, &unended[..max - 1], b"", max), Ok(Step::NeedMore));
}
