//! Root mode: labs brought up in the same namespace share its settings.
//!
//! The first lab that turns `ip_forward` on (or extends the reserved ports,
//! or makes the iptables nat table) records the value it found; the labs
//! after it find the setting already made and record nothing. If the first
//! one restored its record on `down` while another still ran, it would
//! switch forwarding off under that lab. So a lab going down hands each
//! such record to another lab of the same namespace, at the front of that
//! lab's list (restored last); the last lab out restores what the first
//! one found.

use std::time::{Duration, Instant};

use crate::hostns::HostNamespace;
use crate::state::{self, LabLock, Owned};

/// How long to wait for another lab that is busy (`up`, `down`, `attach`)
/// before giving up on it. Bounded: two labs going down at once each hold
/// their own lock while handing over to the other.
const BUSY_WAIT: Duration = Duration::from_secs(3);

/// A setting of the host namespace that other labs there may rely on.
fn shared(obj: &Owned) -> bool {
    matches!(
        obj,
        Owned::Sysctl { netns: None, .. } | Owned::NatTable { netns: None, .. }
    )
}

fn lock_within(lab: &str, wait: Duration) -> Option<LabLock> {
    let deadline = Instant::now() + wait;
    loop {
        match LabLock::try_acquire(lab) {
            Ok(lock) => return Some(lock),
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Err(_) => return None,
        }
    }
}

/// Gives `obj`, a record of lab `lab` in host namespace `host`, to another
/// lab of that namespace. Returns the lab that took it; None when `obj` is
/// not shared or no other lab there can take it (then `lab` restores it).
pub fn hand_over(lab: &str, host: &HostNamespace, obj: &Owned) -> Option<String> {
    if !shared(obj) {
        return None;
    }
    let same_host = |s: &state::LabState| s.host.as_ref().is_some_and(|h| h.id == host.id);
    for other in state::labs() {
        if other == lab
            || !state::peek(&other)
                .ok()
                .flatten()
                .is_some_and(|s| same_host(&s))
        {
            continue;
        }
        let Some(lock) = lock_within(&other, BUSY_WAIT) else {
            log::warn!("lab {other} is busy; lab {lab} restores {obj:?} itself");
            continue;
        };
        let Ok(Some(mut st)) = lock.load() else {
            continue;
        };
        if !same_host(&st) {
            continue;
        }
        st.objects.insert(0, obj.clone());
        if lock.save(&st).is_ok() {
            return Some(other);
        }
    }
    None
}
