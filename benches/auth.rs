//! The access-token check a request pays: a token's first request on a worker (the
//! full check: two base64 decodes, two JSON parses, an HMAC) and every later one
//! (the per-thread memory of checked tokens, then the clock).

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};

use orderflow::auth::jwt::JwtKeys;
use orderflow_actors::domain::{Role, UserId};

fn verify(c: &mut Criterion) {
    let keys = JwtKeys::new(b"bench-secret-bench-secret-bench-secret-0", 900);
    let token = keys.issue(UserId(42), Role::Customer);
    assert!(keys.verify(&token).is_some());
    c.bench_function("auth/verify_first_time", |b| {
        b.iter(|| keys.verify_uncached(black_box(&token)).unwrap())
    });
    c.bench_function("auth/verify_again", |b| {
        b.iter(|| keys.verify(black_box(&token)).unwrap())
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = verify
}
criterion_main!(benches);
