//! The `children:` list of `/serfnode.yml`: one-key mappings, each a container to run
//! beside the parent, merged with the `serfnode:` section and the `APP_*` settings.

use super::values::*;
use super::*;

pub(super) fn children(
    value: &Value,
    section: &Section,
    app_volumes: &[String],
    app_volumes_from: &[String],
    warnings: &mut Vec<Warning>,
) -> Result<Vec<Child>, ConfigError> {
    let list = match value {
        Value::Null => return Ok(Vec::new()),
        Value::Sequence(list) => list,
        other => {
            return Err(ConfigError::WrongType {
                key: "children".to_string(),
                expected: "a list of one-key mappings (`- name: {image: ...}`)",
                found: type_name(other),
            })
        }
    };
    // First pass: the names, so that `volumes_from` can refer to any sibling.
    let mut entries: Vec<(String, &Value)> = Vec::new();
    let mut names = BTreeSet::new();
    for (i, item) in list.iter().enumerate() {
        let key = format!("children[{i}]");
        let map = match item {
            Value::Mapping(_) => as_mapping_or_empty(item, &key)?,
            other => {
                return Err(ConfigError::WrongType {
                    key,
                    expected: "a one-key mapping (`- name: {image: ...}`)",
                    found: type_name(other),
                })
            }
        };
        let mut it = map.into_iter();
        let (name, params) = match (it.next(), it.next()) {
            (Some(entry), None) => entry,
            _ => {
                return Err(ConfigError::InvalidValue {
                    key,
                    value: String::new(),
                    reason: "each child must be a mapping with exactly one key, its name"
                        .to_string(),
                })
            }
        };
        check_container_name(&name, &key)?;
        if !names.insert(name.clone()) {
            return Err(ConfigError::DuplicateChild { name });
        }
        entries.push((name, params));
    }

    let mut out = Vec::with_capacity(entries.len());
    for (position, (name, params)) in entries.iter().enumerate() {
        let base = format!("children[{position}].{name}");
        let params = match params {
            Value::Mapping(_) => as_mapping_or_empty(params, &base)?,
            other => {
                return Err(ConfigError::WrongType {
                    key: base,
                    expected: "a mapping of child parameters",
                    found: type_name(other),
                })
            }
        };
        let mut image = None;
        let mut command = Vec::new();
        let mut environment_child = BTreeMap::new();
        let mut volumes = Vec::new();
        let mut volumes_from = Vec::new();
        let mut working_dir = None;
        let mut entrypoint = None;
        let mut user = None;
        let mut privileged = false;
        for (key, value) in params {
            let path = format!("{base}.{key}");
            match key.as_str() {
                "image" => image = Some(non_empty_string(value, &path)?),
                "command" => command = words(value, &path)?,
                "environment" => environment_child = environment(value, &path)?,
                "volumes" => volumes = string_list(value, &path)?,
                "volumes_from" => volumes_from = string_list(value, &path)?,
                "working_dir" => working_dir = Some(non_empty_string(value, &path)?),
                "entrypoint" => entrypoint = Some(words(value, &path)?),
                "user" => user = Some(non_empty_string(value, &path)?),
                "privileged" => privileged = boolean(value, &path)?,
                "ports" | "expose" | "links" => {
                    string_list(value, &path)?;
                    warnings.push(Warning::NetworkOptionIgnored { key: path });
                }
                _ => return Err(ConfigError::UnknownKey { key: path }),
            }
        }
        let image = image.ok_or_else(|| ConfigError::MissingKey {
            key: format!("{base}.image"),
        })?;
        let mut environment = environment_child;
        for (k, v) in &section.environment {
            environment.insert(k.clone(), v.clone());
        }
        volumes.extend(section.volumes.iter().cloned());
        volumes.extend(app_volumes.iter().cloned());
        volumes_from.extend(section.volumes_from.iter().cloned());
        volumes_from.extend(app_volumes_from.iter().cloned());
        let mut resolved = Vec::with_capacity(volumes_from.len());
        for entry in volumes_from {
            if entry == *name {
                return Err(ConfigError::InvalidValue {
                    key: format!("{base}.volumes_from"),
                    value: entry,
                    reason: "a child cannot take volumes from itself".to_string(),
                });
            }
            if names.contains(&entry) {
                resolved.push(VolumesFrom::Sibling(entry));
            } else {
                resolved.push(VolumesFrom::Container(entry));
            }
        }
        out.push(Child {
            name: name.clone(),
            position,
            image,
            command,
            environment,
            volumes,
            volumes_from: resolved,
            working_dir,
            entrypoint,
            user,
            privileged,
        });
    }
    Ok(out)
}
