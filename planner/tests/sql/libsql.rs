//! libSQL snapshots: the SQLite dialect with native vectors (`F32_BLOB`
//! columns, `libsql_vector_idx` indexes, `vector_distance_*`,
//! `vector_top_k`), and the dialects without them refusing vectors.

use objectql_planner::sql::{
    MySqlDialect, PostgresDialect, SqlCompiler, SqlDialect, SqliteDialect, Statement,
};
use objectql_query_ast::{
    Catalog, DriverErrorKind, Field, Index, ObjectSchema, Query, Record, Value, VectorMetric,
    validate_query,
};
use serde_json::json;
use sqlparser::dialect::SQLiteDialect as PLite;

use crate::common::{ctx, show, show_all};

const LIBSQL: SqliteDialect = SqliteDialect {
    version: (3, 47, 0),
    vectors: true,
};
const SQLITE: SqliteDialect = SqliteDialect {
    version: (3, 47, 0),
    vectors: false,
};

fn doc() -> ObjectSchema {
    ObjectSchema::new("doc")
        .field(Field::new("title", "text"))
        .field(Field::new("lang", "text"))
        // A cosine index declared on the field.
        .field(Field::vector("embedding", 3).indexed())
        // An l2 index declared on the object.
        .field(Field::vector("image", 2).metric(VectorMetric::L2))
        // No index.
        .field(Field::vector("plain", 2))
        .index(
            serde_json::from_value::<Index>(json!({"name": "doc_image_ann", "fields": ["image"]}))
                .unwrap(),
        )
}

fn catalog() -> Catalog {
    let mut c = Catalog::new();
    c.insert(doc()).unwrap();
    c.insert(ObjectSchema::new("v").field(Field::vector("e", 2).indexed()))
        .unwrap();
    c
}

fn compile(
    d: &dyn SqlDialect,
    q: serde_json::Value,
) -> Result<Statement, objectql_query_ast::Error> {
    let cat = catalog();
    let q = validate_query(&Query::from_json(&q).unwrap(), &cat, &ctx()).unwrap();
    SqlCompiler::new(d, &cat).select(&q)
}

/// Compiles, checks the SQL re-parses with as many placeholders as values.
fn sel(q: serde_json::Value) -> String {
    let st = compile(&LIBSQL, q).unwrap();
    crate::properties::check(&LIBSQL, &PLite {}, &st.sql, st.params.len()).unwrap();
    show(&st)
}

#[test]
fn libsql_vector_columns_and_indexes() {
    let cat = catalog();
    let sts = SqlCompiler::new(&LIBSQL, &cat)
        .create_table(&doc())
        .unwrap();
    for st in &sts {
        crate::properties::check(&LIBSQL, &PLite {}, &st.sql, 0).unwrap();
    }
    insta::assert_snapshot!(show_all(&sts));
}

#[test]
fn libsql_exact_cosine_nearest_with_filter_and_projection() {
    insta::assert_snapshot!(sel(
        json!({"object": "doc", "where": {"lang": "en"}, "fields": ["title"],
        "nearest": {"field": "embedding", "vector": [0.5, 0.25, 1], "k": 3}})
    ));
}

#[test]
fn libsql_exact_l2_nearest_of_every_field() {
    insta::assert_snapshot!(sel(json!({"object": "doc",
        "nearest": {"field": "plain", "vector": [1, 0], "k": 2, "metric": "l2", "distanceAs": "d"}})));
}

#[test]
fn libsql_approximate_nearest_uses_the_vector_index() {
    insta::assert_snapshot!(sel(
        json!({"object": "doc", "where": {"lang": "en"}, "fields": ["title"],
        "nearest": {"field": "embedding", "vector": [0.5, 0.25, 1], "k": 3, "approximate": true}})
    ));
}

#[test]
fn libsql_approximate_nearest_uses_an_object_index_of_its_metric() {
    insta::assert_snapshot!(sel(json!({"object": "doc", "fields": ["title"],
        "nearest": {"field": "image", "vector": [1, 2], "k": 5, "approximate": true}})));
}

#[test]
fn libsql_approximate_without_a_fitting_index_is_exact() {
    for q in [
        // The index is built for cosine, the query asks for l2.
        json!({"object": "doc", "nearest": {"field": "embedding", "vector": [1, 0, 0], "k": 3, "metric": "l2", "approximate": true}}),
        // No index.
        json!({"object": "doc", "nearest": {"field": "plain", "vector": [1, 0], "k": 3, "approximate": true}}),
    ] {
        let out = sel(q);
        assert!(!out.contains("vector_top_k"), "{out}");
        assert!(out.contains("FROM \"doc\" WHERE"), "{out}");
    }
}

#[test]
fn libsql_index_scan_alias_differs_from_the_table() {
    let out = sel(
        json!({"object": "v", "nearest": {"field": "e", "vector": [1, 0], "k": 1, "approximate": true}}),
    );
    assert!(
        out.contains(r#"AS "v_" JOIN "v" ON "v".rowid = "v_"."id""#),
        "{out}"
    );
}

#[test]
fn libsql_vectors_are_little_endian_f32_blobs() {
    let cat = catalog();
    let c = SqlCompiler::new(&LIBSQL, &cat);
    let mut r = Record::new();
    r.insert("id".into(), Value::from("a"));
    r.insert(
        "embedding".into(),
        Value::Array(vec![
            Value::Float(1.0),
            Value::Float(0.5),
            Value::Float(-2.0),
        ]),
    );
    let sts = c.insert("doc", &[r]).unwrap();
    insta::assert_snapshot!(show_all(&sts));
    let blob: Vec<u8> = [1.0f32, 0.5, -2.0]
        .iter()
        .flat_map(|f| f.to_le_bytes())
        .collect();
    assert!(sts[0].params.contains(&Value::Bytes(blob.clone())));
    // And back, strictly.
    let st = compile(&LIBSQL, json!({"object": "doc", "fields": ["embedding"]})).unwrap();
    let row = c.decode_row(&st.columns, vec![Value::Bytes(blob)]).unwrap();
    assert_eq!(
        row.get("embedding"),
        Some(&Value::Array(vec![
            Value::Float(1.0),
            Value::Float(0.5),
            Value::Float(-2.0)
        ]))
    );
    let e = c
        .decode_row(&st.columns, vec![Value::Bytes(vec![0, 0, 128, 63, 1])])
        .unwrap_err();
    assert_eq!(e.driver_kind(), Some(DriverErrorKind::Decode), "{e}");
    assert!(c.decode_row(&st.columns, vec![Value::Null]).is_ok());
}

#[test]
fn libsql_migrations_keep_vector_columns_and_rebuild_their_indexes() {
    let cat = catalog();
    let c = SqlCompiler::new(&LIBSQL, &cat);
    let old = ObjectSchema::new("m")
        .field(Field::vector("e", 2).indexed())
        .field(Field::new("n", "integer"));
    // A metric change re-creates the index only.
    let relabelled = ObjectSchema::new("m")
        .field(Field::vector("e", 2).indexed().metric(VectorMetric::L2))
        .field(Field::new("n", "integer"))
        .field(Field::vector("f", 4));
    insta::assert_snapshot!(
        "libsql_migrate_changes_an_index_metric",
        show_all(&c.migrate(&old, &relabelled).unwrap())
    );
    // A type change elsewhere rebuilds the table: the vector column is
    // copied as is and its index built again on the new table.
    let retyped = ObjectSchema::new("m")
        .field(Field::vector("e", 2).indexed())
        .field(Field::new("n", "number"));
    insta::assert_snapshot!(
        "libsql_migrate_rebuild_keeps_the_vector_index",
        show_all(&c.migrate(&old, &retyped).unwrap())
    );
    // Changing the dimensions cannot be converted.
    let resized = ObjectSchema::new("m")
        .field(Field::vector("e", 3).indexed())
        .field(Field::new("n", "integer"));
    assert_eq!(
        c.migrate(&old, &resized).unwrap_err().category(),
        "unsupported"
    );
}

#[test]
fn libsql_refuses_what_its_vector_indexes_cannot_be() {
    let cat = catalog();
    let c = SqlCompiler::new(&LIBSQL, &cat);
    let unique = ObjectSchema::new("m").field(Field::vector("e", 2).unique());
    assert_eq!(
        c.create_table(&unique).unwrap_err().category(),
        "unsupported"
    );
    let mixed = ObjectSchema::new("m")
        .field(Field::vector("e", 2))
        .field(Field::new("n", "integer"))
        .index(serde_json::from_value::<Index>(json!({"fields": ["n", "e"]})).unwrap());
    assert_eq!(
        c.create_table(&mixed).unwrap_err().category(),
        "unsupported"
    );
}

#[test]
fn dialects_without_vectors_refuse_vector_fields_and_nearest_queries() {
    let pg = PostgresDialect { version: (16, 2) };
    let my = MySqlDialect {
        mariadb: false,
        version: (8, 0, 36),
    };
    let dialects: [&dyn SqlDialect; 3] = [&SQLITE, &pg, &my];
    let cat = catalog();
    for d in dialects {
        let e = compile(d, json!({"object": "doc", "nearest": {"field": "embedding", "vector": [1, 0, 0], "k": 1}}))
            .unwrap_err();
        assert!(
            matches!(&e, objectql_query_ast::Error::Unsupported { .. }),
            "{}: {e}",
            d.name()
        );
        let e = SqlCompiler::new(d, &cat).create_table(&doc()).unwrap_err();
        assert_eq!(e.category(), "unsupported", "{}: {e}", d.name());
    }
}
