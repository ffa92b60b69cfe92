//! Compiled filters with three-valued logic.
//!
//! A [`Predicate`] is a [`Filter`] whose field names have been resolved to
//! column indexes once, so evaluating it over a row does no string or hash
//! lookups by name.

use std::cmp::Ordering;
use std::collections::HashMap;

use objectql_query_ast::{Error, Filter, MAX_FILTER_DEPTH, Op, Operand, Result, Value};

use super::Columns;
use super::compare::{compare, values_equal};
use super::hash::{FxBuildHasher, hash_row};
use super::like::{LikePattern, icontains};

/// The truth value of a filter over a row (SQL three-valued logic).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Truth {
    /// The row satisfies the filter.
    True,
    /// The row does not satisfy the filter.
    False,
    /// NULL was involved (a positive operator on a NULL field).
    Unknown,
}

impl Truth {
    /// `True` or `False` from a boolean.
    pub fn from_bool(b: bool) -> Self {
        if b { Self::True } else { Self::False }
    }

    /// Whether this is [`Truth::True`].
    pub fn is_true(self) -> bool {
        self == Self::True
    }

    /// `self IS NOT TRUE` (the NULL-safe negation used by `$not`).
    #[must_use]
    pub fn is_not_true(self) -> Self {
        Self::from_bool(self != Self::True)
    }

    /// Three-valued AND.
    #[must_use]
    pub fn and(self, other: Self) -> Self {
        match (self, other) {
            (Self::False, _) | (_, Self::False) => Self::False,
            (Self::Unknown, _) | (_, Self::Unknown) => Self::Unknown,
            _ => Self::True,
        }
    }

    /// Three-valued OR.
    #[must_use]
    pub fn or(self, other: Self) -> Self {
        match (self, other) {
            (Self::True, _) | (_, Self::True) => Self::True,
            (Self::Unknown, _) | (_, Self::Unknown) => Self::Unknown,
            _ => Self::False,
        }
    }
}

/// How deep a compiled filter may nest (validated filters nest at most
/// [`MAX_FILTER_DEPTH`] levels; normalization adds a few).
const MAX_COMPILE_DEPTH: usize = 4 * MAX_FILTER_DEPTH;

/// `$in` lists longer than this are looked up in a hash set.
const IN_HASH_THRESHOLD: usize = 8;

/// A compiled filter, reusable over many rows of the same [`Columns`].
#[derive(Debug, Clone)]
pub struct Predicate {
    root: Node,
}

#[derive(Debug, Clone)]
enum Node {
    And(Vec<Node>),
    Or(Vec<Node>),
    Not(Box<Node>),
    Cmp {
        col: usize,
        cmp: Cmp,
        rhs: Rhs,
    },
    Ne {
        col: usize,
        rhs: Rhs,
    },
    In {
        col: usize,
        set: InSet,
        negated: bool,
    },
    Between {
        col: usize,
        low: Value,
        high: Value,
    },
    Text {
        col: usize,
        op: TextOp,
        pattern: String,
        negated: bool,
    },
    Like {
        col: usize,
        pattern: LikePattern,
    },
    IsNull {
        col: usize,
        want_null: bool,
    },
}

impl Node {
    /// A rough cost of evaluating the node on one row: inline scalars are
    /// cheap, strings chase a pointer, patterns scan text.
    fn cost(&self) -> u32 {
        let scalar = |v: &Value| match v {
            Value::String(_) | Value::Bytes(_) | Value::Json(_) | Value::Array(_) => 2,
            _ => 1,
        };
        match self {
            Self::IsNull { .. } => 0,
            Self::Cmp {
                rhs: Rhs::Value(v), ..
            }
            | Self::Ne {
                rhs: Rhs::Value(v), ..
            } => scalar(v),
            Self::Between { low, .. } => scalar(low),
            Self::Cmp { .. } | Self::Ne { .. } => 2,
            Self::In { .. } => 3,
            Self::Text { .. } | Self::Like { .. } => 4,
            Self::Not(inner) => inner.cost(),
            Self::And(children) | Self::Or(children) => children
                .iter()
                .map(Self::cost)
                .max()
                .unwrap_or(0)
                .saturating_add(1),
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Cmp {
    Eq,
    Gt,
    Gte,
    Lt,
    Lte,
}

#[derive(Debug, Clone)]
enum Rhs {
    Value(Value),
    Column(usize),
}

#[derive(Debug, Clone)]
enum InSet {
    /// Non-null entries, compared one by one.
    List(Vec<Value>),
    /// Non-null entries bucketed by their key hash (candidates are checked
    /// with `$eq` equality, so lookups never clone the probed value).
    Hashed(HashMap<u64, Vec<Value>, FxBuildHasher>),
}

#[derive(Debug, Clone, Copy)]
enum TextOp {
    Contains,
    StartsWith,
    EndsWith,
    IContains,
}

const NULL: Value = Value::Null;

#[inline]
fn cell(row: &[Value], col: usize) -> &Value {
    row.get(col).unwrap_or(&NULL)
}

fn resolve(columns: &Columns, name: &str) -> Result<usize> {
    columns.index_of(name).ok_or_else(|| {
        Error::internal(format!(
            "filter refers to unknown column `{name}` (columns: {})",
            columns.names().join(", ")
        ))
    })
}

impl Predicate {
    /// Resolves `filter`'s field names against `columns`. An unknown column is
    /// an [`Error::Internal`] (validated queries only name known fields).
    pub fn compile(filter: &Filter, columns: &Columns) -> Result<Self> {
        Ok(Self {
            root: compile(filter, columns, 0)?,
        })
    }

    /// The truth value of the filter over `row` (aligned with the columns it
    /// was compiled against; missing trailing cells read as NULL).
    pub fn eval(&self, row: &[Value]) -> Truth {
        eval(&self.root, row)
    }

    /// Whether the filter is TRUE over `row` (the row is selected).
    #[inline]
    pub fn matches(&self, row: &[Value]) -> bool {
        self.eval(row) == Truth::True
    }
}

fn compile(filter: &Filter, columns: &Columns, depth: usize) -> Result<Node> {
    if depth > MAX_COMPILE_DEPTH {
        return Err(Error::plan(format!(
            "filter nests deeper than {MAX_COMPILE_DEPTH} levels"
        )));
    }
    let children = |v: &[Filter]| -> Result<Vec<Node>> {
        v.iter().map(|f| compile(f, columns, depth + 1)).collect()
    };
    Ok(match filter {
        Filter::And(v) => match children(v)? {
            mut one if one.len() == 1 => one.pop().unwrap_or(Node::And(Vec::new())),
            mut many => {
                // Cheap tests first: a row a cheap conjunct rejects never pays
                // for the costly ones. AND is commutative in three-valued
                // logic, so the order never changes the answer.
                many.sort_by_key(Node::cost);
                Node::And(many)
            }
        },
        Filter::Or(v) => match children(v)? {
            mut one if one.len() == 1 => one.pop().unwrap_or(Node::Or(Vec::new())),
            many => Node::Or(many),
        },
        Filter::Not(inner) => Node::Not(Box::new(compile(inner, columns, depth + 1)?)),
        Filter::Condition(c) => {
            let col = resolve(columns, &c.field)?;
            let rhs = |o: &Operand| -> Result<Rhs> {
                Ok(match o {
                    Operand::Value(v) => Rhs::Value(v.clone()),
                    Operand::Field(f) => Rhs::Column(resolve(columns, f)?),
                })
            };
            match &c.op {
                Op::Eq(o) => Node::Cmp {
                    col,
                    cmp: Cmp::Eq,
                    rhs: rhs(o)?,
                },
                Op::Gt(o) => Node::Cmp {
                    col,
                    cmp: Cmp::Gt,
                    rhs: rhs(o)?,
                },
                Op::Gte(o) => Node::Cmp {
                    col,
                    cmp: Cmp::Gte,
                    rhs: rhs(o)?,
                },
                Op::Lt(o) => Node::Cmp {
                    col,
                    cmp: Cmp::Lt,
                    rhs: rhs(o)?,
                },
                Op::Lte(o) => Node::Cmp {
                    col,
                    cmp: Cmp::Lte,
                    rhs: rhs(o)?,
                },
                Op::Ne(o) => Node::Ne { col, rhs: rhs(o)? },
                Op::In(list) => Node::In {
                    col,
                    set: in_set(list),
                    negated: false,
                },
                Op::Nin(list) => Node::In {
                    col,
                    set: in_set(list),
                    negated: true,
                },
                Op::Between(low, high) => Node::Between {
                    col,
                    low: low.clone(),
                    high: high.clone(),
                },
                Op::Contains(s) => text(col, TextOp::Contains, s, false),
                Op::NotContains(s) => text(col, TextOp::Contains, s, true),
                Op::StartsWith(s) => text(col, TextOp::StartsWith, s, false),
                Op::EndsWith(s) => text(col, TextOp::EndsWith, s, false),
                Op::IContains(s) => text(col, TextOp::IContains, s, false),
                Op::Like(p) => Node::Like {
                    col,
                    pattern: LikePattern::new(p, false),
                },
                Op::ILike(p) => Node::Like {
                    col,
                    pattern: LikePattern::new(p, true),
                },
                Op::Null(b) => Node::IsNull { col, want_null: *b },
                Op::Exists(b) => Node::IsNull {
                    col,
                    want_null: !*b,
                },
                other => {
                    return Err(Error::internal(format!(
                        "the evaluator does not know operator `{}`",
                        other.name()
                    )));
                }
            }
        }
        // `Filter` may be `#[non_exhaustive]`.
        #[allow(unreachable_patterns)]
        other => {
            return Err(Error::internal(format!(
                "the evaluator does not know filter {other:?}"
            )));
        }
    })
}

fn text(col: usize, op: TextOp, pattern: &str, negated: bool) -> Node {
    Node::Text {
        col,
        op,
        pattern: pattern.to_owned(),
        negated,
    }
}

fn in_set(list: &[Value]) -> InSet {
    let non_null = list.iter().filter(|v| !v.is_null()).cloned();
    if list.len() > IN_HASH_THRESHOLD {
        let mut buckets: HashMap<u64, Vec<Value>, FxBuildHasher> = HashMap::default();
        for v in non_null {
            buckets.entry(hash_row([&v])).or_default().push(v);
        }
        InSet::Hashed(buckets)
    } else {
        InSet::List(non_null.collect())
    }
}

fn eval(node: &Node, row: &[Value]) -> Truth {
    match node {
        Node::And(children) => {
            let mut acc = Truth::True;
            for c in children {
                match eval(c, row) {
                    Truth::False => return Truth::False,
                    Truth::Unknown => acc = Truth::Unknown,
                    Truth::True => {}
                }
            }
            acc
        }
        Node::Or(children) => {
            let mut acc = Truth::False;
            for c in children {
                match eval(c, row) {
                    Truth::True => return Truth::True,
                    Truth::Unknown => acc = Truth::Unknown,
                    Truth::False => {}
                }
            }
            acc
        }
        Node::Not(inner) => eval(inner, row).is_not_true(),
        Node::Cmp { col, cmp, rhs } => {
            let a = cell(row, *col);
            let b = match rhs {
                Rhs::Value(v) => v,
                Rhs::Column(c) => cell(row, *c),
            };
            if a.is_null() || b.is_null() {
                return Truth::Unknown;
            }
            if let (Cmp::Eq, Value::String(x), Value::String(y)) = (cmp, a, b) {
                // Lengths first: most unequal strings never reach memcmp.
                return Truth::from_bool(x == y);
            }
            match (cmp, compare(a, b)) {
                (Cmp::Eq, o) => Truth::from_bool(o == Some(Ordering::Equal)),
                (_, None) => Truth::Unknown,
                (Cmp::Gt, Some(o)) => Truth::from_bool(o == Ordering::Greater),
                (Cmp::Gte, Some(o)) => Truth::from_bool(o != Ordering::Less),
                (Cmp::Lt, Some(o)) => Truth::from_bool(o == Ordering::Less),
                (Cmp::Lte, Some(o)) => Truth::from_bool(o != Ordering::Greater),
            }
        }
        Node::Ne { col, rhs } => {
            let a = cell(row, *col);
            let b = match rhs {
                Rhs::Value(v) => v,
                Rhs::Column(c) => cell(row, *c),
            };
            // IS DISTINCT FROM.
            Truth::from_bool(match (a.is_null(), b.is_null()) {
                (true, true) => false,
                (true, false) | (false, true) => true,
                (false, false) => !values_equal(a, b),
            })
        }
        Node::In { col, set, negated } => {
            let a = cell(row, *col);
            if a.is_null() {
                return if *negated {
                    Truth::True
                } else {
                    Truth::Unknown
                };
            }
            let found = match set {
                InSet::List(values) => values.iter().any(|v| values_equal(a, v)),
                InSet::Hashed(buckets) => buckets
                    .get(&hash_row([a]))
                    .is_some_and(|bucket| bucket.iter().any(|v| values_equal(a, v))),
            };
            Truth::from_bool(found != *negated)
        }
        Node::Between { col, low, high } => {
            let a = cell(row, *col);
            match (compare(a, low), compare(a, high)) {
                (Some(l), Some(h)) => {
                    Truth::from_bool(l != Ordering::Less && h != Ordering::Greater)
                }
                _ => Truth::Unknown,
            }
        }
        Node::Text {
            col,
            op,
            pattern,
            negated,
        } => {
            let s = match cell(row, *col) {
                Value::Null => {
                    return if *negated {
                        Truth::True
                    } else {
                        Truth::Unknown
                    };
                }
                Value::String(s) => s.as_str(),
                _ => return Truth::from_bool(*negated),
            };
            let hit = match op {
                TextOp::Contains => s.contains(pattern.as_str()),
                TextOp::StartsWith => s.starts_with(pattern.as_str()),
                TextOp::EndsWith => s.ends_with(pattern.as_str()),
                TextOp::IContains => icontains(s, pattern),
            };
            Truth::from_bool(hit != *negated)
        }
        Node::Like { col, pattern } => match cell(row, *col) {
            Value::Null => Truth::Unknown,
            Value::String(s) => Truth::from_bool(pattern.matches(s)),
            _ => Truth::False,
        },
        Node::IsNull { col, want_null } => {
            Truth::from_bool(cell(row, *col).is_null() == *want_null)
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
#[path = "filter_tests.rs"]
mod tests;
