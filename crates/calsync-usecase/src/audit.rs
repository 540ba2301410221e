//! The audit trail: an AuditEvent ([`calsync_fhir::audit`]) for every read or search that
//! returns a participant's data, every `$find-mutual` naming participants, every hold, booking
//! and cancellation, and every refusal. Records go through a bounded queue to a writer task off
//! the request's path; a full queue is counted ([`Audit::dropped`]) and logged, never waited on.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use calsync_fhir::audit::{Action, Agent, Record, Result as AuditResult};
use calsync_store::Store;
use serde_json::Value;
use tokio::sync::mpsc;

use crate::compartment::ScheduleActors;
use crate::{Caller, Context, UseCases};

/// Records waiting to be written at most.
pub const QUEUE: usize = 10_000;

/// Records written in one transaction at most.
const BATCH: usize = 1_000;

/// How long the writer gathers records after the first before it writes them.
const GATHER: std::time::Duration = std::time::Duration::from_millis(250);

/// Where the use cases' audit records go.
#[derive(Debug, Clone)]
pub struct Audit {
    queue: Option<mpsc::Sender<Value>>,
    dropped: Arc<AtomicU64>,
}

impl Audit {
    /// A trail written into `store` by a task of the current Tokio runtime (none outside one:
    /// every record is then counted as dropped).
    pub fn start(store: Store) -> Audit {
        let dropped = Arc::new(AtomicU64::new(0));
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return Audit { queue: None, dropped } };
        let (queue, mut records) = mpsc::channel::<Value>(QUEUE);
        runtime.spawn(async move {
            let mut batch = Vec::with_capacity(BATCH);
            while records.recv_many(&mut batch, BATCH).await > 0 {
                // One transaction for what comes within a moment: a transaction per record made
                // `$find-mutual` 40 % slower under load (docs/benchmarks.md).
                tokio::time::sleep(GATHER).await;
                while batch.len() < BATCH {
                    match records.try_recv() {
                        Ok(record) => batch.push(record),
                        Err(_) => break,
                    }
                }
                let now = chrono::Utc::now();
                let puts = batch
                    .drain(..)
                    .map(|e| ("AuditEvent".to_string(), uuid::Uuid::new_v4().to_string(), e))
                    .collect::<Vec<_>>();
                let n = puts.len();
                if let Err(e) = store.put_many(puts, now).await {
                    tracing::error!(records = n, error = %e, "audit records could not be written");
                }
            }
        });
        Audit { queue: Some(queue), dropped }
    }

    /// Records the queue had no room for, since the start.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    fn send(&self, event: Value) {
        let sent = self.queue.as_ref().is_some_and(|q| q.try_send(event).is_ok());
        if !sent {
            let n = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            if n.is_power_of_two() {
                tracing::warn!(dropped = n, "the audit queue is full: records are being dropped");
            }
        }
    }
}

/// Who `caller` is, for the trail.
pub fn agent_of(caller: &Caller) -> Agent {
    match caller {
        Caller::Bearer(p) => {
            Agent { person: p.user.clone(), identity: (p.issuer.clone(), p.subject.clone()), client: p.client.clone() }
        }
        Caller::Operator => Agent { identity: ("urn:calsync".into(), "operator".into()), ..Agent::default() },
        Caller::Anonymous => Agent { identity: ("urn:calsync".into(), "anonymous".into()), ..Agent::default() },
    }
}

/// What a use case did, for [`UseCases::audit`].
#[derive(Debug, Clone)]
pub struct Done {
    /// What was done.
    pub action: Action,
    /// The interaction or operation.
    pub subtype: &'static str,
    /// The patients whose data it was.
    pub patients: Vec<String>,
    /// The other resources it concerned.
    pub what: Vec<String>,
}

impl UseCases {
    /// Records that the caller of `cx` did `done` (successfully).
    pub fn audit(&self, cx: &Context, done: Done) {
        self.record(cx, done, AuditResult::Success);
    }

    /// Records that the caller of `cx` was refused `done` (401 or 403).
    pub fn audit_refusal(&self, cx: &Context, done: Done) {
        self.record(cx, done, AuditResult::Refused);
    }

    fn record(&self, cx: &Context, done: Done, result: AuditResult) {
        let record = Record {
            action: done.action,
            subtype: done.subtype.to_string(),
            result,
            agent: agent_of(&cx.caller),
            patients: done.patients,
            what: done.what,
            request: cx.request.clone(),
            recorded: cx.now,
        };
        self.audit.send(calsync_fhir::audit::event(&record));
    }

    /// Records `subtype` on `resources` (type and content) when any of them is a participant's
    /// data: one event naming the participants and the resources.
    pub(crate) async fn audit_resources<'a>(
        &self,
        cx: &Context,
        action: Action,
        subtype: &'static str,
        resources: impl IntoIterator<Item = (&'a str, &'a Value)>,
    ) -> crate::Outcome<()> {
        self.audit_resources_with(cx, action, subtype, resources, &mut ScheduleActors::new()).await
    }

    /// [`UseCases::audit_resources`] with the Schedules the call looked up already.
    pub(crate) async fn audit_resources_with<'a>(
        &self,
        cx: &Context,
        action: Action,
        subtype: &'static str,
        resources: impl IntoIterator<Item = (&'a str, &'a Value)>,
        schedules: &mut ScheduleActors,
    ) -> crate::Outcome<()> {
        let (mut patients, mut what) = (Vec::new(), Vec::new());
        for (t, content) in resources {
            let people = self.participants_of(t, content, schedules).await?;
            if people.is_empty() {
                continue;
            }
            what.push(format!("{t}/{}", content["id"].as_str().unwrap_or_default()));
            for p in people {
                if !patients.contains(&p) {
                    patients.push(p);
                }
            }
        }
        if !patients.is_empty() {
            self.audit(cx, Done { action, subtype, patients, what });
        }
        Ok(())
    }

    /// Audit records the queue had no room for since the start (for the operations page and,
    /// next, `/metrics`).
    pub fn audit_dropped(&self) -> u64 {
        self.audit.dropped()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_queue_counts_what_it_drops() {
        let (queue, _writer_that_never_reads) = mpsc::channel(2);
        let audit = Audit { queue: Some(queue), dropped: Arc::new(AtomicU64::new(0)) };
        for n in 0..5 {
            audit.send(serde_json::json!({"n": n}));
        }
        assert_eq!(audit.dropped(), 3);
        let nowhere = Audit { queue: None, dropped: Arc::new(AtomicU64::new(0)) };
        nowhere.send(serde_json::json!({}));
        assert_eq!(nowhere.dropped(), 1);
    }
}
