//! Crash-safe persistence of the whole store to one JSON file.
//!
//! Every save writes a temporary file beside the data file, syncs it, renames
//! it over the data file and syncs the directory: a crash at any point leaves
//! either the old or the new state, never a torn file.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{BufReader, BufWriter, Write};
use std::path::Path;
use std::sync::Arc;

use objectql_query_ast::{
    DriverErrorKind, Error, ObjectSchema, Path as JsonPath, Record, Result, coerce,
};
use serde::{Deserialize, Serialize};

use crate::table::Table;

const FORMAT: &str = "objectql-memory/1";

/// Numbers the saves of this process: two saves never share a temporary file.
static SAVES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

#[derive(Serialize, Deserialize)]
struct Stored {
    format: String,
    objects: Vec<StoredObject>,
}

#[derive(Serialize, Deserialize)]
struct StoredObject {
    schema: ObjectSchema,
    rows: Vec<Vec<serde_json::Value>>,
}

fn io_err(what: &str, path: &Path, e: std::io::Error) -> Error {
    Error::Driver {
        kind: DriverErrorKind::Io,
        message: format!("{what} `{}`", path.display()),
        source: Some(Box::new(e)),
    }
}

/// Writes every table to `path` atomically.
pub(crate) fn save(path: &Path, tables: &HashMap<String, Arc<Table>>) -> Result<()> {
    let mut names: Vec<&String> = tables.keys().collect();
    names.sort();
    let objects = names
        .into_iter()
        .filter_map(|n| tables.get(n))
        .map(|t| StoredObject {
            schema: t.schema.clone(),
            rows: t
                .rows()
                .map(|r| r.iter().map(objectql_query_ast::Value::to_json).collect())
                .collect(),
        })
        .collect();
    let stored = Stored {
        format: FORMAT.to_owned(),
        objects,
    };
    let file_name = path
        .file_name()
        .ok_or_else(|| Error::config(format!("`{}` is not a file path", path.display())))?;
    let tmp = path.with_file_name(format!(
        "{}{}-{}",
        temporary_prefix(file_name),
        std::process::id(),
        SAVES.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    let write = || -> std::io::Result<()> {
        let file = File::create(&tmp)?;
        let mut w = BufWriter::new(file);
        serde_json::to_writer(&mut w, &stored).map_err(std::io::Error::other)?;
        w.flush()?;
        w.get_ref().sync_all()?;
        fs::rename(&tmp, path)?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            File::open(dir)?.sync_all()?;
        }
        Ok(())
    };
    write().map_err(|e| {
        let _ = fs::remove_file(&tmp);
        io_err("cannot write memory store", path, e)
    })
}

/// The name prefix of the temporary files of store `file_name`.
fn temporary_prefix(file_name: &std::ffi::OsStr) -> String {
    format!(".{}.tmp-", file_name.to_string_lossy())
}

/// Takes the exclusive lock of the store at `path` (the file `<path>.lock`,
/// created if missing), held as long as the returned file is open.
pub(crate) fn lock(path: &Path) -> Result<File> {
    let file_name = path
        .file_name()
        .ok_or_else(|| Error::config(format!("`{}` is not a file path", path.display())))?;
    let lock_path = path.with_file_name(format!("{}.lock", file_name.to_string_lossy()));
    let file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| io_err("cannot create the lock file of memory store", path, e))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(fs::TryLockError::WouldBlock) => Err(Error::config(format!(
            "memory store `{}` is already open (in this process or another); one driver per file",
            path.display()
        ))),
        Err(fs::TryLockError::Error(e)) => Err(io_err("cannot lock memory store", path, e)),
    }
}

/// Removes temporary files a killed process left beside the store at
/// `path`. Only called with the store's lock held, so no save is running.
pub(crate) fn remove_stale_temporaries(path: &Path) {
    let (Some(dir), Some(file_name)) = (path.parent(), path.file_name()) else {
        return;
    };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let prefix = temporary_prefix(file_name);
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        if entry.file_name().to_string_lossy().starts_with(&prefix) {
            // One that cannot be removed is harmless: never read, and the
            // next save uses another name.
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// Loads tables from `path`; an absent file is an empty store.
pub(crate) fn load(path: &Path) -> Result<HashMap<String, Arc<Table>>> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(HashMap::new()),
        Err(e) => return Err(io_err("cannot open memory store", path, e)),
    };
    let stored: Stored =
        serde_json::from_reader(BufReader::new(file)).map_err(|e| Error::Driver {
            kind: DriverErrorKind::Decode,
            message: format!("memory store `{}` is not valid", path.display()),
            source: Some(Box::new(e)),
        })?;
    if stored.format != FORMAT {
        return Err(Error::driver(
            DriverErrorKind::Decode,
            format!(
                "memory store `{}` has format `{}`, expected `{FORMAT}`",
                path.display(),
                stored.format
            ),
        ));
    }
    let mut tables = HashMap::new();
    for obj in stored.objects {
        let mut table = Table::new(obj.schema)?;
        let names = table.columns.names().to_vec();
        let mut records = Vec::with_capacity(obj.rows.len());
        for (i, row) in obj.rows.iter().enumerate() {
            let mut rec = Record::new();
            for (name, json) in names.iter().zip(row) {
                let p = JsonPath::root(&table.schema.name).index(i).key(name);
                let field = table
                    .schema
                    .get(name)
                    .ok_or_else(|| Error::internal("stored column without field"))?;
                let v = objectql_query_ast::Value::from_json(json, &p)?;
                rec.insert(name.clone(), coerce(v, field.storage_type()?, &p)?);
            }
            records.push(rec);
        }
        table.insert(records)?;
        tables.insert(table.schema.name.clone(), Arc::new(table));
    }
    Ok(tables)
}
