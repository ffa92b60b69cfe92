//! Object schemas: objects, fields, their storage types and indexes.
//!
//! Field types accept the ObjectStack names (`text`, `currency`, `lookup`,
//! `multiselect`, …) and map each to one [`StorageType`].

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Path, Result};
use crate::nearest::VectorMetric;
use crate::value::Value;

/// What a field is stored as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum StorageType {
    /// A UTF-8 string.
    Text,
    /// A 64-bit integer.
    Integer,
    /// A 64-bit float.
    Float,
    /// An exact decimal with `precision` digits, `scale` after the point.
    Decimal {
        /// Total digits.
        precision: u32,
        /// Digits after the point.
        scale: u32,
    },
    /// A boolean.
    Boolean,
    /// A calendar date.
    Date,
    /// An instant, stored in UTC.
    DateTime,
    /// A time of day.
    Time,
    /// A JSON document.
    Json,
    /// A vector of `dimensions` floats.
    Vector {
        /// Number of dimensions.
        dimensions: u32,
    },
    /// Raw bytes.
    Binary,
    /// Not stored (formula fields).
    Virtual,
}

impl StorageType {
    /// Whether values of this type are ordered (support `$gt`…).
    pub fn is_ordered(self) -> bool {
        !matches!(self, Self::Json | Self::Vector { .. } | Self::Virtual)
    }

    /// Whether this is a numeric type.
    pub fn is_numeric(self) -> bool {
        matches!(self, Self::Integer | Self::Float | Self::Decimal { .. })
    }

    /// A short name for error messages.
    pub fn name(self) -> &'static str {
        match self {
            Self::Text => "text",
            Self::Integer => "integer",
            Self::Float => "float",
            Self::Decimal { .. } => "decimal",
            Self::Boolean => "boolean",
            Self::Date => "date",
            Self::DateTime => "datetime",
            Self::Time => "time",
            Self::Json => "json",
            Self::Vector { .. } => "vector",
            Self::Binary => "binary",
            Self::Virtual => "virtual",
        }
    }
}

/// What happens to referencing records when the referenced one is deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeleteBehavior {
    /// Set the reference to null.
    #[default]
    SetNull,
    /// Delete the referencing records too.
    Cascade,
    /// Refuse the delete while references exist.
    Restrict,
}

/// One field of an object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Field {
    /// The field's name (the key in records and queries).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// The ObjectStack field type name (`text`, `currency`, `lookup`, …).
    #[serde(rename = "type")]
    pub field_type: String,
    /// The value must be present and non-null.
    #[serde(default, skip_serializing_if = "is_false")]
    pub required: bool,
    /// Values must be unique (NULLs excepted).
    #[serde(default, skip_serializing_if = "is_false")]
    pub unique: bool,
    /// Create an index on this field.
    #[serde(default, skip_serializing_if = "is_false")]
    pub index: bool,
    /// The value used when an insert omits the field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_value: Option<serde_json::Value>,
    /// Maximum length in characters (text types).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_length: Option<u32>,
    /// Total digits (decimal types).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub precision: Option<u32>,
    /// Digits after the point (decimal types; a `number` with a scale is a decimal).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale: Option<u32>,
    /// The column name in storage, when it differs from `name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub column_name: Option<String>,
    /// The referenced object (lookup / master_detail fields).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    /// What deleting the referenced record does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delete_behavior: Option<DeleteBehavior>,
    /// Several values (stored as JSON).
    #[serde(default, skip_serializing_if = "is_false")]
    pub multiple: bool,
    /// Indexed for full-text search (ext).
    #[serde(default, skip_serializing_if = "is_false")]
    pub searchable: bool,
    /// Vector dimensions (vector fields).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dimensions: Option<u32>,
    /// The distance metric of a vector field: what its index is built for,
    /// and what nearest queries use unless they name one (default `cosine`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric: Option<VectorMetric>,
}

#[allow(clippy::trivially_copy_pass_by_ref)]
fn is_false(b: &bool) -> bool {
    !*b
}

impl Field {
    /// A field of the given ObjectStack type.
    pub fn new(name: impl Into<String>, field_type: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            field_type: field_type.into(),
            required: false,
            unique: false,
            index: false,
            default_value: None,
            max_length: None,
            precision: None,
            scale: None,
            column_name: None,
            reference: None,
            delete_behavior: None,
            multiple: false,
            searchable: false,
            dimensions: None,
            metric: None,
        }
    }

    /// A vector field of `dimensions` float32 numbers.
    pub fn vector(name: impl Into<String>, dimensions: u32) -> Self {
        let mut f = Self::new(name, "vector");
        f.dimensions = Some(dimensions);
        f
    }

    /// Sets the distance metric of a vector field.
    pub fn metric(mut self, metric: VectorMetric) -> Self {
        self.metric = Some(metric);
        self
    }

    /// Creates an index on this field (for a vector field: a vector index,
    /// where the backend has them).
    pub fn indexed(mut self) -> Self {
        self.index = true;
        self
    }

    /// Marks the field required.
    pub fn required(mut self) -> Self {
        self.required = true;
        self
    }

    /// Marks the field unique.
    pub fn unique(mut self) -> Self {
        self.unique = true;
        self
    }

    /// Sets the referenced object.
    pub fn reference(mut self, object: impl Into<String>) -> Self {
        self.reference = Some(object.into());
        self
    }

    /// Sets precision and scale.
    pub fn decimal(mut self, precision: u32, scale: u32) -> Self {
        self.precision = Some(precision);
        self.scale = Some(scale);
        self
    }

    /// Sets the default value.
    pub fn default_value(mut self, value: serde_json::Value) -> Self {
        self.default_value = Some(value);
        self
    }

    /// Marks the field searchable.
    pub fn searchable(mut self) -> Self {
        self.searchable = true;
        self
    }

    /// The storage type this field maps to (see the PROTOCOL table).
    ///
    /// # Errors
    /// An unknown field type name.
    pub fn storage_type(&self) -> Result<StorageType> {
        storage_type_of(self).ok_or_else(|| {
            Error::validation(
                format!("fields.{}.type", self.name),
                format!("unknown field type `{}`", self.field_type),
            )
        })
    }

    /// The name of the column (or document key) in storage.
    pub fn column(&self) -> &str {
        self.column_name.as_deref().unwrap_or(&self.name)
    }
}

const DEFAULT_DECIMAL_PRECISION: u32 = 18;

fn storage_type_of(field: &Field) -> Option<StorageType> {
    let t = field.field_type.as_str();
    if field.multiple && t != "vector" {
        return Some(StorageType::Json);
    }
    Some(match t {
        "text" | "textarea" | "email" | "url" | "phone" | "password" | "markdown" | "html"
        | "richtext" | "code" | "color" | "select" | "radio" | "lookup" | "master_detail"
        | "tree" | "user" | "image" | "file" | "avatar" | "video" | "audio" | "signature"
        | "qrcode" | "secret" | "string" | "uuid" => StorageType::Text,
        "autonumber" | "integer" => StorageType::Integer,
        "rating" => {
            if field.scale.is_some_and(|s| s > 0) {
                StorageType::Float
            } else {
                StorageType::Integer
            }
        }
        "number" | "percent" | "slider" | "progress" | "summary" | "float" => match field.scale {
            Some(scale) => StorageType::Decimal {
                precision: field.precision.unwrap_or(DEFAULT_DECIMAL_PRECISION),
                scale,
            },
            None => StorageType::Float,
        },
        "currency" | "decimal" => StorageType::Decimal {
            precision: field.precision.unwrap_or(DEFAULT_DECIMAL_PRECISION),
            scale: field.scale.unwrap_or(2),
        },
        "boolean" | "toggle" => StorageType::Boolean,
        "date" => StorageType::Date,
        "datetime" => StorageType::DateTime,
        "time" => StorageType::Time,
        "json" | "location" | "address" | "composite" | "repeater" | "record" | "multiselect"
        | "checkboxes" | "tags" | "object" | "array" => StorageType::Json,
        "vector" => StorageType::Vector {
            dimensions: field.dimensions.unwrap_or(0),
        },
        "binary" => StorageType::Binary,
        "formula" => StorageType::Virtual,
        _ => return None,
    })
}

/// An index over one or more fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Index {
    /// Optional name (generated when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Indexed fields, in order.
    pub fields: Vec<String>,
    /// Whether the combination of values is unique.
    #[serde(default)]
    pub unique: bool,
    /// Index kind.
    #[serde(default, rename = "type")]
    pub kind: IndexKind,
}

impl Index {
    /// A plain index (not unique, ordered, named by the driver) on
    /// `fields`, in order.
    pub fn on<S: Into<String>>(fields: impl IntoIterator<Item = S>) -> Self {
        Self {
            name: None,
            fields: fields.into_iter().map(Into::into).collect(),
            unique: false,
            kind: IndexKind::default(),
        }
    }

    /// The same index, unique.
    pub fn unique(mut self) -> Self {
        self.unique = true;
        self
    }

    /// The same index, with this name.
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// The same index, of this kind.
    pub fn kind(mut self, kind: IndexKind) -> Self {
        self.kind = kind;
        self
    }
}

/// The kind of an index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IndexKind {
    /// Ordered (the default).
    #[default]
    Btree,
    /// Hash.
    Hash,
    /// Inverted (Postgres GIN).
    Gin,
    /// Full-text.
    Fulltext,
}

/// An object: a table, a collection.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct ObjectSchema {
    /// The object's name.
    pub name: String,
    /// The primary key field (default `id`).
    pub primary_key: String,
    /// The fields, in declaration order (the primary key included).
    pub fields: IndexMap<String, Field>,
    /// Extra indexes.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub indexes: Vec<Index>,
    /// The datasource holding this object (default `default`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub datasource: Option<String>,
    /// The table or collection name in storage, when it differs from `name`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub table_name: Option<String>,
}

impl ObjectSchema {
    /// An object with a (required) text primary key `id` and no other field.
    pub fn new(name: impl Into<String>) -> Self {
        let mut fields = IndexMap::new();
        fields.insert("id".to_owned(), Field::new("id", "text").required());
        Self {
            name: name.into(),
            primary_key: "id".to_owned(),
            fields,
            indexes: Vec::new(),
            datasource: None,
            table_name: None,
        }
    }

    /// Adds (or replaces) a field.
    pub fn field(mut self, mut field: Field) -> Self {
        if field.name == self.primary_key {
            field.required = true;
        }
        self.fields.insert(field.name.clone(), field);
        self
    }

    /// Sets the primary key field (added as text when not declared yet).
    /// The key is required, as in a schema read from JSON, so a schema
    /// built here and the same schema stored and read back are equal.
    pub fn primary_key(mut self, name: impl Into<String>) -> Self {
        let name = name.into();
        if self.primary_key == "id" && name != "id" {
            self.fields.shift_remove("id");
        }
        self.fields
            .entry(name.clone())
            .or_insert_with(|| Field::new(name.clone(), "text"))
            .required = true;
        self.primary_key = name;
        self
    }

    /// Adds an index.
    pub fn index(mut self, index: Index) -> Self {
        self.indexes.push(index);
        self
    }

    /// Sets the datasource.
    pub fn datasource(mut self, datasource: impl Into<String>) -> Self {
        self.datasource = Some(datasource.into());
        self
    }

    /// The datasource name (`default` when unset).
    pub fn datasource_name(&self) -> &str {
        self.datasource.as_deref().unwrap_or("default")
    }

    /// The table or collection name in storage.
    pub fn table(&self) -> &str {
        self.table_name.as_deref().unwrap_or(&self.name)
    }

    /// The field called `name`.
    pub fn get(&self, name: &str) -> Option<&Field> {
        self.fields.get(name)
    }

    /// The primary key field.
    pub fn primary_key_field(&self) -> Option<&Field> {
        self.fields.get(&self.primary_key)
    }

    /// The storage type of `name`, or a validation error at `path`.
    pub fn storage_of(&self, name: &str, path: &Path) -> Result<StorageType> {
        match self.fields.get(name) {
            Some(f) => f.storage_type(),
            None => Err(path.err(format!("unknown field `{name}` on object `{}`", self.name))),
        }
    }

    /// Parses a schema from JSON (ObjectStack form: `fields` is a map keyed by
    /// name, or a list of fields with `name`).
    pub fn from_json(json: &serde_json::Value) -> Result<Self> {
        let raw: RawSchema = serde_json::from_value(json.clone())
            .map_err(|e| Error::validation("$", format!("invalid object schema: {e}")))?;
        raw.into_schema()
    }

    /// Checks the schema: known field types, a declared primary key, valid
    /// decimal precision, indexes over existing fields.
    pub fn check(&self) -> Result<()> {
        let root = Path::root("fields");
        check_name(&self.name, "object", &Path::root("name"))?;
        if let Some(t) = &self.table_name {
            check_name(t, "table", &Path::root("tableName"))?;
        }
        if !self.fields.contains_key(&self.primary_key) {
            return Err(Error::validation(
                "primaryKey",
                format!("primary key `{}` is not a field", self.primary_key),
            ));
        }
        for (name, field) in &self.fields {
            let path = root.key(name);
            check_field_name(name, &path)?;
            if let Some(c) = &field.column_name {
                check_name(c, "column", &path.key("columnName"))?;
            }
            match field.storage_type()? {
                StorageType::Decimal { precision, scale }
                    if (precision == 0 || precision > 28 || scale > precision) =>
                {
                    return Err(path.err(format!(
                            "decimal precision {precision} / scale {scale} out of range (1 ≤ precision ≤ 28, scale ≤ precision)"
                        )));
                }
                StorageType::Vector { dimensions: 0 } => {
                    return Err(path
                        .key("dimensions")
                        .err("vector field needs `dimensions` > 0"));
                }
                StorageType::Vector { .. } => {}
                _ if field.metric.is_some() => {
                    return Err(path.key("metric").err("only vector fields have a `metric`"));
                }
                _ => {}
            }
        }
        for (i, index) in self.indexes.iter().enumerate() {
            let path = Path::root("indexes").index(i);
            if index.fields.is_empty() {
                return Err(path.err("index has no fields"));
            }
            if let Some(n) = &index.name {
                check_name(n, "index", &path.key("name"))?;
            }
            for f in &index.fields {
                if !self.fields.contains_key(f) {
                    return Err(path.err(format!("index field `{f}` is not a field")));
                }
            }
        }
        Ok(())
    }

    /// The default value of `field`, as a value.
    pub fn default_of(&self, field: &Field) -> Result<Option<Value>> {
        field
            .default_value
            .as_ref()
            .map(|v| {
                Value::from_json(
                    v,
                    &Path::root("fields").key(&field.name).key("defaultValue"),
                )
            })
            .transpose()
    }
}

/// Checks a name that becomes an identifier in storage (an object, table,
/// field, column, index or alias name): not empty, and no NUL or other
/// control character (C0, DEL, C1). Such characters cannot be stored by
/// some backends, cut names short in C APIs, and are never what a caller
/// meant. `what` names the kind of name in the error, reported at `path`.
///
/// Every other character is legal here: quotes and backslashes included,
/// since identifiers are quoted by `objectql_planner::sql::quote_ident`,
/// never by a printer. Backend limits (length, case folding, reserved
/// names) are checked by the driver at registration.
pub fn check_name(name: &str, what: &str, path: &Path) -> Result<()> {
    if name.is_empty() {
        return Err(path.err(format!("{what} name is empty")));
    }
    if let Some((i, ch)) = name.char_indices().find(|(_, c)| c.is_control()) {
        return Err(path.err(format!(
            "{what} name {name:?} contains the control character U+{:04X} at byte {i}; names may not contain NUL or control characters",
            u32::from(ch)
        )));
    }
    Ok(())
}

/// Checks a field name: a legal name ([`check_name`]), no `.`, not starting
/// with `$`.
pub fn check_field_name(name: &str, path: &Path) -> Result<()> {
    check_name(name, "field", path)?;
    if name.starts_with('$') {
        return Err(path.err(format!("field name `{name}` must not start with `$`")));
    }
    if name.contains('.') {
        return Err(path.err(format!("field name `{name}` must not contain `.`")));
    }
    Ok(())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawSchema {
    name: String,
    #[serde(default)]
    label: Option<String>,
    #[serde(default)]
    primary_key: Option<String>,
    #[serde(default)]
    fields: RawFields,
    #[serde(default)]
    indexes: Vec<Index>,
    #[serde(default)]
    datasource: Option<String>,
    #[serde(default)]
    table_name: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(untagged)]
enum RawFields {
    #[default]
    None,
    Map(IndexMap<String, Field>),
    List(Vec<Field>),
}

impl RawSchema {
    fn into_schema(self) -> Result<ObjectSchema> {
        let _ = self.label;
        let primary_key = self.primary_key.unwrap_or_else(|| "id".to_owned());
        let list: Vec<Field> = match self.fields {
            RawFields::None => Vec::new(),
            RawFields::Map(map) => map
                .into_iter()
                .map(|(name, mut f)| {
                    f.name = name;
                    f
                })
                .collect(),
            RawFields::List(list) => list,
        };
        let mut fields = IndexMap::new();
        if !list.iter().any(|f| f.name == primary_key) {
            fields.insert(
                primary_key.clone(),
                Field::new(primary_key.clone(), "text").required(),
            );
        }
        for (i, mut f) in list.into_iter().enumerate() {
            if f.name.is_empty() {
                return Err(Error::validation(
                    format!("fields[{i}].name"),
                    "field has no name",
                ));
            }
            if f.name == primary_key {
                f.required = true;
            }
            if fields.insert(f.name.clone(), f).is_some() {
                return Err(Error::validation(
                    format!("fields[{i}]"),
                    "duplicate field name",
                ));
            }
        }
        let schema = ObjectSchema {
            name: self.name,
            primary_key,
            fields,
            indexes: self.indexes,
            datasource: self.datasource,
            table_name: self.table_name,
        };
        schema.check()?;
        Ok(schema)
    }
}

impl<'de> Deserialize<'de> for ObjectSchema {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        RawSchema::deserialize(deserializer)?
            .into_schema()
            .map_err(serde::de::Error::custom)
    }
}

/// A set of object schemas, looked up by name.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    objects: IndexMap<String, ObjectSchema>,
}

impl Catalog {
    /// An empty catalog.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) an object after checking it.
    pub fn insert(&mut self, schema: ObjectSchema) -> Result<()> {
        schema.check()?;
        self.objects.insert(schema.name.clone(), schema);
        Ok(())
    }

    /// The object called `name`.
    pub fn get(&self, name: &str) -> Option<&ObjectSchema> {
        self.objects.get(name)
    }

    /// All objects, in registration order.
    pub fn iter(&self) -> impl Iterator<Item = &ObjectSchema> {
        self.objects.values()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A schema built with the builder reads back from its JSON unchanged
    /// (a migration compares the stored schema with the registered one: a
    /// difference here was once reported as a column type change).
    #[test]
    fn a_built_schema_reads_back_from_its_json_unchanged() {
        let built = [
            ObjectSchema::new("t")
                .field(Field::new("k", "integer"))
                .primary_key("k"),
            ObjectSchema::new("t").primary_key("code"),
            ObjectSchema::new("t")
                .primary_key("k")
                .field(Field::new("k", "integer")),
            ObjectSchema::new("t")
                .field(Field::new("n", "integer"))
                .index(Index::on(["n"]))
                .index(Index::on(["id", "n"]).unique().named("t_pair")),
        ];
        for schema in built {
            let key = schema.get(&schema.primary_key).map(|f| f.required);
            assert_eq!(key, Some(true), "{schema:?}: the primary key is required");
            let json = serde_json::to_value(&schema).map_err(|e| e.to_string());
            let back = json.and_then(|j| ObjectSchema::from_json(&j).map_err(|e| e.to_string()));
            assert_eq!(back.as_ref(), Ok(&schema));
        }
    }

    #[test]
    fn an_index_built_in_rust_is_the_one_its_json_says() {
        let built = Index::on(["a", "b"])
            .unique()
            .named("ab")
            .kind(IndexKind::Hash);
        let json =
            serde_json::json!({"name": "ab", "fields": ["a", "b"], "unique": true, "type": "hash"});
        let read: Result<Index, String> = serde_json::from_value(json).map_err(|e| e.to_string());
        assert_eq!(read, Ok(built));
        let plain: Result<Index, String> =
            serde_json::from_value(serde_json::json!({"fields": ["a"]})).map_err(|e| e.to_string());
        assert_eq!(plain, Ok(Index::on(["a"])));
    }
}
