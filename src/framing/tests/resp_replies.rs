//! `resp`: every RESP2 and RESP3 type, nesting without recursion, limits, error words.

use super::*;

fn resp() -> Framing {
    parse("resp")
}

/// The replies (length, and the error word's name if an error) in `stream`.
fn replies(stream: &[u8]) -> Vec<(usize, Option<&'static str>)> {
    decode(&resp(), b"", &[stream])
        .unwrap()
        .into_iter()
        .map(|(len, r)| match r.reply {
            Reply::RespError(i) => (len, Some(error_word_name(usize::from(i)))),
            _ => (len, None),
        })
        .collect()
}

const RESP2: &[u8] = b"+OK\r\n-ERR unknown command 'FOO'\r\n:-42\r\n$5\r\nhello\r\n$0\r\n\r\n$-1\r\n*-1\r\n*0\r\n\
*2\r\n$3\r\nfoo\r\n*2\r\n:1\r\n$-1\r\n";

const RESP3: &[u8] = b"_\r\n#t\r\n,3.14\r\n,-inf\r\n(3492890328409238509324850943850943825024385\r\n\
=15\r\ntxt:Some string\r\n!21\r\nSYNTAX invalid syntax\r\n%2\r\n+first\r\n:1\r\n+second\r\n*1\r\n:2\r\n\
~2\r\n+a\r\n+b\r\n|1\r\n+key-popularity\r\n%1\r\n$1\r\na\r\n,0.19\r\n*2\r\n:2039123\r\n:9543892\r\n\
>3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n";

#[test]
fn every_resp2_type_completes_one_reply_and_splits_anywhere() {
    let lengths: Vec<usize> = replies(RESP2).into_iter().map(|r| r.0).collect();
    assert_eq!(lengths, [5, 28, 6, 11, 6, 5, 5, 4, 26]);
    assert_eq!(lengths.iter().sum::<usize>(), RESP2.len());
    assert_split_invariant(&resp(), b"", RESP2);
}

#[test]
fn every_resp3_type_completes_one_reply_and_splits_anywhere() {
    let got = replies(RESP3);
    let lengths: Vec<usize> = got.iter().map(|r| r.0).collect();
    // null, boolean, two doubles, big number, verbatim, blob error, map, set,
    // attribute + its array, push.
    assert_eq!(lengths, [3, 4, 7, 7, 46, 22, 28, 33, 12, 63, 33]);
    assert_eq!(lengths.iter().sum::<usize>(), RESP3.len());
    assert_eq!(got[6].1, Some("other"), "a blob error is an error reply too (SYNTAX is not a named word)");
    assert_split_invariant(&resp(), b"", RESP3);
}

#[test]
fn error_replies_are_replies_named_by_their_first_word() {
    let stream = b"-ERR x\r\n-WRONGTYPE Operation against a key\r\n-NOPE\r\n-MOVED 3999 127.0.0.1:6381\r\n!9\r\nERR abcde\r\n-ERRX\r\n-\r\n";
    let words: Vec<Option<&str>> = replies(stream).into_iter().map(|r| r.1).collect();
    assert_eq!(
        words,
        [Some("ERR"), Some("WRONGTYPE"), Some("other"), Some("MOVED"), Some("ERR"), Some("other"), Some("other")]
    );
    assert_split_invariant(&resp(), b"", stream);
}

#[test]
fn an_error_inside_an_array_is_data_but_one_after_an_attribute_is_the_reply() {
    // EXEC's results hold the failed command's error; the reply itself is an array.
    assert_eq!(replies(b"*2\r\n+OK\r\n-WRONGTYPE x\r\n"), [(23, None)]);
    assert_eq!(replies(b"|1\r\n+a\r\n-ERR in attr\r\n-BUSY y\r\n"), [(31, Some("BUSY"))]);
}

#[test]
fn nesting_a_hundred_thousand_deep_needs_no_stack() {
    let depth = 100_000;
    let stream = [b"*1\r\n".repeat(depth), b":1\r\n".to_vec()].concat();
    let mut d = Decoder::default();
    let step = d.feed(&resp(), &stream, b"", stream.len()).unwrap();
    assert_eq!(step, Step::Complete { consumed: stream.len(), response: Response::default() });
}

#[test]
fn announced_sizes_over_the_limit_are_refused_at_the_header() {
    let mut d = Decoder::default();
    // A 1 GB bulk string, refused after 12 bytes with no body read.
    let err = d.feed(&resp(), b"$1000000000\r\n", b"", 1 << 20).unwrap_err();
    assert!(err.0.contains("max-response"), "{err}");
    // An array of 4 billion elements: each needs 3 bytes at least.
    let err = d.feed(&resp(), b"*4000000000\r\n", b"", 1 << 20).unwrap_err();
    assert!(err.0.contains("max-response"), "{err}");
    // A map counts two elements per entry: its 4-byte header and 4 elements of at
    // least 3 bytes need 16.
    assert!(d.feed(&resp(), b"%2\r\n", b"", 15).is_err());
    assert!(matches!(d.feed(&resp(), b"%2\r\n", b"", 16).unwrap(), Step::NeedMore));
    // A count near u64::MAX inside an aggregate saturates and is refused, never
    // overflows (found by the framing_resp fuzz target).
    let mut d = Decoder::default();
    let err = d.feed(&resp(), b"*2\r\n:1\r\n%99999999999999999999\r\n", b"", 1 << 20).unwrap_err();
    assert!(err.0.contains("max-response"), "{err}");
    // A line that never ends stops at the limit.
    let mut d = Decoder::default();
    assert!(d.feed(&resp(), &[b'+'; 100], b"", 64).is_err());
}

#[test]
fn malformed_replies_are_protocol_errors() {
    for bad in [
        &b"?\r\n"[..],
        b"$-2\r\n",
        b"*?\r\n",
        b"$3\r\nabcd\r\n",
        b"+OK\n",
        b"+OK\rX",
        b"$\r\n",
        b":12a\r\n",
        b"%-1\r\n",
        b"$3\r\nabc\n\n",
    ] {
        let mut d = Decoder::default();
        let fed = d.feed(&resp(), bad, b"", MAX);
        assert!(fed.is_err(), "{} gave {fed:?}", bad.escape_ascii());
        // An error leaves nothing half-decoded: a whole reply is read from its first byte.
        let next = d.feed(&resp(), b"+OK\r\n", b"", MAX);
        assert!(matches!(next, Ok(Step::Complete { consumed: 5, .. })), "after {}: {next:?}", bad.escape_ascii());
    }
}

#[test]
fn a_sign_may_only_lead_a_number_and_only_a_leading_question_mark_means_streamed() {
    for bad in [&b":1-2\r\n"[..], b":--1\r\n", b"$3+\r\nabc\r\n"] {
        let err = Decoder::default().feed(&resp(), bad, b"", MAX).unwrap_err();
        assert!(err.0.contains("in the number after"), "{}: {err}", bad.escape_ascii());
    }
    assert_eq!(replies(b":-12\r\n:+3\r\n"), [(6, None), (5, None)]);
    // `*?` opens a streamed aggregate (unsupported); after digits `?` is a bad byte.
    let streamed = Decoder::default().feed(&resp(), b"*?\r\n", b"", MAX).unwrap_err();
    assert!(streamed.0.contains("streamed '*' aggregates are not supported"), "{streamed}");
    let stray = Decoder::default().feed(&resp(), b"*1?\r\n", b"", MAX).unwrap_err();
    assert!(stray.0.contains("0x3f in the number after '*'"), "{stray}");
}

#[test]
fn a_blob_is_refused_at_its_header_when_the_elements_still_due_cannot_fit_after_it() {
    // The blob, then a null (`_`, 3 bytes: the least an element can be): 14 bytes.
    let reply: &[u8] = b"*2\r\n$1\r\na\r\n_\r\n";
    let header = &reply[..8];
    assert_eq!(
        Decoder::default().feed(&resp(), reply, b"", reply.len()),
        Ok(Step::Complete { consumed: 14, response: Response::default() })
    );
    assert_eq!(Decoder::default().feed(&resp(), header, b"", reply.len()), Ok(Step::NeedMore));
    let err = Decoder::default().feed(&resp(), header, b"", reply.len() - 1).unwrap_err();
    assert!(err.0.contains("1-byte blob is over --max-response"), "{err}");
}

#[test]
fn a_negative_length_other_than_a_null_says_so() {
    for bad in [&b"$-2\r\n"[..], b"*-3\r\n", b"%-1\r\n", b"!-1\r\n"] {
        let err = Decoder::default().feed(&resp(), bad, b"", MAX).unwrap_err();
        assert!(err.0.contains("negative length after"), "{}: {err}", bad.escape_ascii());
    }
}

/// A RESP value, for generating valid streams.
#[derive(Clone, Debug)]
enum Value {
    Simple(String),
    Error(String),
    Int(i64),
    Bulk(Vec<u8>),
    Null,
    Bool(bool),
    Array(Vec<Value>),
    Map(Vec<(Value, Value)>),
    Push(Vec<Value>),
}

impl Value {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Value::Simple(s) => out.extend_from_slice(format!("+{s}\r\n").as_bytes()),
            Value::Error(s) => out.extend_from_slice(format!("-{s}\r\n").as_bytes()),
            Value::Int(n) => out.extend_from_slice(format!(":{n}\r\n").as_bytes()),
            Value::Bulk(b) => {
                out.extend_from_slice(format!("${}\r\n", b.len()).as_bytes());
                out.extend_from_slice(b);
                out.extend_from_slice(b"\r\n");
            }
            Value::Null => out.extend_from_slice(b"_\r\n"),
            Value::Bool(b) => out.extend_from_slice(if *b { b"#t\r\n" } else { b"#f\r\n" }),
            Value::Array(items) | Value::Push(items) => {
                let kind = if matches!(self, Value::Array(_)) { '*' } else { '>' };
                out.extend_from_slice(format!("{kind}{}\r\n", items.len()).as_bytes());
                items.iter().for_each(|v| v.encode(out));
            }
            Value::Map(pairs) => {
                out.extend_from_slice(format!("%{}\r\n", pairs.len()).as_bytes());
                for (k, v) in pairs {
                    k.encode(out);
                    v.encode(out);
                }
            }
        }
    }
}

fn value() -> impl Strategy<Value = Value> {
    let text = "[A-Za-z0-9 ]{0,12}";
    let leaf = prop_oneof![
        text.prop_map(Value::Simple),
        "[A-Z]{1,10}( [a-z]{0,8})?".prop_map(Value::Error),
        any::<i64>().prop_map(Value::Int),
        proptest::collection::vec(any::<u8>(), 0..40).prop_map(Value::Bulk),
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
    ];
    leaf.prop_recursive(4, 40, 5, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            proptest::collection::vec(inner.clone(), 0..5).prop_map(Value::Push),
            proptest::collection::vec((inner.clone(), inner), 0..3).prop_map(Value::Map),
        ]
    })
}

proptest! {
    /// Any valid replies, pipelined and cut into reads anywhere, come out one by one
    /// with the right lengths, and top-level errors are named.
    #[test]
    fn any_valid_replies_split_anywhere_decode_to_their_own_lengths(
        values in proptest::collection::vec(value(), 1..6),
        cuts in proptest::collection::vec(0usize..2000, 0..8),
    ) {
        let encoded: Vec<Vec<u8>> = values.iter().map(|v| { let mut out = Vec::new(); v.encode(&mut out); out }).collect();
        let stream = encoded.concat();
        let got = decode(&resp(), b"", &cut(&stream, &cuts)).unwrap();
        prop_assert_eq!(lengths(&got), encoded.iter().map(Vec::len).collect::<Vec<_>>());
        for (value, (_, response)) in values.iter().zip(&got) {
            prop_assert_eq!(matches!(value, Value::Error(_)), matches!(response.reply, Reply::RespError(_)));
        }
    }

    /// Any truncation of a valid reply is incomplete, never complete nor an error.
    #[test]
    fn a_truncated_reply_needs_more(value in value(), keep in 0usize..2000) {
        let mut encoded = Vec::new();
        value.encode(&mut encoded);
        let keep = keep % encoded.len();
        prop_assert_eq!(decode(&resp(), b"", &[&encoded[..keep]]).unwrap(), vec![]);
    }
}

proptest! {
    /// Bytes from RESP's own alphabet make headers, nulls, partial CRLFs and garbage:
    /// whatever they are, cutting them into reads must not change the outcome.
    #[test]
    fn any_split_of_resp_like_bytes_gives_what_the_whole_gives(
        bytes in proptest::collection::vec(proptest::sample::select(b"+-$*%|:_!12\r\na ".to_vec()), 0..100),
        cuts in proptest::collection::vec(0usize..100, 0..8),
    ) {
        prop_assert_eq!(decode(&resp(), b"", &cut(&bytes, &cuts)), decode(&resp(), b"", &[&bytes]));
    }
}
