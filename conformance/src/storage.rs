//! Checks on a driver's storage management that the case files cannot
//! express (they go through a `Session`; these call the `Driver`).

use objectql::{Engine, record};
use serde_json::json;

/// `drop_object` drops the object's own table: the one its `tableName`
/// names, never a table that happens to carry the object's name. Object
/// `dropme` lives in `dropme_t`; object `keeper` lives in a table named
/// `dropme`. Dropping `dropme` through the engine's `default` datasource
/// must leave `keeper`'s row, and registering `dropme` again must find its
/// table empty (the old one gone). Before, every SQL driver and MongoDB
/// dropped the table named `dropme`: `keeper`'s data.
pub async fn drop_object_drops_its_own_table(engine: &Engine) -> Result<(), String> {
    let dropme =
        json!({"name": "dropme", "tableName": "dropme_t", "fields": {"v": {"type": "integer"}}});
    let keeper =
        json!({"name": "keeper", "tableName": "dropme", "fields": {"v": {"type": "integer"}}});
    let fail = |what: &str, e: objectql::Error| format!("{what}: {e}");
    engine
        .register_json(&dropme)
        .await
        .map_err(|e| fail("registering dropme", e))?;
    engine
        .register_json(&keeper)
        .await
        .map_err(|e| fail("registering keeper", e))?;
    let db = engine.default_session();
    db.insert("dropme", record! {"id" => "1", "v" => 1})
        .await
        .map_err(|e| fail("inserting into dropme", e))?;
    db.insert("keeper", record! {"id" => "1", "v" => 2})
        .await
        .map_err(|e| fail("inserting into keeper", e))?;
    let driver = engine
        .datasource("default")
        .map_err(|e| fail("the default datasource", e))?;
    driver
        .drop_object("dropme")
        .await
        .map_err(|e| fail("dropping dropme", e))?;
    match db.count("keeper", None).await {
        Ok(1) => {}
        Ok(n) => {
            return Err(format!(
                "keeper holds {n} rows after dropping dropme, expected 1"
            ));
        }
        Err(e) => return Err(fail("keeper after dropping dropme", e)),
    }
    engine
        .register_json(&dropme)
        .await
        .map_err(|e| fail("registering dropme again", e))?;
    match db.count("dropme", None).await {
        Ok(0) => Ok(()),
        Ok(n) => Err(format!(
            "dropme holds {n} rows after it was dropped and registered again: its table was not dropped"
        )),
        Err(e) => Err(fail("dropme after registering it again", e)),
    }
}
