use chrono::{DateTime, Datelike, NaiveDate};

/// The UTC calendar day a contact was initiated on: the sink's partition.
///
/// Stored as days since 1970-01-01 so a claim can record it in four bytes;
/// `UNKNOWN` stands for a record without a readable `InitiationTimestamp`,
/// which goes to Hive's default partition rather than being dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct UtcDay(pub i32);

impl UtcDay {
    pub const UNKNOWN: UtcDay = UtcDay(i32::MIN);

    /// Reads the day from an ISO 8601 / RFC 3339 timestamp. Amazon Connect
    /// always writes `YYYY-MM-DDTHH:MM:SSZ`; that common shape is read without
    /// a full parse, anything else (offsets, fractions) goes through chrono.
    pub fn from_timestamp(text: &str) -> UtcDay {
        let b = text.as_bytes();
        if b.len() == 20 && b[4] == b'-' && b[7] == b'-' && b[10] == b'T' && b[19] == b'Z' {
            // `parse_from_str` would interpret its format string on every record.
            let number = |digits: &[u8]| {
                digits.iter().try_fold(0u32, |n, d| d.is_ascii_digit().then(|| n * 10 + (d - b'0') as u32))
            };
            if let (Some(year), Some(month), Some(day)) = (number(&b[..4]), number(&b[5..7]), number(&b[8..10])) {
                if let Some(date) = NaiveDate::from_ymd_opt(year as i32, month, day) {
                    return UtcDay::from_date(date);
                }
            }
        }
        match DateTime::parse_from_rfc3339(text) {
            Ok(instant) => UtcDay::from_date(instant.naive_utc().date()),
            Err(_) => UtcDay::UNKNOWN,
        }
    }

    pub fn from_date(date: NaiveDate) -> UtcDay {
        UtcDay(date.num_days_from_ce() - EPOCH_DAYS_FROM_CE)
    }

    pub fn date(self) -> Option<NaiveDate> {
        if self == UtcDay::UNKNOWN {
            return None;
        }
        NaiveDate::from_num_days_from_ce_opt(self.0 + EPOCH_DAYS_FROM_CE)
    }

    /// The Hive-style partition directory, `year=YYYY/month=MM/day=DD`.
    pub fn hive_path(self) -> String {
        match self.date() {
            Some(date) => format!("year={:04}/month={:02}/day={:02}", date.year(), date.month(), date.day()),
            None => "year=__HIVE_DEFAULT_PARTITION__/month=__HIVE_DEFAULT_PARTITION__/day=__HIVE_DEFAULT_PARTITION__"
                .to_string(),
        }
    }
}

/// `NaiveDate::num_days_from_ce` of 1970-01-01.
const EPOCH_DAYS_FROM_CE: i32 = 719_163;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_timestamps_map_to_their_utc_day() {
        let day = UtcDay::from_timestamp("2022-01-05T17:12:59Z");
        assert_eq!(day.date(), NaiveDate::from_ymd_opt(2022, 1, 5));
        assert_eq!(day.hive_path(), "year=2022/month=01/day=05");
        assert_eq!(UtcDay::from_timestamp("1970-01-01T00:00:00Z"), UtcDay(0));
    }

    #[test]
    fn offsets_are_converted_to_utc() {
        let day = UtcDay::from_timestamp("2022-01-06T02:12:59+09:00");
        assert_eq!(day.hive_path(), "year=2022/month=01/day=05");
    }

    #[test]
    fn unreadable_timestamps_go_to_the_default_partition() {
        assert_eq!(UtcDay::from_timestamp("yesterday"), UtcDay::UNKNOWN);
        assert!(UtcDay::UNKNOWN.hive_path().contains("__HIVE_DEFAULT_PARTITION__"));
    }
}
