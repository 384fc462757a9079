//! Kubernetes resource quantities (`k8s.io/apimachinery/pkg/api/resource`), as bytes.
//!
//! A policy must compare `16Gi` with `17179869184` and `16G` correctly; string comparison or a
//! float would not. Accepted: an unsigned decimal number (optionally with a fraction), then
//! one binary suffix (`Ki` `Mi` `Gi` `Ti` `Pi` `Ei`), one decimal suffix (`n` `u` `m` `k` `M`
//! `G` `T` `P` `E`), a decimal exponent (`e3`, `E-2`), or nothing (plain bytes). Fractions of a
//! byte round up, as Kubernetes does for a memory value.

/// Bytes of a quantity, or `None` if it is not one (or does not fit in a `u128`).
pub fn parse_bytes(quantity: &str) -> Option<u128> {
    let split = quantity
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+'))
        .unwrap_or(quantity.len());
    let (number, suffix) = quantity.split_at(split);
    let number = number.strip_prefix('+').unwrap_or(number);
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() && fraction.is_empty()
        || !(whole.chars().chain(fraction.chars())).all(|c| c.is_ascii_digit())
    {
        return None;
    }
    // value = digits / 10^len(fraction) * base^exponent
    let digits: u128 = format!("{whole}{fraction}").parse().ok()?;
    let (base, exponent): (u128, i32) = match suffix {
        "" => (10, 0),
        "Ki" => (2, 10),
        "Mi" => (2, 20),
        "Gi" => (2, 30),
        "Ti" => (2, 40),
        "Pi" => (2, 50),
        "Ei" => (2, 60),
        "n" => (10, -9),
        "u" => (10, -6),
        "m" => (10, -3),
        "k" => (10, 3),
        "M" => (10, 6),
        "G" => (10, 9),
        "T" => (10, 12),
        "P" => (10, 15),
        "E" => (10, 18),
        exponent => (10, decimal_exponent(exponent)?),
    };
    let mut numerator = digits;
    let mut denominator = 10u128.checked_pow(u32::try_from(fraction.len()).ok()?)?;
    let scale = base.checked_pow(exponent.unsigned_abs())?;
    if exponent >= 0 {
        numerator = numerator.checked_mul(scale)?;
    } else {
        denominator = denominator.checked_mul(scale)?;
    }
    Some(numerator.div_ceil(denominator))
}

/// `e3`, `E3`, `e+3`, `e-3`; the sign and digits are required after the letter.
fn decimal_exponent(suffix: &str) -> Option<i32> {
    let rest = suffix.strip_prefix(['e', 'E'])?;
    let digits = rest.strip_prefix(['+', '-']).unwrap_or(rest);
    if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    rest.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::parse_bytes;

    #[test]
    fn binary_suffixes_are_powers_of_two() {
        assert_eq!(parse_bytes("1Ki"), Some(1024));
        assert_eq!(parse_bytes("16Gi"), Some(16 << 30));
        assert_eq!(parse_bytes("1.5Gi"), Some(3 << 29));
        assert_eq!(parse_bytes("2Ti"), Some(2 << 40));
        assert_eq!(parse_bytes("512Mi"), Some(512 << 20));
    }

    #[test]
    fn decimal_suffixes_are_powers_of_ten() {
        assert_eq!(parse_bytes("16G"), Some(16_000_000_000));
        assert_eq!(parse_bytes("1k"), Some(1000));
        assert_eq!(parse_bytes("3M"), Some(3_000_000));
        assert_eq!(parse_bytes("1T"), Some(1_000_000_000_000));
        assert_eq!(parse_bytes("1e9"), Some(1_000_000_000));
        assert_eq!(parse_bytes("1E3"), Some(1000));
    }

    #[test]
    fn plain_numbers_are_bytes_and_fractions_of_a_byte_round_up() {
        assert_eq!(parse_bytes("17179869184"), Some(16 << 30));
        assert_eq!(parse_bytes("+42"), Some(42));
        assert_eq!(parse_bytes("1500m"), Some(2));
        assert_eq!(parse_bytes("0.5"), Some(1));
    }

    #[test]
    fn sixteen_gigabytes_is_less_than_sixteen_gibibytes() {
        assert!(parse_bytes("16G").unwrap() < parse_bytes("16Gi").unwrap());
    }

    #[test]
    fn anything_else_is_not_a_quantity() {
        for bad in [
            "", "Gi", "16 Gi", "16gi", "16GB", "-1Gi", "1.2.3", "1e", "0x10", "1ee3",
        ] {
            assert_eq!(parse_bytes(bad), None, "{bad:?}");
        }
    }
}
