//! How a backend names things: how it compares names, how long they may be,
//! which characters it refuses, and which names are reserved.
//!
//! Two objects must never share storage. They would if their table names
//! were equal under the backend's own comparison: SQLite folds ASCII case
//! (`CaseObj` and `caseobj` are one table), PostgreSQL truncates names to 63
//! bytes, MySQL compares column names case-insensitively. [`NameRules`] is
//! that comparison as data, declared by each driver; the engine checks every
//! schema against it at registration ([`NameRules::check_schema`]) and
//! refuses a collision with an error that names both sides.

use objectql_query_ast::{ObjectSchema, Path, Result, StorageType};

/// The prefix reserved for objectql's own storage (`_objectql_schema`, the
/// catalog table of the SQL and Mongo drivers). No object or table may use
/// it, on any driver.
pub const RESERVED_PREFIX: &str = "_objectql_";

/// How a backend compares two names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum NameFold {
    /// Byte for byte.
    #[default]
    Exact,
    /// ASCII letters fold to lower case (SQLite).
    AsciiCase,
    /// Every character folds to lower case (MySQL/MariaDB column names,
    /// `utf8mb3_general_ci`: `É` = `é`, `K` = `K`).
    UnicodeCase,
}

impl NameFold {
    /// The key two names share exactly when the backend takes them as one.
    pub fn key(self, name: &str) -> String {
        match self {
            Self::Exact => name.to_owned(),
            Self::AsciiCase => name.to_ascii_lowercase(),
            Self::UnicodeCase => name.chars().flat_map(char::to_lowercase).collect(),
        }
    }
}

/// The longest name a backend keeps without truncating it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum NameLimit {
    /// At most this many bytes of UTF-8 (PostgreSQL: 63).
    Bytes(usize),
    /// At most this many characters (MySQL/MariaDB: 64).
    Chars(usize),
}

impl NameLimit {
    fn exceeded_by(self, name: &str) -> Option<String> {
        match self {
            Self::Bytes(n) if name.len() > n => Some(format!(
                "is {} bytes long; this backend keeps at most {n}",
                name.len()
            )),
            Self::Chars(n) if name.chars().count() > n => Some(format!(
                "is {} characters long; this backend keeps at most {n}",
                name.chars().count()
            )),
            _ => None,
        }
    }
}

/// A backend's rules for table and column names (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct NameRules {
    /// How table (collection) names compare.
    pub table_fold: NameFold,
    /// How column (document key) names compare.
    pub column_fold: NameFold,
    /// The longest table, column or index name kept whole.
    pub max_len: Option<NameLimit>,
    /// Names may not end with a space (MySQL/MariaDB).
    pub no_trailing_space: bool,
    /// Only characters of the Basic Multilingual Plane (MySQL/MariaDB
    /// identifiers are `utf8mb3`).
    pub bmp_only: bool,
    /// Table-name prefixes the backend reserves (compared after folding),
    /// besides [`RESERVED_PREFIX`]: `sqlite_` on SQLite, `system.` on MongoDB.
    pub reserved_table_prefixes: Vec<&'static str>,
    /// Characters a table name may not contain (`$` on MongoDB).
    pub forbidden_table_chars: Vec<char>,
    /// Column names the backend keeps for itself (`_id` on MongoDB, unless
    /// it is the primary key's column).
    pub reserved_columns: Vec<&'static str>,
}

impl NameRules {
    /// The table `drop_object(object)` drops, given every stored schema:
    /// the one `object`'s schema names (its `tableName`). Without a stored
    /// schema, the table named after the object, unless that table is
    /// another stored object's under [`Self::table_fold`]; then `None`, for
    /// it is not this object's to drop.
    pub fn table_to_drop(&self, object: &str, stored: &[ObjectSchema]) -> Option<String> {
        if let Some(own) = stored.iter().find(|s| s.name == object) {
            return Some(own.table().to_owned());
        }
        let key = self.table_fold.key(object);
        (!stored.iter().any(|s| self.table_fold.key(s.table()) == key)).then(|| object.to_owned())
    }

    /// Checks one name against the length and character rules.
    fn check_one(&self, name: &str, what: &str, path: &Path) -> Result<()> {
        if let Some(why) = self.max_len.and_then(|l| l.exceeded_by(name)) {
            return Err(path.err(format!(
                "{what} name `{name}` {why}, and a longer name would be truncated, so two names could become one"
            )));
        }
        if self.no_trailing_space && name.ends_with(' ') {
            return Err(path.err(format!(
                "{what} name `{name}` ends with a space, which this backend does not allow"
            )));
        }
        if self.bmp_only
            && let Some(ch) = name.chars().find(|c| u32::from(*c) > 0xFFFF)
        {
            return Err(path.err(format!(
                "{what} name `{name}` contains U+{:X}, outside the Basic Multilingual Plane, which this backend does not allow in names",
                u32::from(ch)
            )));
        }
        Ok(())
    }

    /// Checks `schema`'s storage names against these rules and against the
    /// objects already registered in the same datasource (`others`, which
    /// may include an earlier version of `schema` itself: that one is
    /// skipped). Refuses: a table name that collides with another object's
    /// under [`Self::table_fold`], a reserved table name, two columns of
    /// the object that collide under [`Self::column_fold`], and names the
    /// backend would truncate or refuse. Errors name both sides.
    pub fn check_schema<'a>(
        &self,
        schema: &ObjectSchema,
        others: impl IntoIterator<Item = &'a ObjectSchema>,
    ) -> Result<()> {
        let table = schema.table();
        let table_path = Path::root(if schema.table_name.is_some() {
            "tableName"
        } else {
            "name"
        });
        self.check_one(table, "table", &table_path)?;
        let folded = self.table_fold.key(table);
        let mut reserved = vec![RESERVED_PREFIX];
        reserved.extend(self.reserved_table_prefixes.iter().copied());
        if let Some(p) = reserved
            .iter()
            .find(|p| folded.starts_with(&self.table_fold.key(p)))
        {
            return Err(table_path.err(format!(
                "table name `{table}` of object `{}` uses the reserved prefix `{p}`",
                schema.name
            )));
        }
        if let Some(ch) = table
            .chars()
            .find(|c| self.forbidden_table_chars.contains(c))
        {
            return Err(table_path.err(format!(
                "table name `{table}` of object `{}` contains `{ch}`, which this backend does not allow",
                schema.name
            )));
        }
        for other in others {
            if other.name == schema.name {
                continue;
            }
            if self.table_fold.key(other.table()) == folded {
                let how = if other.table() == table {
                    "the same table".to_owned()
                } else {
                    format!(
                        "the same table on this backend (`{}` and `{table}` compare equal here)",
                        other.table()
                    )
                };
                return Err(table_path.err(format!(
                    "object `{}` would share storage with object `{}`: both name {how}",
                    schema.name, other.name
                )));
            }
        }
        let mut columns: Vec<(String, &str)> = Vec::new();
        for (name, f) in &schema.fields {
            if f.storage_type()? == StorageType::Virtual {
                continue;
            }
            let col = f.column();
            let path = Path::root("fields").key(name);
            let cpath = if f.column_name.is_some() {
                path.key("columnName")
            } else {
                path.clone()
            };
            self.check_one(col, "column", &cpath)?;
            if *name != schema.primary_key && self.reserved_columns.contains(&col) {
                return Err(cpath.err(format!(
                    "column name `{col}` of field `{name}` is reserved by this backend"
                )));
            }
            let key = self.column_fold.key(col);
            if let Some((_, first)) = columns.iter().find(|(k, _)| *k == key) {
                return Err(cpath.err(format!(
                    "fields `{first}` and `{name}` of object `{}` would share one column on this backend",
                    schema.name
                )));
            }
            columns.push((key, name));
        }
        for (i, ix) in schema.indexes.iter().enumerate() {
            if let Some(n) = &ix.name {
                self.check_one(n, "index", &Path::root("indexes").index(i).key("name"))?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use objectql_query_ast::Field;

    fn sqlite() -> NameRules {
        NameRules {
            table_fold: NameFold::AsciiCase,
            column_fold: NameFold::AsciiCase,
            reserved_table_prefixes: vec!["sqlite_"],
            ..NameRules::default()
        }
    }

    #[test]
    fn the_table_to_drop_is_the_objects_own() {
        let mut a = ObjectSchema::new("a");
        a.table_name = Some("t".into());
        let mut c = ObjectSchema::new("c");
        c.table_name = Some("A".into());
        let stored = [a, c];
        let rules = sqlite();
        // `a` lives in `t`; a table named `a` (`A` here) is `c`'s.
        assert_eq!(rules.table_to_drop("a", &stored).as_deref(), Some("t"));
        assert_eq!(rules.table_to_drop("c", &stored).as_deref(), Some("A"));
        // Not stored: its own name, unless another object's table is that.
        assert_eq!(rules.table_to_drop("x", &stored).as_deref(), Some("x"));
        assert_eq!(rules.table_to_drop("T", &stored), None);
        assert_eq!(
            NameRules::default().table_to_drop("T", &stored).as_deref(),
            Some("T")
        );
    }

    #[test]
    fn folded_table_names_collide_and_the_error_names_both() {
        let a = ObjectSchema::new("CaseObj");
        let b = ObjectSchema::new("caseobj");
        let e = sqlite().check_schema(&b, [&a]).unwrap_err().to_string();
        assert!(e.contains("CaseObj") && e.contains("caseobj"), "{e}");
        assert!(NameRules::default().check_schema(&b, [&a]).is_ok());
        // Unicode letters do not fold on SQLite.
        let c = ObjectSchema::new("É");
        assert!(sqlite().check_schema(&c, [&ObjectSchema::new("é")]).is_ok());
        // Re-registering the same object is not a collision.
        assert!(sqlite().check_schema(&a, [&a]).is_ok());
    }

    #[test]
    fn same_table_name_is_refused_everywhere() {
        let mut a = ObjectSchema::new("a");
        a.table_name = Some("t".into());
        let mut b = ObjectSchema::new("b");
        b.table_name = Some("t".into());
        let e = NameRules::default().check_schema(&b, [&a]).unwrap_err();
        assert_eq!(e.path(), Some("tableName"));
    }

    #[test]
    fn reserved_and_truncated_names() {
        for n in ["_objectql_schema", "_OBJECTQL_x", "sqlite_master"] {
            assert!(
                sqlite().check_schema(&ObjectSchema::new(n), []).is_err(),
                "{n}"
            );
        }
        let pg = NameRules {
            max_len: Some(NameLimit::Bytes(63)),
            ..NameRules::default()
        };
        assert!(
            pg.check_schema(&ObjectSchema::new("x".repeat(63)), [])
                .is_ok()
        );
        assert!(
            pg.check_schema(&ObjectSchema::new("x".repeat(64)), [])
                .is_err()
        );
        assert!(
            pg.check_schema(&ObjectSchema::new("é".repeat(32)), [])
                .is_err()
        );
        let my = NameRules {
            max_len: Some(NameLimit::Chars(64)),
            no_trailing_space: true,
            bmp_only: true,
            ..NameRules::default()
        };
        assert!(
            my.check_schema(&ObjectSchema::new("é".repeat(64)), [])
                .is_ok()
        );
        assert!(my.check_schema(&ObjectSchema::new("t "), []).is_err());
        assert!(my.check_schema(&ObjectSchema::new("t😀"), []).is_err());
    }

    #[test]
    fn folded_column_names_collide() {
        let my = NameRules {
            column_fold: NameFold::UnicodeCase,
            ..NameRules::default()
        };
        let s = ObjectSchema::new("t")
            .field(Field::new("É", "text"))
            .field(Field::new("é", "text"));
        let e = my.check_schema(&s, []).unwrap_err().to_string();
        assert!(e.contains("`É`") && e.contains("`é`"), "{e}");
        let s = ObjectSchema::new("t")
            .field(Field::new("café", "text"))
            .field(Field::new("cafe", "text"));
        assert!(my.check_schema(&s, []).is_ok());
    }
}
