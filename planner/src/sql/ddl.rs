//! DDL: create and drop tables, their indexes, and migrations.
//!
//! Columns are typed by the dialect ([`SqlDialect::column_type`]); the primary
//! key is `PRIMARY KEY NOT NULL` (generated for integer keys), required fields
//! are `NOT NULL`, unique and indexed fields get indexes (`CREATE [UNIQUE]
//! INDEX IF NOT EXISTS`, or inline keys where the dialect has no
//! `IF NOT EXISTS` for indexes).
//!
//! `migrate` adds columns with `ALTER TABLE … ADD COLUMN` where it can. Other
//! changes on SQLite use the table rebuild (create the new table under a
//! temporary name, copy the rows converting columns, drop the old table,
//! rename, recreate indexes); the driver runs these statements in one
//! transaction with foreign keys off. Columns of fields the new schema
//! drops are kept (no data is lost). Changes no dialect hook can convert
//! exactly are `Unsupported`.

use objectql_query_ast::{
    DeleteBehavior, Error, Field, Filter, ObjectSchema, Op, Path, Record, Result, StorageType,
    VectorMetric, coerce,
};
use sqlparser::ast::helpers::stmt_create_table::CreateTableBuilder;
use sqlparser::ast::{
    AlterTable, AlterTableOperation, BinaryOperator, CheckConstraint, ColumnDef, ColumnOption,
    ColumnOptionDef, CreateIndex, DataType, Expr, ForeignKeyConstraint, Ident, IndexColumn,
    IndexConstraint, KeyOrIndexDisplay, NullsDistinctOption, ObjectName, ObjectType, OrderByExpr,
    OrderByOptions, PrimaryKeyConstraint, ReferentialAction, RenameTableNameKind, SelectItem,
    SetExpr, Statement as SqlStatement, TableConstraint, TableWithJoins, UniqueConstraint,
};

use super::ast::{binop, cast, insert_into, lit, num, query, select, table};
use super::types::pow10;
use super::{SqlCompiler, Statement};

fn plain(sql: String) -> Statement {
    Statement::new(sql, Vec::new())
}

fn obj(i: Ident) -> ObjectName {
    ObjectName::from(vec![i])
}

fn option(option: ColumnOption) -> ColumnOptionDef {
    ColumnOptionDef { name: None, option }
}

/// Index columns over `cols`; those marked in `nullable` get the
/// protocol's NULL order (`NULLS FIRST`: NULL is the smallest value) where
/// the dialect's indexes have one, so an `ORDER BY … NULLS FIRST` (and its
/// reverse) walks the index instead of sorting.
fn index_columns(c: &SqlCompiler<'_>, cols: &[&str], nullable: &[bool]) -> Vec<IndexColumn> {
    cols.iter()
        .enumerate()
        .map(|(i, col)| IndexColumn {
            column: OrderByExpr {
                expr: Expr::Identifier(c.ident(col)),
                options: OrderByOptions {
                    asc: None,
                    nulls_first: (c.dialect.index_nulls_first()
                        && nullable.get(i).copied().unwrap_or(false))
                    .then_some(true),
                },
                with_fill: None,
            },
            operator_class: None,
        })
        .collect()
}

/// An index: (name, columns, unique, and for a vector index its metric).
struct IndexSpec {
    name: String,
    columns: Vec<String>,
    unique: bool,
    /// A vector index (over one vector column), built for this metric.
    vector: Option<VectorMetric>,
    /// Per column: whether it may hold NULL.
    nullable: Vec<bool>,
}

/// The metric of `f` if it is a vector field.
fn vector_metric(f: &Field) -> Result<Option<VectorMetric>> {
    Ok(match f.storage_type()? {
        StorageType::Vector { .. } => Some(f.metric.unwrap_or_default()),
        _ => None,
    })
}

/// The name of a generated index on `columns` of `table`.
///
/// SQLite and PostgreSQL keep index names per database, not per table, so
/// the name must not collide with another table's: `ixa_b` with `c` and
/// `ixa` with `b_c` once both made `ixa_b_c_key`, and the second
/// `CREATE INDEX IF NOT EXISTS` silently did nothing. The name is a readable
/// prefix (at most 24 bytes of the table name) and a 64-bit FNV-1a hash of
/// the table, the columns and the kind, separated by NUL (which no name may
/// contain), so it is unique and at most 45 bytes: under PostgreSQL's 63
/// and MySQL's 64, never truncated. The hash is written out here (not
/// `std`'s hasher) so the name is the same in every build, forever.
pub(crate) fn index_name(table: &str, columns: &[&str], unique: bool) -> String {
    let kind = if unique { "key" } else { "idx" };
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut feed = |bytes: &[u8]| {
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    };
    feed(table.as_bytes());
    for c in columns {
        feed(b"\0");
        feed(c.as_bytes());
    }
    feed(b"\0");
    feed(kind.as_bytes());
    let mut end = table.len().min(24);
    while !table.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}_{h:016x}_{kind}", &table[..end])
}

fn indexes(c: &SqlCompiler<'_>, schema: &ObjectSchema) -> Result<Vec<IndexSpec>> {
    let table = schema.table();
    let mut out = Vec::new();
    for (name, f) in &schema.fields {
        if *name == schema.primary_key || f.storage_type()? == StorageType::Virtual {
            continue;
        }
        if f.unique || f.index {
            out.push(IndexSpec {
                name: index_name(table, &[f.column()], f.unique),
                columns: vec![f.column().to_owned()],
                unique: f.unique,
                vector: vector_metric(f)?,
                nullable: vec![!f.required],
            });
        }
    }
    for ix in &schema.indexes {
        let fields = ix
            .fields
            .iter()
            .map(|n| {
                schema.get(n).ok_or_else(|| {
                    Error::validation("indexes", format!("index field `{n}` is not a field"))
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let columns: Vec<String> = fields.iter().map(|f| f.column().to_owned()).collect();
        let mut vector = None;
        for f in &fields {
            if let Some(m) = vector_metric(f)? {
                if fields.len() > 1 {
                    return Err(c.unsupported("an index over a vector field and other fields"));
                }
                vector = Some(m);
            }
        }
        let name = ix.name.clone().unwrap_or_else(|| {
            let cols: Vec<&str> = columns.iter().map(String::as_str).collect();
            index_name(table, &cols, ix.unique)
        });
        let nullable = ix
            .fields
            .iter()
            .zip(&fields)
            .map(|(n, f)| *n != schema.primary_key && !f.required)
            .collect();
        out.push(IndexSpec {
            name,
            columns,
            unique: ix.unique,
            vector,
            nullable,
        });
    }
    Ok(out)
}

/// The vector index over field `field` of `schema` (its name and metric),
/// if the schema declares one: `index: true` on the field, or an object
/// index over that field alone.
pub(super) fn vector_index(
    c: &SqlCompiler<'_>,
    schema: &ObjectSchema,
    field: &str,
) -> Result<Option<(String, VectorMetric)>> {
    let Some(f) = schema.get(field) else {
        return Ok(None);
    };
    Ok(indexes(c, schema)?.into_iter().find_map(|ix| {
        let m = ix.vector?;
        (ix.columns.len() == 1 && ix.columns.first().map(String::as_str) == Some(f.column()))
            .then_some((ix.name, m))
    }))
}

fn is_key(schema: &ObjectSchema, name: &str, f: &Field) -> bool {
    *name == schema.primary_key
        || f.unique
        || f.index
        // A foreign key is indexed (MySQL needs a key-sized type for it).
        || enforced_reference(f).is_some()
        || schema
            .indexes
            .iter()
            .any(|i| i.fields.iter().any(|x| x == name))
}

/// `REFERENCES "table" ("pk") ON DELETE …` for a reference field with an
/// explicit `deleteBehavior` (a reference without one is not enforced, as
/// on every driver). The referenced object must be in the compiler's catalog.
fn foreign_key(
    c: &SqlCompiler<'_>,
    schema: &ObjectSchema,
    name: &str,
    f: &Field,
) -> Result<Option<ColumnOption>> {
    let (Some(target), Some(behavior)) = (&f.reference, f.delete_behavior) else {
        return Ok(None);
    };
    let referenced = if *target == schema.name {
        schema
    } else {
        c.catalog.get(target).ok_or_else(|| {
            Error::config(format!(
                "field `{name}` of `{}` references `{target}`, which is not registered (register it first)",
                schema.name
            ))
        })?
    };
    let pk = referenced
        .primary_key_field()
        .ok_or_else(|| Error::config(format!("`{target}` has no primary key field")))?;
    Ok(Some(ColumnOption::ForeignKey(ForeignKeyConstraint {
        name: None,
        index_name: None,
        columns: Vec::new(),
        foreign_table: obj(c.ident(referenced.table())),
        referred_columns: vec![c.ident(pk.column())],
        on_delete: Some(match behavior {
            DeleteBehavior::SetNull => ReferentialAction::SetNull,
            DeleteBehavior::Cascade => ReferentialAction::Cascade,
            DeleteBehavior::Restrict => ReferentialAction::Restrict,
        }),
        on_update: None,
        match_kind: None,
        characteristics: None,
    })))
}

fn column_def(
    c: &SqlCompiler<'_>,
    schema: &ObjectSchema,
    name: &str,
    f: &Field,
) -> Result<Option<ColumnDef>> {
    let d = c.dialect;
    let st = f.storage_type()?;
    if st == StorageType::Virtual {
        return Ok(None);
    }
    if let StorageType::Decimal { precision, .. } = st
        && precision > d.max_decimal_precision()
    {
        return Err(c.unsupported(format!(
            "decimal precision {precision} (at most {})",
            d.max_decimal_precision()
        )));
    }
    let key = is_key(schema, name, f);
    let data_type = d.column_type(st, f.max_length, key)?;
    let mut options: Vec<ColumnOptionDef> = d.column_options(st).into_iter().map(option).collect();
    if name == schema.primary_key {
        options.push(option(ColumnOption::NotNull));
        options.push(option(ColumnOption::PrimaryKey(PrimaryKeyConstraint {
            name: None,
            index_name: None,
            index_type: None,
            columns: Vec::new(),
            index_options: Vec::new(),
            characteristics: None,
        })));
        if st == StorageType::Integer
            && let Some(auto) = d.auto_increment()
        {
            options.push(option(auto));
        }
    } else if f.required {
        options.push(option(ColumnOption::NotNull));
    }
    if let Some(fk) = foreign_key(c, schema, name, f)? {
        options.push(option(fk));
    }
    if let Some(check) = d.column_check(Expr::Identifier(c.ident(f.column())), st) {
        options.push(option(ColumnOption::Check(CheckConstraint {
            name: None,
            expr: Box::new(check),
            enforced: None,
        })));
    }
    Ok(Some(ColumnDef {
        name: c.ident(f.column()),
        data_type,
        options,
    }))
}

/// The key of a vector index: `libsql_vector_idx("col", 'metric=…')` on
/// libSQL.
fn vector_index_columns(
    c: &SqlCompiler<'_>,
    ix: &IndexSpec,
    metric: VectorMetric,
) -> Result<Vec<IndexColumn>> {
    if ix.unique {
        return Err(c.unsupported("unique vector indexes"));
    }
    let [col] = ix.columns.as_slice() else {
        return Err(c.unsupported("an index over a vector field and other fields"));
    };
    let key = c
        .dialect
        .vector_index_key(Expr::Identifier(c.ident(col)), metric)
        .ok_or_else(|| c.unsupported("vector indexes"))?;
    Ok(vec![IndexColumn {
        column: OrderByExpr {
            expr: key,
            options: OrderByOptions {
                asc: None,
                nulls_first: None,
            },
            with_fill: None,
        },
        operator_class: None,
    }])
}

fn create_index(c: &SqlCompiler<'_>, table_name: &str, ix: &IndexSpec) -> Result<Statement> {
    let cols: Vec<&str> = ix.columns.iter().map(String::as_str).collect();
    let columns = match ix.vector {
        Some(metric) => vector_index_columns(c, ix, metric)?,
        None => index_columns(c, &cols, &ix.nullable),
    };
    Ok(plain(
        SqlStatement::CreateIndex(CreateIndex {
            name: Some(obj(c.ident(&ix.name))),
            table_name: obj(c.ident(table_name)),
            using: None,
            columns,
            unique: ix.unique,
            concurrently: false,
            if_not_exists: true,
            include: Vec::new(),
            nulls_distinct: None,
            with: Vec::new(),
            predicate: None,
            index_options: Vec::new(),
            alter_options: Vec::new(),
        })
        .to_string(),
    ))
}

fn drop_index(c: &SqlCompiler<'_>, name: &str) -> Statement {
    plain(
        SqlStatement::Drop {
            object_type: ObjectType::Index,
            if_exists: true,
            names: vec![obj(c.ident(name))],
            cascade: false,
            restrict: false,
            purge: false,
            temporary: false,
            table: None,
        }
        .to_string(),
    )
}

fn inline_index(c: &SqlCompiler<'_>, ix: &IndexSpec) -> TableConstraint {
    let cols: Vec<&str> = ix.columns.iter().map(String::as_str).collect();
    if ix.unique {
        TableConstraint::Unique(UniqueConstraint {
            name: Some(c.ident(&ix.name)),
            index_name: None,
            index_type_display: KeyOrIndexDisplay::Key,
            index_type: None,
            columns: index_columns(c, &cols, &[]),
            index_options: Vec::new(),
            characteristics: None,
            nulls_distinct: NullsDistinctOption::None,
        })
    } else {
        TableConstraint::Index(IndexConstraint {
            display_as_key: false,
            name: Some(c.ident(&ix.name)),
            index_type: None,
            columns: index_columns(c, &cols, &[]),
            index_options: Vec::new(),
        })
    }
}

/// `CREATE TABLE` for `schema` under `table_name`, and its index statements.
fn create(
    c: &SqlCompiler<'_>,
    schema: &ObjectSchema,
    table_name: &str,
) -> Result<(Statement, Vec<Statement>)> {
    let mut columns = Vec::new();
    for (name, f) in &schema.fields {
        if let Some(def) = column_def(c, schema, name, f)? {
            columns.push(def);
        }
    }
    let specs = indexes(c, schema)?;
    let inline = c.dialect.inline_indexes();
    let constraints = if inline {
        specs.iter().map(|ix| inline_index(c, ix)).collect()
    } else {
        Vec::new()
    };
    let stmt = CreateTableBuilder::new(obj(c.ident(table_name)))
        .if_not_exists(true)
        .columns(columns)
        .constraints(constraints)
        .build();
    let idx = if inline {
        Vec::new()
    } else {
        specs
            .iter()
            .map(|ix| create_index(c, table_name, ix))
            .collect::<Result<_>>()?
    };
    Ok((plain(SqlStatement::CreateTable(stmt).to_string()), idx))
}

pub(super) fn create_table(c: &SqlCompiler<'_>, schema: &ObjectSchema) -> Result<Vec<Statement>> {
    let (t, idx) = create(c, schema, schema.table())?;
    let mut out = vec![t];
    out.extend(idx);
    Ok(out)
}

fn drop_named(c: &SqlCompiler<'_>, table_name: &str) -> Statement {
    plain(
        SqlStatement::Drop {
            object_type: ObjectType::Table,
            if_exists: true,
            names: vec![obj(c.ident(table_name))],
            cascade: false,
            restrict: false,
            purge: false,
            temporary: false,
            table: None,
        }
        .to_string(),
    )
}

pub(super) fn drop_table(c: &SqlCompiler<'_>, object: &str) -> Statement {
    let table_name = c.catalog.get(object).map_or(object, ObjectSchema::table);
    drop_named(c, table_name)
}

fn alter(c: &SqlCompiler<'_>, table_name: &str, op: AlterTableOperation) -> Statement {
    plain(
        SqlStatement::AlterTable(AlterTable {
            name: obj(c.ident(table_name)),
            if_exists: false,
            only: false,
            operations: vec![op],
            location: None,
            on_cluster: None,
            table_type: None,
            end_token: sqlparser::ast::helpers::attached_token::AttachedToken::empty(),
        })
        .to_string(),
    )
}

/// How an old column's stored value becomes the new column's, when exact.
fn convert(c: &SqlCompiler<'_>, col: Expr, from: StorageType, to: StorageType) -> Option<Expr> {
    use StorageType as S;
    if from == to {
        return Some(col);
    }
    let scaled = c.dialect.scaled_decimals();
    match (from, to) {
        (S::Integer, S::Float) => Some(cast(col, DataType::Real)),
        (S::Integer, S::Text) => Some(cast(col, DataType::Text)),
        (S::Integer, S::Decimal { scale, .. }) if scaled => {
            Some(binop(col, BinaryOperator::Multiply, num(pow10(scale)?)))
        }
        (S::Decimal { scale: a, .. }, S::Decimal { scale: b, .. }) if scaled && b >= a => {
            Some(binop(col, BinaryOperator::Multiply, num(pow10(b - a)?)))
        }
        (S::Boolean, S::Integer) => Some(col),
        (S::Date, S::DateTime) => Some(binop(
            col,
            BinaryOperator::StringConcat,
            lit("T00:00:00.000000Z"),
        )),
        _ => None,
    }
}

pub(super) fn migrate(
    c: &SqlCompiler<'_>,
    old: &ObjectSchema,
    new: &ObjectSchema,
) -> Result<Vec<Statement>> {
    let mut out = migrate_columns(c, old, new)?;
    // New fields with a default take it on existing rows too, as the memory
    // driver does (defaults are applied by the engine, not the column).
    for (name, f) in &new.fields {
        if old.get(name).is_some() {
            continue;
        }
        let st = f.storage_type()?;
        if let Some(default) = new.default_of(f)? {
            let path = Path::root("fields").key(name).key("defaultValue");
            let value = coerce(default, st, &path)?;
            let mut patch = Record::new();
            patch.insert(name.clone(), value);
            let missing = Filter::cond(name.clone(), Op::Null(true));
            out.push(super::write::update_where(c, &new.name, &missing, &patch)?);
        }
    }
    Ok(out)
}

fn migrate_columns(
    c: &SqlCompiler<'_>,
    old: &ObjectSchema,
    new: &ObjectSchema,
) -> Result<Vec<Statement>> {
    if old.table() != new.table() {
        return Err(c.unsupported("renaming a table in a migration"));
    }
    let table_name = new.table();
    let mut adds = Vec::new();
    let mut rebuild = old.primary_key != new.primary_key;
    for (name, f) in &new.fields {
        let st = f.storage_type()?;
        if st == StorageType::Virtual {
            continue;
        }
        match old.get(name) {
            None => {
                // SQLite cannot add a key or a NOT NULL column without default.
                if !c.dialect.table_rebuild() || !(f.unique || f.required) {
                    if let Some(def) = column_def(c, new, name, f)? {
                        adds.push(alter(
                            c,
                            table_name,
                            AlterTableOperation::AddColumn {
                                column_keyword: true,
                                if_not_exists: false,
                                column_def: def,
                                column_position: None,
                            },
                        ));
                    }
                } else {
                    rebuild = true;
                }
            }
            Some(o) => {
                let same = o.storage_type()? == st
                    && o.required == f.required
                    && o.unique == f.unique
                    && o.column() == f.column()
                    && o.max_length == f.max_length
                    && enforced_reference(o) == enforced_reference(f);
                rebuild |= !same;
            }
        }
    }
    let old_ix: Vec<(String, Option<VectorMetric>)> = indexes(c, old)?
        .into_iter()
        .map(|i| (i.name, i.vector))
        .collect();
    let new_ix: Vec<IndexSpec> = indexes(c, new)?
        .into_iter()
        .filter(|i| rebuild || !old_ix.contains(&(i.name.clone(), i.vector)))
        .collect();
    if !rebuild {
        let mut out = adds;
        for ix in &new_ix {
            // A vector index whose metric changed is dropped and built again.
            if ix.vector.is_some() && old_ix.iter().any(|(name, _)| *name == ix.name) {
                out.push(drop_index(c, &ix.name));
            }
            if c.dialect.inline_indexes() {
                out.push(alter(
                    c,
                    table_name,
                    AlterTableOperation::AddConstraint {
                        constraint: inline_index(c, ix),
                        not_valid: false,
                    },
                ));
            } else {
                out.push(create_index(c, table_name, ix)?);
            }
        }
        return Ok(out);
    }
    if !c.dialect.table_rebuild() {
        return Err(c.unsupported("changing a column's type or constraints in a migration"));
    }
    sqlite_rebuild(c, old, new)
}

/// The reference a column's foreign key enforces, if any.
fn enforced_reference(f: &Field) -> Option<(DeleteBehavior, Option<&str>)> {
    f.delete_behavior.map(|b| (b, f.reference.as_deref()))
}

/// The SQLite table rebuild.
fn sqlite_rebuild(
    c: &SqlCompiler<'_>,
    old: &ObjectSchema,
    new: &ObjectSchema,
) -> Result<Vec<Statement>> {
    let table_name = new.table();
    let tmp = format!("{table_name}__objectql_new");
    // Keep the columns of dropped fields, with their data.
    let mut target = new.clone();
    for (name, f) in &old.fields {
        if !target.fields.contains_key(name) && f.storage_type()? != StorageType::Virtual {
            let mut kept = f.clone();
            kept.required = false;
            kept.unique = false;
            kept.index = false;
            target.fields.insert(name.clone(), kept);
        }
    }
    let (create_tmp, _) = create(c, &target, &tmp)?;
    let (_, idx) = create(c, &target, table_name)?;
    let mut cols = Vec::new();
    let mut items = Vec::new();
    for (name, f) in &target.fields {
        let st = f.storage_type()?;
        let Some(o) = old.get(name) else { continue };
        let ost = o.storage_type()?;
        if st == StorageType::Virtual || ost == StorageType::Virtual {
            continue;
        }
        let e = convert(c, Expr::Identifier(c.ident(o.column())), ost, st).ok_or_else(|| {
            c.unsupported(format!(
                "converting field `{name}` from {} to {}",
                ost.name(),
                st.name()
            ))
        })?;
        cols.push(obj(c.ident(f.column())));
        items.push(SelectItem::UnnamedExpr(e));
    }
    let source = query(
        SetExpr::Select(Box::new(select(
            items,
            vec![TableWithJoins {
                relation: table(c.ident(table_name), None),
                joins: Vec::new(),
            }],
            None,
            Vec::new(),
            false,
        ))),
        Vec::new(),
        None,
        None,
    );
    let copy = insert_into(obj(c.ident(&tmp)), cols, source, None, None);
    let mut out = vec![
        drop_named(c, &tmp),
        create_tmp,
        plain(copy.to_string()),
        drop_named(c, table_name),
        alter(
            c,
            &tmp,
            AlterTableOperation::RenameTable {
                table_name: RenameTableNameKind::To(obj(c.ident(table_name))),
            },
        ),
    ];
    out.extend(idx);
    Ok(out)
}
