//! Framing tests: each framing's rules, and the property the engine relies on: however
//! a byte stream is split into reads, the same responses come out.

use super::*;
use proptest::prelude::*;

mod memcache_replies;
mod resp_replies;
mod spec_edges;

const MAX: usize = 1 << 20;

/// Feeds `chunks` in order and returns the length and status of every response
/// completed, or the first error.
fn decode(framing: &Framing, request: &[u8], chunks: &[&[u8]]) -> Result<Vec<(usize, Response)>, ProtocolError> {
    let mut decoder = Decoder::default();
    let mut out = Vec::new();
    let mut current = 0;
    for chunk in chunks {
        let mut input = *chunk;
        while !input.is_empty() {
            match decoder.feed(framing, input, request, MAX)? {
                Step::NeedMore => {
                    current += input.len();
                    input = &[];
                }
                Step::Complete { consumed, response } => {
                    out.push((current + consumed, response));
                    current = 0;
                    input = &input[consumed..];
                }
            }
        }
    }
    Ok(out)
}

fn lengths(responses: &[(usize, Response)]) -> Vec<usize> {
    responses.iter().map(|r| r.0).collect()
}

/// Every way of cutting `stream` in two, and in three at every pair of points of a
/// short stream, must give what feeding it whole gives.
fn assert_split_invariant(framing: &Framing, request: &[u8], stream: &[u8]) {
    let whole = decode(framing, request, &[stream]).expect("the stream is valid");
    for a in 0..=stream.len() {
        let (x, y) = stream.split_at(a);
        assert_eq!(decode(framing, request, &[x, y]).unwrap(), whole, "{framing:?} split at {a}");
        if stream.len() <= 80 {
            for b in a..=stream.len() {
                let parts = [&stream[..a], &stream[a..b], &stream[b..]];
                assert_eq!(decode(framing, request, &parts).unwrap(), whole, "{framing:?} split at {a},{b}");
            }
        }
    }
    // One byte at a time.
    let bytes: Vec<&[u8]> = stream.chunks(1).collect();
    assert_eq!(decode(framing, request, &bytes).unwrap(), whole, "{framing:?} byte by byte");
}

fn parse(spec: &str) -> Framing {
    Framing::parse(spec).unwrap()
}

#[test]
fn specs_parse_and_name_themselves() {
    for spec in [
        "echo",
        "none",
        "line",
        "http",
        "resp",
        "memcache",
        "bytes:12",
        "len:u16be",
        "len:u32be",
        "len:u32le",
        "delim:\\r\\n",
    ] {
        assert_eq!(parse(spec).name(), spec);
    }
    assert_eq!(parse("delim:END"), Framing::Delim(b"END".to_vec()));
    for bad in ["lines", "bytes:0", "bytes:x", "len:u64be", "delim:", "delim:\\q", "http:2", "x:y"] {
        assert!(Framing::parse(bad).is_err(), "{bad} should be rejected");
    }
}

#[test]
fn echo_completes_across_split_reads_and_leaves_the_next_response() {
    assert_split_invariant(&Framing::Echo, b"hello\n", b"hello\nhello\n");
    let mut d = Decoder::default();
    let step = d.feed(&Framing::Echo, b"hi\nhi\n", b"hi\n", MAX).unwrap();
    assert_eq!(step, Step::Complete { consumed: 3, response: Response::default() });
}

#[test]
fn echo_mismatch_is_a_protocol_error() {
    let mut d = Decoder::default();
    let err = d.feed(&Framing::Echo, b"hexlo\n", b"hello\n", MAX).unwrap_err();
    assert!(err.0.contains("byte 2"), "{err}");
}

#[test]
fn line_responses_end_at_each_newline() {
    let stream = b"+PONG\r\n+PONG\r\n:1\r\n";
    assert_eq!(lengths(&decode(&parse("line"), b"", &[stream]).unwrap()), [7, 7, 4]);
    assert_split_invariant(&parse("line"), b"", stream);
}

#[test]
fn a_multi_byte_delimiter_split_across_reads_is_found() {
    let framing = parse("delim:\\r\\n\\r\\n");
    let stream = b"a\r\n\r\nbb\r\nc\r\n\r\n\r\n\r\n";
    assert_eq!(lengths(&decode(&framing, b"", &[stream]).unwrap()), [5, 9, 4]);
    assert_split_invariant(&framing, b"", stream);
    // Overlapping partial matches: "\r\n\r" then "\r\n\r\n".
    assert_split_invariant(&framing, b"", b"x\r\n\r\r\n\r\n");
}

#[test]
fn a_line_longer_than_the_limit_is_a_protocol_error() {
    let mut d = Decoder::default();
    assert_eq!(d.feed(&parse("line"), b"0123456789", b"", 16).unwrap(), Step::NeedMore);
    assert!(d.feed(&parse("line"), b"0123456789", b"", 16).is_err());
}

#[test]
fn fixed_size_responses_are_counted_exactly() {
    let stream = [7u8; 25];
    assert_eq!(lengths(&decode(&parse("bytes:10"), b"", &[&stream]).unwrap()), [10, 10]);
    assert_split_invariant(&parse("bytes:10"), b"", &stream[..20]);
    let mut d = Decoder::default();
    assert!(d.feed(&parse("bytes:100"), b"x", b"", 10).is_err(), "bytes:N over the limit");
}

#[test]
fn length_prefixes_count_the_body_only() {
    let mut stream = Vec::new();
    stream.extend_from_slice(&[0, 3, b'a', b'b', b'c']);
    stream.extend_from_slice(&[0, 0]); // An empty body.
    stream.extend_from_slice(&[0, 1, b'z']);
    assert_eq!(lengths(&decode(&parse("len:u16be"), b"", &[&stream]).unwrap()), [5, 2, 3]);
    assert_split_invariant(&parse("len:u16be"), b"", &stream);
    let be = [0, 0, 0, 2, b'h', b'i'];
    assert_split_invariant(&parse("len:u32be"), b"", &be);
    let le = [2, 0, 0, 0, b'h', b'i'];
    assert_eq!(lengths(&decode(&parse("len:u32le"), b"", &[&le]).unwrap()), [6]);
}

#[test]
fn a_length_prefix_over_the_limit_is_rejected_before_the_body() {
    let mut d = Decoder::default();
    let err = d.feed(&parse("len:u32be"), &[0x7f, 0, 0, 0], b"", 1024).unwrap_err();
    assert!(err.0.contains("max-response"), "{err}");
}

const HTTP_CL: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
const HTTP_CHUNKED: &[u8] =
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: yes\r\n\r\n";

#[test]
fn http_content_length_and_chunked_responses_complete() {
    let one = decode(&Framing::Http, b"", &[HTTP_CL]).unwrap();
    assert_eq!(one, [(HTTP_CL.len(), Response { status: Some(200), close: false, ..Response::default() })]);
    let chunked = decode(&Framing::Http, b"", &[HTTP_CHUNKED]).unwrap();
    assert_eq!(lengths(&chunked), [HTTP_CHUNKED.len()]);
}

#[test]
fn pipelined_http_responses_split_anywhere_come_out_the_same() {
    let stream = [HTTP_CL, HTTP_CHUNKED, b"HTTP/1.1 204 No Content\r\n\r\n", HTTP_CL].concat();
    let whole = decode(&Framing::Http, b"", &[&stream]).unwrap();
    assert_eq!(whole.len(), 4);
    assert_eq!(whole[2].1.status, Some(204));
    assert_split_invariant(&Framing::Http, b"", &stream);
}

#[test]
fn an_http_zero_length_body_and_an_interim_response_are_handled() {
    let empty = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
    assert_eq!(lengths(&decode(&Framing::Http, b"", &[empty]).unwrap()), [empty.len()]);
    let interim = [&b"HTTP/1.1 100 Continue\r\n\r\n"[..], HTTP_CL].concat();
    let out = decode(&Framing::Http, b"", &[&interim]).unwrap();
    assert_eq!(out, [(interim.len(), Response { status: Some(200), close: false, ..Response::default() })]);
}

#[test]
fn http_connection_close_and_close_delimited_bodies() {
    let close = b"HTTP/1.1 503 Busy\r\nConnection: close\r\nContent-Length: 2\r\n\r\nno";
    assert_eq!(
        decode(&Framing::Http, b"", &[close]).unwrap()[0].1,
        Response { status: Some(503), close: true, ..Response::default() }
    );
    let mut d = Decoder::default();
    let step = d.feed(&Framing::Http, b"HTTP/1.0 200 OK\r\n\r\nbody until close", b"", MAX).unwrap();
    assert_eq!(step, Step::NeedMore);
    assert_eq!(d.on_eof(&Framing::Http), Some(Response { status: Some(200), close: true, ..Response::default() }));
    assert_eq!(Decoder::default().on_eof(&Framing::Http), None);
}

#[test]
fn http_errors_are_protocol_errors() {
    let mut d = Decoder::default();
    assert!(d.feed(&Framing::Http, b"NOT HTTP AT ALL\r\n\r\n", b"", MAX).is_err());
    let mut d = Decoder::default();
    assert!(d.feed(&Framing::Http, b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n", b"", MAX).is_err());
    let mut d = Decoder::default();
    let big = b"HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n";
    assert!(d.feed(&Framing::Http, big, b"", 1024).is_err(), "a body over the limit");
    let mut d = Decoder::default();
    let head = [&b"HTTP/1.1 200 OK\r\nX: "[..], &[b'a'; 2000]].concat();
    assert!(d.feed(&Framing::Http, &head, b"", 1024).is_err(), "a head over the limit");
    let mut d = Decoder::default();
    assert!(d.feed(&Framing::Http, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", b"", MAX).is_err());
}

#[test]
fn each_framing_completes_exactly_the_first_of_two_pipelined_responses() {
    let cases: [(&str, &[u8], &[u8]); 7] = [
        ("line", b"first\n", b"second\n"),
        ("delim:END", b"oneEND", b"twoEND"),
        ("bytes:4", b"abcd", b"efgh"),
        ("len:u16be", b"\x00\x02hi", b"\x00\x01!"),
        ("len:u32be", b"\x00\x00\x00\x02hi", b"\x00\x00\x00\x00"),
        ("len:u32le", b"\x02\x00\x00\x00hi", b"\x00\x00\x00\x00"),
        ("http", HTTP_CL, HTTP_CHUNKED),
    ];
    for (spec, first, second) in cases {
        let framing = parse(spec);
        let mut d = Decoder::default();
        let both = [first, second].concat();
        match d.feed(&framing, &both, b"", MAX).unwrap() {
            Step::Complete { consumed, .. } => assert_eq!(consumed, first.len(), "{spec}"),
            Step::NeedMore => panic!("{spec}: the first response did not complete"),
        }
        let rest = &both[first.len()..];
        assert!(
            matches!(d.feed(&framing, rest, b"", MAX).unwrap(), Step::Complete { consumed, .. } if consumed == rest.len())
        );
    }
}

#[test]
fn a_little_endian_length_prefix_split_anywhere_gives_the_same_responses() {
    let stream = [&[3u8, 0, 0, 0][..], b"abc", &[0, 0, 0, 0], &[1, 0, 0, 0], b"z"].concat();
    assert_eq!(lengths(&decode(&parse("len:u32le"), b"", &[&stream]).unwrap()), [7, 4, 5]);
    assert_split_invariant(&parse("len:u32le"), b"", &stream);
}

#[test]
fn a_delimiter_that_overlaps_itself_is_found_at_its_first_end() {
    // "aab" inside "aaab": a naive partial-match restart would miss it.
    let framing = parse("delim:aab");
    assert_eq!(lengths(&decode(&framing, b"", &[b"xaaab", b"aab"]).unwrap()), [5, 3]);
    assert_split_invariant(&framing, b"", b"xaaabaabaaaaab");
}

#[test]
fn http_204_and_304_have_no_body_whatever_their_headers_say() {
    let stream =
        [&b"HTTP/1.1 204 No Content\r\n\r\n"[..], b"HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n", HTTP_CL]
            .concat();
    let out = decode(&Framing::Http, b"", &[&stream]).unwrap();
    let statuses: Vec<_> = out.iter().map(|r| r.1.status).collect();
    assert_eq!(statuses, [Some(204), Some(304), Some(200)]);
    assert_split_invariant(&Framing::Http, b"", &stream);
}

#[test]
fn chunked_with_extensions_and_trailers_and_an_interim_response_split_anywhere() {
    let stream = [
        &b"HTTP/1.1 100 Continue\r\n\r\n"[..],
        b"HTTP/1.1 201 Created\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
        b"3;name=value;flag\r\nabc\r\n0;last\r\nX-A: 1\r\nX-B: 2\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    ]
    .concat();
    let out = decode(&Framing::Http, b"", &[&stream]).unwrap();
    assert_eq!(out.iter().map(|r| r.1.status).collect::<Vec<_>>(), [Some(201), Some(200)]);
    assert_eq!(out.iter().map(|r| r.0).sum::<usize>(), stream.len());
    assert_split_invariant(&Framing::Http, b"", &stream);
}

#[test]
fn http_chunk_data_must_end_with_crlf() {
    let mut d = Decoder::default();
    let bad = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n0\r\n\r\n";
    assert!(d.feed(&Framing::Http, bad, b"", MAX).unwrap_err().0.contains("CRLF"));
}

#[test]
fn http_content_length_must_be_one_plain_number() {
    for value in ["+5", "-1", "5 5", "", "99999999999999999999999999"] {
        let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {value}\r\n\r\nhello");
        assert!(Decoder::default().feed(&Framing::Http, head.as_bytes(), b"", MAX).is_err(), "{value:?}");
    }
    let twice = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!";
    assert!(Decoder::default().feed(&Framing::Http, twice, b"", MAX).unwrap_err().0.contains("conflicting"));
    let same_twice = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello";
    assert_eq!(lengths(&decode(&Framing::Http, b"", &[same_twice]).unwrap()), [same_twice.len()]);
}

#[test]
fn an_http_head_over_the_limit_is_rejected_even_when_it_arrives_in_pieces() {
    let head = [&b"HTTP/1.1 200 OK\r\nX: "[..], &[b'a'; 2000], b"\r\n\r\n"].concat();
    let mut d = Decoder::default();
    let mut result = Ok(Step::NeedMore);
    for piece in head.chunks(100) {
        result = d.feed(&Framing::Http, piece, b"", 1024);
        if result.is_err() {
            break;
        }
    }
    assert!(result.unwrap_err().0.contains("max-response"));
}

#[test]
fn a_close_delimited_body_completes_only_at_eof_and_other_bodies_do_not() {
    let mut d = Decoder::default();
    assert_eq!(d.feed(&Framing::Http, b"HTTP/1.1 200 OK\r\n\r\npart", b"", MAX).unwrap(), Step::NeedMore);
    assert_eq!(d.feed(&Framing::Http, b" more", b"", MAX).unwrap(), Step::NeedMore);
    assert_eq!(d.on_eof(&Framing::Http), Some(Response { status: Some(200), close: true, ..Response::default() }));
    // The decoder is idle again: the next response is read from its first byte.
    assert!(
        matches!(d.feed(&Framing::Http, HTTP_CL, b"", MAX).unwrap(), Step::Complete { consumed, .. } if consumed == HTTP_CL.len())
    );
    let mut d = Decoder::default();
    d.feed(&Framing::Http, b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nshort", b"", MAX).unwrap();
    assert_eq!(d.on_eof(&Framing::Http), None, "a Content-Length body cut short is not a response");
    let mut d = Decoder::default();
    d.feed(&parse("line"), b"no newline", b"", MAX).unwrap();
    assert_eq!(d.on_eof(&parse("line")), None);
}

#[test]
fn reset_forgets_a_partial_response() {
    for (spec, response) in [("bytes:3", &b"abc"[..]), ("len:u16be", b"\x00\x01!"), ("http", HTTP_CL)] {
        let framing = parse(spec);
        let mut d = Decoder::default();
        assert_eq!(d.feed(&framing, &response[..1], b"", MAX).unwrap(), Step::NeedMore, "{spec}");
        d.reset();
        // Without the reset, the first byte would count twice and the response
        // would end early (or not parse).
        let whole = d.feed(&framing, response, b"", MAX);
        assert!(
            matches!(whole, Ok(Step::Complete { consumed, .. }) if consumed == response.len()),
            "{spec}: {whole:?}"
        );
    }
}

#[test]
fn the_decoder_stays_small() {
    assert!(std::mem::size_of::<Decoder>() <= 48, "{} bytes", std::mem::size_of::<Decoder>());
}

/// Cuts `stream` at `cuts` (taken modulo its length, in order).
fn cut<'a>(stream: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (stream.len() + 1)).collect();
    points.sort();
    let mut parts = Vec::new();
    let mut last = 0;
    for p in points {
        parts.push(&stream[last..p]);
        last = p;
    }
    parts.push(&stream[last..]);
    parts
}

const ALL_SPECS: [&str; 11] = [
    "echo",
    "line",
    "delim:\\r\\n\\r\\n",
    "delim:aab",
    "bytes:7",
    "len:u16be",
    "len:u32be",
    "len:u32le",
    "http",
    "resp",
    "memcache",
];

proptest! {
    #[test]
    fn any_split_of_valid_http_gives_the_same_responses(cuts in proptest::collection::vec(0usize..400, 0..8)) {
        let stream = [HTTP_CHUNKED, HTTP_CL, b"HTTP/1.1 100 Continue\r\n\r\n", HTTP_CHUNKED].concat();
        let expected = [HTTP_CHUNKED.len(), HTTP_CL.len(), 25 + HTTP_CHUNKED.len()];
        prop_assert_eq!(lengths(&decode(&Framing::Http, b"", &cut(&stream, &cuts)).unwrap()), expected);
    }

    /// Bytes from a small alphabet hit delimiters, partial delimiters and prefixes
    /// often: whatever they are, cutting them into reads must not change the outcome.
    #[test]
    fn any_split_of_any_stream_gives_what_the_whole_stream_gives(
        bytes in proptest::collection::vec(prop_oneof![Just(b'a'), Just(b'b'), Just(b'\r'), Just(b'\n'), Just(0u8), Just(2u8)], 0..120),
        cuts in proptest::collection::vec(0usize..120, 0..8),
    ) {
        for spec in ALL_SPECS.into_iter().filter(|s| *s != "http") {
            let framing = parse(spec);
            let whole = decode(&framing, b"ab\n", &[&bytes]);
            prop_assert_eq!(decode(&framing, b"ab\n", &cut(&bytes, &cuts)), whole, "{}", spec);
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic_any_framing(bytes in proptest::collection::vec(any::<u8>(), 0..600), split in 0usize..600) {
        for spec in ALL_SPECS {
            let framing = parse(spec);
            let cut = split.min(bytes.len());
            // Errors are fine; panics are not.
            let _ = decode(&framing, b"hello", &[&bytes[..cut], &bytes[cut..]]);
        }
    }
}
