//! `outbound check --secrets`: whether every secret and file a profile names can be read now,
//! without keeping or showing a value.

use std::path::Path;

use super::{ConfigError, Profile};

impl Profile {
    /// One problem per secret source that does not resolve (unset or empty variable, missing,
    /// unreadable or empty file) and per TLS file that cannot be read or is empty. The messages
    /// are the ones building a client gives, naming the key; never a value.
    pub(crate) fn secret_problems(&self) -> Vec<ConfigError> {
        let s = &self.settings;
        // Each source with the check building a client applies to its value.
        let mut sources: Vec<_> = s.auth.iter().map(crate::auth::secret_of).collect();
        if let Some(fleet) = &s.fleet {
            sources.push((
                "fleet.redis_url",
                &fleet.redis_url,
                crate::auth::rotating::any,
            ));
        }
        let mut problems: Vec<ConfigError> = sources
            .into_iter()
            .filter_map(|(key, source, accept)| {
                // The value is dropped (and zeroed) at once: only whether it is usable matters.
                let problem = match source.resolve() {
                    Ok(value) => accept(secrecy::ExposeSecret::expose_secret(&value))
                        .err()?
                        .to_owned(),
                    Err(problem) => problem,
                };
                Some(ConfigError::new(&self.name, key, problem))
            })
            .collect();
        for (key, path) in s.tls.files() {
            if let Some(problem) = path.and_then(unreadable) {
                problems.push(ConfigError::new(&self.name, key, problem));
            }
        }
        problems
    }
}

/// Why `path` cannot serve as a TLS file, if it cannot: its contents are not looked at beyond
/// their length.
fn unreadable(path: &Path) -> Option<String> {
    match std::fs::metadata(path) {
        Err(e) => Some(format!("cannot read {}: {}", path.display(), e.kind())),
        Ok(meta) if !meta.is_file() => Some(format!("{} is not a file", path.display())),
        Ok(meta) if meta.len() == 0 => Some(format!("{} is empty", path.display())),
        Ok(_) => std::fs::File::open(path)
            .err()
            .map(|e| format!("cannot read {}: {}", path.display(), e.kind())),
    }
}
