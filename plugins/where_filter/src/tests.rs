use super::*;
use host_plugin_sdk::run::{filter_items, filter_rows};

fn filter(args: &[&str]) -> Filter {
    Filter::new(&Params::parse(args.iter().copied())).unwrap()
}

const ITEMS: [&str; 4] = [
    r#"{"id":"a","collection":"s2","bbox":[0,0,10,10],"properties":{"datetime":"2020-06-01T00:00:00Z","platform":"S2A","cloud":12.5,"ok":true}}"#,
    r#"{"id":"b","collection":"l8","geometry":{"type":"Point","coordinates":[50,50]},"properties":{"datetime":null,"start_datetime":"2019-01-01T00:00:00Z","end_datetime":"2021-01-01T00:00:00Z","cloud":"12.5"}}"#,
    r#"{"id":"c","collection":"s2","geometry":null,"properties":{"datetime":"2022-01-01T00:00:00+01:00"}}"#,
    r#"{"id":"d","properties":{"datetime":"not a time"},"bbox":[0,0,1,1]}"#,
];

/// Keep / drop / reject of each of ITEMS, as K, D or R.
fn items(args: &[&str]) -> String {
    let items = ITEMS.iter().map(|s| s.to_string()).collect();
    filter_items(&mut filter(args), items)
        .iter()
        .map(|o| match o {
            Outcome::Keep => 'K',
            Outcome::Drop => 'D',
            Outcome::Reject(_) => 'R',
        })
        .collect()
}

#[test]
fn item_conditions() {
    assert_eq!(items(&["collection=s2"]), "KDKD");
    assert_eq!(items(&["collection=l8,s2"]), "KKKD");
    assert_eq!(items(&["bbox=5,5,60,60"]), "KKDD");
    assert_eq!(items(&["bbox=20,20,30,30"]), "DDDD");
    assert_eq!(
        items(&["datetime=2020-01-01T00:00:00Z/2020-12-31T23:59:59Z"]),
        "KKDR"
    );
    assert_eq!(items(&["datetime=2021-12-31T23:00:00Z/.."]), "DDKR");
    assert_eq!(items(&["datetime=../2019-06-01"]), "DKDR");
    assert_eq!(items(&["property.platform=S2A"]), "KDDD");
    assert_eq!(items(&["property.cloud=12.50"]), "KDDD"); // number: JSON compare, not "12.5"
    assert_eq!(items(&["property.cloud=12.5x"]), "DDDD");
    assert_eq!(items(&["property.ok=true"]), "KDDD");
    assert_eq!(items(&["collection=s2", "datetime=2020-06-01"]), "KDDD");
}

#[test]
fn rejects_bad_items_with_a_reason() {
    let mut f = filter(&["datetime=2020-01-01/.."]);
    let out = filter_items(&mut f, vec![ITEMS[3].into(), "nope".into()]);
    assert_eq!(
        out[0],
        Outcome::Reject("properties.datetime: `not a time` is not an RFC 3339 date-time (expected YYYY-MM-DDTHH:MM:SS)".into())
    );
    assert!(matches!(&out[1], Outcome::Reject(e) if e.starts_with("invalid JSON object")));
    let mut rows_only = filter(&["where.id=1"]);
    assert!(
        matches!(&filter_items(&mut rows_only, vec![ITEMS[0].into()])[0], Outcome::Reject(e) if e.contains("only row conditions"))
    );
}

fn table() -> Table {
    Table::new(
        "public",
        "t",
        &[
            ("id", "bigint"),
            ("name", "text"),
            ("day", "date"),
            ("score", "numeric(5,2)"),
            ("a.in", "text"),
        ],
    )
}

const ROWS: &str =
    "1\tann\t2024-01-05\t9.50\tx\n2\tbob\t2024-02-01\t10.00\ty\n10\t\\N\t2023-12-31\t\\N\tz\n";

fn rows(args: &[&str]) -> String {
    let mut f = filter(args);
    f.begin_table(&table()).unwrap();
    filter_rows(&mut f, &table(), ROWS.as_bytes())
        .unwrap()
        .iter()
        .map(|o| if *o == Outcome::Keep { 'K' } else { 'D' })
        .collect()
}

#[test]
fn row_conditions() {
    assert_eq!(rows(&["where.name=bob"]), "DKD");
    assert_eq!(rows(&["where.name.in=ann,bob,"]), "KKD"); // NULL never matches, not even ""
    assert_eq!(rows(&["where.id.gte=2"]), "DKK"); // numeric: 10 >= 2
    assert_eq!(rows(&["where.name.gt=alice"]), "KKD");
    assert_eq!(rows(&["where.day.lt=2024-01-31"]), "KDK");
    assert_eq!(rows(&["where.score=9.5"]), "KDD");
    assert_eq!(rows(&["where.score.lte=10"]), "KKD");
    assert_eq!(
        rows(&["where.id.in=1,10", "where.day.gte=2024-01-01"]),
        "KDD"
    );
    assert_eq!(rows(&["where.a.in.eq=z"]), "DDK");
}

#[test]
fn refuses_bad_parameters_and_tables() {
    let err = |args: &[&str]| {
        Filter::new(&Params::parse(args.iter().copied()))
            .err()
            .unwrap()
    };
    assert!(err(&["colection=a"]).starts_with("unknown parameter `colection`"));
    assert_eq!(err(&[]), "no condition given");
    assert!(err(&["bbox=1,2,3"]).contains("4 or 6 numbers"));
    assert!(err(&["datetime=2021/2020"]).contains("not an RFC 3339"));
    assert!(err(&["collection=a,"]).contains("empty id"));
    let begin = |args: &[&str]| filter(args).begin_table(&table()).unwrap_err();
    assert_eq!(
        begin(&["where.nope=1"]),
        "table public.t has no column `nope` (its columns: id, name, day, score, a.in)"
    );
    assert_eq!(
        begin(&["where.id.gt=one"]),
        "where.id: `one` is not a number, and the column is bigint"
    );
    assert!(begin(&["collection=x"]).contains("no row condition"));
}
