//! Who may do what: the roles a credential carries, and the actions the
//! endpoints need.
//!
//! A route names the [`Action`] it performs, never the roles allowed to
//! perform it; [`Role::permits`] is the one table from one to the other.
//! Adding a role (issue #19's `reviewer` and `agent`, held by people rather
//! than machines) is then one variant and its arms in that table, and the
//! exhaustive `match` makes the compiler point at every action the new role
//! must be decided for. What a role may see *within* an action (an agent's
//! own sheets only) is for the handlers, which find the caller in the
//! request's extensions ([`super::auth::Caller`]).

use serde::{Deserialize, Serialize};

/// The role a token (later: a user) holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Sends contact records: `POST /v1/ctr`, `POST /v1/firehose/transform`.
    Ingest,
    /// Has sessions evaluated: `POST /v1/sessions/evaluate`.
    Evaluate,
    /// Everything, including `POST /v1/rules/reload` and
    /// `POST /v1/rules/{id}/release`.
    Admin,
}

/// What a request does, as far as permission goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Store contact records (they change `stats` and real-time QA).
    Ingest,
    /// Evaluate a session with the live rules (uses the shared evaluation
    /// capacity and can count toward a rule's quarantine).
    Evaluate,
    /// Read the rules' state: versions, module digests, quarantines, errors.
    ReadRules,
    /// Change what runs: reload the rules, end a quarantine.
    ManageRules,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Ingest, Role::Evaluate, Role::Admin];

    pub fn permits(self, action: Action) -> bool {
        match (self, action) {
            (Role::Admin, _) => true,
            // Any credential may see the rules: the clients that send
            // records or sessions need to know which version judged them.
            (_, Action::ReadRules) => true,
            (Role::Ingest, Action::Ingest) => true,
            (Role::Evaluate, Action::Evaluate) => true,
            (Role::Ingest, Action::Evaluate | Action::ManageRules)
            | (Role::Evaluate, Action::Ingest | Action::ManageRules) => false,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Ingest => "ingest",
            Role::Evaluate => "evaluate",
            Role::Admin => "admin",
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Action {
    /// The roles that may perform this action, for telling a refused
    /// client which token it needs.
    pub fn roles(self) -> Vec<Role> {
        Role::ALL.into_iter().filter(|r| r.permits(self)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_permission_table() {
        use Action::*;
        let table = [
            (Role::Ingest, [true, false, true, false]),
            (Role::Evaluate, [false, true, true, false]),
            (Role::Admin, [true, true, true, true]),
        ];
        for (role, expected) in table {
            let got = [Ingest, Evaluate, ReadRules, ManageRules].map(|a| role.permits(a));
            assert_eq!(got, expected, "{role}");
        }
        assert_eq!(ManageRules.roles(), vec![Role::Admin]);
        assert_eq!(Ingest.roles(), vec![Role::Ingest, Role::Admin]);
    }
}
