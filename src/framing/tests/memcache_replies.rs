//! `memcache`: retrieval blocks, single-line replies, stats, limits, hits and misses.

use super::*;

fn memcache() -> Framing {
    parse("memcache")
}

/// The replies in `stream`: length and kind.
fn replies(stream: &[u8]) -> Vec<(usize, MemcacheReply)> {
    decode(&memcache(), b"", &[stream])
        .unwrap()
        .into_iter()
        .map(|(len, r)| match r.reply {
            Reply::Memcache(kind) => (len, kind),
            other => panic!("not a memcached reply: {other:?}"),
        })
        .collect()
}

const STREAM: &[u8] = b"VALUE k1 0 5\r\nhello\r\nEND\r\nEND\r\nVALUE a 1 3 77\r\na\r\n\r\nVALUE b 0 0\r\n\r\nEND\r\n\
STORED\r\nNOT_STORED\r\nEXISTS\r\nNOT_FOUND\r\nDELETED\r\nTOUCHED\r\n42\r\nOK\r\nVERSION 1.6.18\r\n\
STAT pid 1\r\nSTAT uptime 5\r\nEND\r\nERROR\r\nCLIENT_ERROR bad data chunk\r\nSERVER_ERROR out of memory\r\n";

#[test]
fn every_reply_is_named_and_the_stream_splits_anywhere() {
    use MemcacheReply::*;
    let got = replies(STREAM);
    let kinds: Vec<MemcacheReply> = got.iter().map(|r| r.1).collect();
    assert_eq!(
        kinds,
        [
            Hit,
            Miss,
            Hit,
            Stored,
            NotStored,
            Exists,
            NotFound,
            Deleted,
            Touched,
            Number,
            Ok,
            Version,
            Stats,
            Error,
            ClientError,
            ServerError
        ]
    );
    assert_eq!(got[0].0, 26, "VALUE line, 5 data bytes, CRLF, END");
    assert_eq!(got[2].0, 41, "two VALUE blocks (one with cas, one empty) then END");
    assert_eq!(got.iter().map(|r| r.0).sum::<usize>(), STREAM.len());
    assert_split_invariant(&memcache(), b"", STREAM);
}

#[test]
fn the_counter_order_is_the_declaration_order() {
    for (i, kind) in MemcacheReply::ALL.into_iter().enumerate() {
        assert_eq!(kind as usize, i, "{kind:?}");
    }
}

#[test]
fn value_data_is_counted_not_scanned_so_it_may_hold_end_and_crlf() {
    let stream = b"VALUE k 0 7\r\nEND\r\n\r\n\r\nEND\r\n";
    assert_eq!(replies(stream), [(stream.len(), MemcacheReply::Hit)]);
    assert_split_invariant(&memcache(), b"", stream);
}

#[test]
fn a_value_over_the_limit_is_refused_at_its_line() {
    let mut d = Decoder::default();
    let err = d.feed(&memcache(), b"VALUE k 0 1000000\r\n", b"", 4096).unwrap_err();
    assert!(err.0.contains("max-response"), "{err}");
    let mut d = Decoder::default();
    assert!(d.feed(&memcache(), &[b'V'; 100], b"", 64).is_err(), "a line that never ends stops at the limit");
}

#[test]
fn malformed_replies_are_protocol_errors() {
    for bad in [
        &b"HELLO\r\n"[..],
        b"\r\n",
        b"VALUE k 0\r\n",
        b"VALUE k 0 x5\r\n",
        b"VALUE k 0 5x\r\n",
        b"VALUE k 0 2\r\nabXY",
        b"VALUE k 0 2\r\nab\r\nSTORED\r\n",
        b"STAT a 1\r\nVALUE k 0 1\r\n",
        b"STORED\n",
        b"STORED\rx",
        b"-5\r\n",
    ] {
        let mut d = Decoder::default();
        let fed = d.feed(&memcache(), bad, b"", MAX);
        assert!(fed.is_err(), "{} gave {fed:?}", bad.escape_ascii());
    }
}

proptest! {
    /// Gets of random keys and values (hits and misses), pipelined and cut anywhere:
    /// each comes out whole and named.
    #[test]
    fn any_gets_split_anywhere_give_hits_and_misses(
        values in proptest::collection::vec(proptest::option::of(proptest::collection::vec(any::<u8>(), 0..50)), 1..8),
        cuts in proptest::collection::vec(0usize..800, 0..8),
    ) {
        let encoded: Vec<Vec<u8>> = values.iter().enumerate().map(|(i, v)| match v {
            Some(data) => [format!("VALUE key{i} 0 {}\r\n", data.len()).into_bytes(), data.clone(), b"\r\nEND\r\n".to_vec()].concat(),
            None => b"END\r\n".to_vec(),
        }).collect();
        let got = decode(&memcache(), b"", &cut(&encoded.concat(), &cuts)).unwrap();
        prop_assert_eq!(lengths(&got), encoded.iter().map(Vec::len).collect::<Vec<_>>());
        for (v, (_, r)) in values.iter().zip(&got) {
            let want = if v.is_some() { MemcacheReply::Hit } else { MemcacheReply::Miss };
            prop_assert_eq!(r.reply, Reply::Memcache(want));
        }
    }
}

proptest! {
    /// Bytes from the protocol's own words, cut into reads anywhere, give what the
    /// whole gives (including the same error).
    #[test]
    fn any_split_of_memcache_like_bytes_gives_what_the_whole_gives(
        words in proptest::collection::vec(proptest::sample::select(vec![
            &b"VALUE"[..], b"END", b"STORED", b"STAT", b" ", b"1", b"2", b"\r\n", b"\r", b"x", b"k",
        ]), 0..40),
        cuts in proptest::collection::vec(0usize..200, 0..8),
    ) {
        let bytes = words.concat();
        prop_assert_eq!(decode(&memcache(), b"", &cut(&bytes, &cuts)), decode(&memcache(), b"", &[&bytes]));
    }
}
