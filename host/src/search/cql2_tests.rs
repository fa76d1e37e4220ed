//! CQL2-JSON parsing.

use super::*;
use serde_json::json;

fn err(v: Value) -> String {
    parse(&v, "filter").unwrap_err().to_string()
}

#[test]
fn parses_predicates() {
    let e = parse(
        &json!({"op":"and","args":[
            {"op":"<","args":[{"property":"eo:cloud_cover"},10]},
            {"op":"in","args":[{"property":"id"},["a","b"]]},
            {"op":"not","args":[{"op":"isNull","args":[{"property":"properties.gsd"}]}]}
        ]}),
        "filter",
    )
    .unwrap();
    let Expr::And(list) = e else { panic!("{e:?}") };
    assert_eq!(list.len(), 3);
    let Expr::Compare { op, left, right } = &list[0] else {
        panic!()
    };
    assert_eq!(*op, CmpOp::Lt);
    assert_eq!(
        left.value,
        Operand::Property(Property::Json("eo:cloud_cover".into()))
    );
    assert_eq!(right.path, "filter.args[0].args[1]");
    let Expr::Not(inner) = &list[2] else { panic!() };
    assert_eq!(
        **inner,
        Expr::IsNull(Arg {
            path: "filter.args[2].args[0].args[0]".into(),
            value: Operand::Property(Property::Json("gsd".into())),
        })
    );
}

#[test]
fn parses_literals() {
    let a = parse_operand(&json!({"interval":["2011-08-01","2011-08-02"]}), "x").unwrap();
    let Operand::Interval(i) = a.value else {
        panic!()
    };
    assert_eq!(i.start.unwrap().text, "2011-08-01T00:00:00Z");
    assert_eq!(i.end.unwrap().text, "2011-08-02T23:59:59.999999Z");
    let a = parse_operand(&json!({"interval":["..","2011-08-02T00:00:00Z"]}), "x").unwrap();
    assert!(matches!(
        a.value,
        Operand::Interval(Interval {
            start: None,
            end: Some(_)
        })
    ));
    assert!(matches!(
        parse_operand(&json!({"bbox":[0,0,1,1]}), "x")
            .unwrap()
            .value,
        Operand::Bbox(_)
    ));
    assert!(matches!(
        parse_operand(&json!({"type":"Point","coordinates":[0,0]}), "x")
            .unwrap()
            .value,
        Operand::Geometry(_)
    ));
    assert_eq!(
        Property::from_name("properties.datetime"),
        Property::Datetime
    );
}

#[test]
fn names_the_offending_part() {
    for (v, msg) in [
        (
            json!({"op":"and","args":[{"op":"=","args":[1,1]},{"op":"foo","args":[]}]}),
            "filter.args[1]: unknown operator 'foo'",
        ),
        (
            json!({"op":"between","args":[{"property":"a"},1]}),
            "filter: 'between' takes 3 arguments, got 2",
        ),
        (
            json!({"op":"=","args":[{"property":"a"},null]}),
            "filter.args[1]: null is not a value here",
        ),
        (
            json!({"op":"in","args":[{"property":"a"},[]]}),
            "filter.args[1]: 'in' needs at least one value",
        ),
        (
            json!({"op":"in","args":[{"property":"a"},5]}),
            "filter.args[1]: 'in' needs an array",
        ),
        (
            json!({"op":"=","args":[{"property":"a"},{"timestamp":"nope"}]}),
            "filter.args[1].timestamp: invalid RFC 3339",
        ),
        (
            json!({"op":"=","args":[{"property":5},1]}),
            "filter.args[0].property: expected a string",
        ),
        (
            json!({"op":"=","args":[{"property":"a","x":1},1]}),
            "filter.args[0]: {\"property\": ...} must have no other members",
        ),
        (
            json!({"op":"s_intersects","args":[{"property":"geometry"},{"type":"Pt","coordinates":[0,0]}]}),
            "filter.args[1].type: unknown GeoJSON",
        ),
        (
            json!({"op":"s_foo","args":[]}),
            "filter: unknown operator 's_foo'",
        ),
        (
            json!({"op":"=","args":[{"op":"casei","args":["a"]},"a"]}),
            "filter.args[0]: unknown operator 'casei'",
        ),
        (
            json!({"op":"=","args":[{"op":"and","args":[]},"a"]}),
            "filter.args[0]: 'and' is a predicate",
        ),
        (
            json!({"args":[]}),
            "filter: expected a CQL2-JSON expression with",
        ),
        (
            json!({"op":"=","args":{"a":1}}),
            "filter.args: expected an array",
        ),
        (
            json!({"op":"=","args":[1,2],"extra":0}),
            "filter: unexpected member \"extra\"",
        ),
        (
            json!("eo:cloud_cover < 10"),
            "filter: CQL2 text is not supported",
        ),
        (json!(7), "filter: expected a CQL2-JSON expression"),
    ] {
        let e = err(v);
        assert!(e.starts_with(msg), "{e}\n  wanted: {msg}");
    }
}
