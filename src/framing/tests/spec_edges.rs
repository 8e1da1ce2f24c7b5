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

/// A chunked response whose one chunk-size line is `line` (its CRLF included).
fn chunked_with_size_line(line: &[u8]) -> Vec<u8> {
    let head: &[u8] = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
    [head, line, b"hello\r\n0\r\n\r\n"].concat()
}

#[test]
fn a_chunk_size_line_may_be_max_chunk_line_bytes_and_no_longer() {
    let http = Framing::parse("http").unwrap();
    // "5;" then an extension that pads the line to exactly MAX_CHUNK_LINE with its CRLF.
    let longest = [b"5;x=".as_slice(), &vec![b'a'; http::MAX_CHUNK_LINE - 6], b"\r\n"].concat();
    assert_eq!(longest.len(), http::MAX_CHUNK_LINE);
    let response = chunked_with_size_line(&longest);
    let line_starts = response.len() - longest.len() - 12;
    for at in [line_starts + 1, line_starts + 100, line_starts + longest.len() - 1] {
        let (first, second) = response.split_at(at);
        assert_eq!(completes(&http, &[first, second], super::MAX), Ok(true), "split at {at}");
    }
    // One byte more, and the line is refused as soon as that many bytes are in hand
    // without its end, in one read or two.
    let too_long = [b"5;x=a".as_slice(), &longest[4..]].concat();
    let response = chunked_with_size_line(&too_long);
    let unended = &response[..line_starts + longest.len()];
    let err = Decoder::default().feed(&http, unended, b"", super::MAX).unwrap_err();
    assert!(err.0.contains("chunk-size line too long"), "{err}");
    assert!(completes(&http, &[&response], super::MAX).is_err(), "whole, it is refused too");
    let overlong = [&response[..line_starts], b"5;x=", &vec![b'a'; http::MAX_CHUNK_LINE + 10]].concat();
    assert!(Decoder::default().feed(&http, &overlong, b"", super::MAX).is_err(), "unended and over the limit");
    let (first, second) = unended.split_at(line_starts + 10);
    let mut decoder = Decoder::default();
    assert_eq!(decoder.feed(&http, first, b"", super::MAX), Ok(Step::NeedMore));
    assert!(decoder.feed(&http, second, b"", super::MAX).is_err());
    assert_eq!(Decoder::default().feed(&http, &unended[..unended.len() - 1], b"", super::MAX), Ok(Step::NeedMore));
}

#[test]
fn a_chunked_response_ends_at_the_empty_line_after_its_trailers() {
    let http = Framing::parse("http").unwrap();
    let response: &[u8] = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX-Sum: 1\r\n\r\n";
    let mut decoder = Decoder::default();
    let step = decoder.feed(&http, response, b"", super::MAX).unwrap();
    assert_eq!(
        step,
        Step::Complete { consumed: response.len(), response: Response { status: Some(200), ..Response::default() } }
    );
}

#[test]
fn connection_tokens_decide_whether_the_server_closes() {
    let close = |head: &str| {
        let bytes = format!("{head}\r\nContent-Length: 0\r\n\r\n");
        match Decoder::default().feed(&Framing::Http, bytes.as_bytes(), b"", super::MAX).unwrap() {
            Step::Complete { response, .. } => response.close,
            Step::NeedMore => panic!("{head}: incomplete"),
        }
    };
    assert!(close("HTTP/1.0 200 OK"), "HTTP/1.0 closes by default");
    assert!(!close("HTTP/1.0 200 OK\r\nConnection: keep-alive"), "unless it says keep-alive");
    assert!(!close("HTTP/1.1 200 OK"), "HTTP/1.1 stays open by default");
    assert!(!close("HTTP/1.1 200 OK\r\nConnection: upgrade"), "a token other than close changes nothing");
    assert!(close("HTTP/1.1 200 OK\r\nConnection: keep-alive, close"));
}

#[test]
fn a_length_prefixed_response_of_exactly_max_response_is_accepted_and_one_more_byte_is_not() {
    let len = Framing::parse("len:u16be").unwrap();
    let response = [&[0u8, 5][..], b"hello"].concat();
    assert_eq!(completes(&len, &[&response], response.len()), Ok(true));
    let err = Decoder::default().feed(&len, &response, b"", response.len() - 1).unwrap_err();
    assert!(err.0.contains("over --max-response"), "{err}");
}

#[test]
fn a_memcache_reply_of_exactly_max_response_is_accepted_and_one_more_byte_is_not() {
    let memcache = Framing::parse("memcache").unwrap();
    let reply: &[u8] = b"VALUE k 0 5\r\nhello\r\nEND\r\n";
    assert_eq!(completes(&memcache, &[reply], reply.len()), Ok(true));
    assert!(completes(&memcache, &[reply], reply.len() - 1).is_err());
}

#[test]
fn a_memcache_value_that_cannot_fit_is_refused_at_its_value_line() {
    let memcache = Framing::parse("memcache").unwrap();
    let value_line: &[u8] = b"VALUE k 0 5\r\n";
    let whole = b"VALUE k 0 5\r\nhello\r\nEND\r\n".len();
    // The data, its CRLF and an END line cannot fit in one byte less than the whole
    // reply: known at the VALUE line.
    let err = Decoder::default().feed(&memcache, value_line, b"", whole - 1).unwrap_err();
    assert!(err.0.contains("exceeds --max-response"), "{err}");
    assert_eq!(Decoder::default().feed(&memcache, value_line, b"", whole), Ok(Step::NeedMore));
}

#[test]
fn a_memcache_value_line_needs_its_byte_count() {
    let memcache = Framing::parse("memcache").unwrap();
    for line in [&b"VALUE k 0 \r\n"[..], b"VALUE k 0\r\n", b"VALUE k 0 x5\r\n"] {
        let err = Decoder::default().feed(&memcache, line, b"", super::MAX).unwrap_err();
        assert!(err.0.contains("needs <key> <flags> <bytes>"), "{:?}: {err}", String::from_utf8_lossy(line));
    }
}
