//! Go-style durations (`10s`, `1m30s`, `24h`), the format of `spec.l1RpcTimeout` and
//! `spec.contractAddresses.cacheTimeout` (the CRD's DURATION_PATTERN).

use std::time::Duration;

use super::DiscoveryError;

/// Parses a Go duration such as `1h30m` or `1.5s`; `path` names the field in errors.
pub fn parse(path: &str, value: &str) -> Result<Duration, DiscoveryError> {
    let invalid = |detail: &str| DiscoveryError::InvalidSpec {
        field: path.to_string(),
        value: value.to_string(),
        detail: detail.to_string(),
    };
    if value.is_empty() {
        return Err(invalid("a duration such as 10s, 1m30s or 24h"));
    }
    let mut total = 0f64;
    let mut rest = value;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| invalid("a number needs a unit (ns, us, ms, s, m, h)"))?;
        let (number, tail) = rest.split_at(number_len);
        let number: f64 = number
            .parse()
            .map_err(|_| invalid("a duration such as 10s, 1m30s or 24h"))?;
        let (seconds_per_unit, unit_len) = [
            ("ns", 1e-9),
            ("us", 1e-6),
            ("µs", 1e-6),
            ("ms", 1e-3),
            ("s", 1.0),
            ("m", 60.0),
            ("h", 3600.0),
        ]
        .iter()
        .find(|(unit, _)| tail.starts_with(unit))
        .map(|(unit, scale)| (*scale, unit.len()))
        .ok_or_else(|| invalid("units are ns, us, ms, s, m and h"))?;
        total += number * seconds_per_unit;
        rest = &tail[unit_len..];
    }
    Duration::try_from_secs_f64(total).map_err(|_| invalid("out of range"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations_parse_like_go() {
        assert_eq!(parse("x", "10s").unwrap(), Duration::from_secs(10));
        assert_eq!(parse("x", "24h").unwrap(), Duration::from_secs(86_400));
        assert_eq!(parse("x", "1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse("x", "1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse("x", "250ms").unwrap(), Duration::from_millis(250));
    }

    #[test]
    fn a_duration_without_unit_is_refused_with_the_field_named() {
        for bad in ["", "10", "10x", "s", "1h-5m"] {
            let err = parse("spec.l1RpcTimeout", bad).unwrap_err();
            assert_eq!(err.reason(), "InvalidSpec", "{bad}");
            assert!(err.to_string().contains("spec.l1RpcTimeout"), "{err}");
        }
    }
}
