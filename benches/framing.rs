//! Framing and payload hot paths: scanning a read for response ends, and rendering a
//! templated request. `cargo bench --bench framing`; figures in docs/performance.md.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use loadmux::framing::{Decoder, Framing, Step};
use loadmux::payload::{Fields, Template};

/// Feeds one read's bytes, completing every response in it; returns how many.
fn drain(decoder: &mut Decoder, framing: &Framing, mut input: &[u8], request: &[u8]) -> usize {
    let mut n = 0;
    while !input.is_empty() {
        match decoder.feed(framing, input, request, 1 << 20).unwrap() {
            Step::NeedMore => break,
            Step::Complete { consumed, .. } => {
                n += 1;
                input = &input[consumed..];
            }
        }
    }
    n
}

fn framing(c: &mut Criterion) {
    let mut group = c.benchmark_group("framing");
    // A 16 KiB read holding 2340 Redis replies: the pipelined case.
    let lines = b"+PONG\r\n".repeat(2340);
    group.throughput(Throughput::Bytes(lines.len() as u64));
    let line = Framing::parse("line").unwrap();
    group.bench_function("line_16KiB_read", |b| {
        let mut d = Decoder::default();
        b.iter(|| drain(&mut d, &line, black_box(&lines), b""))
    });
    let delim = Framing::parse("delim:END\\r\\n").unwrap();
    let delimited = b"VALUE k 0 5\r\nhello\r\nEND\r\n".repeat(600);
    group.throughput(Throughput::Bytes(delimited.len() as u64));
    group.bench_function("delim_multibyte_16KiB_read", |b| {
        let mut d = Decoder::default();
        b.iter(|| drain(&mut d, &delim, black_box(&delimited), b""))
    });
    let echo = b"hello world\n";
    group.throughput(Throughput::Bytes(echo.len() as u64));
    group.bench_function("echo_12B", |b| {
        let mut d = Decoder::default();
        b.iter(|| drain(&mut d, &Framing::Echo, black_box(echo), echo))
    });
    let http = Framing::Http;
    let cl = b"HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Type: text/html\r\nContent-Length: 17\r\nConnection: keep-alive\r\n\r\nhello from nginx\n";
    group.throughput(Throughput::Bytes(cl.len() as u64));
    group.bench_function("http_content_length", |b| {
        let mut d = Decoder::default();
        b.iter(|| drain(&mut d, &http, black_box(cl), b""))
    });
    let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n";
    group.throughput(Throughput::Bytes(chunked.len() as u64));
    group.bench_function("http_chunked", |b| {
        let mut d = Decoder::default();
        b.iter(|| drain(&mut d, &http, black_box(chunked), b""))
    });
    let prefixed = [&[0u8, 0, 0, 32][..], &[7u8; 32]].concat().repeat(400);
    group.throughput(Throughput::Bytes(prefixed.len() as u64));
    let len = Framing::parse("len:u32be").unwrap();
    group.bench_function("len_u32be_14KiB_read", |b| {
        let mut d = Decoder::default();
        b.iter(|| drain(&mut d, &len, black_box(&prefixed), b""))
    });
    let resp = Framing::Resp;
    let pongs = b"+PONG\r\n".repeat(2340);
    group.throughput(Throughput::Bytes(pongs.len() as u64));
    group.bench_function("resp_simple_16KiB_read", |b| {
        let mut d = Decoder::default();
        b.iter(|| drain(&mut d, &resp, black_box(&pongs), b""))
    });
    let bulk = [&b"$1024\r\n"[..], &[b'x'; 1024], b"\r\n"].concat().repeat(16);
    group.throughput(Throughput::Bytes(bulk.len() as u64));
    group.bench_function("resp_bulk_1KiB_x16", |b| {
        let mut d = Decoder::default();
        b.iter(|| drain(&mut d, &resp, black_box(&bulk), b""))
    });
    let array: Vec<u8> =
        [b"*100\r\n".to_vec(), (0..100).flat_map(|i| format!("$9\r\nelement{i:02}\r\n").into_bytes()).collect()]
            .concat();
    group.throughput(Throughput::Bytes(array.len() as u64));
    group.bench_function("resp_array_100", |b| {
        let mut d = Decoder::default();
        b.iter(|| drain(&mut d, &resp, black_box(&array), b""))
    });
    let memcache = Framing::Memcache;
    let values = [&b"VALUE key:1234 0 1024\r\n"[..], &[b'x'; 1024], b"\r\nEND\r\n"].concat().repeat(15);
    group.throughput(Throughput::Bytes(values.len() as u64));
    group.bench_function("memcache_get_1KiB_x15", |b| {
        let mut d = Decoder::default();
        b.iter(|| drain(&mut d, &memcache, black_box(&values), b""))
    });
    group.finish();
}

fn payload(c: &mut Criterion) {
    let template = Template::parse(b"SET key:{conn}:{rand:6} value-{seq}\r\n".to_vec()).unwrap();
    let mut out = Vec::with_capacity(template.max_len());
    let mut seq = 0u64;
    c.bench_function("payload/render_template", |b| {
        b.iter(|| {
            seq += 1;
            out.clear();
            template.render_into(&Fields { conn: 12_345, seq, worker: 1 }, &mut out);
            black_box(out.len())
        })
    });
}

/// `--resp` rendering: the RESP array of a SET with a 1 KiB `{value:N}`, lengths computed
/// from the fields.
fn resp_payload(c: &mut Criterion) {
    let template = Template::parse_resp(b"SET key:{conn}:{rand:6} {value:1024}").unwrap();
    let mut out = Vec::with_capacity(template.max_len());
    let mut seq = 0u64;
    c.bench_function("payload/render_resp_set_1KiB", |b| {
        b.iter(|| {
            seq += 1;
            out.clear();
            template.render_into(&Fields { conn: 12_345, seq, worker: 1 }, &mut out);
            black_box(out.len())
        })
    });
}

criterion_group!(benches, framing, payload, resp_payload);
criterion_main!(benches);
