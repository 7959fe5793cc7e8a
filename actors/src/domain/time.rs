use serde::{Deserialize, Serialize};

/// A moment, stored as milliseconds since the Unix epoch and shown as RFC 3339 UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Timestamp(pub i64);

impl Timestamp {
    pub fn now() -> Self {
        let nanos = time::OffsetDateTime::now_utc().unix_timestamp_nanos();
        // Milliseconds since 1970 fit an i64 for 292 million years.
        Self(i64::try_from(nanos / 1_000_000).unwrap_or(i64::MAX))
    }

    pub fn millis(self) -> i64 {
        self.0
    }

    pub fn minus_secs(self, secs: u64) -> Self {
        let secs = i64::try_from(secs).unwrap_or(i64::MAX);
        Self(self.0.saturating_sub(secs.saturating_mul(1000)))
    }

    pub fn plus_secs(self, secs: u64) -> Self {
        let secs = i64::try_from(secs).unwrap_or(i64::MAX);
        Self(self.0.saturating_add(secs.saturating_mul(1000)))
    }

    /// `2026-11-25T20:06:49.123Z`.
    pub fn to_rfc3339(self) -> String {
        let nanos = i128::from(self.0) * 1_000_000;
        let at = time::OffsetDateTime::from_unix_timestamp_nanos(nanos)
            .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
        let format = time::macros::format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
        );
        at.format(&format)
            .unwrap_or_else(|_| "1970-01-01T00:00:00.000Z".to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_time_crate_everywhere() {
        let format = time::macros::format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
        );
        let mut ms: i64 = 0;
        // Every few days across four centuries, leap years and month ends included.
        while ms < 13_000_000_000_000 {
            let expected =
                time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
                    .unwrap()
                    .format(&format)
                    .unwrap();
            assert_eq!(Timestamp(ms).to_rfc3339(), expected, "{ms}");
            ms += 86_400_000 * 3 + 3_723_456;
        }
    }

    #[test]
    fn formats_rfc3339_utc() {
        assert_eq!(Timestamp(0).to_rfc3339(), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            Timestamp(1_764_101_209_123).to_rfc3339(),
            "2025-11-25T20:06:49.123Z"
        );
        assert!(
            time::OffsetDateTime::parse(
                &Timestamp::now().to_rfc3339(),
                &time::format_description::well_known::Rfc3339
            )
            .is_ok()
        );
    }
}
