//! Small constructors for sqlparser AST nodes.
//!
//! sqlparser's structs carry many dialect-specific fields; these helpers fill
//! them with their neutral defaults so the compilers read like the SQL they
//! build. sqlparser's `Display` does not add parentheses, so every helper that
//! combines expressions wraps composite operands in [`Expr::Nested`].

use sqlparser::ast::{
    BinaryOperator, CaseWhen, CastKind, DataType, Distinct, DuplicateTreatment, Expr, Function,
    FunctionArg, FunctionArgExpr, FunctionArgumentList, FunctionArguments, GroupByExpr, Ident,
    LimitClause, ObjectName, Offset, OffsetRows, OrderBy, OrderByExpr, OrderByKind, OrderByOptions,
    Query, Select, SelectFlavor, SelectItem, SetExpr, TableAlias, TableFactor, TableWithJoins,
    UnaryOperator, Value as SqlValue,
};

/// A numeric literal (a constant of the compiler, never user data).
pub(crate) fn num(n: impl std::fmt::Display) -> Expr {
    // `parse` keeps this independent of sqlparser's `bigdecimal` feature.
    match n.to_string().parse() {
        Ok(v) => Expr::Value(SqlValue::Number(v, false).into()),
        Err(_) => Expr::Value(SqlValue::Null.into()),
    }
}

/// A string literal (a constant of the compiler, never user data).
pub(crate) fn lit(s: &str) -> Expr {
    Expr::Value(SqlValue::SingleQuotedString(s.to_owned()).into())
}

/// `TRUE` / `FALSE`.
pub(crate) fn boolean(b: bool) -> Expr {
    Expr::Value(SqlValue::Boolean(b).into())
}

/// A placeholder (`?`, `$1`).
pub(crate) fn placeholder(p: String) -> Expr {
    Expr::Value(SqlValue::Placeholder(p).into())
}

/// An unquoted name (function names, keywords-like constants): only ever a
/// compiler constant, hence `'static`.
pub(crate) fn name(s: &'static str) -> ObjectName {
    ObjectName::from(vec![Ident::new(s)]) // constant: &'static str
}

/// Wraps `e` in parentheses unless it is atomic.
pub(crate) fn paren(e: Expr) -> Expr {
    match e {
        Expr::Identifier(_)
        | Expr::CompoundIdentifier(_)
        | Expr::Value(_)
        | Expr::Function(_)
        | Expr::Nested(_)
        | Expr::Cast { .. }
        | Expr::Case { .. } => e,
        other => Expr::Nested(Box::new(other)),
    }
}

/// `left op right`, operands parenthesized when composite.
pub(crate) fn binop(left: Expr, op: BinaryOperator, right: Expr) -> Expr {
    Expr::BinaryOp {
        left: Box::new(paren(left)),
        op,
        right: Box::new(paren(right)),
    }
}

pub(crate) fn eq(a: Expr, b: Expr) -> Expr {
    binop(a, BinaryOperator::Eq, b)
}

/// All of `items` (TRUE when empty).
pub(crate) fn and_all(items: Vec<Expr>) -> Expr {
    fold(items, &BinaryOperator::And, true)
}

/// Any of `items` (FALSE when empty).
pub(crate) fn or_any(items: Vec<Expr>) -> Expr {
    fold(items, &BinaryOperator::Or, false)
}

/// `items` joined by `op`. Up to [`CHAIN`] terms print as one flat chain
/// (`(a AND b AND c)`); longer lists become a balanced tree of such chains,
/// so 10,000 terms nest a few dozen levels, not 10,000: sqlparser prints
/// (and backends parse) expressions recursively, and a linked chain that
/// long overflowed the stack. `AND` and `OR` are associative, so the shape
/// does not change the meaning.
fn fold(mut items: Vec<Expr>, op: &BinaryOperator, identity: bool) -> Expr {
    if items.len() <= CHAIN {
        return chain(items, op, identity);
    }
    let right = items.split_off(items.len() / 2);
    Expr::Nested(Box::new(Expr::BinaryOp {
        left: Box::new(fold(items, op, identity)),
        op: op.clone(),
        right: Box::new(fold(right, op, identity)),
    }))
}

/// The longest flat chain [`fold`] prints.
const CHAIN: usize = 16;

fn chain(items: Vec<Expr>, op: &BinaryOperator, identity: bool) -> Expr {
    let mut it = items.into_iter();
    let Some(first) = it.next() else {
        return boolean(identity);
    };
    let mut acc = first;
    let mut n = 1;
    for e in it {
        acc = Expr::BinaryOp {
            left: Box::new(if n == 1 { paren(acc) } else { acc }),
            op: op.clone(),
            right: Box::new(paren(e)),
        };
        n += 1;
    }
    if n == 1 {
        acc
    } else {
        Expr::Nested(Box::new(acc))
    }
}

/// `NOT e`.
pub(crate) fn not(e: Expr) -> Expr {
    Expr::UnaryOp {
        op: UnaryOperator::Not,
        expr: Box::new(paren(e)),
    }
}

/// `e IS NULL`.
pub(crate) fn is_null(e: Expr) -> Expr {
    Expr::IsNull(Box::new(paren(e)))
}

/// `e IS NOT NULL`.
pub(crate) fn is_not_null(e: Expr) -> Expr {
    Expr::IsNotNull(Box::new(paren(e)))
}

/// `CAST(e AS t)`.
pub(crate) fn cast(e: Expr, t: DataType) -> Expr {
    Expr::Cast {
        kind: CastKind::Cast,
        expr: Box::new(e),
        data_type: t,
        array: false,
        format: None,
    }
}

/// `CASE WHEN cond THEN then END`.
pub(crate) fn case_when(cond: Expr, then: Expr, otherwise: Option<Expr>) -> Expr {
    Expr::Case {
        case_token: sqlparser::ast::helpers::attached_token::AttachedToken::empty(),
        end_token: sqlparser::ast::helpers::attached_token::AttachedToken::empty(),
        operand: None,
        conditions: vec![CaseWhen {
            condition: cond,
            result: then,
        }],
        else_result: otherwise.map(Box::new),
    }
}

/// `e COLLATE collation`.
pub(crate) fn collate(e: Expr, collation: Ident) -> Expr {
    Expr::Collate {
        expr: Box::new(paren(e)),
        collation: ObjectName::from(vec![collation]),
    }
}

/// A function call `name(args)`.
pub(crate) fn func(fname: &'static str, args: Vec<Expr>) -> Expr {
    Expr::Function(function(fname, args, false, None))
}

/// A function value, for aggregates with `DISTINCT` and `FILTER`.
pub(crate) fn function(
    fname: &'static str,
    args: Vec<Expr>,
    distinct: bool,
    filter: Option<Expr>,
) -> Function {
    Function {
        name: name(fname),
        uses_odbc_syntax: false,
        parameters: FunctionArguments::None,
        args: FunctionArguments::List(FunctionArgumentList {
            duplicate_treatment: distinct.then_some(DuplicateTreatment::Distinct),
            args: args
                .into_iter()
                .map(|a| FunctionArg::Unnamed(FunctionArgExpr::Expr(a)))
                .collect(),
            clauses: Vec::new(),
        }),
        filter: filter.map(Box::new),
        null_treatment: None,
        over: None,
        within_group: Vec::new(),
    }
}

/// `count(*)`, optionally with a filter.
pub(crate) fn count_star(filter: Option<Expr>) -> Expr {
    let mut f = function("count", Vec::new(), false, filter);
    f.args = FunctionArguments::List(FunctionArgumentList {
        duplicate_treatment: None,
        args: vec![FunctionArg::Unnamed(FunctionArgExpr::Wildcard)],
        clauses: Vec::new(),
    });
    Expr::Function(f)
}

/// A table reference, optionally aliased.
pub(crate) fn table(t: Ident, alias: Option<Ident>) -> TableFactor {
    TableFactor::Table {
        name: ObjectName::from(vec![t]),
        alias: alias.map(table_alias),
        args: None,
        with_hints: Vec::new(),
        version: None,
        with_ordinality: false,
        partitions: Vec::new(),
        json_path: None,
        sample: None,
        index_hints: Vec::new(),
    }
}

pub(crate) fn table_alias(name: Ident) -> TableAlias {
    TableAlias {
        explicit: true,
        name,
        columns: Vec::new(),
        at: None,
    }
}

/// A derived table `(query) AS alias`.
pub(crate) fn derived(q: Query, alias: Ident) -> TableFactor {
    TableFactor::Derived {
        lateral: false,
        subquery: Box::new(q),
        alias: Some(table_alias(alias)),
        sample: None,
    }
}

/// A `SELECT` with the given parts.
pub(crate) fn select(
    projection: Vec<SelectItem>,
    from: Vec<TableWithJoins>,
    selection: Option<Expr>,
    group_by: Vec<Expr>,
    distinct: bool,
) -> Select {
    Select {
        select_token: sqlparser::ast::helpers::attached_token::AttachedToken::empty(),
        optimizer_hints: Vec::new(),
        distinct: distinct.then_some(Distinct::Distinct),
        select_modifiers: None,
        top: None,
        top_before_distinct: false,
        projection,
        exclude: None,
        into: None,
        from,
        lateral_views: Vec::new(),
        prewhere: None,
        selection,
        connect_by: Vec::new(),
        group_by: GroupByExpr::Expressions(group_by, Vec::new()),
        cluster_by: Vec::new(),
        distribute_by: Vec::new(),
        sort_by: Vec::new(),
        having: None,
        named_window: Vec::new(),
        qualify: None,
        window_before_qualify: false,
        value_table_mode: None,
        flavor: SelectFlavor::Standard,
    }
}

/// A query around a body, with ORDER BY and LIMIT/OFFSET.
pub(crate) fn query(
    body: SetExpr,
    order_by: Vec<OrderByExpr>,
    limit: Option<Expr>,
    offset: Option<Expr>,
) -> Query {
    let limit_clause = (limit.is_some() || offset.is_some()).then(|| LimitClause::LimitOffset {
        limit,
        offset: offset.map(|value| Offset {
            value,
            rows: OffsetRows::None,
        }),
        limit_by: Vec::new(),
    });
    Query {
        with: None,
        body: Box::new(body),
        order_by: if order_by.is_empty() {
            None
        } else {
            Some(OrderBy {
                kind: OrderByKind::Expressions(order_by),
                interpolate: None,
            })
        },
        limit_clause,
        fetch: None,
        locks: Vec::new(),
        for_clause: None,
        settings: None,
        format_clause: None,
        pipe_operators: Vec::new(),
    }
}

/// One ORDER BY item.
pub(crate) fn order_item(expr: Expr, asc: bool, nulls_first: Option<bool>) -> OrderByExpr {
    OrderByExpr {
        expr,
        options: OrderByOptions {
            asc: Some(asc),
            nulls_first,
        },
        with_fill: None,
    }
}

/// `expr AS alias` (or the bare expression when it already has that name).
pub(crate) fn select_item(expr: Expr, alias: Option<Ident>) -> SelectItem {
    match alias {
        Some(alias) => SelectItem::ExprWithAlias { expr, alias },
        None => SelectItem::UnnamedExpr(expr),
    }
}

/// `INSERT INTO table (columns) <source> [on conflict] [RETURNING …]`.
pub(crate) fn insert_into(
    table: ObjectName,
    columns: Vec<ObjectName>,
    source: Query,
    on: Option<sqlparser::ast::OnInsert>,
    returning: Option<Vec<SelectItem>>,
) -> sqlparser::ast::Statement {
    sqlparser::ast::Statement::Insert(sqlparser::ast::Insert {
        insert_token: sqlparser::ast::helpers::attached_token::AttachedToken::empty(),
        optimizer_hints: Vec::new(),
        or: None,
        ignore: false,
        into: true,
        table: sqlparser::ast::TableObject::TableName(table),
        table_alias: None,
        columns,
        overwrite: false,
        source: Some(Box::new(source)),
        assignments: Vec::new(),
        partitioned: None,
        after_columns: Vec::new(),
        has_table_keyword: false,
        on,
        returning,
        output: None,
        replace_into: false,
        priority: None,
        insert_alias: None,
        settings: None,
        format_clause: None,
        multi_table_insert_type: None,
        multi_table_into_clauses: Vec::new(),
        multi_table_when_clauses: Vec::new(),
        multi_table_else_clause: None,
    })
}
