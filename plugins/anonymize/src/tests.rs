use super::*;
use host_plugin_sdk::run::transform_rows;

fn plugin(args: &[&str]) -> Result<Anonymize, String> {
    Anonymize::new(&Params::parse(args.iter().copied()))
}

fn users() -> Table {
    Table::new(
        "public",
        "users",
        &[
            ("id", "integer"),
            ("email", "text"),
            ("phone", "character varying(20)"),
            ("name", "text"),
            ("key", "text"),
        ],
    )
}

/// Runs `rows` (COPY text) through a plugin made of `args`; returns the output text.
fn run(args: &[&str], rows: &str) -> String {
    let mut p = plugin(args).unwrap();
    p.begin_table(&users()).unwrap();
    let (outcomes, out) = transform_rows(&mut p, &users(), rows.as_bytes()).unwrap();
    assert!(outcomes.iter().all(|o| *o == Outcome::Keep));
    String::from_utf8(out).unwrap()
}

const ROWS: &str = "1\tann@corp.org\t+1 (555) 010-2030\tAnn Lee\tk1\n2\t\\N\t\\N\t\t\\N\n";

#[test]
fn pseudonymizes_each_treatment() {
    let out = run(
        &[
            "key=s3cret",
            "email=email",
            "phone=phone",
            "name=name",
            "column:key=hash",
        ],
        ROWS,
    );
    let lines: Vec<Vec<&str>> = out.lines().map(|l| l.split('\t').collect()).collect();
    let r = &lines[0];
    assert_eq!(r[0], "1");
    assert!(
        r[1].starts_with("user-") && r[1].ends_with("@example.com") && r[1].len() == 29,
        "{}",
        r[1]
    );
    assert_eq!(r[2].len(), "+1 (555) 010-2030".len());
    assert_eq!(
        r[2].replace(|c: char| c.is_ascii_digit(), "0"),
        "+0 (000) 000-0000"
    );
    assert_ne!(r[2], "+1 (555) 010-2030");
    let (first, last) = r[3].split_once(' ').unwrap();
    assert!(names::FIRST.contains(&first) && names::LAST.contains(&last));
    assert_eq!(r[4].len(), 64);
    let hashed = run(&["key=s3cret", "email=hash"], ROWS);
    assert_ne!(
        hashed,
        run(&["key=s3cret", "algorithm=hmac-sha256", "email=hash"], ROWS)
    );
    assert_eq!(
        &hashed.split('\t').nth(1).unwrap()[..12],
        &r[1][5..17],
        "email = first 12 hex of the HMAC"
    );
    // NULL stays NULL; an empty name gets a pseudonym like any other value.
    assert_eq!(lines[1][..3], ["2", "\\N", "\\N"]);
    assert_eq!(lines[1][4], "\\N");
    assert!(names::FIRST.contains(&lines[1][3].split(' ').next().unwrap()));
}

#[test]
fn hash_is_hmac_sha256_hex() {
    // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
    let out = run(
        &["key=Jefe", "algorithm=hmac-sha256", "name=hash"],
        "1\t\\N\t\\N\twhat do ya want for nothing?\tx\n",
    );
    assert_eq!(
        out,
        "1\t\\N\t\\N\t5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843\tx\n"
    );
}

#[test]
fn hash_is_keyed_blake3_hex_by_default() {
    let key = blake3::derive_key("host anonymize plugin v1", b"k");
    let want = blake3::keyed_hash(&key, b"ann").to_hex();
    assert_eq!(
        run(&["key=k", "name=hash"], "1\t\\N\t\\N\tann\tx\n"),
        format!("1\t\\N\t\\N\t{want}\tx\n")
    );
}

#[test]
fn deterministic_per_key() {
    let a = run(&["key=one", "email=email"], ROWS);
    assert_eq!(a, run(&["key=one", "email=email"], ROWS));
    assert_ne!(a, run(&["key=two", "email=email"], ROWS));
}

#[test]
fn null_and_keep() {
    let out = run(&["key=k", "email=null", "name=keep"], ROWS);
    assert_eq!(
        out,
        "1\t\\N\t+1 (555) 010-2030\tAnn Lee\tk1\n2\t\\N\t\\N\t\t\\N\n"
    );
}

#[test]
fn refuses_bad_parameters() {
    let err = |args: &[&str]| plugin(args).err().unwrap();
    assert_eq!(err(&["email=email"]), "missing required parameter `key`");
    assert_eq!(err(&["key="]), "parameter `key` must not be empty");
    assert_eq!(
        err(&["key=k"]),
        "no column given: add COLUMN=TREATMENT (e.g. email=email)"
    );
    assert_eq!(
        err(&["key=k", "email=scramble"]),
        "unknown treatment `scramble` (use email, phone, name, hash, null or keep)"
    );
    assert_eq!(
        err(&["key=k", "email=email", "column:email=hash"]),
        "column `email` is given more than once"
    );
    assert_eq!(
        err(&["key=k", "algorithm=md5", "email=email"]),
        "unknown algorithm `md5` (use blake3 or hmac-sha256)"
    );
}

#[test]
fn refuses_tables_that_do_not_fit() {
    let begin = |args: &[&str]| plugin(args).unwrap().begin_table(&users());
    assert_eq!(
        begin(&["key=k", "mail=email"]).unwrap_err(),
        "table public.users has no column `mail` (its columns: id, email, phone, name, key)"
    );
    assert_eq!(
        begin(&["key=k", "id=hash"]).unwrap_err(),
        "column `id` is integer: treatment `hash` needs a text column"
    );
    assert_eq!(
        begin(&["key=k", "phone=email"]).unwrap_err(),
        "column `phone` is character varying(20): treatment `email` writes up to 29 characters"
    );
    assert!(begin(&["key=k", "id=null", "phone=phone"]).is_ok());
}
