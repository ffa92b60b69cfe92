//! Checking that a table enforces every uniqueness its schema declares.
//!
//! `CREATE UNIQUE INDEX IF NOT EXISTS` does nothing when an index of that
//! name already exists, whatever its columns; a table objectql did not
//! create may lack a constraint altogether; someone may drop one by hand.
//! Each of these silently accepts duplicates. So after a driver syncs a
//! schema it reads back the table's unique indexes from the server's own
//! catalog and hands them to [`check_unique_keys`], which refuses the
//! schema unless each declared key is enforced.

use objectql_query_ast::{DriverErrorKind, Error, ObjectSchema, Result, StorageType};

use crate::NameFold;

/// One uniqueness the schema declares: what declares it (for the error
/// message) and the storage columns it covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UniqueKey {
    /// `primary key `id``, `unique field `email``, `unique index 2 (a, b)`.
    pub declared_by: String,
    /// The storage columns, in declaration order.
    pub columns: Vec<String>,
}

/// The keys `schema` declares unique: its primary key, every unique field
/// and every unique index, each over the fields' storage columns.
/// `pk_column` overrides the primary key's column where the backend stores
/// it under its own name (MongoDB's `_id`).
pub fn declared_unique_keys(
    schema: &ObjectSchema,
    pk_column: Option<&str>,
) -> Result<Vec<UniqueKey>> {
    let column = |field: &str| -> Result<String> {
        if field == schema.primary_key
            && let Some(pk) = pk_column
        {
            return Ok(pk.to_owned());
        }
        schema
            .get(field)
            .map(|f| f.column().to_owned())
            .ok_or_else(|| {
                Error::validation(
                    "indexes",
                    format!("`{field}` is not a stored field of `{}`", schema.name),
                )
            })
    };
    let mut keys = vec![UniqueKey {
        declared_by: format!("the primary key `{}`", schema.primary_key),
        columns: vec![column(&schema.primary_key)?],
    }];
    for (name, f) in &schema.fields {
        if f.unique && *name != schema.primary_key && f.storage_type()? != StorageType::Virtual {
            keys.push(UniqueKey {
                declared_by: format!("unique field `{name}`"),
                columns: vec![column(name)?],
            });
        }
    }
    for (i, ix) in schema.indexes.iter().enumerate() {
        if ix.unique {
            keys.push(UniqueKey {
                declared_by: format!("unique index {i} ({})", ix.fields.join(", ")),
                columns: ix.fields.iter().map(|f| column(f)).collect::<Result<_>>()?,
            });
        }
    }
    Ok(keys)
}

/// Checks that every key `schema` declares unique ([`declared_unique_keys`],
/// with `pk_column` as there) is enforced by one of `present`, the column
/// lists of the unique indexes and constraints the server reports for
/// `table` (whole-column, non-partial ones only: a prefix or partial index
/// does not make a column unique). A key is enforced by an index over the
/// same set of columns, compared under `fold`, the backend's column-name
/// rule. The error, [`DriverErrorKind::SchemaMismatch`], names the object,
/// the table, the key and what the server has instead.
pub fn check_unique_keys(
    schema: &ObjectSchema,
    present: &[Vec<String>],
    fold: NameFold,
    pk_column: Option<&str>,
) -> Result<()> {
    let declared = declared_unique_keys(schema, pk_column)?;
    let set = |cols: &[String]| {
        let mut v: Vec<String> = cols.iter().map(|c| fold.key(c)).collect();
        v.sort();
        v.dedup();
        v
    };
    let present_sets: Vec<Vec<String>> = present.iter().map(|p| set(p)).collect();
    for key in &declared {
        let want = set(&key.columns);
        if present_sets.contains(&want) {
            continue;
        }
        let has = if present.is_empty() {
            "none".to_owned()
        } else {
            present
                .iter()
                .map(|p| format!("({})", p.join(", ")))
                .collect::<Vec<_>>()
                .join(", ")
        };
        return Err(Error::driver(
            DriverErrorKind::SchemaMismatch,
            format!(
                "object `{}` declares {} on column(s) ({}), but table `{}` on the server has no unique index over exactly those columns (its unique indexes: {has}); duplicates would be accepted. Create the index (or drop the stale one that holds its name), or change the schema",
                schema.name,
                key.declared_by,
                key.columns.join(", "),
                schema.table(),
            ),
        ));
    }
    Ok(())
}

/// An object's schema as a driver stored it in its schema table (the JSON
/// of [`ObjectSchema`]), read back. A row that is not a schema is a
/// [`DriverErrorKind::Decode`] error naming the object.
pub fn parse_stored_schema(object: &str, json: &str) -> Result<ObjectSchema> {
    let value: serde_json::Value = serde_json::from_str(json).map_err(|e| Error::Driver {
        kind: DriverErrorKind::Decode,
        message: format!("stored schema of `{object}` is not JSON"),
        source: Some(Box::new(e)),
    })?;
    ObjectSchema::from_json(&value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema() -> ObjectSchema {
        ObjectSchema::from_json(&serde_json::json!({
            "name": "ixa",
            "fields": {
                "id": {"type": "text"},
                "b_c": {"type": "text", "unique": true},
                "x": {"type": "integer"},
                "y": {"type": "integer"}
            },
            "indexes": [{"fields": ["y", "x"], "unique": true}]
        }))
        .unwrap()
    }

    #[test]
    fn every_declared_key_must_be_enforced() {
        let s = schema();
        let k = declared_unique_keys(&s, None).unwrap();
        assert_eq!(k.len(), 3, "{k:?}");
        let mongo = declared_unique_keys(&s, Some("_id")).unwrap();
        assert_eq!(mongo[0].columns, ["_id"]);
        let v = |c: &[&str]| c.iter().map(ToString::to_string).collect::<Vec<_>>();
        // Index column order does not matter; the fold does.
        let all = [v(&["ID"]), v(&["b_c"]), v(&["x", "y"])];
        check_unique_keys(&s, &all, NameFold::AsciiCase, None).unwrap();
        let e = check_unique_keys(&s, &all, NameFold::Exact, None).unwrap_err();
        assert_eq!(e.driver_kind(), Some(DriverErrorKind::SchemaMismatch));
        // The bug of issue 12 §5: the index named for `b_c` covers `c`.
        let e = check_unique_keys(
            &s,
            &[v(&["id"]), v(&["c"]), v(&["x", "y"])],
            NameFold::Exact,
            None,
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("unique field `b_c`") && e.contains("ixa") && e.contains("(c)"),
            "{e}"
        );
        // A wider index does not make the narrower key unique.
        let e = check_unique_keys(
            &s,
            &[v(&["id"]), v(&["b_c", "x"]), v(&["x", "y"])],
            NameFold::Exact,
            None,
        );
        assert!(e.is_err());
    }
}
