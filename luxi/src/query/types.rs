//! The wire types of query2: field definitions, result statuses, cells and
//! the `Query` / `QueryFields` responses, in Ganeti's JSON shapes.

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

/// The kind of a field (Ganeti's `QFT_*`), serialised as its wire string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FieldKind {
    /// `"unknown"`: the requested field does not exist.
    Unknown,
    /// `"text"`: a string.
    Text,
    /// `"bool"`: true or false.
    Bool,
    /// `"number"`: an integer.
    Number,
    /// `"float"`: a floating point number.
    Float,
    /// `"unit"`: an integer number of mebibytes.
    Unit,
    /// `"timestamp"`: seconds since the epoch.
    Timestamp,
    /// `"other"`: free-form (lists, dicts, ...).
    Other,
}

impl FieldKind {
    /// The wire string, e.g. `"text"`.
    pub fn as_str(self) -> &'static str {
        match self {
            FieldKind::Unknown => "unknown",
            FieldKind::Text => "text",
            FieldKind::Bool => "bool",
            FieldKind::Number => "number",
            FieldKind::Float => "float",
            FieldKind::Unit => "unit",
            FieldKind::Timestamp => "timestamp",
            FieldKind::Other => "other",
        }
    }

    /// Parses a wire string. Ganeti asks clients to treat kinds they do not
    /// know like `"other"`, which callers can do with `unwrap_or`.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "unknown" => FieldKind::Unknown,
            "text" => FieldKind::Text,
            "bool" => FieldKind::Bool,
            "number" => FieldKind::Number,
            "float" => FieldKind::Float,
            "unit" => FieldKind::Unit,
            "timestamp" => FieldKind::Timestamp,
            "other" => FieldKind::Other,
            _ => return None,
        })
    }

    /// Whether values of this kind are numbers (compared with integers).
    pub fn is_numeric(self) -> bool {
        matches!(
            self,
            FieldKind::Number | FieldKind::Float | FieldKind::Unit | FieldKind::Timestamp
        )
    }
}

impl std::fmt::Display for FieldKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for FieldKind {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for FieldKind {
    /// Kinds this version does not know decode as `Other`, as Ganeti's
    /// design asks of clients.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Ok(FieldKind::parse(&s).unwrap_or(FieldKind::Other))
    }
}

/// The definition of a field: `{"name", "title", "kind", "doc"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldDef {
    /// The name, e.g. `"be/memory"`; only `[a-z0-9/._]`.
    pub name: String,
    /// The column title, e.g. `"ConfigMemory"`; no whitespace.
    pub title: String,
    /// The kind of the values.
    pub kind: FieldKind,
    /// A one-line description starting with an uppercase letter.
    pub doc: String,
}

impl FieldDef {
    pub fn new(name: &str, title: &str, kind: FieldKind, doc: &str) -> Self {
        FieldDef {
            name: name.to_string(),
            title: title.to_string(),
            kind,
            doc: doc.to_string(),
        }
    }

    /// The definition Ganeti returns for a requested field it does not know:
    /// the title is the name, the kind `unknown`.
    pub fn unknown(name: &str) -> Self {
        FieldDef {
            name: name.to_string(),
            title: name.to_string(),
            kind: FieldKind::Unknown,
            doc: format!("Unknown field '{name}'"),
        }
    }
}

/// The status of one value (Ganeti's `RS_*`), serialised as its integer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ResultStatus {
    /// 0: the value is there.
    Normal,
    /// 1: the field is not known.
    Unknown,
    /// 2: no data, e.g. the node did not answer.
    NoData,
    /// 3: the value does not exist for this item, e.g. `nic.ip/3` of an
    /// instance with one NIC.
    Unavail,
    /// 4: the resource is marked offline.
    Offline,
}

impl ResultStatus {
    pub fn code(self) -> u8 {
        match self {
            ResultStatus::Normal => 0,
            ResultStatus::Unknown => 1,
            ResultStatus::NoData => 2,
            ResultStatus::Unavail => 3,
            ResultStatus::Offline => 4,
        }
    }

    pub fn from_code(code: u64) -> Option<Self> {
        Some(match code {
            0 => ResultStatus::Normal,
            1 => ResultStatus::Unknown,
            2 => ResultStatus::NoData,
            3 => ResultStatus::Unavail,
            4 => ResultStatus::Offline,
            _ => return None,
        })
    }
}

impl Serialize for ResultStatus {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u8(self.code())
    }
}

impl<'de> Deserialize<'de> for ResultStatus {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let code = u64::deserialize(d)?;
        ResultStatus::from_code(code)
            .ok_or_else(|| D::Error::custom(format!("invalid result status {code}, expected 0-4")))
    }
}

/// One value of a result row: `[status, value]`. Ganeti sends `null` as the
/// value of every status other than normal.
#[derive(Debug, Clone, PartialEq)]
pub struct Cell {
    pub status: ResultStatus,
    pub value: Option<Value>,
}

impl Cell {
    /// `[0, value]`.
    pub fn normal(value: impl Into<Value>) -> Self {
        Cell {
            status: ResultStatus::Normal,
            value: Some(value.into()),
        }
    }

    /// A cell without a value: `[status, null]`.
    pub fn status(status: ResultStatus) -> Self {
        Cell {
            status,
            value: None,
        }
    }

    /// `[1, null]`.
    pub fn unknown() -> Self {
        Cell::status(ResultStatus::Unknown)
    }

    /// `[2, null]`.
    pub fn nodata() -> Self {
        Cell::status(ResultStatus::NoData)
    }

    /// `[3, null]`.
    pub fn unavail() -> Self {
        Cell::status(ResultStatus::Unavail)
    }

    /// `[4, null]`.
    pub fn offline() -> Self {
        Cell::status(ResultStatus::Offline)
    }

    /// `[0, value]` for `Some`, `[3, null]` for `None` (Ganeti's
    /// `_GetItemMaybeAttr` / `rsMaybeUnavail`).
    pub fn normal_or_unavail<T: Into<Value>>(value: Option<T>) -> Self {
        match value {
            Some(v) => Cell::normal(v),
            None => Cell::unavail(),
        }
    }

    /// The value if the status is normal.
    pub fn normal_value(&self) -> Option<&Value> {
        match self.status {
            ResultStatus::Normal => self.value.as_ref(),
            _ => None,
        }
    }
}

impl From<(ResultStatus, Option<Value>)> for Cell {
    fn from((status, value): (ResultStatus, Option<Value>)) -> Self {
        Cell { status, value }
    }
}

impl Serialize for Cell {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        (self.status, self.value.as_ref().unwrap_or(&Value::Null)).serialize(s)
    }
}

impl<'de> Deserialize<'de> for Cell {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let (status, value) = <(ResultStatus, Value)>::deserialize(d)?;
        let value = match value {
            Value::Null => None,
            v => Some(v),
        };
        Ok(Cell { status, value })
    }
}

/// The result of `Query`: `{"fields": [...], "data": [[[status, value], ...], ...]}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueryResponse {
    pub fields: Vec<FieldDef>,
    pub data: Vec<Vec<Cell>>,
}

/// The result of `QueryFields`: `{"fields": [...]}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueryFieldsResponse {
    pub fields: Vec<FieldDef>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn field_def_serialises_as_ganeti_dict() {
        let def = FieldDef::new("mfree", "MemFree", FieldKind::Unit, "Free memory");
        assert_eq!(
            serde_json::to_value(&def).unwrap(),
            json!({"name": "mfree", "title": "MemFree", "kind": "unit", "doc": "Free memory"})
        );
    }

    #[test]
    fn every_kind_has_its_ganeti_wire_string() {
        let kinds = [
            (FieldKind::Unknown, "unknown"),
            (FieldKind::Text, "text"),
            (FieldKind::Bool, "bool"),
            (FieldKind::Number, "number"),
            (FieldKind::Float, "float"),
            (FieldKind::Unit, "unit"),
            (FieldKind::Timestamp, "timestamp"),
            (FieldKind::Other, "other"),
        ];
        for (kind, s) in kinds {
            assert_eq!(serde_json::to_value(kind).unwrap(), json!(s));
            assert_eq!(serde_json::from_value::<FieldKind>(json!(s)).unwrap(), kind);
        }
    }

    #[test]
    fn an_unknown_kind_decodes_as_other() {
        let k: FieldKind = serde_json::from_value(json!("fancy")).unwrap();
        assert_eq!(k, FieldKind::Other);
    }

    #[test]
    fn cells_serialise_as_status_value_pairs() {
        assert_eq!(
            serde_json::to_value(Cell::normal("node1")).unwrap(),
            json!([0, "node1"])
        );
        assert_eq!(
            serde_json::to_value(Cell::unknown()).unwrap(),
            json!([1, null])
        );
        assert_eq!(
            serde_json::to_value(Cell::nodata()).unwrap(),
            json!([2, null])
        );
        assert_eq!(
            serde_json::to_value(Cell::unavail()).unwrap(),
            json!([3, null])
        );
        assert_eq!(
            serde_json::to_value(Cell::offline()).unwrap(),
            json!([4, null])
        );
        let back: Cell = serde_json::from_value(json!([3, null])).unwrap();
        assert_eq!(back, Cell::unavail());
    }

    #[test]
    fn a_bad_status_code_is_a_decode_error() {
        let err = serde_json::from_value::<Cell>(json!([9, null])).unwrap_err();
        assert!(err.to_string().contains("invalid result status 9"), "{err}");
    }

    #[test]
    fn query_response_round_trips_the_design_doc_example() {
        // The example response of doc/design-query2.rst (first two rows),
        // with the doc strings our field definitions always carry.
        let wire = json!({
            "fields": [
                {"name": "name", "title": "Name", "kind": "text", "doc": "Node name"},
                {"name": "mfree", "title": "MemFree", "kind": "unit", "doc": "Free memory"},
                {"name": "xyz", "title": "xyz", "kind": "unknown", "doc": "Unknown field 'xyz'"},
                {"name": "nic2.ip", "title": "Nic.IP/2", "kind": "text", "doc": "IP of NIC 2"}
            ],
            "data": [
                [[0, "node1"], [0, 128], [1, null], [3, null]],
                [[0, "node3"], [2, null], [1, null], [3, null]]
            ]
        });
        let resp: QueryResponse = serde_json::from_value(wire.clone()).unwrap();
        assert_eq!(resp.fields[2], FieldDef::unknown("xyz"));
        assert_eq!(resp.data[1][1], Cell::nodata());
        assert_eq!(resp.data[0][1], Cell::normal(128));
        assert_eq!(serde_json::to_value(&resp).unwrap(), wire);
    }

    #[test]
    fn query_fields_response_is_a_dict_with_fields() {
        let resp = QueryFieldsResponse {
            fields: vec![FieldDef::new("name", "Name", FieldKind::Text, "Name")],
        };
        assert_eq!(
            serde_json::to_value(&resp).unwrap(),
            json!({"fields": [{"name": "name", "title": "Name", "kind": "text", "doc": "Name"}]})
        );
    }
}
