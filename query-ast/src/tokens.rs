//! Tokens in comparands (`{today}`, `{last_month_start}`, `{3_days_ago}`,
//! `{current_user_id}`), resolved against an explicit clock, timezone and
//! caller context — never the ambient system clock.

use chrono::{DateTime, Datelike, Duration, Months, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use indexmap::IndexMap;

use crate::error::{Path, Result};
use crate::value::Value;

/// The clock, timezone and caller identity that tokens resolve against.
#[derive(Debug, Clone)]
pub struct ResolveContext {
    /// "Now".
    pub now: DateTime<Utc>,
    /// The timezone that defines "today" and day boundaries of date-only
    /// bounds on datetime fields. Default UTC.
    pub timezone: Tz,
    /// `{current_user_id}`.
    pub user_id: Option<String>,
    /// `{current_org_id}`.
    pub org_id: Option<String>,
    /// Further context tokens: `{name}` → value.
    pub values: IndexMap<String, Value>,
}

impl ResolveContext {
    /// A context at `now`, in UTC, with no caller.
    pub fn at(now: DateTime<Utc>) -> Self {
        Self {
            now,
            timezone: Tz::UTC,
            user_id: None,
            org_id: None,
            values: IndexMap::new(),
        }
    }

    /// A context at the system clock's current time, in UTC.
    pub fn now() -> Self {
        Self::at(Utc::now())
    }

    /// Sets the timezone.
    pub fn with_timezone(mut self, tz: Tz) -> Self {
        self.timezone = tz;
        self
    }

    /// Sets the current user.
    pub fn with_user(mut self, user_id: impl Into<String>) -> Self {
        self.user_id = Some(user_id.into());
        self
    }

    /// Sets the current organisation.
    pub fn with_org(mut self, org_id: impl Into<String>) -> Self {
        self.org_id = Some(org_id.into());
        self
    }

    /// Today's date in the context's timezone.
    pub fn today(&self) -> NaiveDate {
        self.now.with_timezone(&self.timezone).date_naive()
    }

    /// The UTC instant at which `date` begins in the context's timezone.
    pub fn day_start(&self, date: NaiveDate) -> DateTime<Utc> {
        let naive = date.and_time(chrono::NaiveTime::MIN);
        // A gap (DST) at midnight: take the earliest valid instant after it.
        match self.timezone.from_local_datetime(&naive) {
            chrono::LocalResult::Single(t) | chrono::LocalResult::Ambiguous(t, _) => {
                t.with_timezone(&Utc)
            }
            chrono::LocalResult::None => self
                .timezone
                .from_local_datetime(&(naive + Duration::hours(1)))
                .earliest()
                .map_or_else(|| naive.and_utc(), |t| t.with_timezone(&Utc)),
        }
    }
}

/// Whether a string looks like a token (`{...}`).
pub fn is_token(s: &str) -> bool {
    s.len() > 2 && s.starts_with('{') && s.ends_with('}') && !s[1..s.len() - 1].contains(['{', '}'])
}

/// Resolves `s` if it is a known token; `Ok(None)` if it is not a token.
///
/// # Errors
/// A context token (`{current_user_id}`) whose value the context lacks, or a
/// relative token whose arithmetic overflows.
pub fn resolve(s: &str, ctx: &ResolveContext, path: &Path) -> Result<Option<Value>> {
    if !is_token(s) {
        return Ok(None);
    }
    let name = &s[1..s.len() - 1];
    let today = ctx.today();
    let overflow = || path.err(format!("token `{s}` is out of the supported date range"));
    let date = |d: Option<NaiveDate>| d.map(Value::Date).ok_or_else(overflow);
    let v = match name {
        "now" => Value::DateTime(ctx.now),
        "today" => Value::Date(today),
        "yesterday" => date(today.pred_opt())?,
        "tomorrow" => date(today.succ_opt())?,
        "current_user_id" | "current_user" => {
            Value::String(ctx.user_id.clone().ok_or_else(|| {
                path.err(format!("token `{s}` needs a current user in the context"))
            })?)
        }
        "current_org_id" | "current_org" => Value::String(ctx.org_id.clone().ok_or_else(|| {
            path.err(format!(
                "token `{s}` needs a current organisation in the context"
            ))
        })?),
        _ => {
            if let Some(v) = period_token(name, today) {
                date(v)?
            } else if let Some(v) = relative_token(name, ctx) {
                v.ok_or_else(overflow)?
            } else if let Some(v) = ctx.values.get(name) {
                v.clone()
            } else {
                return Ok(None);
            }
        }
    };
    Ok(Some(v))
}

/// `{current|last|next}_{week|month|quarter|year}_{start|end}`.
// Outer `None`: not a token of this kind; inner `None`: out of date range.
#[allow(clippy::option_option)]
fn period_token(name: &str, today: NaiveDate) -> Option<Option<NaiveDate>> {
    let mut parts = name.split('_');
    let (rel, unit, edge) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let shift: i32 = match rel {
        "current" | "this" => 0,
        "last" | "previous" => -1,
        "next" => 1,
        _ => return None,
    };
    let is_start = match edge {
        "start" => true,
        "end" => false,
        _ => return None,
    };
    Some(match unit {
        "week" => {
            let monday = today - Duration::days(i64::from(today.weekday().num_days_from_monday()));
            let start = monday.checked_add_signed(Duration::weeks(i64::from(shift)));
            if is_start {
                start
            } else {
                start.and_then(|s| s.checked_add_signed(Duration::days(6)))
            }
        }
        "month" | "quarter" | "year" => {
            let months_per = match unit {
                "month" => 1,
                "quarter" => 3,
                _ => 12,
            };
            let first_month0 = (today.month0() / months_per) * months_per;
            let start = NaiveDate::from_ymd_opt(today.year(), first_month0 + 1, 1);
            let start = start
                .and_then(|s| add_months(s, shift.saturating_mul(i32::try_from(months_per).ok()?)));
            if is_start {
                start
            } else {
                start
                    .and_then(|s| s.checked_add_months(Months::new(months_per)))
                    .and_then(|s| s.pred_opt())
            }
        }
        _ => return None,
    })
}

fn add_months(d: NaiveDate, months: i32) -> Option<NaiveDate> {
    if months >= 0 {
        d.checked_add_months(Months::new(months.unsigned_abs()))
    } else {
        d.checked_sub_months(Months::new(months.unsigned_abs()))
    }
}

/// `{N_unit_ago}` / `{N_unit_from_now}` with unit minutes|hours|days|weeks|months|years.
/// Minutes and hours give an instant; days and longer give a date.
// Outer `None`: not a token of this kind; inner `None`: out of date range.
#[allow(clippy::option_option)]
fn relative_token(name: &str, ctx: &ResolveContext) -> Option<Option<Value>> {
    let (n, rest) = name.split_once('_')?;
    let n: u32 = n.parse().ok()?;
    let (unit, dir) = if let Some(u) = rest.strip_suffix("_ago") {
        (u, -1_i64)
    } else if let Some(u) = rest.strip_suffix("_from_now") {
        (u, 1_i64)
    } else {
        return None;
    };
    let signed = i64::from(n) * dir;
    let today = ctx.today();
    let months = |m: i64| -> Option<Value> {
        let m = i32::try_from(m).ok()?;
        add_months(today, m).map(Value::Date)
    };
    Some(match unit {
        "minute" | "minutes" => ctx
            .now
            .checked_add_signed(Duration::try_minutes(signed)?)
            .map(Value::DateTime),
        "hour" | "hours" => ctx
            .now
            .checked_add_signed(Duration::try_hours(signed)?)
            .map(Value::DateTime),
        "day" | "days" => today
            .checked_add_signed(Duration::try_days(signed)?)
            .map(Value::Date),
        "week" | "weeks" => today
            .checked_add_signed(Duration::try_weeks(signed)?)
            .map(Value::Date),
        "month" | "months" => months(signed),
        "year" | "years" => months(signed.checked_mul(12)?),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> ResolveContext {
        // Saturday 2026-11-21 10:30 UTC.
        ResolveContext::at(Utc.with_ymd_and_hms(2026, 11, 21, 10, 30, 0).unwrap()).with_user("u1")
    }

    fn r(s: &str) -> Value {
        resolve(s, &ctx(), &Path::root("x")).unwrap().unwrap()
    }

    fn d(y: i32, m: u32, day: u32) -> Value {
        Value::Date(NaiveDate::from_ymd_opt(y, m, day).unwrap())
    }

    #[test]
    fn calendar_tokens() {
        assert_eq!(r("{today}"), d(2026, 11, 21));
        assert_eq!(r("{yesterday}"), d(2026, 11, 20));
        assert_eq!(r("{current_week_start}"), d(2026, 11, 16));
        assert_eq!(r("{current_week_end}"), d(2026, 11, 22));
        assert_eq!(r("{last_month_start}"), d(2026, 10, 1));
        assert_eq!(r("{last_month_end}"), d(2026, 10, 31));
        assert_eq!(r("{next_quarter_start}"), d(2027, 1, 1));
        assert_eq!(r("{current_quarter_end}"), d(2026, 12, 31));
        assert_eq!(r("{last_year_start}"), d(2025, 1, 1));
        assert_eq!(r("{3_days_ago}"), d(2026, 11, 18));
        assert_eq!(r("{1_months_from_now}"), d(2026, 12, 21));
        assert_eq!(r("{current_user_id}"), Value::String("u1".into()));
        assert_eq!(
            r("{2_hours_ago}"),
            Value::DateTime(Utc.with_ymd_and_hms(2026, 11, 21, 8, 30, 0).unwrap())
        );
    }

    #[test]
    fn timezone_moves_today() {
        let c = ctx().with_timezone(chrono_tz::Pacific::Kiritimati); // UTC+14
        assert_eq!(
            resolve("{today}", &c, &Path::empty()).unwrap(),
            Some(d(2026, 11, 22))
        );
    }

    #[test]
    fn unknown_braces_are_literal_and_missing_context_is_an_error() {
        assert_eq!(
            resolve("{not_a_token}", &ctx(), &Path::empty()).unwrap(),
            None
        );
        let c = ResolveContext::at(Utc::now());
        assert!(resolve("{current_org_id}", &c, &Path::empty()).is_err());
        assert!(resolve("{999999999_years_ago}", &c, &Path::empty()).is_err());
    }
}
