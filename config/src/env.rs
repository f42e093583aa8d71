//! `GATEHOUSE_<SECTION>_<KEY>` overrides, applied on top of the file.
//!
//! The set of accepted variables is derived from the config schema itself, so a new key is
//! overridable without extra code and a misspelt variable is an error instead of being ignored.

use std::collections::BTreeMap;

use toml::Value;

use crate::{Config, ConfigError};

/// Prefix of every environment variable Gatehouse reads.
pub const ENV_PREFIX: &str = "GATEHOUSE_";

/// Variables with the prefix that are not config keys: read by the command line itself.
const NON_CONFIG_VARIABLES: &[&str] = &[
    "GATEHOUSE_CONFIG",
    "GATEHOUSE_ENDPOINT",
    "GATEHOUSE_OPERATOR_KEY",
    "GATEHOUSE_OPERATOR_KEY_FILE",
];

pub(crate) fn apply_overrides(
    config: Config,
    overrides: &BTreeMap<String, String>,
) -> Result<Config, ConfigError> {
    if overrides.is_empty() {
        return Ok(config);
    }
    let mut table = toml::Table::try_from(&config).map_err(|error| ConfigError::Invalid {
        key: "<config>".to_owned(),
        message: error.to_string(),
    })?;
    for (variable, raw) in overrides {
        if NON_CONFIG_VARIABLES.contains(&variable.as_str()) {
            continue;
        }
        let slot = find_slot(&mut table, variable).ok_or_else(|| ConfigError::Env {
            variable: variable.clone(),
            message: "not a known configuration key".to_owned(),
        })?;
        *slot = parse_like(slot, raw).map_err(|message| ConfigError::Env {
            variable: variable.clone(),
            message,
        })?;
    }
    Value::Table(table)
        .try_into()
        .map_err(|error: toml::de::Error| ConfigError::Invalid {
            key: "<environment>".to_owned(),
            message: error.to_string(),
        })
}

/// The value slot whose `GATEHOUSE_<SECTION>_<KEY>` name is `variable`.
fn find_slot<'a>(table: &'a mut toml::Table, variable: &str) -> Option<&'a mut Value> {
    let rest = variable.strip_prefix(ENV_PREFIX)?;
    for (section, values) in table.iter_mut() {
        let Some(key_part) = rest
            .strip_prefix(&section.to_ascii_uppercase())
            .and_then(|tail| tail.strip_prefix('_'))
        else {
            continue;
        };
        if let Value::Table(values) = values {
            for (key, value) in values.iter_mut() {
                if key.to_ascii_uppercase() == key_part {
                    return Some(value);
                }
            }
        }
    }
    None
}

/// Parses `raw` as the same type the slot already holds.
fn parse_like(current: &Value, raw: &str) -> Result<Value, String> {
    match current {
        Value::String(_) => Ok(Value::String(raw.to_owned())),
        Value::Integer(_) => raw
            .trim()
            .parse::<i64>()
            .map(Value::Integer)
            .map_err(|_| format!("`{raw}` is not an integer")),
        Value::Boolean(_) => match raw.trim() {
            "true" | "1" | "yes" => Ok(Value::Boolean(true)),
            "false" | "0" | "no" => Ok(Value::Boolean(false)),
            _ => Err(format!("`{raw}` is not a boolean (true or false)")),
        },
        Value::Array(_) => Ok(Value::Array(
            raw.split(',')
                .map(str::trim)
                .filter(|item| !item.is_empty())
                .map(|item| Value::String(item.to_owned()))
                .collect(),
        )),
        other => Err(format!("cannot override a {} value", other.type_str())),
    }
}
