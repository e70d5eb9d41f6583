//! Migration parity between backends, and up → down → up on each.

use super::support;

fn names(dir: &str) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(support::repo_root().join("migrations").join(dir))
        .unwrap()
        .flatten()
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn both_backends_have_the_same_migrations_each_with_up_and_down() {
    let sqlite = names("sqlite");
    assert!(!sqlite.is_empty());
    assert_eq!(sqlite, names("postgres"));
    for backend in ["sqlite", "postgres"] {
        for n in &sqlite {
            for f in ["up.sql", "down.sql"] {
                let p = support::repo_root()
                    .join("migrations")
                    .join(backend)
                    .join(n)
                    .join(f);
                assert!(p.exists(), "{} missing", p.display());
            }
        }
    }
}

#[test]
fn up_down_up_on_every_backend() {
    for db in support::backends() {
        let mut c = db.conn();
        let applied = herald::db::migrate(&mut c).unwrap();
        assert_eq!(applied.len(), names("sqlite").len(), "{}", db.backend);
        assert!(
            herald::db::migrate(&mut c).unwrap().is_empty(),
            "second run applies nothing"
        );
        let reverted = herald::db::revert_all(&mut c).unwrap();
        assert_eq!(reverted.len(), applied.len(), "{}", db.backend);
        let again = herald::db::migrate(&mut c).unwrap();
        assert_eq!(again.len(), applied.len(), "{}", db.backend);
        // The schema works after the round trip.
        herald::audit::append_now(&mut c, &[super::audit_chain::record(1)]).unwrap();
        assert!(matches!(
            herald::audit::verify(&mut c).unwrap(),
            herald::audit::Verdict::Intact { count: 1 }
        ));
    }
}
