//! Page sizes, the same for every list the API serves.

use crate::error::ApiError;

pub const DEFAULT_LIMIT: i64 = 50;
/// Larger requests are served this many (Letta's clients page on).
pub const MAX_LIMIT: i64 = 1000;

/// The page size for a requested `limit`: the default when absent, at most [`MAX_LIMIT`]; below 1
/// is refused.
pub fn page_limit(requested: Option<i64>) -> Result<i64, ApiError> {
    let limit = requested.unwrap_or(DEFAULT_LIMIT);
    if limit < 1 {
        return Err(ApiError::Unprocessable(format!(
            "limit must be at least 1 (at most {MAX_LIMIT} are returned), not {limit}"
        )));
    }
    Ok(limit.min(MAX_LIMIT))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_default_clamp_and_refuse_below_one() {
        assert_eq!(page_limit(None).ok(), Some(DEFAULT_LIMIT));
        assert_eq!(page_limit(Some(5_000)).ok(), Some(MAX_LIMIT));
        assert_eq!(page_limit(Some(1)).ok(), Some(1));
        assert!(page_limit(Some(0)).is_err());
        assert!(page_limit(Some(-3)).is_err());
    }
}
