//! Writes: insert and upsert (chunked under the bind-parameter limit),
//! update and delete by id or by filter, with RETURNING where the dialect
//! has it.
//!
//! An empty patch is written as `SET pk = pk` (a no-op that still matches
//! and returns the row). `ON DUPLICATE KEY UPDATE` (MySQL) fires on any
//! unique key, not only `conflict.fields`: the caller's conflict fields
//! should be the table's only unique key besides the primary key.

use objectql_driver::Conflict;
use objectql_query_ast::{Error, Filter, ObjectSchema, Record, Result, StorageType, Value};
use sqlparser::ast::{
    Assignment, AssignmentTarget, ConflictTarget, DoUpdate, Expr, FromTable, Ident, ObjectName,
    OnConflict, OnConflictAction, OnInsert, Parens, SelectItem, SetExpr, Statement as SqlStatement,
    TableWithJoins, Values,
};

use super::ast::{eq, func, insert_into, query, select_item, table};
use super::dialect::UpsertStyle;
use super::expr::{Col, FilterCx, Scope};
use super::{Binder, OutputColumn, SqlCompiler, Statement};

fn token() -> sqlparser::ast::helpers::attached_token::AttachedToken {
    sqlparser::ast::helpers::attached_token::AttachedToken::empty()
}

/// The stored fields of `schema`: (field name, column, storage).
fn stored(schema: &ObjectSchema) -> Result<Vec<(&str, &str, StorageType)>> {
    let mut out = Vec::with_capacity(schema.fields.len());
    for (name, f) in &schema.fields {
        let st = f.storage_type()?;
        if st != StorageType::Virtual {
            out.push((name.as_str(), f.column(), st));
        }
    }
    Ok(out)
}

/// `RETURNING` every stored field (aliased to its field name) and the output columns.
fn returning(
    c: &SqlCompiler<'_>,
    schema: &ObjectSchema,
) -> Result<(Vec<SelectItem>, Vec<OutputColumn>)> {
    let mut items = Vec::new();
    let mut cols = Vec::new();
    for (name, column, st) in stored(schema)? {
        let alias = (name != column).then(|| c.ident(name));
        items.push(select_item(Expr::Identifier(c.ident(column)), alias));
        cols.push(OutputColumn {
            name: name.to_owned(),
            storage: st,
        });
    }
    Ok((items, cols))
}

fn scope(c: &SqlCompiler<'_>, schema: &ObjectSchema) -> Result<Scope> {
    let mut s = Scope::default();
    for (name, column, st) in stored(schema)? {
        s.cols.insert(
            name.to_owned(),
            Col {
                expr: Expr::Identifier(c.ident(column)),
                st,
            },
        );
    }
    Ok(s)
}

fn target(c: &SqlCompiler<'_>, column: &str) -> AssignmentTarget {
    AssignmentTarget::ColumnName(ObjectName::from(vec![c.ident(column)]))
}

pub(super) fn insert(
    c: &SqlCompiler<'_>,
    object: &str,
    records: &[Record],
    conflict: Option<&Conflict>,
) -> Result<Vec<Statement>> {
    let schema = c.schema(object)?;
    let fields = stored(schema)?;
    for r in records {
        if let Some(k) = r.keys().find(|k| !fields.iter().any(|(n, _, _)| n == k)) {
            return Err(Error::validation(
                k.as_str(),
                format!("unknown field `{k}` on object `{object}`"),
            ));
        }
    }
    let want_returning = if conflict.is_some() {
        c.dialect.upsert_returning()
    } else {
        c.dialect.returning()
    };
    let max = c.dialect.max_bind_params();
    let mut out = Vec::new();
    let mut start = 0;
    while start < records.len() {
        // Consecutive records with the same fields share a statement.
        let cols: Vec<(&str, &str, StorageType)> = fields
            .iter()
            .filter(|(n, _, _)| records.get(start).is_some_and(|r| r.contains_key(*n)))
            .copied()
            .collect();
        if cols.is_empty() {
            return Err(c.unsupported("inserting a record without any field"));
        }
        let per = max / cols.len();
        if per == 0 {
            return Err(c.unsupported(format!(
                "a record with {} fields (the bind limit is {max})",
                cols.len()
            )));
        }
        let same =
            |r: &Record| r.len() == cols.len() && cols.iter().all(|(n, _, _)| r.contains_key(*n));
        let mut end = start;
        while end < records.len() && end - start < per && records.get(end).is_some_and(same) {
            end += 1;
        }
        let mut b = Binder::new(c.dialect);
        let mut rows = Vec::with_capacity(end - start);
        for r in records.get(start..end).unwrap_or(&[]) {
            let mut row = Vec::with_capacity(cols.len());
            for (n, _, st) in &cols {
                row.push(b.bind_typed(r.get(*n).unwrap_or(&Value::Null), *st)?);
            }
            rows.push(Parens::with_empty_span(row));
        }
        let on = conflict
            .map(|cf| upsert_clause(c, schema, cf))
            .transpose()?;
        let (ret, columns) = if want_returning {
            let (items, cols) = returning(c, schema)?;
            (Some(items), cols)
        } else {
            (None, Vec::new())
        };
        let source = query(
            SetExpr::Values(Values {
                explicit_row: false,
                value_keyword: false,
                rows,
            }),
            Vec::new(),
            None,
            None,
        );
        let stmt = insert_into(
            ObjectName::from(vec![c.ident(schema.table())]),
            cols.iter()
                .map(|(_, col, _)| ObjectName::from(vec![c.ident(col)]))
                .collect(),
            source,
            on,
            ret,
        );
        out.push(b.finish(stmt.to_string(), columns)?);
        start = end;
    }
    Ok(out)
}

fn column_of<'s>(schema: &'s ObjectSchema, field: &str) -> Result<&'s str> {
    schema
        .get(field)
        .map(objectql_query_ast::Field::column)
        .ok_or_else(|| {
            Error::validation(
                field,
                format!("unknown field `{field}` on object `{}`", schema.name),
            )
        })
}

fn upsert_clause(c: &SqlCompiler<'_>, schema: &ObjectSchema, cf: &Conflict) -> Result<OnInsert> {
    if cf.fields.is_empty() {
        return Err(Error::validation(
            "conflict",
            "an upsert needs conflict fields",
        ));
    }
    let mut updates: Vec<&str> = Vec::new();
    for f in &cf.update_fields {
        updates.push(column_of(schema, f)?);
    }
    let keys: Vec<&str> = cf
        .fields
        .iter()
        .map(|f| column_of(schema, f))
        .collect::<Result<_>>()?;
    let style = c.dialect.upsert_style();
    let assign = |col: &str| -> Assignment {
        let value = match style {
            UpsertStyle::OnConflict => {
                Expr::CompoundIdentifier(vec![Ident::new("excluded"), c.ident(col)])
            }
            UpsertStyle::OnDuplicateKey => func("VALUES", vec![Expr::Identifier(c.ident(col))]),
        };
        Assignment {
            target: target(c, col),
            value,
        }
    };
    let mut assignments: Vec<Assignment> = updates.iter().map(|col| assign(col)).collect();
    if assignments.is_empty() {
        // A no-op update, so the existing row is still returned.
        let col = keys.first().copied().unwrap_or_default();
        assignments.push(Assignment {
            target: target(c, col),
            value: Expr::Identifier(c.ident(col)),
        });
    }
    Ok(match style {
        UpsertStyle::OnConflict => OnInsert::OnConflict(OnConflict {
            conflict_target: Some(ConflictTarget::Columns(
                keys.iter().map(|k| c.ident(k)).collect(),
            )),
            action: OnConflictAction::DoUpdate(DoUpdate {
                assignments,
                selection: None,
            }),
        }),
        UpsertStyle::OnDuplicateKey => OnInsert::DuplicateKeyUpdate(assignments),
    })
}

fn assignments(
    c: &SqlCompiler<'_>,
    schema: &ObjectSchema,
    patch: &Record,
    b: &mut Binder<'_>,
) -> Result<Vec<Assignment>> {
    let mut out = Vec::with_capacity(patch.len().max(1));
    for (k, v) in patch {
        let f = schema.get(k).ok_or_else(|| {
            Error::validation(
                k.as_str(),
                format!("unknown field `{k}` on object `{}`", schema.name),
            )
        })?;
        let st = f.storage_type()?;
        out.push(Assignment {
            target: target(c, f.column()),
            value: b.bind_typed(v, st)?,
        });
    }
    if out.is_empty() {
        let pk = column_of(schema, &schema.primary_key)?;
        out.push(Assignment {
            target: target(c, pk),
            value: Expr::Identifier(c.ident(pk)),
        });
    }
    Ok(out)
}

fn update(
    c: &SqlCompiler<'_>,
    schema: &ObjectSchema,
    patch: &Record,
    filter: Where<'_>,
    with_returning: bool,
) -> Result<Statement> {
    let mut b = Binder::new(c.dialect);
    let assignments = assignments(c, schema, patch, &mut b)?;
    let selection = condition(c, schema, filter, &mut b)?;
    let (ret, columns) = if with_returning && c.dialect.update_returning() {
        let (i, cols) = returning(c, schema)?;
        (Some(i), cols)
    } else {
        (None, Vec::new())
    };
    let stmt = SqlStatement::Update(sqlparser::ast::Update {
        update_token: token(),
        optimizer_hints: Vec::new(),
        table: TableWithJoins {
            relation: table(c.ident(schema.table()), None),
            joins: Vec::new(),
        },
        assignments,
        from: None,
        selection: Some(selection),
        returning: ret,
        output: None,
        or: None,
        order_by: Vec::new(),
        limit: None,
    });
    b.finish(stmt.to_string(), columns)
}

#[derive(Clone, Copy)]
enum Where<'f> {
    Id(&'f Value),
    Filter(&'f Filter),
}

fn condition(
    c: &SqlCompiler<'_>,
    schema: &ObjectSchema,
    w: Where<'_>,
    b: &mut Binder<'_>,
) -> Result<Expr> {
    match w {
        Where::Id(id) => {
            let f = schema.primary_key_field().ok_or_else(|| {
                Error::config(format!("object `{}` has no primary key field", schema.name))
            })?;
            let st = f.storage_type()?;
            let mut col = Expr::Identifier(c.ident(f.column()));
            if st == StorageType::Text {
                col = c.dialect.text_eq_key(col);
            }
            Ok(eq(col, b.bind_typed(id, st)?))
        }
        Where::Filter(f) => {
            let scope = scope(c, schema)?;
            FilterCx {
                d: c.dialect,
                scope: &scope,
                b,
            }
            .filter(f, false)
        }
    }
}

pub(super) fn update_by_id(
    c: &SqlCompiler<'_>,
    object: &str,
    id: &Value,
    patch: &Record,
) -> Result<Statement> {
    update(c, c.schema(object)?, patch, Where::Id(id), true)
}

pub(super) fn update_where(
    c: &SqlCompiler<'_>,
    object: &str,
    filter: &Filter,
    patch: &Record,
) -> Result<Statement> {
    update(c, c.schema(object)?, patch, Where::Filter(filter), false)
}

fn delete(c: &SqlCompiler<'_>, object: &str, w: Where<'_>) -> Result<Statement> {
    let schema = c.schema(object)?;
    let mut b = Binder::new(c.dialect);
    let selection = condition(c, schema, w, &mut b)?;
    let stmt = SqlStatement::Delete(sqlparser::ast::Delete {
        delete_token: token(),
        optimizer_hints: Vec::new(),
        tables: Vec::new(),
        from: FromTable::WithFromKeyword(vec![TableWithJoins {
            relation: table(c.ident(schema.table()), None),
            joins: Vec::new(),
        }]),
        using: None,
        selection: Some(selection),
        returning: None,
        output: None,
        order_by: Vec::new(),
        limit: None,
    });
    b.finish(stmt.to_string(), Vec::new())
}

pub(super) fn delete_by_id(c: &SqlCompiler<'_>, object: &str, id: &Value) -> Result<Statement> {
    delete(c, object, Where::Id(id))
}

pub(super) fn delete_where(
    c: &SqlCompiler<'_>,
    object: &str,
    filter: &Filter,
) -> Result<Statement> {
    delete(c, object, Where::Filter(filter))
}
