//! The portal's working-time calendar: working hours, weekend days and
//! holidays, in the portal's time zone. Robots delayed "in working time" and
//! the `calendar` host interface both count time with it. An employee may
//! keep their own hours and time zone ([`WorkingHours`]): a robot addressed
//! to them counts time with [`Calendar::with_hours`], the portal's holidays
//! kept.

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc, Weekday};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use super::value::Timestamp;

/// How far ahead the calendar looks for working time before it gives up. A
/// calendar is checked to have working days, so only a year of holidays in a
/// row could reach it.
const SEARCH_DAYS: i64 = 3 * 366;

/// A working-time calendar.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, try_from = "CalendarSpec", into = "CalendarSpec")]
pub struct Calendar {
    time_zone: Tz,
    work_start: NaiveTime,
    work_end: NaiveTime,
    weekend: Vec<Weekday>,
    holidays: Vec<Holiday>,
}

/// The longest holiday range, in days: a year. A longer one is a typing
/// mistake, and would leave the calendar searching for working time.
const MAX_HOLIDAY_DAYS: i64 = 366;

/// A holiday: one day (`2026-11-04`), or the days from `first` to `last`
/// inclusive (`2026-12-31..2027-01-08`), as written in JSON and TOML.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Holiday {
    pub first: NaiveDate,
    pub last: NaiveDate,
}

impl Holiday {
    pub fn contains(&self, day: NaiveDate) -> bool {
        self.first <= day && day <= self.last
    }
}

impl std::str::FromStr for Holiday {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        let date = |part: &str| {
            NaiveDate::parse_from_str(part.trim(), "%Y-%m-%d").map_err(|_| {
                format!("`{text}` is not a holiday: write a date such as 2026-12-31 or a range such as 2026-12-31..2027-01-08")
            })
        };
        let (first, last) = match text.split_once("..") {
            Some((first, last)) => (date(first)?, date(last)?),
            None => (date(text)?, date(text)?),
        };
        if last < first {
            return Err(format!("the holidays `{text}` end before they start"));
        }
        if (last - first).num_days() >= MAX_HOLIDAY_DAYS {
            return Err(format!("the holidays `{text}` last more than {MAX_HOLIDAY_DAYS} days"));
        }
        Ok(Holiday { first, last })
    }
}

impl TryFrom<String> for Holiday {
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
        text.parse()
    }
}

impl From<Holiday> for String {
    fn from(h: Holiday) -> String {
        h.to_string()
    }
}

impl std::fmt::Display for Holiday {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.first == self.last {
            write!(f, "{}", self.first)
        } else {
            write!(f, "{}..{}", self.first, self.last)
        }
    }
}

/// The calendar as written in JSON and TOML.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CalendarSpec {
    #[serde(default = "utc")]
    time_zone: String,
    #[serde(default = "nine")]
    work_start: NaiveTime,
    #[serde(default = "eighteen")]
    work_end: NaiveTime,
    #[serde(default = "saturday_sunday")]
    weekend: Vec<Weekday>,
    #[serde(default)]
    holidays: Vec<Holiday>,
}

fn utc() -> String {
    "UTC".into()
}
fn nine() -> NaiveTime {
    NaiveTime::from_hms_opt(9, 0, 0).expect("valid time")
}
fn eighteen() -> NaiveTime {
    NaiveTime::from_hms_opt(18, 0, 0).expect("valid time")
}
fn saturday_sunday() -> Vec<Weekday> {
    vec![Weekday::Sat, Weekday::Sun]
}

/// A calendar that cannot be used, with what to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CalendarError {
    #[error("`{0}` is not an IANA time zone such as Europe/Moscow")]
    UnknownTimeZone(String),
    #[error("working hours must start before they end, not {start} to {end}")]
    EmptyDay { start: NaiveTime, end: NaiveTime },
    #[error("every day of the week is a weekend day: the calendar has no working time")]
    NoWorkingDays,
    #[error("no working time within {SEARCH_DAYS} days of {from}")]
    NoWorkingTime { from: Timestamp },
}

impl Default for Calendar {
    fn default() -> Self {
        Calendar::try_from(CalendarSpec {
            time_zone: utc(),
            work_start: nine(),
            work_end: eighteen(),
            weekend: saturday_sunday(),
            holidays: vec![],
        })
        .expect("the default calendar is valid")
    }
}

impl TryFrom<CalendarSpec> for Calendar {
    type Error = CalendarError;
    fn try_from(spec: CalendarSpec) -> Result<Self, CalendarError> {
        let time_zone = spec
            .time_zone
            .parse()
            .map_err(|_| CalendarError::UnknownTimeZone(spec.time_zone.clone()))?;
        Calendar::new(time_zone, spec.work_start, spec.work_end, spec.weekend, spec.holidays)
    }
}

impl From<Calendar> for CalendarSpec {
    fn from(c: Calendar) -> Self {
        CalendarSpec {
            time_zone: c.time_zone.name().to_owned(),
            work_start: c.work_start,
            work_end: c.work_end,
            weekend: c.weekend,
            holidays: c.holidays,
        }
    }
}

/// An employee's own working hours: what they set replaces the portal's,
/// what they leave out (and the holidays) stays the portal's.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, try_from = "HoursSpec", into = "HoursSpec")]
pub struct WorkingHours {
    time_zone: Option<Tz>,
    work_start: Option<NaiveTime>,
    work_end: Option<NaiveTime>,
    weekend: Option<Vec<Weekday>>,
}

/// Working hours as written in JSON.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct HoursSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    time_zone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    work_start: Option<NaiveTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    work_end: Option<NaiveTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    weekend: Option<Vec<Weekday>>,
}

impl TryFrom<HoursSpec> for WorkingHours {
    type Error = CalendarError;
    fn try_from(spec: HoursSpec) -> Result<Self, CalendarError> {
        let time_zone = match spec.time_zone {
            Some(name) => Some(name.parse().map_err(|_| CalendarError::UnknownTimeZone(name.clone()))?),
            None => None,
        };
        if let (Some(start), Some(end)) = (spec.work_start, spec.work_end)
            && start >= end
        {
            return Err(CalendarError::EmptyDay { start, end });
        }
        if spec.weekend.as_ref().is_some_and(|w| {
            let days: std::collections::HashSet<&Weekday> = w.iter().collect();
            days.len() == 7
        }) {
            return Err(CalendarError::NoWorkingDays);
        }
        Ok(WorkingHours {
            time_zone,
            work_start: spec.work_start,
            work_end: spec.work_end,
            weekend: spec.weekend,
        })
    }
}

impl From<WorkingHours> for HoursSpec {
    fn from(h: WorkingHours) -> Self {
        HoursSpec {
            time_zone: h.time_zone.map(|tz| tz.name().to_owned()),
            work_start: h.work_start,
            work_end: h.work_end,
            weekend: h.weekend,
        }
    }
}

impl WorkingHours {
    /// The time zone, when the employee set one.
    pub fn time_zone(&self) -> Option<Tz> {
        self.time_zone
    }
}

impl Calendar {
    /// This calendar with an employee's own hours: their time zone, hours
    /// and weekend where they set them, the portal's holidays. An error
    /// when the two together leave no working day (the employee's start
    /// after the portal's end, say).
    pub fn with_hours(&self, hours: &WorkingHours) -> Result<Calendar, CalendarError> {
        Calendar::new(
            hours.time_zone.unwrap_or(self.time_zone),
            hours.work_start.unwrap_or(self.work_start),
            hours.work_end.unwrap_or(self.work_end),
            hours.weekend.clone().unwrap_or_else(|| self.weekend.clone()),
            self.holidays.clone(),
        )
    }

    /// The calendar date of `at` in this calendar's time zone.
    pub fn date_of(&self, at: Timestamp) -> NaiveDate {
        self.local(at).date()
    }

    pub fn new(
        time_zone: Tz,
        work_start: NaiveTime,
        work_end: NaiveTime,
        weekend: Vec<Weekday>,
        mut holidays: Vec<Holiday>,
    ) -> Result<Self, CalendarError> {
        if work_start >= work_end {
            return Err(CalendarError::EmptyDay {
                start: work_start,
                end: work_end,
            });
        }
        let weekend_days: std::collections::HashSet<Weekday> = weekend.iter().copied().collect();
        if weekend_days.len() == 7 {
            return Err(CalendarError::NoWorkingDays);
        }
        holidays.sort_unstable();
        holidays.dedup();
        Ok(Calendar {
            time_zone,
            work_start,
            work_end,
            weekend,
            holidays,
        })
    }

    pub fn time_zone(&self) -> Tz {
        self.time_zone
    }

    fn is_working_day(&self, day: NaiveDate) -> bool {
        !self.weekend.contains(&day.weekday()) && !self.holidays.iter().any(|h| h.contains(day))
    }

    /// The first instant of `day` in this calendar's time zone (midnight,
    /// or the first instant after a daylight-saving gap): where a date-only
    /// field counts from.
    pub fn start_of_day(&self, day: NaiveDate) -> Timestamp {
        Timestamp::from_datetime(self.instant(day.and_time(NaiveTime::MIN)))
    }

    fn local(&self, at: Timestamp) -> NaiveDateTime {
        at.to_datetime().with_timezone(&self.time_zone).naive_local()
    }

    /// The instant of a local wall-clock time; in a daylight-saving gap, the
    /// first instant after it.
    fn instant(&self, local: NaiveDateTime) -> DateTime<Utc> {
        let mut probe = local;
        loop {
            if let Some(at) = self.time_zone.from_local_datetime(&probe).earliest() {
                return at.with_timezone(&Utc);
            }
            probe += Duration::minutes(15);
        }
    }

    pub fn is_working_time(&self, at: Timestamp) -> bool {
        let local = self.local(at);
        self.is_working_day(local.date()) && local.time() >= self.work_start && local.time() < self.work_end
    }

    /// `at` itself in working time, else the start of the next working period.
    pub fn next_working_moment(&self, at: Timestamp) -> Result<Timestamp, CalendarError> {
        if self.is_working_time(at) {
            return Ok(at);
        }
        let local = self.local(at);
        let mut day = local.date();
        if local.time() >= self.work_start {
            day = day.succ_opt().ok_or(CalendarError::NoWorkingTime { from: at })?;
        }
        for _ in 0..SEARCH_DAYS {
            if self.is_working_day(day) {
                return Ok(Timestamp::from_datetime(self.instant(day.and_time(self.work_start))));
            }
            day = day.succ_opt().ok_or(CalendarError::NoWorkingTime { from: at })?;
        }
        Err(CalendarError::NoWorkingTime { from: at })
    }

    /// The same time of day `days` working days after `start` (counted from
    /// its next working moment): "in 3 days, in working time" as an admin
    /// means it, skipping weekends and holidays.
    pub fn add_working_days(&self, start: Timestamp, days: u32) -> Result<Timestamp, CalendarError> {
        let local = self.local(self.next_working_moment(start)?);
        let mut day = local.date();
        let mut left = days;
        for _ in 0..SEARCH_DAYS {
            if left == 0 {
                return Ok(Timestamp::from_datetime(self.instant(day.and_time(local.time()))));
            }
            day = day.succ_opt().ok_or(CalendarError::NoWorkingTime { from: start })?;
            if self.is_working_day(day) {
                left -= 1;
            }
        }
        Err(CalendarError::NoWorkingTime { from: start })
    }

    /// The moment `duration` of working time after `start`.
    pub fn add_working_time(&self, start: Timestamp, duration: Duration) -> Result<Timestamp, CalendarError> {
        let mut at = self.next_working_moment(start)?;
        let mut left = duration.max(Duration::zero());
        for _ in 0..SEARCH_DAYS {
            let day_end = self.instant(self.local(at).date().and_time(self.work_end));
            let available = day_end - at.to_datetime();
            if left <= available {
                return Ok(Timestamp::from_datetime(at.to_datetime() + left));
            }
            left -= available;
            at = self.next_working_moment(Timestamp::from_datetime(day_end))?;
        }
        Err(CalendarError::NoWorkingTime { from: start })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn moscow() -> Calendar {
        serde_json::from_str(r#"{"time_zone": "Europe/Moscow", "holidays": ["2026-11-04"]}"#).unwrap()
    }

    fn at(text: &str) -> Timestamp {
        DateTime::parse_from_rfc3339(text)
            .map(|t| Timestamp::from_datetime(t.with_timezone(&Utc)))
            .unwrap()
    }

    #[test]
    fn working_hours_are_local() {
        let cal = moscow();
        assert!(cal.is_working_time(at("2026-11-25T09:00:00+03:00")));
        assert!(!cal.is_working_time(at("2026-11-25T08:59:59+03:00")));
        assert!(!cal.is_working_time(at("2026-11-25T18:00:00+03:00")));
        assert!(!cal.is_working_time(at("2026-11-28T12:00:00+03:00")), "Saturday");
        assert!(!cal.is_working_time(at("2026-11-04T12:00:00+03:00")), "holiday");
    }

    #[test]
    fn working_days_keep_the_time_and_skip_weekends_and_holidays() {
        let cal = moscow();
        // Wednesday 10:00 + 3 working days: Thursday, Friday, Monday.
        assert_eq!(
            cal.add_working_days(at("2026-11-25T10:00:00+03:00"), 3).unwrap(),
            at("2026-11-30T10:00:00+03:00")
        );
        // Monday 2026-11-02 + 3 skips the holiday on Wednesday the 4th.
        assert_eq!(
            cal.add_working_days(at("2026-11-02T12:00:00+03:00"), 3).unwrap(),
            at("2026-11-06T12:00:00+03:00")
        );
        // From a Saturday evening, counting starts Monday 09:00.
        assert_eq!(
            cal.add_working_days(at("2026-11-28T20:00:00+03:00"), 1).unwrap(),
            at("2026-12-01T09:00:00+03:00")
        );
    }

    #[test]
    fn next_working_moment_skips_nights_weekends_and_holidays() {
        let cal = moscow();
        assert_eq!(
            cal.next_working_moment(at("2026-11-27T19:00:00+03:00")).unwrap(),
            at("2026-11-30T09:00:00+03:00")
        );
        assert_eq!(
            cal.next_working_moment(at("2026-11-03T18:30:00+03:00")).unwrap(),
            at("2026-11-05T09:00:00+03:00")
        );
        assert_eq!(
            cal.next_working_moment(at("2026-11-25T07:00:00+03:00")).unwrap(),
            at("2026-11-25T09:00:00+03:00")
        );
    }

    #[test]
    fn working_durations_carry_over_days() {
        let cal = moscow();
        // Friday 17:00 + 3 working hours = Monday 11:00.
        assert_eq!(
            cal.add_working_time(at("2026-11-27T17:00:00+03:00"), Duration::hours(3))
                .unwrap(),
            at("2026-11-30T11:00:00+03:00")
        );
        // Three working days from Tuesday 10:00, over the Wednesday holiday.
        assert_eq!(
            cal.add_working_time(at("2026-11-03T10:00:00+03:00"), Duration::hours(27))
                .unwrap(),
            at("2026-11-09T10:00:00+03:00")
        );
    }

    #[test]
    fn own_hours_replace_the_portals_and_keep_its_holidays() {
        let hours: WorkingHours =
            serde_json::from_str(r#"{"time_zone": "Asia/Vladivostok", "work_start": "08:00:00"}"#).unwrap();
        let cal = moscow().with_hours(&hours).unwrap();
        assert_eq!(cal.time_zone(), chrono_tz::Asia::Vladivostok);
        assert!(cal.is_working_time(at("2026-11-25T08:00:00+10:00")));
        assert!(
            !cal.is_working_time(at("2026-11-25T18:00:00+10:00")),
            "the portal's end"
        );
        assert!(
            !cal.is_working_time(at("2026-11-04T12:00:00+10:00")),
            "the portal's holiday"
        );
        // Friday 17:00 in Vladivostok + 2 working hours: Monday 09:00 there.
        assert_eq!(
            cal.add_working_time(at("2026-11-27T17:00:00+10:00"), Duration::hours(2))
                .unwrap(),
            at("2026-11-30T09:00:00+10:00")
        );
        assert_eq!(cal.date_of(at("2026-11-25T23:00:00+03:00")).to_string(), "2026-11-26");
        // What they leave out stays the portal's; their own end before the
        // portal's start leaves no working time.
        assert_eq!(moscow().with_hours(&WorkingHours::default()).unwrap(), moscow());
        let early: WorkingHours = serde_json::from_str(r#"{"work_end": "08:00:00"}"#).unwrap();
        assert_eq!(
            moscow().with_hours(&early).unwrap_err().to_string(),
            "working hours must start before they end, not 09:00:00 to 08:00:00"
        );
    }

    #[test]
    fn unusable_own_hours_are_refused() {
        let err = |json: &str| serde_json::from_str::<WorkingHours>(json).unwrap_err().to_string();
        assert!(err(r#"{"time_zone": "Mars/Olympus"}"#).contains("not an IANA time zone"));
        assert!(err(r#"{"work_start": "18:00:00", "work_end": "09:00:00"}"#).contains("must start before they end"));
        assert!(err(r#"{"weekend": ["Mon","Tue","Wed","Thu","Fri","Sat","Sun"]}"#).contains("no working time"));
        assert!(err(r#"{"lunch": "13:00:00"}"#).contains("unknown field `lunch`"));
    }

    #[test]
    fn holidays_may_be_ranges() {
        let cal: Calendar = serde_json::from_str(
            r#"{"time_zone": "Europe/Moscow", "holidays": ["2026-12-31..2027-01-08", "2027-02-23"]}"#,
        )
        .unwrap();
        assert!(!cal.is_working_time(at("2026-12-31T12:00:00+03:00")), "first day");
        assert!(!cal.is_working_time(at("2027-01-05T12:00:00+03:00")), "inside");
        assert!(!cal.is_working_time(at("2027-01-08T12:00:00+03:00")), "last day");
        assert!(cal.is_working_time(at("2027-01-11T12:00:00+03:00")), "the Monday after");
        assert!(cal.is_working_time(at("2026-12-30T12:00:00+03:00")), "the day before");
        // Wednesday 30 December + 1 working day: Monday 11 January.
        assert_eq!(
            cal.add_working_days(at("2026-12-30T10:00:00+03:00"), 1).unwrap(),
            at("2027-01-11T10:00:00+03:00")
        );
        // Read back as written: a single day stays a day.
        assert_eq!(
            serde_json::to_value(&cal).unwrap()["holidays"],
            serde_json::json!(["2026-12-31..2027-01-08", "2027-02-23"])
        );
        let err = |json: &str| serde_json::from_str::<Calendar>(json).unwrap_err().to_string();
        assert!(
            err(r#"{"holidays": ["2027-01-08..2026-12-31"]}"#)
                .contains("the holidays `2027-01-08..2026-12-31` end before they start"),
        );
        assert!(err(r#"{"holidays": ["2026-01-01..2027-06-01"]}"#).contains("last more than 366 days"));
        assert!(err(r#"{"holidays": ["New Year"]}"#).contains(
            "`New Year` is not a holiday: write a date such as 2026-12-31 or a range such as 2026-12-31..2027-01-08"
        ));
    }

    #[test]
    fn a_day_starts_at_midnight_in_the_calendars_zone() {
        let day = NaiveDate::from_ymd_opt(2026, 12, 6).unwrap();
        assert_eq!(moscow().start_of_day(day), at("2026-12-06T00:00:00+03:00"));
        assert_eq!(Calendar::default().start_of_day(day), at("2026-12-06T00:00:00Z"));
    }

    #[test]
    fn unusable_calendars_are_refused() {
        let err = |json: &str| serde_json::from_str::<Calendar>(json).unwrap_err().to_string();
        assert!(err(r#"{"time_zone": "Mars/Olympus"}"#).contains("not an IANA time zone"));
        assert!(err(r#"{"work_start": "18:00:00", "work_end": "09:00:00"}"#).contains("must start before they end"));
        assert!(err(r#"{"weekend": ["Mon","Tue","Wed","Thu","Fri","Sat","Sun"]}"#).contains("no working time"));
    }
}
