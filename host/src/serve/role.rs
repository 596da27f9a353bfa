//! Who may do what: the roles a credential carries, and the actions the
//! endpoints need.
//!
//! A route names the [`Action`] it performs, never the roles allowed to
//! perform it; [`Role::permits`] is the one table from one to the other.
//! Adding a role is then one variant and its arms in that table, and the
//! exhaustive `match` makes the compiler point at every action the new role
//! must be decided for.
//!
//! Machines hold `ingest` and `evaluate` (tokens); people hold `admin`,
//! `reviewer` and `agent` (users, `callqa users`). What a role may see
//! *within* an action (an agent's own sheets only, a reviewer their teams')
//! is not in this table: it depends on the sheet, so the handlers decide it
//! with [`super::auth::Caller::may_see`].

use serde::{Deserialize, Serialize};

/// The role a token or a user holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Sends contact records: `POST /v1/ctr`, `POST /v1/firehose/transform`.
    Ingest,
    /// Has sessions evaluated: `POST /v1/sessions/evaluate`.
    Evaluate,
    /// Everything, including `POST /v1/rules/reload` and
    /// `POST /v1/rules/{id}/release`, and the users.
    Admin,
    /// A QA reviewer: reads the sheets of their teams, reviews items,
    /// resolves disputes, assigns sheets for review.
    Reviewer,
    /// A contact-centre agent: reads, acknowledges and disputes their own
    /// sheets.
    Agent,
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
    /// Read stored sheets; which ones is [`super::auth::Caller::may_see`].
    ReadSheets,
    /// Review items, add manual items, resolve disputes, review for
    /// calibration.
    ReviewSheets,
    /// Acknowledge a sheet, dispute an item: the agent's answer to their
    /// own sheet.
    RespondToSheets,
    /// Assign sheets to reviewers (sampling).
    AssignSheets,
    /// Add, disable and change users.
    ManageUsers,
}

impl Role {
    pub const ALL: [Role; 5] = [Role::Ingest, Role::Evaluate, Role::Admin, Role::Reviewer, Role::Agent];

    pub fn permits(self, action: Action) -> bool {
        use Action::*;
        match (self, action) {
            (Role::Admin, _) => true,
            // Any credential may see the rules: the clients that send
            // records or sessions need to know which version judged them,
            // and a reviewer or an agent which rule produced an item.
            (_, ReadRules) => true,
            (Role::Ingest, Ingest) => true,
            (Role::Ingest, Evaluate | ManageRules | ReadSheets | ReviewSheets | RespondToSheets) => false,
            (Role::Ingest, AssignSheets | ManageUsers) => false,
            (Role::Evaluate, Evaluate) => true,
            (Role::Evaluate, Ingest | ManageRules | ReadSheets | ReviewSheets | RespondToSheets) => false,
            (Role::Evaluate, AssignSheets | ManageUsers) => false,
            (Role::Reviewer, ReadSheets | ReviewSheets | AssignSheets) => true,
            // A reviewer's verdict is what an agent disputes: answering for
            // the agent would let the reviewer settle their own dispute.
            (Role::Reviewer, Ingest | Evaluate | ManageRules | RespondToSheets | ManageUsers) => false,
            (Role::Agent, ReadSheets | RespondToSheets) => true,
            (Role::Agent, Ingest | Evaluate | ManageRules | ReviewSheets | AssignSheets | ManageUsers) => false,
        }
    }

    /// Roles held by people (`callqa users`); the others are for machine
    /// tokens (`callqa tokens`).
    pub fn for_people(self) -> bool {
        match self {
            Role::Admin | Role::Reviewer | Role::Agent => true,
            Role::Ingest | Role::Evaluate => false,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Ingest => "ingest",
            Role::Evaluate => "evaluate",
            Role::Admin => "admin",
            Role::Reviewer => "reviewer",
            Role::Agent => "agent",
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
        const ACTIONS: [Action; 9] = [
            Ingest,
            Evaluate,
            ReadRules,
            ManageRules,
            ReadSheets,
            ReviewSheets,
            RespondToSheets,
            AssignSheets,
            ManageUsers,
        ];
        let table = [
            //                  ingest evaluate read-r manage-r read-s review respond assign users
            (Role::Ingest, [true, false, true, false, false, false, false, false, false]),
            (Role::Evaluate, [false, true, true, false, false, false, false, false, false]),
            (Role::Admin, [true, true, true, true, true, true, true, true, true]),
            (Role::Reviewer, [false, false, true, false, true, true, false, true, false]),
            (Role::Agent, [false, false, true, false, true, false, true, false, false]),
        ];
        assert_eq!(table.len(), Role::ALL.len());
        for (role, expected) in table {
            let got = ACTIONS.map(|a| role.permits(a));
            assert_eq!(got, expected, "{role}");
        }
        assert_eq!(ManageRules.roles(), vec![Role::Admin]);
        assert_eq!(Ingest.roles(), vec![Role::Ingest, Role::Admin]);
        assert_eq!(ReviewSheets.roles(), vec![Role::Admin, Role::Reviewer]);
        assert_eq!(RespondToSheets.roles(), vec![Role::Admin, Role::Agent]);
        assert_eq!(ManageUsers.roles(), vec![Role::Admin]);
        let people: Vec<Role> = Role::ALL.into_iter().filter(|r| r.for_people()).collect();
        assert_eq!(people, vec![Role::Admin, Role::Reviewer, Role::Agent]);
    }
}
