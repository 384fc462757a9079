//! Caps and shape checks on what a plugin returns. Plugin output is untrusted input: it is
//! bounded and parsed here, before anything else in the host looks at it.

use serde_json::Value;

use super::Error;

/// Bounds on one call's output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputLimits {
    /// All objects and warnings together, in bytes.
    pub total_bytes: usize,
    /// Number of objects (and, separately, of warnings or violations).
    pub objects: usize,
    /// One object, in bytes.
    pub object_bytes: usize,
    /// Nesting depth of one object (the object itself is depth 1).
    pub json_depth: usize,
}

impl Default for OutputLimits {
    fn default() -> Self {
        OutputLimits {
            total_bytes: 1 << 20,
            objects: 64,
            object_bytes: 1 << 20,
            json_depth: 64,
        }
    }
}

/// Longest text of a plugin's that the host keeps: one warning, one error or problem, one
/// violation message. Plugin text ends up in conditions, Events and log lines; a plugin must not
/// be able to fill them (an Event note holds 1 KiB, a status patch fails past 32 KiB a message).
pub const MAX_TEXT_BYTES: usize = 1024;

/// `text` cut to [`MAX_TEXT_BYTES`] on a character boundary, saying how much was cut.
pub fn cap_text(text: String) -> String {
    if text.len() <= MAX_TEXT_BYTES {
        return text;
    }
    let end = text.floor_char_boundary(MAX_TEXT_BYTES);
    format!("{}… ({} more bytes cut)", &text[..end], text.len() - end)
}

/// A render's output after the checks: parsed objects, in the plugin's order.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    pub objects: Vec<Value>,
    pub warnings: Vec<String>,
}

impl Rendered {
    /// The objects as one canonical JSON array: keys sorted at every level, no whitespace.
    /// Equal content gives equal bytes, whatever the plugin's key order.
    pub fn canonical_json(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.push(b'[');
        for (i, object) in self.objects.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            write_canonical(object, &mut out);
        }
        out.push(b']');
        out
    }
}

/// Checks the raw output of `render` and parses its objects.
pub fn check_render_output(
    objects: Vec<String>,
    warnings: Vec<String>,
    limits: &OutputLimits,
) -> Result<Rendered, Error> {
    check_counts_and_sizes(&objects, &warnings, limits)?;
    let warnings = warnings.into_iter().map(cap_text).collect();
    let objects = objects
        .iter()
        .enumerate()
        .map(|(index, text)| parse_object(index, text, limits))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Rendered { objects, warnings })
}

/// Checks the sizes of a list of strings the plugin returned along with its warnings
/// (e.g. policy violations flattened to text).
pub fn check_counts_and_sizes(
    items: &[String],
    warnings: &[String],
    limits: &OutputLimits,
) -> Result<(), Error> {
    if items.len() > limits.objects {
        return Err(Error::OutputTooLarge {
            what: "object count",
            actual: items.len(),
            limit: limits.objects,
        });
    }
    if warnings.len() > limits.objects {
        return Err(Error::OutputTooLarge {
            what: "warning count",
            actual: warnings.len(),
            limit: limits.objects,
        });
    }
    let total: usize = items.iter().chain(warnings).map(String::len).sum();
    if total > limits.total_bytes {
        return Err(Error::OutputTooLarge {
            what: "total bytes",
            actual: total,
            limit: limits.total_bytes,
        });
    }
    if let Some(big) = items
        .iter()
        .map(String::len)
        .find(|&len| len > limits.object_bytes)
    {
        return Err(Error::OutputTooLarge {
            what: "object bytes",
            actual: big,
            limit: limits.object_bytes,
        });
    }
    Ok(())
}

fn parse_object(index: usize, text: &str, limits: &OutputLimits) -> Result<Value, Error> {
    // serde_json stops at 128 levels of nesting by itself, so parsing cannot blow the stack.
    let value: Value = serde_json::from_str(text).map_err(|e| Error::InvalidOutput {
        message: format!("object {index} is not valid JSON: {e}"),
    })?;
    let depth = depth(&value);
    if depth > limits.json_depth {
        return Err(Error::InvalidOutput {
            message: format!(
                "object {index} is nested {depth} levels deep, limit {}",
                limits.json_depth
            ),
        });
    }
    let Value::Object(map) = &value else {
        return Err(Error::InvalidOutput {
            message: format!("object {index} is not a JSON object"),
        });
    };
    for field in ["apiVersion", "kind"] {
        if !map.get(field).is_some_and(Value::is_string) {
            return Err(Error::InvalidOutput {
                message: format!("object {index} has no string `{field}`"),
            });
        }
    }
    Ok(value)
}

/// Nesting depth without recursion, so a hostile tree cannot exhaust the host's stack.
fn depth(value: &Value) -> usize {
    let mut deepest = 0;
    let mut stack = vec![(value, 1usize)];
    while let Some((value, level)) = stack.pop() {
        deepest = deepest.max(level);
        match value {
            Value::Array(items) => stack.extend(items.iter().map(|v| (v, level + 1))),
            Value::Object(map) => stack.extend(map.values().map(|v| (v, level + 1))),
            _ => {}
        }
    }
    deepest
}

fn write_canonical(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
            out.push(b'{');
            for (i, (key, value)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                serde_json::to_writer(&mut *out, key).expect("writing to a Vec cannot fail");
                out.push(b':');
                write_canonical(value, out);
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(item, out);
            }
            out.push(b']');
        }
        scalar => serde_json::to_writer(&mut *out, scalar).expect("writing to a Vec cannot fail"),
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn plugin_text_is_cut_on_a_character_boundary_and_says_so() {
        let text = "ü".repeat(MAX_TEXT_BYTES);
        let capped = cap_text(text.clone());
        assert!(capped.starts_with(&"ü".repeat(MAX_TEXT_BYTES / 2)));
        assert!(capped.ends_with(&format!("({} more bytes cut)", text.len() - MAX_TEXT_BYTES)));
        assert_eq!(cap_text("fine".into()), "fine");
    }

    use super::*;

    const CM: &str = r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a"}}"#;

    fn limits() -> OutputLimits {
        OutputLimits::default()
    }

    #[test]
    fn well_formed_objects_pass() {
        let out = check_render_output(vec![CM.into()], vec!["w".into()], &limits()).unwrap();
        assert_eq!(out.objects.len(), 1);
        assert_eq!(out.warnings, ["w"]);
    }

    #[test]
    fn more_objects_than_allowed_is_output_too_large() {
        let many = vec![CM.to_owned(); 65];
        let err = check_render_output(many, vec![], &limits()).unwrap_err();
        assert_eq!(err.reason(), "OutputTooLarge");
    }

    #[test]
    fn more_bytes_than_allowed_is_output_too_large() {
        let small = OutputLimits {
            total_bytes: 100,
            ..limits()
        };
        let err = check_render_output(vec![CM.into(), CM.into()], vec![], &small).unwrap_err();
        assert!(
            matches!(
                err,
                Error::OutputTooLarge {
                    what: "total bytes",
                    ..
                }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn invalid_json_is_invalid_output() {
        let err = check_render_output(vec!["{nope".into()], vec![], &limits()).unwrap_err();
        assert_eq!(err.reason(), "InvalidOutput");
    }

    #[test]
    fn nesting_beyond_the_depth_limit_is_invalid_output() {
        let deep = format!(
            r#"{{"apiVersion":"v1","kind":"X","a":{}1{}}}"#,
            "[".repeat(70),
            "]".repeat(70)
        );
        let err = check_render_output(vec![deep], vec![], &limits()).unwrap_err();
        assert!(
            matches!(&err, Error::InvalidOutput { message } if message.contains("nested")),
            "{err:?}"
        );
        let very_deep = format!("{}1{}", "[".repeat(100_000), "]".repeat(100_000));
        assert_eq!(
            check_render_output(vec![very_deep], vec![], &limits())
                .unwrap_err()
                .reason(),
            "InvalidOutput"
        );
    }

    #[test]
    fn objects_without_api_version_or_kind_are_invalid_output() {
        for bad in [
            r#"[]"#,
            r#"{"kind":"ConfigMap"}"#,
            r#"{"apiVersion":"v1","kind":3}"#,
        ] {
            assert_eq!(
                check_render_output(vec![bad.into()], vec![], &limits())
                    .unwrap_err()
                    .reason(),
                "InvalidOutput"
            );
        }
    }

    #[test]
    fn canonical_json_sorts_keys_at_every_level() {
        let a = r#"{"kind":"ConfigMap","apiVersion":"v1","data":{"b":"2","a":"1"}}"#;
        let b = r#"{"apiVersion":"v1","data":{"a":"1","b":"2"},"kind":"ConfigMap"}"#;
        let a = check_render_output(vec![a.into()], vec![], &limits()).unwrap();
        let b = check_render_output(vec![b.into()], vec![], &limits()).unwrap();
        assert_eq!(a.canonical_json(), b.canonical_json());
        assert_eq!(
            String::from_utf8(a.canonical_json()).unwrap(),
            r#"[{"apiVersion":"v1","data":{"a":"1","b":"2"},"kind":"ConfigMap"}]"#
        );
    }
}
