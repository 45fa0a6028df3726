//! `java_utf8::decode` against Java 17's `new String(bytes, UTF_8)`, case by case: the
//! fixture (`fixtures/java_utf8_cases.txt`, written by `fixtures/JavaUtf8Cases.java`)
//! holds ~4,000 mostly malformed byte strings and what Java made of each.

use rzk_proto::java_utf8::decode;

fn unhex(h: &str) -> Vec<u8> {
    if h == "-" {
        return Vec::new();
    }
    (0..h.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&h[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn decodes_as_java_does() {
    let cases = include_str!("fixtures/java_utf8_cases.txt");
    let mut n = 0;
    let mut wrong = Vec::new();
    for line in cases.lines() {
        let (input, java) = line.split_once(' ').unwrap();
        let (input, java) = (unhex(input), unhex(java));
        let ours = decode(&input);
        if ours.as_bytes() != java.as_slice() {
            wrong.push(format!(
                "{input:02x?}: java {:?}, rzk {ours:?}",
                String::from_utf8_lossy(&java)
            ));
        }
        n += 1;
    }
    assert!(n >= 4000, "fixture has {n} cases");
    assert!(
        wrong.is_empty(),
        "{} of {n} differ:\n{}",
        wrong.len(),
        wrong[..wrong.len().min(20)].join("\n")
    );
}
