//! Searching a whole index's project list by name (issue 14: under 50 ms
//! per search at 740,000 names). Run with
//! `cargo bench -p larder-index --bench search`.

use criterion::{Criterion, criterion_group, criterion_main};
use larder_index::NameListBuilder;

/// About the public index's size.
const NAMES: u64 = 740_000;

/// Names of several shapes (prefixes, separators, capitals), so a query
/// matches some as a prefix, some inside, most not at all.
fn name(i: u64) -> String {
    const WORDS: [&str; 8] = ["py", "django", "Flask", "data", "tools", "client", "async", "lib"];
    let a = WORDS[(i % 8) as usize];
    let b = WORDS[((i / 8) % 8) as usize];
    format!("{a}-{b}_{i:06}")
}

fn search(c: &mut Criterion) {
    let mut builder = NameListBuilder::default();
    for i in 0..NAMES {
        builder.push(&name(i), Some(i));
    }
    let names = builder.finish();
    assert_eq!(names.len() as u64, NAMES);
    for query in ["django", "flask-tools", "123456", "no-such-thing", "a"] {
        c.bench_function(&format!("search {NAMES} names for {query:?}"), |b| {
            b.iter(|| std::hint::black_box(names.search(query, 50)))
        });
    }
}

criterion_group!(benches, search);
criterion_main!(benches);
