//! The text backend reads Ganeti's files and writes them back unchanged.

// An integration test: a failed unwrap or expect is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use htools::backend::text;
use htools::loader;

mod common;

#[test]
fn ganeti_example_files_round_trip() {
    let Some(dir) = common::ganeti_data_dir() else {
        eprintln!("SKIP: Ganeti's test data not found");
        return;
    };
    let mut n = 0;
    for e in std::fs::read_dir(dir).expect("read dir") {
        let p = e.expect("entry").path();
        if p.extension().and_then(|x| x.to_str()) != Some("data") {
            continue;
        }
        let data = std::fs::read_to_string(&p).expect("read");
        let Ok(mut c) = text::parse(&data) else {
            continue; // files that are invalid on purpose
        };
        if loader::merge(&mut c, &Default::default()).is_err() {
            continue;
        }
        let once = text::serialize(&c);
        let mut c2 = text::parse(&once).expect("re-parse our own output");
        loader::merge(&mut c2, &Default::default()).expect("merge");
        let twice = text::serialize(&c2);
        assert_eq!(once, twice, "{} does not round-trip", p.display());
        assert_eq!(c.nodes.len(), c2.nodes.len());
        assert_eq!(c.instances.len(), c2.instances.len());
        n += 1;
    }
    assert!(n > 30, "only {n} files parsed");
}

#[test]
fn serialization_is_ganeti_format() {
    let data = "g1|uuid-1|preferred||\n\nn1|1024|0|512|1000|500|4|M|uuid-1|1||N|0|1|1.000000\nn2|1024|0|1024|1000|1000|4|N|uuid-1|1||N|0|1|1.000000\n\ni1|512|100|1|running|Y|n1|n2|drbd||1|-|N\n\n\n|128,1,1024,1,1,1|128,1,1024,1,1,1;32768,8,1048576,16,8,12|diskless,file,sharedfile,plain,blockdev,drbd,rbd,ext,gluster|4.0|32.0\ng1|128,1,1024,1,1,1|128,1,1024,1,1,1;32768,8,1048576,16,8,12|diskless,file,sharedfile,plain,blockdev,drbd,rbd,ext,gluster|4.0|32.0\n";
    let mut c = text::parse(data).expect("parse");
    loader::merge(&mut c, &Default::default()).expect("merge");
    assert_eq!(text::serialize(&c), data);
}

#[test]
fn malformed_input_is_a_clear_error() {
    let cases = [
        (
            "g1|u1|preferred||\n\nn1|abc|0|0|0|0|1|N|u1\n\n\n",
            "total memory",
        ),
        (
            "g1|u1|preferred||\n\nn1|1|0|0|0|0|1|N|u2\n\n\n",
            "Unknown group 'u2'",
        ),
        (
            "g1|u1|preferred||\n\nn1|1|0|0|0|0|1|N|u1\n\ni1|1|1|1|running|Y|n9||plain|\n\n",
            "Unknown node 'n9' for instance i1",
        ),
        (
            "g1|u1|preferred||\n\nn1|1|0|0|0|0|1|N|u1\n\ni1|1|1|1|bogus|Y|n1||plain|\n\n",
            "unknown status 'bogus'",
        ),
        ("g1|u1|preferred||\n\n", "sections instead of 4"),
        ("g1|u1|nonsense||\n\n\n\n", "unknown allocation policy"),
    ];
    for (data, want) in cases {
        let err = text::parse(data).expect_err(data).to_string();
        assert!(
            err.contains(want),
            "error '{err}' does not mention '{want}'"
        );
    }
}

#[test]
fn haskell_double_formatting() {
    assert_eq!(text::show_double(4.0), "4.0");
    assert_eq!(text::show_double(32.0), "32.0");
    assert_eq!(text::show_double(2.5), "2.5");
    assert_eq!(text::show_double(0.01), "1.0e-2");
}
