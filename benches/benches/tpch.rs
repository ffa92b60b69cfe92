#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]
// Answers are compared and ratios printed as floats: display only.
#![allow(clippy::cast_precision_loss)]
//! TPC-H across three datasources, measured in one run against the same
//! queries with every table in PostgreSQL and against a peer.
//!
//! Data: `tpchgen` / `tpchgen-arrow` at scale factor 0.1 (set
//! `OBJECTQL_TPCH_SF`, e.g. `1`), split as the issue asks:
//!
//! - PostgreSQL: `lineitem`, `orders` (and, for the all-in-PostgreSQL side,
//!   the other six tables too, in the same schema);
//! - MariaDB/MySQL: `customer`, `nation`, `region`;
//! - SQLite: `part`, `partsupp`, `supplier`.
//!
//! `lineitem` and `partsupp` get a synthetic integer primary key (`l_id`,
//! `ps_id`: an object has one primary-key field). The join columns carry an
//! index on every side. The data is loaded through objectql once and kept
//! (PostgreSQL schema and MySQL database `objectql_tpch_sf0_1`, SQLite file
//! `objectql_tpch_sf0_1.db` in the temporary directory); a table whose row
//! count differs from the generated data is reloaded with the rest.
//!
//! Sides, each running the same SQL text (table names qualified per side):
//!
//! - `objectql`: `Engine::sql` over the three datasources (DataFusion joins
//!   across them; filters, whole single-datasource subtrees and join keys
//!   pushed to the drivers);
//! - `objectql_all_postgres`: `Engine::sql` with every table in one
//!   PostgreSQL datasource (the whole query can go to PostgreSQL);
//! - `postgres`: raw sqlx on the all-in-PostgreSQL tables (every row
//!   fetched, none decoded);
//! - `table_providers`: `datafusion-table-providers` 0.15 (same DataFusion)
//!   with its PostgreSQL and MySQL providers and its `datafusion-federation`
//!   planner. It has no SQLite provider we can link (rusqlite and libsql
//!   cannot live in one binary), so its SQLite tables are `MemTable`s
//!   holding the same rows: that favours the peer.
//!
//! Before timing, every side's answer is checked against raw PostgreSQL's,
//! and a table of rows shipped from each datasource over the rows the query
//! needed (rows of each table that take part in the answer) is printed: with
//! join key pushdown, without it, with no pushdown at all, and the peer's.
//!
//! `whole_subtree` times a join + filter + group + sort on PostgreSQL alone
//! through federation (one pushed driver query) against the same pushed
//! QueryAST query run through `Session::find` (the driver directly).
//!
//! Servers as in `benches/postgres.rs` and `benches/mysql.rs`
//! (`OBJECTQL_BENCH_POSTGRES_URL`, `OBJECTQL_BENCH_MYSQL_URL`, then the
//! `OBJECTQL_TEST_*` ones, then the local defaults). An unreachable server
//! is a panic, never a skip. Run with
//! `cargo bench -p objectql-benches --bench tpch`.

use std::collections::{BTreeMap, HashMap};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Date32Type, Decimal128Type, Int32Type, Int64Type, SchemaRef};
use chrono::NaiveDate;
use criterion::{Criterion, SamplingMode};
use datafusion::catalog::TableProvider;
use datafusion::common::TableReference;
use datafusion::datasource::MemTable;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::expressions::lit;
use datafusion::physical_plan::filter::FilterExec;
use datafusion::prelude::SessionContext;
use datafusion_table_providers::mysql::MySQLTableFactory;
use datafusion_table_providers::postgres::PostgresTableFactory;
use datafusion_table_providers::sql::db_connection_pool::mysqlpool::MySQLConnectionPool;
use datafusion_table_providers::sql::db_connection_pool::postgrespool::PostgresConnectionPool;
use objectql::federation::{Federation, ObjectScanExec, batches_to_records};
use objectql::{Engine, Field, ObjectSchema, Query, Record, Value, quote_ident};
use objectql_driver_mysql::sqlx::{self as mysqlx, Connection as _};
use objectql_driver_postgres::sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use objectql_driver_postgres::sqlx::{self, AssertSqlSafe, Row as _};
use objectql_query_ast::Index;
use rust_decimal::Decimal;
use secrecy::SecretString;
use tpchgen::generators::{
    CustomerGenerator, LineItemGenerator, NationGenerator, OrderGenerator, PartGenerator,
    PartSuppGenerator, RegionGenerator, SupplierGenerator,
};
use tpchgen_arrow::{
    CustomerArrow, LineItemArrow, NationArrow, OrderArrow, PartArrow, PartSuppArrow, RegionArrow,
    SupplierArrow,
};

/// The join key limit of the "many keys" column of the rows-shipped table.
const MANY_KEYS: usize = 100_000;

/// Rows per generated batch and per `insert_many` call when loading.
const LOAD_CHUNK: usize = 10_000;

// ---------------------------------------------------------------------------
// Servers and where the data lives
// ---------------------------------------------------------------------------

/// Whether to print `query`'s federated EXPLAIN ANALYZE tree
/// (`OBJECTQL_TPCH_EXPLAIN`: query names separated by commas, or `all`).
fn explained(query: &str) -> bool {
    std::env::var("OBJECTQL_TPCH_EXPLAIN")
        .is_ok_and(|v| v.split(',').any(|q| q.trim() == query || q.trim() == "all"))
}

/// The scale factor (`OBJECTQL_TPCH_SF`, default 0.1).
fn scale_factor() -> f64 {
    match std::env::var("OBJECTQL_TPCH_SF") {
        Ok(s) => match s.parse::<f64>() {
            Ok(sf) if sf > 0.0 && sf <= 10.0 => sf,
            _ => panic!("OBJECTQL_TPCH_SF={s}: expected a scale factor in (0, 10]"),
        },
        Err(_) => 0.1,
    }
}

/// Where one scale factor's data lives.
struct Stores {
    /// The name of the PostgreSQL schema, the MySQL database and the
    /// SQLite file (`objectql_tpch_sf0_1`).
    tag: String,
    postgres: String,
    mysql: String,
    sqlite: std::path::PathBuf,
}

impl Stores {
    fn new(sf: f64) -> Self {
        let tag = format!("objectql_tpch_sf{}", sf.to_string().replace('.', "_"));
        let sqlite = std::env::temp_dir().join(format!("{tag}.db"));
        Self {
            tag,
            postgres: objectql_benches::postgres_url(),
            mysql: objectql_benches::mysql_url(),
            sqlite,
        }
    }

    /// The PostgreSQL datasource URL: the server, in this schema.
    fn postgres_datasource(&self) -> String {
        let sep = if self.postgres.contains('?') {
            '&'
        } else {
            '?'
        };
        format!("{}{sep}schema={}", self.postgres, self.tag)
    }

    /// The MySQL server URL with this database as its path.
    fn mysql_datasource(&self) -> String {
        let start = self.mysql.find("://").map_or(0, |i| i + 3);
        let end = self.mysql[start..]
            .find(['/', '?'])
            .map_or(self.mysql.len(), |i| start + i);
        format!("{}/{}", &self.mysql[..end], self.tag)
    }

    fn sqlite_datasource(&self) -> String {
        format!("sqlite://{}", self.sqlite.display())
    }

    /// Creates the schema and the database (`fresh`: drops them and the
    /// SQLite file first).
    async fn prepare(&self, fresh: bool) {
        let mut pg = sqlx::PgConnection::connect(&self.postgres)
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "cannot reach PostgreSQL at {} ({e}); start a server there or set \
                     OBJECTQL_BENCH_POSTGRES_URL",
                    self.postgres
                )
            });
        let mut my = mysqlx::MySqlConnection::connect(&self.mysql)
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "cannot reach MySQL/MariaDB at {} ({e}); start a server there or set \
                     OBJECTQL_BENCH_MYSQL_URL",
                    self.mysql
                )
            });
        let name = quote_ident('"', &self.tag);
        let my_name = quote_ident('`', &self.tag);
        if fresh {
            sqlx::raw_sql(AssertSqlSafe(format!(
                "DROP SCHEMA IF EXISTS {name} CASCADE"
            )))
            .execute(&mut pg)
            .await
            .unwrap();
            mysqlx::raw_sql(mysqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {my_name}"
            )))
            .execute(&mut my)
            .await
            .unwrap();
            let _ = std::fs::remove_file(&self.sqlite);
        }
        sqlx::raw_sql(AssertSqlSafe(format!("CREATE SCHEMA IF NOT EXISTS {name}")))
            .execute(&mut pg)
            .await
            .unwrap();
        mysqlx::raw_sql(mysqlx::AssertSqlSafe(format!(
            "CREATE DATABASE IF NOT EXISTS {my_name}"
        )))
        .execute(&mut my)
        .await
        .unwrap();
        pg.close().await.unwrap();
        my.close().await.unwrap();
    }

    /// Refreshes the servers' statistics of every table, as autovacuum
    /// and InnoDB would in time: the federation orders its joins by the
    /// drivers' row estimates, and PostgreSQL has none for a table never
    /// analyzed.
    async fn analyze(&self) {
        let mut pg = sqlx::PgConnection::connect(&self.postgres).await.unwrap();
        let mut my = mysqlx::MySqlConnection::connect(&self.mysql).await.unwrap();
        let schema = quote_ident('"', &self.tag);
        let database = quote_ident('`', &self.tag);
        for table in &TABLES {
            sqlx::raw_sql(AssertSqlSafe(format!(
                "ANALYZE {schema}.{}",
                quote_ident('"', table.name)
            )))
            .execute(&mut pg)
            .await
            .unwrap();
            if table.home == Home::Mysql {
                mysqlx::raw_sql(mysqlx::AssertSqlSafe(format!(
                    "ANALYZE TABLE {database}.{}",
                    quote_ident('`', table.name)
                )))
                .execute(&mut my)
                .await
                .unwrap();
            }
        }
        pg.close().await.unwrap();
        my.close().await.unwrap();
    }

    /// A raw sqlx pool on the all-in-PostgreSQL tables.
    async fn raw_postgres(&self) -> PgPool {
        let options = PgConnectOptions::from_str(&self.postgres)
            .unwrap()
            .options([("search_path", quote_ident('"', &self.tag))]);
        PgPoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .unwrap()
    }
}

// ---------------------------------------------------------------------------
// The tables
// ---------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Home {
    Postgres,
    Mysql,
    Sqlite,
}

impl Home {
    /// The datasource name in the federated engine.
    fn datasource(self) -> &'static str {
        match self {
            Self::Postgres => "pg",
            Self::Mysql => "my",
            Self::Sqlite => "lite",
        }
    }
}

type Batches = Box<dyn Iterator<Item = Result<RecordBatch, arrow::error::ArrowError>>>;

struct Table {
    name: &'static str,
    home: Home,
    /// The primary key: a column of the data, or a synthetic one
    /// (`synthetic`: the row's position, from 1).
    key: &'static str,
    synthetic: bool,
    /// Columns that get an index (the join columns).
    indexes: &'static [&'static str],
    schema: fn() -> SchemaRef,
    generate: fn(f64) -> Batches,
}

const TABLES: [Table; 8] = [
    Table {
        name: "lineitem",
        home: Home::Postgres,
        key: "l_id",
        synthetic: true,
        indexes: &["l_orderkey", "l_partkey", "l_suppkey"],
        schema: LineItemArrow::schema_ref,
        generate: |sf| {
            Box::new(
                LineItemArrow::new(LineItemGenerator::new(sf, 1, 1)).with_batch_size(LOAD_CHUNK),
            )
        },
    },
    Table {
        name: "orders",
        home: Home::Postgres,
        key: "o_orderkey",
        synthetic: false,
        indexes: &["o_custkey"],
        schema: OrderArrow::schema_ref,
        generate: |sf| {
            Box::new(OrderArrow::new(OrderGenerator::new(sf, 1, 1)).with_batch_size(LOAD_CHUNK))
        },
    },
    Table {
        name: "customer",
        home: Home::Mysql,
        key: "c_custkey",
        synthetic: false,
        indexes: &["c_nationkey"],
        schema: CustomerArrow::schema_ref,
        generate: |sf| {
            Box::new(
                CustomerArrow::new(CustomerGenerator::new(sf, 1, 1)).with_batch_size(LOAD_CHUNK),
            )
        },
    },
    Table {
        name: "nation",
        home: Home::Mysql,
        key: "n_nationkey",
        synthetic: false,
        indexes: &["n_regionkey"],
        schema: NationArrow::schema_ref,
        generate: |sf| {
            Box::new(NationArrow::new(NationGenerator::new(sf, 1, 1)).with_batch_size(LOAD_CHUNK))
        },
    },
    Table {
        name: "region",
        home: Home::Mysql,
        key: "r_regionkey",
        synthetic: false,
        indexes: &[],
        schema: RegionArrow::schema_ref,
        generate: |sf| {
            Box::new(RegionArrow::new(RegionGenerator::new(sf, 1, 1)).with_batch_size(LOAD_CHUNK))
        },
    },
    Table {
        name: "part",
        home: Home::Sqlite,
        key: "p_partkey",
        synthetic: false,
        indexes: &[],
        schema: PartArrow::schema_ref,
        generate: |sf| {
            Box::new(PartArrow::new(PartGenerator::new(sf, 1, 1)).with_batch_size(LOAD_CHUNK))
        },
    },
    Table {
        name: "partsupp",
        home: Home::Sqlite,
        key: "ps_id",
        synthetic: true,
        indexes: &["ps_partkey", "ps_suppkey"],
        schema: PartSuppArrow::schema_ref,
        generate: |sf| {
            Box::new(
                PartSuppArrow::new(PartSuppGenerator::new(sf, 1, 1)).with_batch_size(LOAD_CHUNK),
            )
        },
    },
    Table {
        name: "supplier",
        home: Home::Sqlite,
        key: "s_suppkey",
        synthetic: false,
        indexes: &["s_nationkey"],
        schema: SupplierArrow::schema_ref,
        generate: |sf| {
            Box::new(
                SupplierArrow::new(SupplierGenerator::new(sf, 1, 1)).with_batch_size(LOAD_CHUNK),
            )
        },
    },
];

/// The object schema of `table` in `datasource`: a field per Arrow column
/// (all required), the primary key, an index per join column.
fn object(table: &Table, datasource: &str) -> ObjectSchema {
    let mut schema = ObjectSchema::new(table.name);
    if table.synthetic {
        schema = schema.field(Field::new(table.key, "integer"));
    }
    for column in (table.schema)().fields() {
        let name = column.name().as_str();
        let field = match column.data_type() {
            DataType::Int64 | DataType::Int32 => Field::new(name, "integer"),
            DataType::Decimal128(p, s) => {
                Field::new(name, "decimal").decimal(u32::from(*p), u32::try_from(*s).unwrap())
            }
            DataType::Utf8View | DataType::Utf8 => Field::new(name, "text"),
            DataType::Date32 => Field::new(name, "date"),
            other => panic!("{}.{name}: no objectql type for {other}", table.name),
        };
        schema = schema.field(field.required());
    }
    schema = schema.primary_key(table.key);
    for column in table.indexes {
        schema = schema.index(Index::on([*column]));
    }
    schema.datasource(datasource)
}

/// The rows of one generated batch as records (`next_key`: the synthetic
/// primary key of its first row, advanced past the batch).
fn records(table: &Table, batch: &RecordBatch, next_key: &mut i64) -> Vec<Record> {
    let schema = batch.schema();
    let mut out: Vec<Record> = (0..batch.num_rows())
        .map(|_| Record::with_capacity(schema.fields().len() + 1))
        .collect();
    if table.synthetic {
        for record in &mut out {
            record.insert(table.key.to_owned(), Value::Int(*next_key));
            *next_key += 1;
        }
    }
    for (column, field) in batch.columns().iter().zip(schema.fields()) {
        let name = field.name();
        for (row, record) in out.iter_mut().enumerate() {
            let value = match column.data_type() {
                DataType::Int64 => Value::Int(column.as_primitive::<Int64Type>().value(row)),
                DataType::Int32 => {
                    Value::Int(i64::from(column.as_primitive::<Int32Type>().value(row)))
                }
                DataType::Decimal128(_, scale) => Value::Decimal(Decimal::from_i128_with_scale(
                    column.as_primitive::<Decimal128Type>().value(row),
                    u32::try_from(*scale).unwrap(),
                )),
                DataType::Utf8View => Value::String(column.as_string_view().value(row).to_owned()),
                DataType::Utf8 => Value::String(column.as_string::<i32>().value(row).to_owned()),
                DataType::Date32 => {
                    let days = column.as_primitive::<Date32Type>().value(row);
                    Value::Date(
                        NaiveDate::from_num_days_from_ce_opt(days + 719_163).expect("a TPC-H date"),
                    )
                }
                other => panic!("{}.{name}: unexpected {other}", table.name),
            };
            record.insert(name.clone(), value);
        }
    }
    out
}

/// The two engines: the federated one (each table in its home) and the
/// all-in-PostgreSQL one.
struct Engines {
    federated: Engine,
    all_postgres: Engine,
}

async fn open_engines(stores: &Stores) -> Engines {
    let federated = Engine::new();
    federated
        .add_datasource("pg", &stores.postgres_datasource())
        .await
        .unwrap();
    federated
        .add_datasource("my", &stores.mysql_datasource())
        .await
        .unwrap();
    federated
        .add_datasource("lite", &stores.sqlite_datasource())
        .await
        .unwrap();
    let all_postgres = Engine::new();
    all_postgres
        .add_datasource("pg", &stores.postgres_datasource())
        .await
        .unwrap();
    for table in &TABLES {
        federated
            .register(object(table, table.home.datasource()))
            .await
            .unwrap();
        all_postgres.register(object(table, "pg")).await.unwrap();
    }
    Engines {
        federated,
        all_postgres,
    }
}

/// Loads every table where it is missing or short: PostgreSQL gets all
/// eight (the all-in-PostgreSQL side; the federated side reads its
/// `lineitem` and `orders` there too), MySQL and SQLite their three each.
async fn load(stores: &Stores, sf: f64) -> Engines {
    let expected: Vec<u64> = TABLES
        .iter()
        .map(|t| {
            (t.generate)(sf)
                .map(|b| u64::try_from(b.unwrap().num_rows()).unwrap())
                .sum()
        })
        .collect();
    stores.prepare(false).await;
    let mut engines = open_engines(stores).await;
    let mut complete = true;
    for (table, want) in TABLES.iter().zip(&expected) {
        let pg = engines.all_postgres.default_session();
        let fed = engines.federated.default_session();
        let in_pg = pg.count(table.name, None).await.unwrap();
        let at_home = fed.count(table.name, None).await.unwrap();
        if in_pg != *want || at_home != *want {
            eprintln!(
                "tpch: {} holds {in_pg} rows in PostgreSQL and {at_home} in {:?}, expected {want}: reloading",
                table.name, table.home
            );
            complete = false;
        }
    }
    if complete {
        eprintln!("tpch: data at SF {sf} already loaded ({})", stores.tag);
        stores.analyze().await;
        return engines;
    }
    engines.federated.close().await.unwrap();
    engines.all_postgres.close().await.unwrap();
    stores.prepare(true).await;
    engines = open_engines(stores).await;
    for table in &TABLES {
        let started = std::time::Instant::now();
        let mut next_key = 1;
        let mut sessions = vec![engines.all_postgres.default_session()];
        if table.home != Home::Postgres {
            sessions.push(engines.federated.default_session());
        }
        let mut loaded = 0;
        for batch in (table.generate)(sf) {
            let rows = records(table, &batch.unwrap(), &mut next_key);
            loaded += rows.len();
            for session in &sessions {
                session.insert_many(table.name, rows.clone()).await.unwrap();
            }
        }
        eprintln!(
            "tpch: loaded {} ({loaded} rows) in {:.1?}",
            table.name,
            started.elapsed()
        );
    }
    stores.analyze().await;
    engines
}

// ---------------------------------------------------------------------------
// The queries
// ---------------------------------------------------------------------------

/// One TPC-H query: `select`, then `from_where` (its tables as `{name}`
/// placeholders), then `tail`.
struct Tpch {
    name: &'static str,
    select: &'static str,
    from_where: &'static str,
    tail: &'static str,
}

const QUERIES: [Tpch; 6] = [
    Tpch {
        name: "q3",
        select: "SELECT l_orderkey, sum(l_extendedprice * (1 - l_discount)) AS revenue, \
                 o_orderdate, o_shippriority",
        from_where: "FROM {customer}, {orders}, {lineitem} \
                     WHERE c_mktsegment = 'BUILDING' AND c_custkey = o_custkey \
                     AND l_orderkey = o_orderkey AND o_orderdate < DATE '1995-03-15' \
                     AND l_shipdate > DATE '1995-03-15'",
        tail: "GROUP BY l_orderkey, o_orderdate, o_shippriority \
               ORDER BY revenue DESC, o_orderdate, l_orderkey LIMIT 10",
    },
    Tpch {
        name: "q5",
        select: "SELECT n_name, sum(l_extendedprice * (1 - l_discount)) AS revenue",
        from_where: "FROM {customer}, {orders}, {lineitem}, {supplier}, {nation}, {region} \
                     WHERE c_custkey = o_custkey AND l_orderkey = o_orderkey \
                     AND l_suppkey = s_suppkey AND c_nationkey = s_nationkey \
                     AND s_nationkey = n_nationkey AND n_regionkey = r_regionkey \
                     AND r_name = 'ASIA' AND o_orderdate >= DATE '1994-01-01' \
                     AND o_orderdate < DATE '1995-01-01'",
        tail: "GROUP BY n_name ORDER BY revenue DESC, n_name",
    },
    Tpch {
        name: "q10",
        select: "SELECT c_custkey, c_name, sum(l_extendedprice * (1 - l_discount)) AS revenue, \
                 c_acctbal, n_name, c_address, c_phone, c_comment",
        from_where: "FROM {customer}, {orders}, {lineitem}, {nation} \
                     WHERE c_custkey = o_custkey AND l_orderkey = o_orderkey \
                     AND o_orderdate >= DATE '1993-10-01' AND o_orderdate < DATE '1994-01-01' \
                     AND l_returnflag = 'R' AND c_nationkey = n_nationkey",
        tail: "GROUP BY c_custkey, c_name, c_acctbal, c_phone, n_name, c_address, c_comment \
               ORDER BY revenue DESC, c_custkey LIMIT 20",
    },
    Tpch {
        name: "q12",
        select: "SELECT l_shipmode, \
                 sum(CASE WHEN o_orderpriority = '1-URGENT' OR o_orderpriority = '2-HIGH' \
                 THEN 1 ELSE 0 END) AS high_line_count, \
                 sum(CASE WHEN o_orderpriority <> '1-URGENT' AND o_orderpriority <> '2-HIGH' \
                 THEN 1 ELSE 0 END) AS low_line_count",
        from_where: "FROM {orders}, {lineitem} \
                     WHERE o_orderkey = l_orderkey AND l_shipmode IN ('MAIL', 'SHIP') \
                     AND l_commitdate < l_receiptdate AND l_shipdate < l_commitdate \
                     AND l_receiptdate >= DATE '1994-01-01' AND l_receiptdate < DATE '1995-01-01'",
        tail: "GROUP BY l_shipmode ORDER BY l_shipmode",
    },
    Tpch {
        name: "q14",
        select: "SELECT 100.00 * sum(CASE WHEN p_type LIKE 'PROMO%' \
                 THEN l_extendedprice * (1 - l_discount) ELSE 0 END) \
                 / sum(l_extendedprice * (1 - l_discount)) AS promo_revenue",
        from_where: "FROM {lineitem}, {part} \
                     WHERE l_partkey = p_partkey AND l_shipdate >= DATE '1995-09-01' \
                     AND l_shipdate < DATE '1995-10-01'",
        tail: "",
    },
    Tpch {
        name: "q19",
        select: "SELECT sum(l_extendedprice * (1 - l_discount)) AS revenue",
        from_where: "FROM {lineitem}, {part} \
                     WHERE (p_partkey = l_partkey AND p_brand = 'Brand#12' \
                     AND p_container IN ('SM CASE', 'SM BOX', 'SM PACK', 'SM PKG') \
                     AND l_quantity >= 1 AND l_quantity <= 11 AND p_size BETWEEN 1 AND 5 \
                     AND l_shipmode IN ('AIR', 'AIR REG') AND l_shipinstruct = 'DELIVER IN PERSON') \
                     OR (p_partkey = l_partkey AND p_brand = 'Brand#23' \
                     AND p_container IN ('MED BAG', 'MED BOX', 'MED PKG', 'MED PACK') \
                     AND l_quantity >= 10 AND l_quantity <= 20 AND p_size BETWEEN 1 AND 10 \
                     AND l_shipmode IN ('AIR', 'AIR REG') AND l_shipinstruct = 'DELIVER IN PERSON') \
                     OR (p_partkey = l_partkey AND p_brand = 'Brand#34' \
                     AND p_container IN ('LG CASE', 'LG BOX', 'LG PACK', 'LG PKG') \
                     AND l_quantity >= 20 AND l_quantity <= 30 AND p_size BETWEEN 1 AND 15 \
                     AND l_shipmode IN ('AIR', 'AIR REG') AND l_shipinstruct = 'DELIVER IN PERSON')",
        tail: "",
    },
];

/// `text` with each `{table}` placeholder replaced by `name(table)`.
fn render(text: &str, name: impl Fn(&Table) -> String) -> String {
    let mut out = text.to_owned();
    for table in &TABLES {
        out = out.replace(&format!("{{{}}}", table.name), &name(table));
    }
    out
}

impl Tpch {
    fn sql(&self, name: impl Fn(&Table) -> String) -> String {
        render(
            &format!("{} {} {}", self.select, self.from_where, self.tail),
            name,
        )
    }

    /// The tables it reads, in the order they appear.
    fn tables(&self) -> Vec<&'static Table> {
        TABLES
            .iter()
            .filter(|t| self.from_where.contains(&format!("{{{}}}", t.name)))
            .collect()
    }
}

fn federated_name(table: &Table) -> String {
    format!("{}.{}", table.home.datasource(), table.name)
}

fn all_postgres_name(table: &Table) -> String {
    format!("pg.{}", table.name)
}

fn bare_name(table: &Table) -> String {
    table.name.to_owned()
}

// ---------------------------------------------------------------------------
// Answers, compared
// ---------------------------------------------------------------------------

/// A row as comparable text: numbers to two decimals, everything else as
/// it prints.
type Answer = Vec<Vec<String>>;

fn number(n: f64) -> String {
    format!("{n:.2}")
}

fn answer_of_records(records: &[Record]) -> Answer {
    records
        .iter()
        .map(|r| {
            r.values()
                .map(|v| match v {
                    Value::Int(i) => number(*i as f64),
                    Value::Float(f) => number(*f),
                    Value::Decimal(d) => number(d.to_string().parse::<f64>().unwrap()),
                    Value::String(s) => s.clone(),
                    Value::Date(d) => d.to_string(),
                    Value::Null => "NULL".to_owned(),
                    other => format!("{other:?}"),
                })
                .collect()
        })
        .collect()
}

/// Raw PostgreSQL's answer (as JSON per row, so every type comes back).
async fn postgres_answer(pool: &PgPool, sql: &str) -> Answer {
    let wrapped = format!("SELECT row_to_json(q)::text FROM ({sql}) q");
    let rows = sqlx::query(AssertSqlSafe(wrapped))
        .fetch_all(pool)
        .await
        .unwrap();
    rows.iter()
        .map(|row| {
            let text: String = row.get(0);
            let json: serde_json::Map<String, serde_json::Value> =
                serde_json::from_str(&text).unwrap();
            json.values()
                .map(|v| match v {
                    serde_json::Value::Number(n) => number(n.as_f64().unwrap()),
                    serde_json::Value::String(s) => s.clone(),
                    serde_json::Value::Null => "NULL".to_owned(),
                    other => other.to_string(),
                })
                .collect()
        })
        .collect()
}

fn same_answer(query: &str, side: &str, got: &Answer, want: &Answer) {
    assert!(!want.is_empty(), "{query}: PostgreSQL returned no rows");
    assert!(
        got == want,
        "{query}: {side} answered differently from PostgreSQL\n  {side}: {:?}\n  postgres: {:?}",
        &got[..got.len().min(5)],
        &want[..want.len().min(5)]
    );
}

// ---------------------------------------------------------------------------
// Rows shipped
// ---------------------------------------------------------------------------

/// Rows of each of the query's tables that take part in its answer.
async fn rows_needed(pool: &PgPool, query: &Tpch) -> BTreeMap<&'static str, u64> {
    let mut out = BTreeMap::new();
    for table in query.tables() {
        let sql = format!(
            "SELECT count(DISTINCT {}.{})::bigint {}",
            table.name,
            table.key,
            render(query.from_where, bare_name)
        );
        let n: i64 = sqlx::query(AssertSqlSafe(sql))
            .fetch_one(pool)
            .await
            .unwrap()
            .get(0);
        *out.entry(table.home.datasource()).or_insert(0) += u64::try_from(n).unwrap();
    }
    out
}

/// Every node of a plan, depth first.
fn nodes(plan: &Arc<dyn ExecutionPlan>) -> Vec<Arc<dyn ExecutionPlan>> {
    let mut out = Vec::new();
    let mut stack = vec![Arc::clone(plan)];
    while let Some(node) = stack.pop() {
        stack.extend(node.children().into_iter().cloned());
        out.push(node);
    }
    out
}

/// Runs `sql` on `federation` and returns the rows each datasource shipped
/// and the answer.
async fn shipped_by_objectql(
    federation: &Federation,
    sql: &str,
) -> (BTreeMap<&'static str, u64>, Answer) {
    let df = federation.plan(sql).await.unwrap();
    let task = Arc::new(df.task_ctx());
    let plan = df.create_physical_plan().await.unwrap();
    let batches = datafusion::physical_plan::collect(Arc::clone(&plan), task)
        .await
        .unwrap();
    let mut shipped = BTreeMap::new();
    for node in nodes(&plan) {
        if let Some(scan) = node.downcast_ref::<ObjectScanExec>() {
            let home = TABLES
                .iter()
                .map(|t| t.home.datasource())
                .find(|d| *d == scan.datasource())
                .unwrap();
            *shipped.entry(home).or_insert(0) +=
                u64::try_from(scan.rows_shipped().unwrap_or(0)).unwrap();
        }
    }
    (
        shipped,
        answer_of_records(&batches_to_records(&batches).unwrap()),
    )
}

/// Runs `sql` on the peer, each leaf of its plan (a remote query or a
/// `MemTable` scan) under a pass-through filter that counts its rows, and
/// returns the rows all leaves produced and the answer.
async fn shipped_by_peer(ctx: &SessionContext, sql: &str) -> (u64, Answer) {
    use datafusion::common::tree_node::{Transformed, TreeNode};
    let df = ctx.sql(sql).await.unwrap();
    let task = Arc::new(df.task_ctx());
    let plan = df.create_physical_plan().await.unwrap();
    let plan = plan
        .transform_up(|node| {
            if node.children().is_empty() {
                let counted: Arc<dyn ExecutionPlan> =
                    Arc::new(FilterExec::try_new(lit(true), node)?);
                Ok(Transformed::yes(counted))
            } else {
                Ok(Transformed::no(node))
            }
        })
        .unwrap()
        .data;
    let batches = datafusion::physical_plan::collect(Arc::clone(&plan), task)
        .await
        .unwrap();
    let mut shipped = 0;
    for node in nodes(&plan) {
        if node.downcast_ref::<FilterExec>().is_some()
            && node
                .children()
                .first()
                .is_some_and(|c| c.children().is_empty())
        {
            let rows = node
                .metrics()
                .and_then(|m| m.output_rows())
                .expect("a counted leaf");
            shipped += u64::try_from(rows).unwrap();
        }
    }
    (
        shipped,
        answer_of_records(&batches_to_records(&batches).unwrap()),
    )
}

fn ratio(shipped: u64, needed: u64) -> String {
    if needed == 0 {
        format!("{shipped}/0")
    } else {
        format!("{:.2}", shipped as f64 / needed as f64)
    }
}

fn per_datasource(shipped: &BTreeMap<&str, u64>, needed: &BTreeMap<&str, u64>) -> String {
    needed
        .iter()
        .map(|(ds, n)| {
            let s = shipped.get(ds).copied().unwrap_or(0);
            format!("{ds} {s} ({})", ratio(s, *n))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

// ---------------------------------------------------------------------------
// The peer
// ---------------------------------------------------------------------------

async fn peer(stores: &Stores, engines: &Engines) -> SessionContext {
    let ctx = SessionContext::new_with_state(datafusion_federation::default_session_state());
    let secret = |s: &str| SecretString::from(s.to_owned());
    let url = PgConnectOptions::from_str(&stores.postgres).unwrap();
    let mut params: HashMap<String, SecretString> = HashMap::new();
    params.insert("host".to_owned(), secret(url.get_host()));
    params.insert("port".to_owned(), secret(&url.get_port().to_string()));
    params.insert("user".to_owned(), secret(url.get_username()));
    params.insert(
        "db".to_owned(),
        secret(url.get_database().unwrap_or("postgres")),
    );
    params.insert("sslmode".to_owned(), secret("disable"));
    let pg = Arc::new(PostgresConnectionPool::new(params).await.unwrap());
    let pg = PostgresTableFactory::new(pg);
    let mut params: HashMap<String, SecretString> = HashMap::new();
    params.insert(
        "connection_string".to_owned(),
        secret(&stores.mysql_datasource()),
    );
    params.insert("sslmode".to_owned(), secret("disabled"));
    let my = Arc::new(MySQLConnectionPool::new(params).await.unwrap());
    let my = MySQLTableFactory::new(my);
    for table in &TABLES {
        let provider: Arc<dyn TableProvider> = match table.home {
            Home::Postgres => pg
                .table_provider(TableReference::partial(stores.tag.as_str(), table.name))
                .await
                .unwrap(),
            Home::Mysql => my
                .table_provider(TableReference::bare(table.name))
                .await
                .unwrap(),
            Home::Sqlite => {
                let batches = engines
                    .federated
                    .sql(&format!("SELECT * FROM lite.{}", table.name))
                    .await
                    .unwrap();
                let schema = batches[0].schema();
                Arc::new(MemTable::try_new(schema, vec![batches]).unwrap())
            }
        };
        ctx.register_table(table.name, provider).unwrap();
    }
    ctx
}

// ---------------------------------------------------------------------------
// The benchmark
// ---------------------------------------------------------------------------

fn multi_thread_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// `query`'s batches from `Session::find_arrow` (what a federated scan
/// reads from its driver).
async fn find_arrow(session: &objectql::Session, query: &Query) -> Vec<RecordBatch> {
    use futures::TryStreamExt;
    session
        .find_arrow(query)
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap()
}

/// The whole-subtree query: a join, a filter, a grouping and a sort, all
/// in PostgreSQL.
const WHOLE_SUBTREE: &str = "SELECT l_shipmode, o_orderpriority, count(*) AS lines \
     FROM pg.orders JOIN pg.lineitem ON o_orderkey = l_orderkey \
     WHERE l_shipmode IN ('MAIL', 'SHIP') AND l_receiptdate >= DATE '1994-01-01' \
     AND l_receiptdate < DATE '1995-01-01' \
     GROUP BY l_shipmode, o_orderpriority ORDER BY l_shipmode, o_orderpriority";

fn main() {
    let sf = scale_factor();
    let stores = Stores::new(sf);
    let rt = multi_thread_runtime();
    let engines = rt.block_on(load(&stores, sf));
    let raw = rt.block_on(stores.raw_postgres());
    let peer = rt.block_on(peer(&stores, &engines));

    // Answers and rows shipped, before any timing.
    eprintln!("\ntpch SF {sf}: rows shipped / rows needed (per datasource: shipped (ratio))");
    eprintln!(
        "| query | needed | objectql, join keys pushed (default limit) | up to {MANY_KEYS} keys | join keys not pushed | no pushdown | table_providers (all sources) |"
    );
    eprintln!("|---|---|---|---|---|---|---|");
    for query in &QUERIES {
        rt.block_on(async {
            let want = postgres_answer(&raw, &query.sql(bare_name)).await;
            let needed = rows_needed(&raw, query).await;
            let federated_sql = query.sql(federated_name);
            let with_keys = engines.federated.federation().unwrap();
            let without_keys = engines
                .federated
                .federation()
                .unwrap()
                .with_join_key_limit(0);
            let without_pushdown = engines.federated.federation().unwrap().with_pushdown(false);
            let many_keys = engines
                .federated
                .federation()
                .unwrap()
                .with_join_key_limit(MANY_KEYS);
            let (keys, got) = shipped_by_objectql(&with_keys, &federated_sql).await;
            same_answer(query.name, "objectql", &got, &want);
            if explained(query.name) {
                let tree = with_keys.explain(&federated_sql, true).await.unwrap();
                eprintln!("tpch {}: EXPLAIN ANALYZE\n{tree}", query.name);
            }
            let (more_keys, got) = shipped_by_objectql(&many_keys, &federated_sql).await;
            same_answer(query.name, "objectql (100,000 join keys)", &got, &want);
            let (no_keys, got) = shipped_by_objectql(&without_keys, &federated_sql).await;
            same_answer(query.name, "objectql (no join keys)", &got, &want);
            let (nothing, got) = shipped_by_objectql(&without_pushdown, &federated_sql).await;
            same_answer(query.name, "objectql (no pushdown)", &got, &want);
            let all = engines
                .all_postgres
                .sql_rows(&query.sql(all_postgres_name))
                .await
                .unwrap();
            same_answer(
                query.name,
                "objectql all in PostgreSQL",
                &answer_of_records(&all),
                &want,
            );
            let (peer_shipped, got) = shipped_by_peer(&peer, &query.sql(bare_name)).await;
            same_answer(query.name, "table_providers", &got, &want);
            let total_needed: u64 = needed.values().sum();
            let total = |m: &BTreeMap<&str, u64>| m.values().sum::<u64>();
            eprintln!(
                "| {} | {} | {} = {} | {} = {} | {} = {} | {} = {} | {} ({}) |",
                query.name,
                total_needed,
                per_datasource(&keys, &needed),
                ratio(total(&keys), total_needed),
                per_datasource(&more_keys, &needed),
                ratio(total(&more_keys), total_needed),
                per_datasource(&no_keys, &needed),
                ratio(total(&no_keys), total_needed),
                per_datasource(&nothing, &needed),
                ratio(total(&nothing), total_needed),
                peer_shipped,
                ratio(peer_shipped, total_needed),
            );
        });
    }

    // The whole-subtree query: one pushed driver query, also run directly.
    let pushed: Query = rt.block_on(async {
        let federation = engines.federated.federation().unwrap();
        let plan = federation
            .plan(WHOLE_SUBTREE)
            .await
            .unwrap()
            .create_physical_plan()
            .await
            .unwrap();
        let scans: Vec<Query> = nodes(&plan)
            .iter()
            .filter_map(|n| {
                n.downcast_ref::<ObjectScanExec>()
                    .map(|s| s.query().clone())
            })
            .collect();
        assert_eq!(
            scans.len(),
            1,
            "the whole-subtree query must be one driver query:\n{}",
            federation.explain(WHOLE_SUBTREE, false).await.unwrap()
        );
        let query = scans.into_iter().next().unwrap();
        let direct = find_arrow(&engines.federated.default_session(), &query).await;
        let through = engines.federated.sql(WHOLE_SUBTREE).await.unwrap();
        // The same rows; the pushed query's columns may come in another order.
        let rows = |batches: &[RecordBatch]| {
            let mut rows = answer_of_records(&batches_to_records(batches).unwrap());
            for row in &mut rows {
                row.sort();
            }
            rows.sort();
            rows
        };
        assert_eq!(
            rows(&direct),
            rows(&through),
            "the pushed query run directly answers like federation"
        );
        query
    });

    let mut c = Criterion::default()
        .configure_from_args()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(8));
    {
        let mut group = c.benchmark_group("tpch");
        group.sampling_mode(SamplingMode::Flat);
        for query in &QUERIES {
            let federated_sql = query.sql(federated_name);
            let all_sql = query.sql(all_postgres_name);
            let bare_sql = query.sql(bare_name);
            group.bench_function(format!("{}/objectql", query.name), |b| {
                b.to_async(&rt)
                    .iter(|| async { engines.federated.sql(&federated_sql).await.unwrap() });
            });
            group.bench_function(format!("{}/objectql_all_postgres", query.name), |b| {
                b.to_async(&rt)
                    .iter(|| async { engines.all_postgres.sql(&all_sql).await.unwrap() });
            });
            group.bench_function(format!("{}/postgres", query.name), |b| {
                b.to_async(&rt).iter(|| async {
                    sqlx::query(AssertSqlSafe(bare_sql.clone()))
                        .fetch_all(&raw)
                        .await
                        .unwrap()
                });
            });
            group.bench_function(format!("{}/table_providers", query.name), |b| {
                b.to_async(&rt)
                    .iter(|| async { peer.sql(&bare_sql).await.unwrap().collect().await.unwrap() });
            });
        }
        group.finish();
    }
    {
        let mut group = c.benchmark_group("whole_subtree");
        group.sampling_mode(SamplingMode::Flat);
        group.bench_function("federation", |b| {
            b.to_async(&rt)
                .iter(|| async { engines.federated.sql(WHOLE_SUBTREE).await.unwrap() });
        });
        let session = engines.federated.default_session();
        group.bench_function("driver", |b| {
            b.to_async(&rt)
                .iter(|| async { find_arrow(&session, &pushed).await });
        });
        group.finish();
    }
    c.final_summary();
}
