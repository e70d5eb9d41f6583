//! TLS (issue 6 item 6; H8, S21): with a certificate and key configured the
//! listener speaks HTTPS through OpenSSL with the configured certificate,
//! TLS 1.2 or later only, and sends HSTS; plain HTTP is for loopback only.

use std::sync::Arc;

use openssl::asn1::Asn1Time;
use openssl::hash::MessageDigest;
use openssl::pkey::PKey;
use openssl::rsa::Rsa;
use openssl::ssl::{SslConnector, SslMethod, SslVerifyMode, SslVersion};
use openssl::x509::{X509, X509NameBuilder};

use herald::config::Settings;
use herald::web::AppState;

use super::support;

fn self_signed(dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf, X509) {
    let key = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
    let mut name = X509NameBuilder::new().unwrap();
    name.append_entry_by_text("CN", "localhost").unwrap();
    let name = name.build();
    let mut b = X509::builder().unwrap();
    b.set_version(2).unwrap();
    b.set_subject_name(&name).unwrap();
    b.set_issuer_name(&name).unwrap();
    b.set_pubkey(&key).unwrap();
    b.set_not_before(&Asn1Time::days_from_now(0).unwrap())
        .unwrap();
    b.set_not_after(&Asn1Time::days_from_now(2).unwrap())
        .unwrap();
    let serial = openssl::bn::BigNum::from_u32(7)
        .unwrap()
        .to_asn1_integer()
        .unwrap();
    b.set_serial_number(&serial).unwrap();
    let san = openssl::x509::extension::SubjectAlternativeName::new()
        .dns("localhost")
        .ip("127.0.0.1")
        .build(&b.x509v3_context(None, None))
        .unwrap();
    b.append_extension(san).unwrap();
    b.sign(&key, MessageDigest::sha256()).unwrap();
    let cert = b.build();
    let (c, k) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&c, cert.to_pem().unwrap()).unwrap();
    std::fs::write(&k, key.private_key_to_pem_pkcs8().unwrap()).unwrap();
    (c, k, cert)
}

/// A TLS handshake limited to `max` (None: the library's best).
fn handshake(port: u16, max: SslVersion) -> Result<String, String> {
    let mut b = SslConnector::builder(SslMethod::tls()).unwrap();
    b.set_verify(SslVerifyMode::NONE);
    // Allow the old versions on our side so only the server can refuse them.
    b.set_min_proto_version(Some(SslVersion::TLS1)).unwrap();
    b.set_max_proto_version(Some(max)).unwrap();
    let _ = b.set_cipher_list("ALL:@SECLEVEL=0");
    let c = b.build();
    let tcp = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    match c.connect("localhost", tcp) {
        Ok(s) => Ok(s.ssl().version_str().to_string()),
        Err(e) => Err(e.to_string()),
    }
}

#[test]
fn https_with_the_configured_certificate_tls_1_2_or_later_and_hsts() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, x509) = self_signed(dir.path());
    let db = support::sqlite();
    let (ring, _) = support::ready(&db);
    let mut s = Settings::default();
    s.server.tls_cert = Some(cert);
    s.server.tls_key = Some(key);
    assert!(s.validate().is_empty(), "{:?}", s.validate());
    let state = AppState::new(
        Arc::new(s),
        db.pool.clone(),
        Arc::new(ring),
        Arc::new(support::clock()),
    );
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        actix_rt::System::new().block_on(async move {
            let server = herald::web::server(state, listener).unwrap();
            tx.send(server.handle()).unwrap();
            let _ = server.await;
        });
    });
    let handle = rx.recv().unwrap();

    // The configured certificate, verified as a trust anchor.
    let root = reqwest::Certificate::from_pem(&x509.to_pem().unwrap()).unwrap();
    let client = reqwest::blocking::Client::builder()
        .add_root_certificate(root)
        .build()
        .unwrap();
    let res = client
        .get(format!("https://localhost:{port}/healthz"))
        .send()
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    let hsts = res
        .headers()
        .get("strict-transport-security")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    assert!(hsts.starts_with("max-age=31536000"), "{hsts}");

    assert!(
        handshake(port, SslVersion::TLS1_2)
            .unwrap()
            .contains("TLSv1.2")
    );
    assert!(handshake(port, SslVersion::TLS1_3).is_ok());
    // Herald sets the TLS 1.2 floor itself; Debian's OpenSSL security level
    // would refuse 1.0/1.1 too, so this checks the behaviour, not who enforces it.
    assert!(
        handshake(port, SslVersion::TLS1_1).is_err(),
        "TLS 1.1 refused"
    );
    assert!(
        handshake(port, SslVersion::TLS1).is_err(),
        "TLS 1.0 refused"
    );
    // Plain HTTP to the TLS port gets nothing useful.
    let plain = reqwest::blocking::Client::new()
        .get(format!("http://127.0.0.1:{port}/healthz"))
        .send();
    assert!(plain.map(|r| r.status().as_u16() != 200).unwrap_or(true));
    actix_rt::System::new().block_on(handle.stop(false));
}

#[test]
fn plain_http_only_on_loopback_and_a_half_configured_tls_is_refused() {
    let mut s = Settings::default();
    s.server.bind = "0.0.0.0:8443".into();
    let problems: Vec<String> = s.validate().iter().map(|p| p.to_string()).collect();
    assert!(
        problems
            .iter()
            .any(|p| p.contains("server.bind") && p.contains("tls_cert")),
        "{problems:?}"
    );
    s.server.tls_cert = Some("/nonexistent/cert.pem".into());
    let problems: Vec<String> = s.validate().iter().map(|p| p.to_string()).collect();
    assert!(
        problems.iter().any(|p| p.contains("server.tls_key")),
        "{problems:?}"
    );
    assert!(
        problems.iter().any(|p| p.contains("not a readable file")),
        "{problems:?}"
    );
}
