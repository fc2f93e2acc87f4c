//! Filter evaluation and the query driver, over a small instance-like
//! resource.

use serde_json::{json, Value};

use super::*;

struct Inst {
    name: &'static str,
    pnode: &'static str,
    memory: i64,
    admin_up: bool,
    tags: Vec<&'static str>,
    nic_vlans: Vec<i64>,
    /// Live data: `None` while not fetched / node offline.
    oper_ram: Option<i64>,
    ctime: f64,
    /// `[sec, usec]`.
    received: (i64, i64),
}

fn inst(name: &'static str, pnode: &'static str, memory: i64, admin_up: bool) -> Inst {
    Inst {
        name,
        pnode,
        memory,
        admin_up,
        tags: vec![],
        nic_vlans: vec![],
        oper_ram: Some(memory),
        ctime: 1000.5,
        received: (1000, 500),
    }
}

fn registry() -> FieldRegistry<Inst> {
    let mut r = FieldRegistry::new();
    r.add_flagged(
        FieldDef::new("name", "Instance", FieldKind::Text, "Instance name"),
        DataNeeds::CONFIG,
        FieldFlags::Hostname,
        |i: &Inst| Cell::normal(i.name),
    )
    .add_flagged(
        FieldDef::new("pnode", "Primary_node", FieldKind::Text, "Primary node"),
        DataNeeds::CONFIG,
        FieldFlags::Hostname,
        |i: &Inst| Cell::normal(i.pnode),
    )
    .add(
        FieldDef::new("be/memory", "ConfigMemory", FieldKind::Unit, "Memory size"),
        DataNeeds::CONFIG,
        |i: &Inst| Cell::normal(i.memory),
    )
    .add(
        FieldDef::new(
            "admin_up",
            "Autostart",
            FieldKind::Bool,
            "Whether it should run",
        ),
        DataNeeds::CONFIG,
        |i: &Inst| Cell::normal(i.admin_up),
    )
    .add(
        FieldDef::new("tags", "Tags", FieldKind::Other, "Tags"),
        DataNeeds::CONFIG,
        |i: &Inst| Cell::normal(json!(i.tags)),
    )
    .add(
        FieldDef::new(
            "nic.vlans",
            "NIC_VLANs",
            FieldKind::Other,
            "VLAN of each NIC",
        ),
        DataNeeds::CONFIG,
        |i: &Inst| Cell::normal(json!(i.nic_vlans)),
    )
    .add(
        FieldDef::new("oper_ram", "Memory", FieldKind::Unit, "Actual memory"),
        DataNeeds::LIVE,
        |i: &Inst| i.oper_ram.map_or_else(Cell::nodata, Cell::normal),
    )
    .add(
        FieldDef::new("ctime", "CTime", FieldKind::Timestamp, "Creation time"),
        DataNeeds::CONFIG,
        |i: &Inst| Cell::normal(i.ctime),
    )
    .add_flagged(
        FieldDef::new("received_ts", "Received", FieldKind::Other, "When received"),
        DataNeeds::CONFIG,
        FieldFlags::Timestamp,
        |i: &Inst| Cell::normal(json!([i.received.0, i.received.1])),
    )
    .add(
        FieldDef::new(
            "broken",
            "Broken",
            FieldKind::Other,
            "A getter breaking its contract",
        ),
        DataNeeds::CONFIG,
        |_: &Inst| Cell::status(ResultStatus::Normal),
    );
    r
}

fn rows() -> Vec<Inst> {
    let mut a = inst("web1.example.com", "node1.example.com", 512, true);
    a.tags = vec!["web", "prod"];
    a.nic_vlans = vec![100, 200];
    let mut b = inst("web10.example.com", "node2.example.com", 2048, false);
    b.tags = vec!["web"];
    b.oper_ram = None;
    let mut c = inst("db1.example.com", "node1.example.com", 4096, true);
    c.tags = vec!["db"];
    c.ctime = 2000.0;
    c.received = (2000, 0);
    vec![a, b, c]
}

fn names(filter: Value) -> Vec<String> {
    let f = Filter::from_json(&filter).unwrap();
    let resp = run_query(&registry(), rows(), &["name".to_string()], &f).unwrap();
    resp.data
        .into_iter()
        .map(|r| r[0].value.as_ref().unwrap().as_str().unwrap().to_string())
        .collect()
}

fn query_err(filter: Value) -> QueryError {
    let f = Filter::from_json(&filter).unwrap();
    match run_query(&registry(), rows(), &["name".to_string()], &f) {
        Err(e) => e,
        Ok(r) => panic!("expected an error for {filter}, got {r:?}"),
    }
}

const WEB1: &str = "web1.example.com";
const WEB10: &str = "web10.example.com";
const DB1: &str = "db1.example.com";

#[test]
fn empty_filter_selects_every_row_in_given_order() {
    assert_eq!(names(Value::Null), [WEB1, WEB10, DB1]);
    assert_eq!(names(json!([])), [WEB1, WEB10, DB1]);
}

#[test]
fn equality_and_inequality_on_text() {
    assert_eq!(names(json!(["==", "name", DB1])), [DB1]);
    assert_eq!(names(json!(["=", "name", DB1])), [DB1]);
    assert_eq!(names(json!(["!=", "name", DB1])), [WEB1, WEB10]);
}

#[test]
fn equality_on_a_hostname_field_matches_short_names() {
    assert_eq!(names(json!(["==", "name", "web1"])), [WEB1]);
    assert_eq!(names(json!(["==", "pnode", "node1"])), [WEB1, DB1]);
    assert_eq!(names(json!(["==", "name", "web1.example"])), [WEB1]);
    assert!(names(json!(["==", "name", "web"])).is_empty());
}

#[test]
fn orderings_on_numbers() {
    assert_eq!(names(json!(["<", "be/memory", 2048])), [WEB1]);
    assert_eq!(names(json!(["<=", "be/memory", 2048])), [WEB1, WEB10]);
    assert_eq!(names(json!([">", "be/memory", 2048])), [DB1]);
    assert_eq!(names(json!([">=", "be/memory", 2048])), [WEB10, DB1]);
    assert_eq!(names(json!(["==", "be/memory", 512])), [WEB1]);
}

#[test]
fn orderings_on_strings_are_by_code_point() {
    assert_eq!(names(json!(["<", "name", "e"])), [DB1]);
    assert_eq!(names(json!([">=", "name", "web10"])), [WEB10]);
}

#[test]
fn float_values_compare_with_integers() {
    assert_eq!(names(json!([">", "ctime", 1000])), [WEB1, WEB10, DB1]);
    assert_eq!(names(json!(["==", "ctime", 2000])), [DB1]);
    assert_eq!(names(json!(["<", "ctime", 1001])), [WEB1, WEB10]);
}

#[test]
fn split_timestamps_compare_their_seconds() {
    assert_eq!(names(json!(["==", "received_ts", 1000])), [WEB1, WEB10]);
    assert_eq!(names(json!([">", "received_ts", 1000])), [DB1]);
}

#[test]
fn truth_and_negation() {
    assert_eq!(names(json!(["?", "admin_up"])), [WEB1, DB1]);
    assert_eq!(names(json!(["!", ["?", "admin_up"]])), [WEB10]);
}

#[test]
fn and_or_combine() {
    assert_eq!(
        names(json!([
            "&",
            ["?", "admin_up"],
            ["==", "pnode", "node1"],
            [">", "be/memory", 1000]
        ])),
        [DB1]
    );
    assert_eq!(
        names(json!(["|", ["==", "name", "db1"], ["==", "name", "web10"]])),
        [WEB10, DB1]
    );
    assert_eq!(names(json!(["&"])), [WEB1, WEB10, DB1]);
    assert!(names(json!(["|"])).is_empty());
}

#[test]
fn regex_searches_unanchored_unless_anchored() {
    assert_eq!(names(json!(["=~", "name", "1\\."])), [WEB1, DB1]);
    assert_eq!(names(json!(["=~", "name", "^web"])), [WEB1, WEB10]);
    assert_eq!(names(json!(["=~", "name", "(?i)^DB"])), [DB1]);
    assert_eq!(names(json!(["!", ["=~", "pnode", "^node1"]])), [WEB10]);
}

#[test]
fn contains_checks_list_membership() {
    assert_eq!(names(json!(["=[]", "tags", "web"])), [WEB1, WEB10]);
    assert_eq!(names(json!(["=[]", "tags", "prod"])), [WEB1]);
    assert_eq!(names(json!(["=[]", "nic.vlans", 200])), [WEB1]);
    assert_eq!(names(json!(["!", ["=[]", "tags", "web"]])), [DB1]);
}

#[test]
fn a_non_normal_cell_lets_the_row_pass_and_fails_under_not() {
    // web10's live memory has no data: the leaf is true, as in Ganeti 3.0.
    assert_eq!(names(json!([">", "oper_ram", 1000])), [WEB10, DB1]);
    assert_eq!(names(json!(["<", "oper_ram", 1000])), [WEB1, WEB10]);
    assert_eq!(names(json!(["!", [">", "oper_ram", 1000]])), [WEB1]);
}

#[test]
fn without_live_data_a_live_leaf_makes_the_whole_filter_pass() {
    let reg = registry();
    let rows = rows();
    let f = Filter::from_json(&json!([
        "|",
        ["==", "name", "db1"],
        ["<", "oper_ram", 1000]
    ]))
    .unwrap();
    let q = PreparedQuery::new(&reg, &["name".to_string()], &f).unwrap();
    assert_eq!(q.filter_needs(), DataNeeds::CONFIG | DataNeeds::LIVE);
    // db1 passes on the config leaf already; the others are undecided.
    let first: Vec<bool> = rows
        .iter()
        .map(|r| q.matches(r, DataNeeds::CONFIG).unwrap())
        .collect();
    assert_eq!(first, [true, true, true]);
    // An AND with a false config leaf is decided without live data.
    let f = Filter::from_json(&json!([
        "&",
        ["==", "name", "db1"],
        ["<", "oper_ram", 1000]
    ]))
    .unwrap();
    let q = PreparedQuery::new(&reg, &["name".to_string()], &f).unwrap();
    let first: Vec<bool> = rows
        .iter()
        .map(|r| q.matches(r, DataNeeds::CONFIG).unwrap())
        .collect();
    assert_eq!(first, [false, false, true]);
    let last: Vec<bool> = rows
        .iter()
        .map(|r| q.matches(r, DataNeeds::ALL).unwrap())
        .collect();
    assert_eq!(last, [false, false, false]);
}

#[test]
fn needs_combine_selected_fields_and_filter_fields() {
    let reg = registry();
    let f = Filter::from_json(&json!([">", "oper_ram", 1])).unwrap();
    let q = PreparedQuery::new(&reg, &["name".into(), "bogus".into()], &f).unwrap();
    assert!(q.needs().contains(DataNeeds::LIVE));
    let q = PreparedQuery::new(&reg, &["name".into()], &Filter::Empty).unwrap();
    assert_eq!(q.needs(), DataNeeds::CONFIG);
}

#[test]
fn unknown_filter_field_is_an_error() {
    let e = query_err(json!(["&", ["?", "admin_up"], ["==", "bogus", 1]]));
    assert_eq!(e, QueryError::UnknownFilterField("bogus".into()));
    assert_eq!(e.to_string(), "Can't find field named 'bogus'");
}

#[test]
fn operators_unfit_for_the_field_kind_are_errors() {
    let msg = |v: Value| match query_err(v) {
        QueryError::Type(m) => m,
        other => panic!("expected a type error, got {other:?}"),
    };
    assert_eq!(
        msg(json!(["==", "be/memory", "512"])),
        "Unable to compare field 'be/memory' (kind 'unit') with the string \"512\" using '==': expected an integer"
    );
    assert!(msg(json!(["<", "name", 5])).contains("expected a string"));
    assert!(msg(json!(["==", "admin_up", 1])).contains("can only be tested with '?'"));
    assert!(msg(json!(["?", "name"])).contains("needs a boolean field"));
    assert!(msg(json!(["=~", "be/memory", "5"])).contains("needs a text field"));
    assert!(msg(json!(["=[]", "name", "w"])).contains("needs a list field"));
}

#[test]
fn values_of_the_wrong_type_in_free_form_fields_are_errors_when_evaluated() {
    let e = query_err(json!(["=[]", "tags", 5]));
    assert!(
        matches!(&e, QueryError::Type(m) if m.contains("list of integers")),
        "{e:?}"
    );
    let e = query_err(json!(["==", "tags", "web"]));
    assert!(
        matches!(&e, QueryError::Type(m) if m.starts_with("Invalid types in comparison")),
        "{e:?}"
    );
    let e = query_err(json!(["?", "tags"]));
    assert!(
        matches!(&e, QueryError::Type(m) if m.contains("boolean context")),
        "{e:?}"
    );
    let e = query_err(json!(["=~", "tags", "x"]));
    assert!(
        matches!(&e, QueryError::Type(m) if m.contains("expecting string")),
        "{e:?}"
    );
}

#[test]
fn a_getter_breaking_its_contract_is_an_internal_error_not_a_panic() {
    let e = query_err(json!(["?", "broken"]));
    assert!(matches!(e, QueryError::Internal(_)), "{e:?}");
}

#[test]
fn unknown_requested_fields_give_unknown_columns() {
    let reg = registry();
    let rows = rows();
    let f = Filter::from_json(&json!(["==", "name", "db1"])).unwrap();
    let resp = run_query(
        &reg,
        &rows,
        &["name".into(), "xyz".into(), "oper_ram".into()],
        &f,
    )
    .unwrap();
    assert_eq!(
        serde_json::to_value(&resp).unwrap(),
        json!({
            "fields": [
                {"name": "name", "title": "Instance", "kind": "text", "doc": "Instance name"},
                {"name": "xyz", "title": "xyz", "kind": "unknown", "doc": "Unknown field 'xyz'"},
                {"name": "oper_ram", "title": "Memory", "kind": "unit", "doc": "Actual memory"}
            ],
            "data": [[[0, DB1], [1, null], [0, 4096]]]
        })
    );
}

#[test]
fn non_normal_cells_serialise_with_null_values() {
    let reg = registry();
    let rows = rows();
    let resp = run_query(&reg, &rows[1..2], &["oper_ram".into()], &Filter::Empty).unwrap();
    assert_eq!(
        serde_json::to_value(&resp.data).unwrap(),
        json!([[[2, null]]])
    );
}

#[test]
fn legacy_rows_are_plain_values_with_null_for_missing_data() {
    let reg = registry();
    let rows = rows();
    let f = classic_filter(&["name", "uuid"], &[]);
    let q = PreparedQuery::new(&reg, &["name".into(), "oper_ram".into()], &f).unwrap();
    assert_eq!(
        q.run_legacy(&rows).unwrap(),
        vec![
            vec![json!(WEB1), json!(512)],
            vec![json!(WEB10), Value::Null],
            vec![json!(DB1), json!(4096)],
        ]
    );
}

#[test]
fn legacy_query_with_unknown_fields_fails_with_prereq_error() {
    let reg = registry();
    let q = PreparedQuery::new(
        &reg,
        &["name".into(), "foo".into(), "bar".into()],
        &Filter::Empty,
    )
    .unwrap();
    let e = q.run_legacy(rows()).unwrap_err();
    assert_eq!(
        crate::GanetiError::from(e).encode(),
        json!([
            "OpPrereqError",
            ["Unknown output fields selected: foo, bar", "wrong_input"]
        ])
    );
}

#[test]
fn classic_filter_selects_by_name_or_uuid() {
    let f = classic_filter(&["name", "uuid"], &["a".into(), "b".into()]);
    assert_eq!(
        f.to_json(),
        json!([
            "|",
            ["|", ["==", "name", "a"], ["==", "name", "b"]],
            ["|", ["==", "uuid", "a"], ["==", "uuid", "b"]]
        ])
    );
    assert_eq!(classic_filter(&["name", "uuid"], &[]), Filter::Empty);
    // A classic filter is not a pure name filter: Ganeti then scans all.
    assert_eq!(requested_names(&f, "name"), None);
}

#[test]
fn a_classic_query_by_short_name_finds_the_instance() {
    let mut reg = registry();
    reg.add(
        FieldDef::new("uuid", "UUID", FieldKind::Text, "Instance UUID"),
        DataNeeds::CONFIG,
        |i: &Inst| Cell::normal(format!("uuid-{}", i.name)),
    );
    let f = classic_filter(
        &["name", "uuid"],
        &["web10".into(), "uuid-db1.example.com".into()],
    );
    let q = PreparedQuery::new(&reg, &["name".into()], &f).unwrap();
    assert_eq!(
        q.run_legacy(rows()).unwrap(),
        vec![vec![json!(WEB10)], vec![json!(DB1)]]
    );
}

#[test]
fn malformed_filters_from_the_network_are_errors() {
    // A few shapes a client might send; none may panic.
    for v in [
        json!(5),
        json!("x"),
        json!({}),
        json!([null]),
        json!(["&", 5]),
        json!(["|", ["==", "name"]]),
        json!(["!", []]),
        json!(["==", "name", ["a"]]),
        json!(["==", "name", {"a": 1}]),
        json!(["=~", "name", "["]),
        json!(["=~", "name", "(?<=a)b"]),
        json!(["<", "mfree", 18446744073709551615u64]),
    ] {
        let r = Filter::from_json(&v);
        // `["!", []]` is `!` of the empty filter: valid, never true.
        if v == json!(["!", []]) {
            assert_eq!(r.unwrap(), Filter::Not(Box::new(Filter::Empty)));
            continue;
        }
        assert!(matches!(r, Err(QueryError::Parse(_))), "{v}: {r:?}");
    }
}

#[test]
fn ganeti_glob_patterns_compile_as_regexes() {
    // What the CLI's qlang.MakeFilter sends for `gnt-instance list 'web*'`:
    // utils.DnsNameGlobPattern, with Python's re.escape of the other parts.
    let f = Filter::from_json(&json!(["|", ["=~", "name", "^web[^.]*(\\..*)?$"]])).unwrap();
    let reg = registry();
    let resp = run_query(&reg, rows(), &["name".to_string()], &f).unwrap();
    assert_eq!(resp.data.len(), 2);
    for escaped in ["^a\\-b\\ c\\#d\\&e\\~f(\\..*)?$", "^x\\.y(\\..*)?$"] {
        assert!(FilterRegex::new(escaped).is_ok(), "{escaped}");
    }
}

/// A master's row context usually borrows from a config snapshot; the
/// registry is then built per query by a function generic over the
/// lifetime (cheap: a few hundred small allocations).
struct Snapshot {
    names: Vec<String>,
}

struct BorrowedRow<'a> {
    snap: &'a Snapshot,
    idx: usize,
}

fn borrowed_fields<'a>() -> FieldRegistry<BorrowedRow<'a>> {
    let mut r = FieldRegistry::new();
    r.add_flagged(
        FieldDef::new("name", "Name", FieldKind::Text, "Name"),
        DataNeeds::CONFIG,
        FieldFlags::Hostname,
        |row: &BorrowedRow<'a>| Cell::normal(row.snap.names[row.idx].as_str()),
    );
    r
}

#[test]
fn rows_may_borrow_from_the_callers_snapshot() {
    let snap = Snapshot {
        names: vec!["a.example.com".into(), "b.example.com".into()],
    };
    let reg = borrowed_fields();
    let rows = (0..snap.names.len()).map(|idx| BorrowedRow { snap: &snap, idx });
    let f = make_simple_filter("name", ["b"]);
    let resp = run_query(&reg, rows, &["name".to_string()], &f).unwrap();
    assert_eq!(resp.data, vec![vec![Cell::normal("b.example.com")]]);
}

#[test]
fn json_written_row_by_row_is_the_serialized_response() {
    let reg = registry();
    let fields: Vec<String> = ["name", "oper_ram", "tags", "nope", "received_ts"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    for filter in [
        json!(null),
        json!(["?", "admin_up"]),
        json!(["=", "name", "x"]),
    ] {
        let f = Filter::from_json(&filter).unwrap();
        let q = PreparedQuery::new(&reg, &fields, &f).unwrap();
        let mut out = Vec::new();
        q.write_json(rows(), &mut out).unwrap();
        let direct = serde_json::to_vec(&q.run(rows()).unwrap()).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            String::from_utf8(direct).unwrap()
        );
    }
}

#[test]
fn kept_cells_are_those_of_config_fields_for_one_version() {
    let reg = registry();
    let fields: Vec<String> = ["name", "be/memory", "oper_ram", "nope"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let q = PreparedQuery::new(&reg, &fields, &Filter::Empty).unwrap();
    let json = |rows: Vec<Inst>, cache: Option<(&mut CellCache, u64)>| {
        let mut out = Vec::new();
        match cache {
            Some((c, v)) => q.write_json_cached(rows, &mut out, c, v, |i| i.name),
            None => q.write_json(rows, &mut out),
        }
        .unwrap();
        String::from_utf8(out).unwrap()
    };
    let mut cache = CellCache::default();
    assert_eq!(json(rows(), Some((&mut cache, 1))), json(rows(), None));
    assert!(cache.is_for(&q, 1));
    // Same version: the config cell comes from the cache, the live one
    // is read again.
    let changed = || {
        let mut r = rows();
        r[0].memory = 999;
        r[0].oper_ram = Some(777);
        r
    };
    let again = json(changed(), Some((&mut cache, 1)));
    assert!(again.contains("777") && !again.contains("999"), "{again}");
    // A new version reads every cell again.
    assert_eq!(
        json(changed(), Some((&mut cache, 2))),
        json(changed(), None)
    );
    // So does another list of columns.
    let q2 = PreparedQuery::new(&reg, &fields[..1], &Filter::Empty).unwrap();
    assert!(!cache.is_for(&q2, 2));
}
