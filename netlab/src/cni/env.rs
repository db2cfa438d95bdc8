//! The `CNI_*` environment of one invocation, validated per command
//! (spec: "Parameters"): a missing or malformed variable is code 4, naming it.

use super::error::{CniError, code};

/// The operation the runtime asks for (`CNI_COMMAND`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    Add,
    Del,
    Check,
    Gc,
    Status,
    Version,
}

impl Command {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "ADD" => Self::Add,
            "DEL" => Self::Del,
            "CHECK" => Self::Check,
            "GC" => Self::Gc,
            "STATUS" => Self::Status,
            "VERSION" => Self::Version,
            _ => return None,
        })
    }
}

/// What identifies one attachment: `(CNI_CONTAINERID, CNI_IFNAME)` and the
/// namespace path (optional for DEL).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attachment {
    pub container_id: String,
    pub ifname: String,
    pub netns: Option<String>,
}

fn invalid(var: &str, why: impl std::fmt::Display) -> CniError {
    CniError::new(
        code::INVALID_ENV,
        "invalid environment variable",
        format!("{var}: {why}"),
    )
}

/// Reads `CNI_COMMAND` (code 4 when missing or unknown).
pub fn command(get: &dyn Fn(&str) -> Option<String>) -> Result<Command, CniError> {
    let raw = get("CNI_COMMAND").ok_or_else(|| invalid("CNI_COMMAND", "not set"))?;
    Command::parse(&raw).ok_or_else(|| {
        invalid(
            "CNI_COMMAND",
            format!("{raw:?} is not one of ADD, DEL, CHECK, GC, STATUS, VERSION"),
        )
    })
}

/// Spec: "Must start with an alphanumeric character, optionally followed
/// by any combination of one or more alphanumeric characters, underscore,
/// dot or hyphen."
fn container_id_problem(id: &str) -> Option<&'static str> {
    let mut chars = id.chars();
    match chars.next() {
        None => Some("must not be empty"),
        Some(c) if !c.is_ascii_alphanumeric() => Some("must start with a letter or digit"),
        _ if !chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c)) => {
            Some("may hold only letters, digits, '_', '.' and '-'")
        }
        _ => None,
    }
}

/// Reads the attachment variables for ADD, CHECK (netns required) and DEL
/// (netns optional).
pub fn attachment(
    get: &dyn Fn(&str) -> Option<String>,
    netns_required: bool,
) -> Result<Attachment, CniError> {
    let get_set = |var: &str| get(var).filter(|v| !v.is_empty());
    let container_id =
        get_set("CNI_CONTAINERID").ok_or_else(|| invalid("CNI_CONTAINERID", "not set"))?;
    if let Some(why) = container_id_problem(&container_id) {
        return Err(invalid(
            "CNI_CONTAINERID",
            format!("{container_id:?} {why}"),
        ));
    }
    let ifname = get_set("CNI_IFNAME").ok_or_else(|| invalid("CNI_IFNAME", "not set"))?;
    if let Some(why) = crate::names::interface_name_problem(&ifname) {
        return Err(invalid("CNI_IFNAME", format!("{ifname:?}: {why}")));
    }
    let netns = get_set("CNI_NETNS");
    if netns_required && netns.is_none() {
        return Err(invalid("CNI_NETNS", "not set"));
    }
    Ok(Attachment {
        container_id,
        ifname,
        netns,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| m.get(k).cloned()
    }

    #[test]
    fn commands() {
        assert_eq!(
            command(&env(&[("CNI_COMMAND", "ADD")])).unwrap(),
            Command::Add
        );
        assert_eq!(
            command(&env(&[("CNI_COMMAND", "GC")])).unwrap(),
            Command::Gc
        );
        let e = command(&env(&[])).unwrap_err();
        assert_eq!(e.code, code::INVALID_ENV);
        assert!(e.details.contains("CNI_COMMAND"));
        assert!(command(&env(&[("CNI_COMMAND", "add")])).is_err());
    }

    #[test]
    fn attachment_variables_are_named_when_wrong() {
        let ok = env(&[
            ("CNI_CONTAINERID", "abc-1.2_3"),
            ("CNI_IFNAME", "eth0"),
            ("CNI_NETNS", "/run/netns/x"),
        ]);
        let a = attachment(&ok, true).unwrap();
        assert_eq!(a.netns.as_deref(), Some("/run/netns/x"));
        for (pairs, var) in [
            (
                vec![("CNI_IFNAME", "eth0"), ("CNI_NETNS", "/x")],
                "CNI_CONTAINERID",
            ),
            (
                vec![
                    ("CNI_CONTAINERID", "-a"),
                    ("CNI_IFNAME", "eth0"),
                    ("CNI_NETNS", "/x"),
                ],
                "CNI_CONTAINERID",
            ),
            (
                vec![("CNI_CONTAINERID", "a"), ("CNI_NETNS", "/x")],
                "CNI_IFNAME",
            ),
            (
                vec![
                    ("CNI_CONTAINERID", "a"),
                    ("CNI_IFNAME", "a/b"),
                    ("CNI_NETNS", "/x"),
                ],
                "CNI_IFNAME",
            ),
            (
                vec![
                    ("CNI_CONTAINERID", "a"),
                    ("CNI_IFNAME", "a-very-long-interface"),
                    ("CNI_NETNS", "/x"),
                ],
                "CNI_IFNAME",
            ),
            (
                vec![("CNI_CONTAINERID", "a"), ("CNI_IFNAME", "eth0")],
                "CNI_NETNS",
            ),
        ] {
            let e = attachment(&env(&pairs), true).unwrap_err();
            assert_eq!(e.code, code::INVALID_ENV);
            assert!(e.details.starts_with(var), "{var}: {e}");
        }
        // DEL: the namespace may be gone and unnamed.
        let del = env(&[("CNI_CONTAINERID", "a"), ("CNI_IFNAME", "eth0")]);
        assert_eq!(attachment(&del, false).unwrap().netns, None);
    }
}
