//! A resource's fields, declared once: definition, the data a field needs,
//! how to compare it, and how to read it from a row. One registry serves
//! LUXI `Query`/`QueryFields`, the old `Query*` calls, the CLI and RAPI.

use std::collections::HashMap;
use std::fmt;
use std::ops::{BitOr, BitOrAssign};
use std::sync::Arc;

use super::names::nice_sort_key;
use super::types::{Cell, FieldDef, FieldKind, QueryFieldsResponse};

/// Which data a field (or a whole query) needs, as a set of bits, so the
/// caller fetches only what is asked for. The named kinds cover the common
/// cases; a resource may define its own with [`DataNeeds::custom`] (as
/// Ganeti's `IQ_DISKUSAGE`, `IQ_CONSOLE`, ...).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct DataNeeds(u32);

impl DataNeeds {
    /// Nothing beyond the row itself.
    pub const NONE: DataNeeds = DataNeeds(0);
    /// The cluster configuration.
    pub const CONFIG: DataNeeds = DataNeeds(1);
    /// Live data from the nodes (node RPC).
    pub const LIVE: DataNeeds = DataNeeds(1 << 1);
    /// The lock manager's state.
    pub const LOCKS: DataNeeds = DataNeeds(1 << 2);
    /// Every kind, named or custom.
    pub const ALL: DataNeeds = DataNeeds(u32::MAX);

    /// A resource-specific kind; `bit` is 8 to 31 (lower bits are ours).
    pub const fn custom(bit: u32) -> DataNeeds {
        assert!(bit >= 8 && bit < 32, "custom data kinds use bits 8 to 31");
        DataNeeds(1 << bit)
    }

    /// Whether every kind of `other` is in `self`.
    pub fn contains(self, other: DataNeeds) -> bool {
        self.0 & other.0 == other.0
    }

    /// Whether `self` and `other` share a kind.
    pub fn intersects(self, other: DataNeeds) -> bool {
        self.0 & other.0 != 0
    }

    pub fn bits(self) -> u32 {
        self.0
    }
}

impl BitOr for DataNeeds {
    type Output = DataNeeds;
    fn bitor(self, rhs: DataNeeds) -> DataNeeds {
        DataNeeds(self.0 | rhs.0)
    }
}

impl BitOrAssign for DataNeeds {
    fn bitor_assign(&mut self, rhs: DataNeeds) {
        self.0 |= rhs.0;
    }
}

impl fmt::Debug for DataNeeds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut names = Vec::new();
        for (bit, name) in [
            (DataNeeds::CONFIG, "CONFIG"),
            (DataNeeds::LIVE, "LIVE"),
            (DataNeeds::LOCKS, "LOCKS"),
        ] {
            if self.contains(bit) {
                names.push(name.to_string());
            }
        }
        for bit in 8..32 {
            if self.0 & (1 << bit) != 0 {
                names.push(format!("custom({bit})"));
            }
        }
        write!(f, "DataNeeds({})", names.join("|"))
    }
}

/// How the filter compares a field's values (Ganeti's `QFF_*` / `QffMode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum FieldFlags {
    /// Values are compared as they are.
    #[default]
    Normal,
    /// A host name: `==` also matches the name's first component(s), i.e.
    /// `"inst1"` equals `"inst1.example.com"` (Ganeti's
    /// `compareNameComponent`).
    Hostname,
    /// A `[seconds, microseconds]` pair: the filter compares the seconds.
    Timestamp,
}

/// Reads one field of a row.
pub type Getter<R> = Arc<dyn Fn(&R) -> Cell + Send + Sync>;

/// One field of a resource.
pub struct Field<R> {
    pub def: FieldDef,
    pub needs: DataNeeds,
    pub flags: FieldFlags,
    getter: Getter<R>,
    alias_of: Option<String>,
}

impl<R> Field<R> {
    /// The field's value for `row`.
    pub fn get(&self, row: &R) -> Cell {
        (self.getter)(row)
    }

    /// The field this one is an alias of, if any.
    pub fn alias_of(&self) -> Option<&str> {
        self.alias_of.as_deref()
    }
}

impl<R> fmt::Debug for Field<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Field")
            .field("def", &self.def)
            .field("needs", &self.needs)
            .field("flags", &self.flags)
            .field("alias_of", &self.alias_of)
            .finish_non_exhaustive()
    }
}

/// The fields of one resource over rows of type `R` (the caller's row
/// context, e.g. an instance plus its live data).
///
/// ```
/// use luxi::query::{Cell, DataNeeds, FieldDef, FieldFlags, FieldKind, FieldRegistry};
/// use serde_json::json;
///
/// struct Row { name: String, mfree: Option<u64> }
///
/// let mut reg = FieldRegistry::<Row>::new();
/// reg.add_flagged(
///     FieldDef::new("name", "Node", FieldKind::Text, "Node name"),
///     DataNeeds::CONFIG,
///     FieldFlags::Hostname,
///     |r: &Row| Cell::normal(json!(r.name)),
/// );
/// reg.add(
///     FieldDef::new("mfree", "MFree", FieldKind::Unit, "Free memory in MiB"),
///     DataNeeds::LIVE,
///     |r: &Row| r.mfree.map_or_else(Cell::nodata, |m| Cell::normal(m)),
/// );
/// assert!(reg.validate().is_empty());
/// ```
pub struct FieldRegistry<R> {
    fields: Vec<Field<R>>,
    by_name: HashMap<String, usize>,
}

impl<R> Default for FieldRegistry<R> {
    fn default() -> Self {
        FieldRegistry {
            fields: Vec::new(),
            by_name: HashMap::new(),
        }
    }
}

impl<R> fmt::Debug for FieldRegistry<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.fields.iter()).finish()
    }
}

impl<R> FieldRegistry<R> {
    pub fn new() -> Self {
        Self::default()
    }

    /// Declares a field compared as is.
    ///
    /// # Panics
    /// If a field of that name exists already: declarations are code, and a
    /// duplicate is a programming error caught by the resource's first test.
    pub fn add(
        &mut self,
        def: FieldDef,
        needs: DataNeeds,
        getter: impl Fn(&R) -> Cell + Send + Sync + 'static,
    ) -> &mut Self {
        self.add_flagged(def, needs, FieldFlags::Normal, getter)
    }

    /// Declares a field with comparison flags (host name, timestamp).
    ///
    /// # Panics
    /// As [`FieldRegistry::add`].
    pub fn add_flagged(
        &mut self,
        def: FieldDef,
        needs: DataNeeds,
        flags: FieldFlags,
        getter: impl Fn(&R) -> Cell + Send + Sync + 'static,
    ) -> &mut Self {
        self.insert(Field {
            def,
            needs,
            flags,
            getter: Arc::new(getter),
            alias_of: None,
        })
    }

    /// Declares `alias` as another name of `target` (Ganeti's field aliases,
    /// e.g. `admin_up` → `admin_state`-like pairs): same title, kind, doc
    /// and getter.
    ///
    /// # Panics
    /// If `target` does not exist or `alias` does.
    pub fn alias(&mut self, alias: &str, target: &str) -> &mut Self {
        let t = self
            .get(target)
            .unwrap_or_else(|| panic!("alias '{alias}' of missing field '{target}'"));
        let field = Field {
            def: FieldDef {
                name: alias.to_string(),
                ..t.def.clone()
            },
            needs: t.needs,
            flags: t.flags,
            getter: Arc::clone(&t.getter),
            alias_of: Some(target.to_string()),
        };
        self.insert(field)
    }

    fn insert(&mut self, field: Field<R>) -> &mut Self {
        let name = field.def.name.clone();
        assert!(
            !self.by_name.contains_key(&name),
            "field '{name}' declared twice"
        );
        self.by_name.insert(name, self.fields.len());
        self.fields.push(field);
        self
    }

    /// The field called `name`.
    pub fn get(&self, name: &str) -> Option<&Field<R>> {
        self.by_name.get(name).map(|&i| &self.fields[i])
    }

    pub(crate) fn index_of(&self, name: &str) -> Option<usize> {
        self.by_name.get(name).copied()
    }

    pub(crate) fn by_index(&self, i: usize) -> &Field<R> {
        &self.fields[i]
    }

    /// Every field, in declaration order.
    pub fn fields(&self) -> impl Iterator<Item = &Field<R>> {
        self.fields.iter()
    }

    pub fn len(&self) -> usize {
        self.fields.len()
    }

    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// The definitions of `names` in the order given, unknown names as kind
    /// `unknown`.
    pub fn field_defs(&self, names: &[String]) -> Vec<FieldDef> {
        names
            .iter()
            .map(|n| {
                self.get(n)
                    .map_or_else(|| FieldDef::unknown(n), |f| f.def.clone())
            })
            .collect()
    }

    /// The `QueryFields` answer: with no names every field, sorted by name
    /// (Ganeti's "nice" sort: `disk10` after `disk2`); otherwise the named
    /// fields in the order asked, unknown ones with kind `unknown`.
    pub fn query_fields(&self, names: &[String]) -> QueryFieldsResponse {
        let fields = if names.is_empty() {
            let mut all: Vec<&Field<R>> = self.fields.iter().collect();
            all.sort_by_cached_key(|f| nice_sort_key(&f.def.name));
            all.into_iter().map(|f| f.def.clone()).collect()
        } else {
            self.field_defs(names)
        };
        QueryFieldsResponse { fields }
    }

    /// What Ganeti checks of every field definition, as a list of problems
    /// (empty if none): names of `[a-z0-9/._]`, titles without whitespace,
    /// one-line docs starting uppercase and not ending in punctuation, no
    /// two fields with the same title (aliases aside), no kind `unknown`.
    /// Meant for each resource's unit test.
    pub fn validate(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let mut titles: HashMap<String, &str> = HashMap::new();
        for f in &self.fields {
            let d = &f.def;
            let name_ok = !d.name.is_empty()
                && d.name.chars().all(|c| {
                    c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '/' | '.' | '_')
                });
            if !name_ok {
                problems.push(format!("field '{}': name must match [a-z0-9/._]+", d.name));
            }
            if d.title.is_empty() || d.title.chars().any(char::is_whitespace) {
                problems.push(format!(
                    "field '{}': title '{}' must be non-empty without whitespace",
                    d.name, d.title
                ));
            }
            let doc_ok = d.doc.chars().next().is_some_and(|c| c.is_ascii_uppercase())
                && d.doc.chars().count() >= 2
                && !d.doc.ends_with(['.', ',', '?', '!'])
                && !d.doc.contains('\n')
                && d.doc.trim() == d.doc;
            if !doc_ok {
                problems.push(format!(
                    "field '{}': doc '{}' must be one line, start uppercase and not end in punctuation",
                    d.name, d.doc
                ));
            }
            if d.kind == FieldKind::Unknown {
                problems.push(format!(
                    "field '{}': kind 'unknown' is for missing fields",
                    d.name
                ));
            }
            if f.alias_of.is_none() {
                if let Some(other) = titles.insert(d.title.to_lowercase(), &d.name) {
                    problems.push(format!(
                        "fields '{other}' and '{}' share the title '{}'",
                        d.name, d.title
                    ));
                }
            }
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    struct Row;

    fn reg() -> FieldRegistry<Row> {
        let mut r = FieldRegistry::new();
        r.add(
            FieldDef::new("name", "Name", FieldKind::Text, "Item name"),
            DataNeeds::CONFIG,
            |_: &Row| Cell::normal("x"),
        )
        .add(
            FieldDef::new("disk10", "Disk10", FieldKind::Unit, "Disk 10"),
            DataNeeds::CONFIG,
            |_: &Row| Cell::unavail(),
        )
        .add(
            FieldDef::new("disk2", "Disk2", FieldKind::Unit, "Disk 2"),
            DataNeeds::CONFIG,
            |_: &Row| Cell::normal(2),
        )
        .add(
            FieldDef::new("mfree", "MFree", FieldKind::Unit, "Free memory"),
            DataNeeds::LIVE,
            |_: &Row| Cell::nodata(),
        )
        .alias("memfree", "mfree");
        r
    }

    #[test]
    fn query_fields_without_names_lists_all_nicely_sorted() {
        let names: Vec<String> = reg()
            .query_fields(&[])
            .fields
            .into_iter()
            .map(|f| f.name)
            .collect();
        assert_eq!(names, ["disk2", "disk10", "memfree", "mfree", "name"]);
    }

    #[test]
    fn query_fields_with_names_keeps_order_and_marks_unknown() {
        let resp = reg().query_fields(&["mfree".into(), "bogus".into(), "name".into()]);
        assert_eq!(
            serde_json::to_value(&resp).unwrap(),
            json!({"fields": [
                {"name": "mfree", "title": "MFree", "kind": "unit", "doc": "Free memory"},
                {"name": "bogus", "title": "bogus", "kind": "unknown", "doc": "Unknown field 'bogus'"},
                {"name": "name", "title": "Name", "kind": "text", "doc": "Item name"}
            ]})
        );
    }

    #[test]
    fn an_alias_shares_definition_needs_and_getter() {
        let r = reg();
        let a = r.get("memfree").unwrap();
        assert_eq!(a.def.title, "MFree");
        assert_eq!(a.needs, DataNeeds::LIVE);
        assert_eq!(a.get(&Row), Cell::nodata());
        assert_eq!(a.alias_of(), Some("mfree"));
        assert!(r.validate().is_empty(), "{:?}", r.validate());
    }

    #[test]
    #[should_panic(expected = "field 'name' declared twice")]
    fn declaring_a_field_twice_panics() {
        let mut r = reg();
        r.add(
            FieldDef::new("name", "Other", FieldKind::Text, "Again"),
            DataNeeds::NONE,
            |_: &Row| Cell::unknown(),
        );
    }

    #[test]
    fn validate_reports_bad_definitions() {
        let mut r = FieldRegistry::new();
        r.add(
            FieldDef::new("Bad Name", "Has space", FieldKind::Text, "ends with dot."),
            DataNeeds::NONE,
            |_: &Row| Cell::unknown(),
        )
        .add(
            FieldDef::new("ok", "has", FieldKind::Text, "Fine"),
            DataNeeds::NONE,
            |_: &Row| Cell::unknown(),
        )
        .add(
            FieldDef::new("ok2", "HAS", FieldKind::Text, "Fine"),
            DataNeeds::NONE,
            |_: &Row| Cell::unknown(),
        );
        let p = r.validate();
        assert_eq!(p.len(), 4, "{p:?}");
        assert!(p[0].contains("name must match"));
        assert!(p[1].contains("title 'Has space'"));
        assert!(p[2].contains("doc 'ends with dot.'"));
        assert!(p[3].contains("share the title"));
    }

    #[test]
    fn data_needs_combine_as_sets() {
        let disk = DataNeeds::custom(8);
        let n = DataNeeds::CONFIG | disk;
        assert!(n.contains(DataNeeds::CONFIG));
        assert!(n.contains(disk));
        assert!(!n.contains(DataNeeds::LIVE));
        assert!(n.intersects(DataNeeds::CONFIG | DataNeeds::LIVE));
        assert!(DataNeeds::ALL.contains(n));
        assert_eq!(format!("{n:?}"), "DataNeeds(CONFIG|custom(8))");
    }
}
