//! Bulk jobs: many entities changed from one file, such as giving a
//! leaving manager's clients to others from a CSV file of `id, new
//! responsible` lines. This is the file's reading and the job's shape; the
//! engine plans and applies it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::automation::Directory;
use super::entity::Author;
use super::kind::{EntityKind, EntityRef, UserId};
use super::value::Timestamp;

/// What a reassignment job does besides the entities its file names.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReassignSpec {
    /// The kind of the entities a line names by number alone (`42`); a line
    /// may name its own (`company:42`).
    pub kind: Option<EntityKind>,
    /// Also give the entity's open deals to the new responsible.
    pub deals: bool,
    /// Also its activities not completed.
    pub activities: bool,
    /// Also its tasks not completed.
    pub tasks: bool,
    /// Rows applied in one transaction.
    pub batch: u32,
    /// The pause after each batch, so the portal stays responsive.
    pub pause_ms: u64,
}

impl Default for ReassignSpec {
    fn default() -> Self {
        ReassignSpec {
            kind: None,
            deals: true,
            activities: true,
            tasks: true,
            batch: 100,
            pause_ms: 50,
        }
    }
}

impl ReassignSpec {
    /// The kinds a row's change cascades to, of those linked to it.
    pub fn cascades(&self) -> Vec<EntityKind> {
        [
            (self.deals, EntityKind::Deal),
            (self.activities, EntityKind::Activity),
            (self.tasks, EntityKind::Task),
        ]
        .into_iter()
        .filter_map(|(on, kind)| on.then_some(kind))
        .collect()
    }

    pub fn check(&self) -> Result<(), String> {
        if !(1..=10_000).contains(&self.batch) {
            return Err(format!("`batch` is {}; give 1 to 10000 rows", self.batch));
        }
        if self.pause_ms > 60_000 {
            return Err(format!("`pause_ms` is {}; give at most 60000", self.pause_ms));
        }
        Ok(())
    }
}

/// The kinds whose responsible a file may change.
pub const REASSIGNABLE: [EntityKind; 4] = [
    EntityKind::Lead,
    EntityKind::Contact,
    EntityKind::Company,
    EntityKind::Deal,
];

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobStatus {
    /// Planned and reported; nothing applied until started.
    Planned,
    Running,
    Done,
    Cancelled,
}

impl JobStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Planned => "planned",
            JobStatus::Running => "running",
            JobStatus::Done => "done",
            JobStatus::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<JobStatus> {
        [
            JobStatus::Planned,
            JobStatus::Running,
            JobStatus::Done,
            JobStatus::Cancelled,
        ]
        .into_iter()
        .find(|j| j.as_str() == s)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RowStatus {
    Pending,
    Applied,
    /// Left unchanged, with why.
    Failed,
}

impl RowStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RowStatus::Pending => "pending",
            RowStatus::Applied => "applied",
            RowStatus::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<RowStatus> {
        [RowStatus::Pending, RowStatus::Applied, RowStatus::Failed]
            .into_iter()
            .find(|r| r.as_str() == s)
    }
}

/// One line of a job's file and what became of it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct JobRow {
    /// The line in the file, from 1.
    pub line: u64,
    /// Such as `company:42`; none when the line could not be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entity: Option<EntityRef>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<UserId>,
    pub status: RowStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// What its change cascaded to.
    pub deals: u64,
    pub activities: u64,
    pub tasks: u64,
}

/// What a job will do, told before it starts.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    /// The rows it will apply, by kind.
    pub rows: BTreeMap<EntityKind, u64>,
    /// Rows it cannot apply (listed with why among the job's rows).
    pub unusable: u64,
    /// The linked deals, activities and tasks of the same responsible that
    /// the cascade may change: those open or not completed when it runs.
    pub cascade_at_most: BTreeMap<EntityKind, u64>,
}

/// Where a job stands.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Progress {
    pub total: u64,
    pub pending: u64,
    pub applied: u64,
    pub failed: u64,
    /// What the applied rows cascaded to.
    pub deals: u64,
    pub activities: u64,
    pub tasks: u64,
    /// Rows done (applied or failed) of the total, 0 to 100.
    pub percent: f64,
}

impl Progress {
    pub fn done(&self) -> u64 {
        self.applied + self.failed
    }
}

/// A bulk reassignment.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Job {
    pub id: u64,
    pub status: JobStatus,
    pub spec: ReassignSpec,
    pub plan: Plan,
    /// Who made it through the API.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub author: Option<Author>,
    pub progress: Progress,
    pub created_at: Timestamp,
    pub started_at: Option<Timestamp>,
    pub finished_at: Option<Timestamp>,
}

/// One line read: the entity and its new responsible, or why not.
pub type ReadRow = (u64, Result<(EntityRef, UserId), String>);

/// Reads a reassignment file: CSV lines of `id, new responsible`. The id
/// is `42` (of `spec.kind`) or `company:42`; the responsible is a user's
/// number or exact name (one active user's). A first line naming its
/// columns is skipped, as are blank lines; `;` separates columns as well as
/// `,`. An entity named twice is applied once, at its first line.
pub fn read_reassignments(text: &str, spec: &ReassignSpec, directory: &Directory) -> Result<Vec<ReadRow>, String> {
    let separator = if text.lines().next().is_some_and(|l| l.contains(';') && !l.contains(',')) {
        b';'
    } else {
        b','
    };
    let mut rows = Vec::new();
    let mut seen: BTreeMap<EntityRef, u64> = BTreeMap::new();
    // Line by line, so each row knows its line in the file.
    for (i, text) in text.lines().enumerate() {
        let line = i as u64 + 1;
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .trim(csv::Trim::All)
            .delimiter(separator)
            .from_reader(text.as_bytes());
        let Some(record) = reader.records().next() else {
            continue;
        };
        let record = record.map_err(|e| format!("line {line} is not CSV: {e}"))?;
        let cells: Vec<&str> = record.iter().collect();
        if cells.iter().all(|c| c.is_empty()) {
            continue;
        }
        if rows.is_empty() && is_header(&cells) {
            continue;
        }
        let read = read_row(&cells, spec, directory).and_then(|(target, user)| match seen.get(&target) {
            Some(first) => Err(format!("{target} is already at line {first}")),
            None => {
                seen.insert(target, line);
                Ok((target, user))
            }
        });
        rows.push((line, read));
    }
    if rows.is_empty() {
        return Err("the file has no rows; give one `id, new responsible` line per entity".into());
    }
    Ok(rows)
}

/// A first line such as `id,responsible`: its first cell is no entity.
fn is_header(cells: &[&str]) -> bool {
    let first = cells[0].to_ascii_lowercase();
    !first.chars().any(|c| c.is_ascii_digit()) && (first.contains("id") || first.contains("entity"))
}

fn read_row(cells: &[&str], spec: &ReassignSpec, directory: &Directory) -> Result<(EntityRef, UserId), String> {
    let [id, user] = cells[..] else {
        return Err(format!(
            "expected 2 columns, `id, new responsible`; found {}",
            cells.len()
        ));
    };
    let target = match (id.parse::<u64>(), spec.kind) {
        (Ok(number), Some(kind)) => EntityRef { kind, id: number },
        (Ok(_), None) => {
            return Err(format!(
                "`{id}` names no kind; write `company:{id}` or choose the file's kind"
            ));
        }
        (Err(_), _) => id.parse::<EntityRef>().map_err(|e| e.to_string())?,
    };
    if !REASSIGNABLE.contains(&target.kind) {
        return Err(format!(
            "{target}: a file reassigns leads, contacts, companies or deals, not {}s",
            target.kind.as_str()
        ));
    }
    let by_number = user.parse::<UserId>().ok().and_then(|n| directory.user(n));
    let by_name: Vec<_> = directory.users.iter().filter(|u| u.name == user).collect();
    let found = match (by_number, by_name.as_slice()) {
        (Some(u), _) | (None, &[u]) => u,
        (None, []) => return Err(format!("RESPONSIBLE: `{user}` is no user's number or name")),
        (None, _) => {
            return Err(format!(
                "RESPONSIBLE: {} users are named `{user}`; give the number",
                by_name.len()
            ));
        }
    };
    if !found.active {
        return Err(format!("RESPONSIBLE: {} (#{}) is not active", found.name, found.id));
    }
    Ok((target, found.id))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::User;

    fn directory() -> Directory {
        let user = |id, name: &str, active| User {
            id,
            name: name.into(),
            department: None,
            active,
            away: None,
            hours: None,
        };
        Directory {
            users: vec![
                user(1, "Olga", true),
                user(2, "Ivan", true),
                user(3, "Petr", false),
                user(4, "Ivan", true),
            ],
            departments: vec![],
        }
    }

    fn read(text: &str) -> Vec<ReadRow> {
        let spec = ReassignSpec {
            kind: Some(EntityKind::Company),
            ..ReassignSpec::default()
        };
        read_reassignments(text, &spec, &directory()).unwrap()
    }

    #[test]
    fn lines_name_entities_by_number_or_reference_and_users_by_number_or_name() {
        let company = |id| EntityRef {
            kind: EntityKind::Company,
            id,
        };
        let rows = read("id,new responsible\n10,1\n\ndeal:7; Olga\ncompany:11, Olga\n");
        assert_eq!(rows[0], (2, Ok((company(10), 1))));
        assert_eq!(rows[1].0, 4);
        assert_eq!(
            rows[1].1,
            Err("expected 2 columns, `id, new responsible`; found 1".into())
        );
        assert_eq!(rows[2], (5, Ok((company(11), 1))));
    }

    #[test]
    fn each_unusable_line_says_why() {
        let rows = read("10,1\n10,2\ntask:3,1\n12,Nobody\n13,Ivan\n14,3\nx:1,1\n");
        let errors: Vec<String> = rows.into_iter().filter_map(|(_, r)| r.err()).collect();
        assert_eq!(
            errors,
            [
                "company:10 is already at line 1",
                "task:3: a file reassigns leads, contacts, companies or deals, not tasks",
                "RESPONSIBLE: `Nobody` is no user's number or name",
                "RESPONSIBLE: 2 users are named `Ivan`; give the number",
                "RESPONSIBLE: Petr (#3) is not active",
                "`x` is not an entity kind; use lead, deal, contact, company, task or activity",
            ]
        );
    }

    #[test]
    fn a_number_needs_the_files_kind_and_an_empty_file_is_refused() {
        let rows = read_reassignments("5,1\n", &ReassignSpec::default(), &directory()).unwrap();
        assert!(rows[0].1.as_ref().unwrap_err().contains("names no kind"));
        assert!(read_reassignments("\n\n", &ReassignSpec::default(), &directory()).is_err());
    }
}
