//! Where a profile's settings come from besides its own table: `[defaults]`, merged under every
//! profile (a profile's own keys win, tables merge key by key), and environment overrides
//! (`OUTBOUND_<PROFILE>__<SECTION>__<KEY>`), applied over both. Either way the result goes
//! through the same parsing and validation, and an error says where the bad value came from.

use super::validate::ConfigError;

/// `defaults` merged under `body`; returns the key paths (`timeouts.total`) that came from
/// `defaults`.
pub(super) fn merge_defaults(defaults: &toml::Table, body: &mut toml::Table) -> Vec<String> {
    let mut from_defaults = Vec::new();
    merge(defaults, body, "", &mut from_defaults);
    from_defaults
}

fn merge(defaults: &toml::Table, body: &mut toml::Table, at: &str, out: &mut Vec<String>) {
    for (key, value) in defaults {
        let path = if at.is_empty() {
            key.clone()
        } else {
            format!("{at}.{key}")
        };
        match (body.get_mut(key), value) {
            (None, _) => {
                body.insert(key.clone(), value.clone());
                out.push(path);
            }
            (Some(toml::Value::Table(own)), toml::Value::Table(inherited)) => {
                merge(inherited, own, &path, out);
            }
            // The profile's own value wins.
            (Some(_), _) => {}
        }
    }
}

/// Says that `err`'s value came from `[defaults]` when its key is one of `from_defaults`.
pub(super) fn blame_defaults(err: ConfigError, from_defaults: &[String]) -> ConfigError {
    let from = from_defaults
        .iter()
        .any(|path| err.key() == path || err.key().starts_with(&format!("{path}.")));
    if from {
        err.with_suffix(" (the value comes from [defaults])")
    } else {
        err
    }
}

/// One environment override: the variable, the profile it names and the key path it sets.
pub(super) struct Override {
    pub(super) variable: String,
    pub(super) profile: String,
    pub(super) path: Vec<String>,
    pub(super) value: toml::Value,
}

/// The overrides among `vars` for `prefix` and the profiles `names`.
///
/// # Errors
///
/// A variable that names no profile, or no key, is refused naming the variable.
pub(super) fn overrides<'a>(
    prefix: &str,
    names: impl Iterator<Item = &'a str> + Clone,
    vars: impl Iterator<Item = (String, String)>,
) -> Result<Vec<Override>, ConfigError> {
    let lead = format!("{prefix}_");
    let mut found = Vec::new();
    for (variable, text) in vars {
        let Some(rest) = variable.strip_prefix(&lead) else {
            continue;
        };
        let mut parts = rest.split("__");
        let wanted = parts.next().unwrap_or_default();
        let Some(profile) = names
            .clone()
            .find(|name| name.to_ascii_uppercase().replace('-', "_") == wanted)
        else {
            return Err(ConfigError::new(
                "",
                variable.as_str(),
                "names no profile of the file",
            ));
        };
        let path: Vec<String> = parts.map(str::to_ascii_lowercase).collect();
        if path.is_empty() || path.iter().any(String::is_empty) {
            return Err(ConfigError::new(
                profile,
                variable.as_str(),
                "must name a key: <PREFIX>_<PROFILE>__<SECTION>__<KEY>",
            ));
        }
        found.push(Override {
            profile: profile.to_owned(),
            path,
            value: value_of(&text),
            variable,
        });
    }
    Ok(found)
}

/// A variable's text as a TOML value (`3`, `true`, `[408, 429]`, `{ env = "X" }`), or else as
/// a string (`5s`, `https://…`).
fn value_of(text: &str) -> toml::Value {
    toml::from_str::<toml::Table>(&format!("v = {text}"))
        .ok()
        .and_then(|mut table| table.remove("v"))
        .unwrap_or_else(|| toml::Value::String(text.to_owned()))
}

/// Sets `value` at `path` in `body`, creating tables on the way.
///
/// # Errors
///
/// When a key on the way holds a value that is not a table.
pub(super) fn set(
    body: &mut toml::Table,
    path: &[String],
    value: toml::Value,
) -> Result<(), String> {
    let (last, tables) = path.split_last().ok_or("no key")?;
    let mut table = body;
    for key in tables {
        let next = table
            .entry(key.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        table = match next {
            toml::Value::Table(inner) => inner,
            _ => return Err(format!("{key} is not a table")),
        };
    }
    table.insert(last.clone(), value);
    Ok(())
}
