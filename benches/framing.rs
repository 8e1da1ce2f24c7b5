//! Framing scan benchmarks (filled in by the framing work).
use criterion::{criterion_group, criterion_main, Criterion};
use loadmux::framing::{Decoder, Framing};

fn echo(c: &mut Criterion) {
    let req = b"hello world\n";
    c.bench_function("framing/echo_12B", |b| {
        let mut d = Decoder::default();
        b.iter(|| d.feed(&Framing::Echo, req, req, 1 << 20).unwrap())
    });
}

criterion_group!(benches, echo);
criterion_main!(benches);
