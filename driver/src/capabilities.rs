//! Capabilities: what a driver can do, as data.

use std::fmt;

/// A feature a driver either has or lacks; it cannot be emulated locally.
///
/// Conformance cases that need a feature are run against every driver: one
/// that declares it must pass them, one that does not must fail them with
/// `Unsupported`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Feature {
    /// `begin` / `commit` / `rollback`.
    Transactions,
    /// Unique fields and unique indexes are enforced.
    UniqueConstraints,
    /// References with `deleteBehavior` are enforced.
    ForeignKeys,
    /// `json` fields are stored and returned as documents.
    JsonFields,
    /// `binary` fields.
    BinaryFields,
    /// `vector` fields and nearest-neighbour queries.
    Vectors,
    /// Full-text search.
    FullText,
}

impl Feature {
    /// Every feature.
    pub const ALL: [Feature; 7] = [
        Self::Transactions,
        Self::UniqueConstraints,
        Self::ForeignKeys,
        Self::JsonFields,
        Self::BinaryFields,
        Self::Vectors,
        Self::FullText,
    ];

    /// The snake_case name used in conformance cases.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Transactions => "transactions",
            Self::UniqueConstraints => "unique_constraints",
            Self::ForeignKeys => "foreign_keys",
            Self::JsonFields => "json_fields",
            Self::BinaryFields => "binary_fields",
            Self::Vectors => "vectors",
            Self::FullText => "full_text",
        }
    }

    /// Parses a snake_case name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.as_str() == s)
    }
}

impl fmt::Display for Feature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Transaction isolation levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum IsolationLevel {
    /// Read committed.
    ReadCommitted,
    /// Repeatable read (snapshot).
    RepeatableRead,
    /// Serializable (the default).
    #[default]
    Serializable,
}

impl IsolationLevel {
    /// Every level, weakest first.
    pub const ALL: [IsolationLevel; 3] = [
        Self::ReadCommitted,
        Self::RepeatableRead,
        Self::Serializable,
    ];

    /// The snake_case name (`read_committed`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ReadCommitted => "read_committed",
            Self::RepeatableRead => "repeatable_read",
            Self::Serializable => "serializable",
        }
    }

    /// Parses `read_committed`, `repeatable_read`, `serializable`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "read_committed" => Some(Self::ReadCommitted),
            "repeatable_read" => Some(Self::RepeatableRead),
            "serializable" => Some(Self::Serializable),
            _ => None,
        }
    }
}

/// Whether a driver evaluates a predicate with the protocol's exact meaning
/// (like DataFusion's `TableProviderFilterPushDown`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushdown {
    /// Pushed, and the backend's answer is exact.
    Exact,
    /// Pushed as a superset pre-filter; the planner re-checks locally.
    Inexact,
    /// Not pushed; the planner evaluates it locally.
    Unsupported,
}

/// What a driver can do, resolved at connect time (server versions matter).
///
/// Query-shape flags say what the driver can *push down*; whatever it
/// cannot is run locally by the planner with the reference semantics.
/// [`Feature`]s cannot be emulated.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Capabilities {
    features: Vec<Feature>,
    /// Evaluates `where` filters (subject to [`Pushdown`] per condition).
    pub filters: bool,
    /// Sorts, with the protocol's NULL ordering.
    pub sorting: bool,
    /// Applies limit and offset.
    pub paging: bool,
    /// Projects fields.
    pub projection: bool,
    /// Runs aggregations, groupBy (incl. date buckets) and having.
    pub aggregations: bool,
    /// Distinct rows.
    pub distinct: bool,
    /// Joins between objects of this datasource.
    pub joins: bool,
    /// Keyset cursors.
    pub cursor: bool,
    /// Isolation levels `begin` accepts (empty without transactions).
    pub isolation_levels: Vec<IsolationLevel>,
    /// The backend's bind-parameter limit per statement, if any.
    pub max_bind_params: Option<usize>,
    /// How the backend compares, limits and reserves table and column
    /// names; the engine refuses schemas that would collide under them.
    pub names: crate::NameRules,
}

impl Capabilities {
    /// Everything pushed down, every feature except those listed elsewhere — the
    /// memory driver's capabilities.
    pub fn everything() -> Self {
        Self {
            features: Vec::new(),
            filters: true,
            sorting: true,
            paging: true,
            projection: true,
            aggregations: true,
            distinct: true,
            joins: true,
            cursor: true,
            isolation_levels: Vec::new(),
            max_bind_params: None,
            names: crate::NameRules::default(),
        }
    }

    /// Adds a feature.
    pub fn with(mut self, feature: Feature) -> Self {
        if !self.features.contains(&feature) {
            self.features.push(feature);
        }
        self
    }

    /// Whether the driver has `feature`.
    pub fn has(&self, feature: Feature) -> bool {
        self.features.contains(&feature)
    }

    /// The declared features.
    pub fn features(&self) -> &[Feature] {
        &self.features
    }

    /// Whether `begin(level)` is served: some declared level is at least as
    /// strong (a driver may run a weaker request at a stronger level).
    pub fn serves(&self, level: IsolationLevel) -> bool {
        let rank = |l: IsolationLevel| IsolationLevel::ALL.iter().position(|x| *x == l);
        self.isolation_levels
            .iter()
            .any(|d| rank(*d) >= rank(level))
    }

    /// The strongest declared isolation level: what a transaction gets when
    /// the caller does not ask for one (`None` without transactions).
    pub fn strongest_isolation(&self) -> Option<IsolationLevel> {
        IsolationLevel::ALL
            .into_iter()
            .rev()
            .find(|l| self.isolation_levels.contains(l))
    }

    /// Refuses a schema that needs a feature these capabilities lack: a
    /// reference with an explicit `deleteBehavior` (foreign keys), vector,
    /// JSON and binary fields. Drivers call it in `sync_schema`, so an
    /// undeclared feature fails with `Unsupported` instead of being ignored.
    pub fn check_schema(
        &self,
        schema: &objectql_query_ast::ObjectSchema,
        driver: &str,
    ) -> objectql_query_ast::Result<()> {
        use objectql_query_ast::StorageType;
        for f in schema.fields.values() {
            let needed = match f.storage_type()? {
                _ if f.delete_behavior.is_some() => Some(Feature::ForeignKeys),
                StorageType::Vector { .. } => Some(Feature::Vectors),
                StorageType::Json => Some(Feature::JsonFields),
                StorageType::Binary => Some(Feature::BinaryFields),
                _ => None,
            };
            if let Some(feature) = needed.filter(|f| !self.has(*f)) {
                return Err(objectql_query_ast::Error::unsupported(
                    feature.as_str(),
                    driver,
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stronger_declared_level_serves_a_weaker_request() {
        let mut caps = Capabilities::default();
        assert!(!caps.serves(IsolationLevel::ReadCommitted));
        assert_eq!(caps.strongest_isolation(), None);
        caps.isolation_levels = vec![IsolationLevel::Serializable];
        assert!(IsolationLevel::ALL.into_iter().all(|l| caps.serves(l)));
        caps.isolation_levels = vec![
            IsolationLevel::ReadCommitted,
            IsolationLevel::RepeatableRead,
        ];
        assert!(caps.serves(IsolationLevel::ReadCommitted));
        assert!(caps.serves(IsolationLevel::RepeatableRead));
        assert!(!caps.serves(IsolationLevel::Serializable));
        assert_eq!(
            caps.strongest_isolation(),
            Some(IsolationLevel::RepeatableRead)
        );
        for l in IsolationLevel::ALL {
            assert_eq!(IsolationLevel::parse(l.as_str()), Some(l));
        }
    }
}
