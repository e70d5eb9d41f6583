//! Field encryption: Herald's `KeyRing` envelope round trip against a bare
//! OpenSSL AES-256-GCM round trip of the same value. See `benches/README.md`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::disallowed_methods
)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use openssl::symm::{Cipher, decrypt_aead, encrypt_aead};

/// A PHI field of realistic size.
const VALUE_LEN: usize = 200;
const AAD: &[u8] = b"patients.phone:pat-001";

fn value() -> Vec<u8> {
    b"0123456789abcdefghijklmnopqrstuvwxyz "
        .iter()
        .cycle()
        .take(VALUE_LEN)
        .copied()
        .collect()
}

fn field_encryption(c: &mut Criterion) {
    let value = value();

    let master = herald::crypto::MasterKey::generate().unwrap();
    let k = herald::crypto::new_data_key(&master, 1).unwrap();
    let ring = herald::crypto::KeyRing::open(&master, &[k]).unwrap();
    // Sanity: the round trip gives the value back.
    let env = ring.encrypt(AAD, &value).unwrap();
    assert_eq!(ring.decrypt(AAD, &env).unwrap(), value);

    let mut key32 = [0u8; 32];
    openssl::rand::rand_bytes(&mut key32).unwrap();

    let mut group = c.benchmark_group("field_encryption");
    group.throughput(Throughput::Elements(1));

    group.bench_function("herald_encrypt_decrypt", |b| {
        b.iter(|| {
            let env = ring.encrypt(black_box(AAD), black_box(&value)).unwrap();
            ring.decrypt(black_box(AAD), &env).unwrap()
        })
    });

    group.bench_function("bare_openssl_aes256gcm", |b| {
        b.iter(|| {
            let cipher = Cipher::aes_256_gcm();
            let mut nonce = [0u8; 12];
            openssl::rand::rand_bytes(&mut nonce).unwrap();
            let mut tag = [0u8; 16];
            let ct = encrypt_aead(
                cipher,
                &key32,
                Some(&nonce),
                black_box(AAD),
                black_box(&value),
                &mut tag,
            )
            .unwrap();
            decrypt_aead(cipher, &key32, Some(&nonce), black_box(AAD), &ct, &tag).unwrap()
        })
    });

    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(20)
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1))
}

criterion_group! {
    name = benches;
    config = config();
    targets = field_encryption
}
criterion_main!(benches);
