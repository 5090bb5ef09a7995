//! The release-age policy ("cooldown"): files from an upstream younger than
//! a minimum age are not offered yet, so a freshly published malicious
//! release has time to be noticed and pulled before anyone installs it.

use std::collections::BTreeSet;
use std::time::Duration;

use jiff::Timestamp;

use crate::name::NormalizedName;

/// An index's release-age policy.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReleaseAgePolicy {
    /// Upstream files younger than this are hidden (`None`: no policy).
    pub min_age: Option<Duration>,
    /// Projects the policy does not apply to.
    pub exempt: BTreeSet<NormalizedName>,
}

impl ReleaseAgePolicy {
    /// Whether the policy hides anything of `project` at all.
    pub fn applies_to(&self, project: &NormalizedName) -> bool {
        self.min_age.is_some_and(|age| !age.is_zero()) && !self.exempt.contains(project)
    }

    /// Whether an upstream file of `project` is old enough to be offered at
    /// `now`. Its age is judged by the upstream's upload time; a file whose
    /// upload time is unknown counts from `first_seen` (when larder first
    /// saw it).
    pub fn admits(
        &self,
        project: &NormalizedName,
        upload_time: Option<Timestamp>,
        first_seen: Timestamp,
        now: Timestamp,
    ) -> bool {
        self.matures_at(project, upload_time, first_seen).is_none_or(|at| at <= now)
    }

    /// When an upstream file becomes old enough (`None` when the policy
    /// never hides it).
    pub fn matures_at(
        &self,
        project: &NormalizedName,
        upload_time: Option<Timestamp>,
        first_seen: Timestamp,
    ) -> Option<Timestamp> {
        if !self.applies_to(project) {
            return None;
        }
        let age = self.min_age?;
        let born = upload_time.unwrap_or(first_seen);
        let span = jiff::SignedDuration::try_from(age).ok()?;
        Some(born.checked_add(span).unwrap_or(Timestamp::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(n: &str) -> NormalizedName {
        NormalizedName::new(n).unwrap()
    }

    #[test]
    fn hides_young_files_by_upload_time_or_first_sight() {
        let policy = ReleaseAgePolicy { min_age: Some(Duration::from_secs(7 * 86400)), exempt: [name("ours")].into() };
        let now: Timestamp = "2026-01-10T00:00:00Z".parse().unwrap();
        let yesterday: Timestamp = "2026-01-09T00:00:00Z".parse().unwrap();
        let last_month: Timestamp = "2025-12-01T00:00:00Z".parse().unwrap();
        assert!(!policy.admits(&name("lib"), Some(yesterday), last_month, now));
        assert!(policy.admits(&name("lib"), Some(last_month), yesterday, now));
        assert!(!policy.admits(&name("lib"), None, yesterday, now), "unknown upload time counts from first sight");
        assert!(policy.admits(&name("lib"), None, last_month, now));
        assert!(policy.admits(&name("ours"), Some(yesterday), yesterday, now), "exempt project");
        assert_eq!(
            policy.matures_at(&name("lib"), Some(yesterday), now),
            Some("2026-01-16T00:00:00Z".parse().unwrap())
        );
        assert!(ReleaseAgePolicy::default().admits(&name("lib"), Some(now), now, now));
    }
}
