//! The simulated world's mutable state: deployments (replicas, restarts,
//! generation, version), deploy history and rollbacks, outages, the fix that
//! was applied and when health comes back, plus what the notification APIs
//! received. One `World` sits behind a mutex in the server; handlers lock it
//! briefly and never across an await.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use serde_json::{json, Map, Value};

use crate::scenarios::{fleet, FixKind, Profile, Scenario, BAD_DEPLOY_VERSION};
use crate::signals::deploy_time;
use crate::time::{rfc3339, unix_secs};

/// The annotation `kubectl rollout restart` sets; changing it is a rolling restart.
pub(crate) const RESTARTED_AT: &str = "kubectl.kubernetes.io/restartedAt";

pub(crate) struct ServiceState {
    pub name: String,
    pub namespace: String,
    pub profile: Profile,
    pub pod: String,
    pub other_pod: String,
    pub replicas: i64,
    /// Replicas before the incident: scaling above this is a scale-out.
    pub original_replicas: i64,
    pub generation: i64,
    /// `deployment.kubernetes.io/revision`: bumped by template changes and rollbacks.
    pub revision: i64,
    pub restarts: u64,
    /// Times every pod was recreated by scaling 0 -> n.
    pub recreations: u64,
    pub version: String,
    pub uid: String,
    pub created_at: SystemTime,
    pub resource_version: u64,
    pub template_annotations: Map<String, Value>,
    pub metadata_annotations: Map<String, Value>,
    /// When the right fix takes effect (health recovers); None = not fixed.
    pub recovers_at: Option<SystemTime>,
    /// The fix that was (or will be) effective.
    pub fix: Option<&'static str>,
    /// Whether any remediation was attempted (for health's "still failing" wording).
    pub remediated: bool,
}

impl ServiceState {
    pub fn selector(&self) -> String {
        format!("app={}", self.name)
    }
}

#[derive(Clone, Debug)]
pub(crate) struct DeployRecord {
    pub id: String,
    pub service: String,
    pub version: String,
    pub deployed_at: SystemTime,
    pub author: String,
    pub description: String,
    pub status: String,
}

impl DeployRecord {
    pub fn to_json(&self, now: SystemTime) -> Value {
        let age_minutes = ((unix_secs(now) - unix_secs(self.deployed_at)) / 60.0).floor() as i64;
        json!({
            "id": self.id,
            "service": self.service,
            "version": self.version,
            "deployed_at": rfc3339(self.deployed_at),
            "age_minutes": age_minutes.max(0),
            "author": self.author,
            "description": self.description,
            "status": self.status,
        })
    }
}

pub(crate) struct Outage {
    pub service: String,
    pub started: SystemTime,
    pub ended: Option<SystemTime>,
}

/// Why a rollback was refused.
pub(crate) enum RollbackError {
    NotFound,
    Conflict(String),
}

pub(crate) struct World {
    pub scenario: Scenario,
    pub started: SystemTime,
    pub recovery_delay: Duration,
    pub services: BTreeMap<String, ServiceState>,
    /// Oldest first.
    pub deploys: Vec<DeployRecord>,
    pub rollbacks: Vec<Value>,
    /// Every mutating action on a service, with whether it was the right fix.
    pub remediations: Vec<Value>,
    pub outages: Vec<Outage>,
    pub statuspage_incidents: Vec<Value>,
    pub pagerduty_events: Vec<Value>,
    pub slack_messages: Vec<Value>,
    pub model_calls: Vec<Value>,
    pub counters: BTreeMap<String, u64>,
    next_resource_version: u64,
    next_id: u64,
    /// flaky-context: how many more logs queries fail with HTTP 500.
    pub logs_failures_left: u32,
}

impl World {
    pub fn new(scenario: Scenario, recovery_delay: Duration, started: SystemTime) -> World {
        let mut services = BTreeMap::new();
        let mut deploys = Vec::new();
        for (i, spec) in fleet(scenario).iter().enumerate() {
            let profile = if spec.name == scenario.incident_service() {
                scenario.profile()
            } else {
                Profile::Healthy
            };
            for (ago, version, author, description) in spec.deploys {
                deploys.push(DeployRecord {
                    id: String::new(),
                    service: spec.name.to_string(),
                    version: version.to_string(),
                    deployed_at: deploy_time(started, *ago),
                    author: author.to_string(),
                    description: description.to_string(),
                    status: "succeeded".into(),
                });
            }
            let version = spec.deploys.last().map(|d| d.1).unwrap_or("v1.0.0");
            services.insert(
                spec.name.to_string(),
                ServiceState {
                    name: spec.name.into(),
                    namespace: "production".into(),
                    profile,
                    pod: spec.pod.into(),
                    other_pod: spec.other_pod.into(),
                    replicas: spec.replicas,
                    original_replicas: spec.replicas,
                    generation: 7 + i as i64,
                    revision: spec.deploys.len() as i64,
                    restarts: 0,
                    recreations: 0,
                    version: version.into(),
                    uid: format!("5b1c7e0a-4f2d-4c1e-9a8b-00000000000{}", i + 1),
                    created_at: deploy_time(started, 200 * 86_400),
                    resource_version: 0,
                    template_annotations: Map::new(),
                    metadata_annotations: Map::new(),
                    recovers_at: None,
                    fix: None,
                    remediated: false,
                },
            );
        }
        // Ids in chronological order, like an auto-increment deploy tool.
        deploys.sort_by_key(|d| d.deployed_at);
        for (i, d) in deploys.iter_mut().enumerate() {
            d.id = format!("dep-{}", 4101 + i);
        }
        let mut w = World {
            scenario,
            started,
            recovery_delay,
            services,
            deploys,
            rollbacks: Vec::new(),
            remediations: Vec::new(),
            outages: Vec::new(),
            statuspage_incidents: Vec::new(),
            pagerduty_events: Vec::new(),
            slack_messages: Vec::new(),
            model_calls: Vec::new(),
            counters: BTreeMap::new(),
            next_resource_version: 40_000,
            next_id: 1,
            logs_failures_left: if scenario == Scenario::FlakyContext {
                2
            } else {
                0
            },
        };
        let names: Vec<String> = w.services.keys().cloned().collect();
        for n in names {
            let rv = w.bump_rv();
            if let Some(s) = w.services.get_mut(&n) {
                s.resource_version = rv;
            }
        }
        w
    }

    pub fn bump_rv(&mut self) -> u64 {
        self.next_resource_version += 1;
        self.next_resource_version
    }

    /// A fresh sequence number for ids (incidents, events, completions).
    pub fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    pub fn count(&mut self, key: &str) {
        *self.counters.entry(key.to_string()).or_insert(0) += 1;
    }

    pub fn elapsed_ms(&self, now: SystemTime) -> u64 {
        now.duration_since(self.started)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0)
    }

    /// The moment the service's signals are "as of" and whether it has recovered by then
    /// (see `signals.rs`).
    pub fn anchor(&self, service: &str, now: SystemTime) -> (SystemTime, bool) {
        match self.services.get(service).and_then(|s| s.recovers_at) {
            Some(t) if t <= now => (t, true),
            _ => (now, false),
        }
    }

    /// Unix-second windows during which the service had zero replicas.
    pub fn outage_windows(&self, service: &str) -> Vec<(f64, Option<f64>)> {
        self.outages
            .iter()
            .filter(|o| o.service == service)
            .map(|o| (unix_secs(o.started), o.ended.map(unix_secs)))
            .collect()
    }

    /// When the bad deploy of this service went out, if it has one.
    pub fn bad_deploy_at(&self, service: &str) -> Option<SystemTime> {
        let s = self.services.get(service)?;
        if s.profile != Profile::BadDeploy {
            return None;
        }
        self.deploys
            .iter()
            .find(|d| d.service == service && d.version == BAD_DEPLOY_VERSION)
            .map(|d| d.deployed_at)
    }

    /// Ok, or the reason the service is unhealthy.
    pub fn health(&self, service: &str, now: SystemTime) -> Result<(), String> {
        let Some(s) = self.services.get(service) else {
            return Err("unknown service".into());
        };
        if s.replicas == 0 {
            return Err("deployment scaled to 0 replicas: no pods are serving traffic".into());
        }
        let symptom = match s.profile {
            Profile::Healthy => return Ok(()),
            Profile::Oom => "memory at 94% of the container limit; pods failing with OutOfMemoryError",
            Profile::PoolExhausted => "database connection pool exhausted (100% utilization); requests time out waiting for a connection",
            Profile::BadDeploy => "HTTP 500 on 35% of requests since deploy v2.14.0",
            Profile::Unknown => "40% of deliveries failing (TLS handshake and DNS errors)",
        };
        match s.recovers_at {
            Some(t) if t <= now => Ok(()),
            Some(_) => Err(format!(
                "remediation ({}) rolling out; not healthy yet: {symptom}",
                s.fix.unwrap_or("fix")
            )),
            None if s.remediated => Err(format!("still failing after remediation: {symptom}")),
            None => Err(symptom.to_string()),
        }
    }

    /// Records a remediation; schedules recovery if it is the right fix and can work.
    fn remediate(&mut self, service: &str, kind: FixKind, detail: Value, now: SystemTime) {
        let scenario = self.scenario;
        let delay = self.recovery_delay;
        let started = self.started;
        let Some(s) = self.services.get_mut(service) else {
            return;
        };
        let mut right = s.profile.fixed_by(kind);
        if kind == FixKind::Rollback {
            // Only rolling back the bad deploy itself is the right fix.
            right = right && detail["version"] == BAD_DEPLOY_VERSION;
        }
        s.remediated = true;
        let takes_effect = right && scenario.fix_can_work() && s.recovers_at.is_none();
        if takes_effect {
            s.recovers_at = Some(now + delay);
            s.fix = Some(kind.name());
        }
        let elapsed = now
            .duration_since(started)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        self.remediations.push(json!({
            "elapsed_ms": elapsed,
            "at": rfc3339(now),
            "service": service,
            "action": kind.name(),
            "detail": detail,
            "right_fix": right,
            "will_recover": takes_effect,
        }));
        self.count(&format!("remediation.{}", kind.name()));
    }

    /// Sets a deployment's replica count, tracking outages, recreations and scale-outs.
    pub fn set_replicas(&mut self, service: &str, replicas: i64, now: SystemTime) {
        let rv = self.bump_rv();
        let Some(s) = self.services.get_mut(service) else {
            return;
        };
        let before = s.replicas;
        if before == replicas {
            return;
        }
        s.replicas = replicas;
        s.generation += 1;
        s.resource_version = rv;
        let original = s.original_replicas;
        if replicas == 0 {
            self.outages.push(Outage {
                service: service.to_string(),
                started: now,
                ended: None,
            });
            self.count("outages");
            self.remediations.push(json!({
                "elapsed_ms": self.elapsed_ms(now),
                "at": rfc3339(now),
                "service": service,
                "action": "scale_to_zero",
                "detail": {"from": before, "to": 0},
                "right_fix": false,
                "will_recover": false,
                "outage": true,
            }));
            return;
        }
        if before == 0 {
            for o in self.outages.iter_mut().filter(|o| o.service == service) {
                o.ended.get_or_insert(now);
            }
            if let Some(s) = self.services.get_mut(service) {
                s.recreations += 1;
            }
            self.remediate(
                service,
                FixKind::Recreate,
                json!({"from": 0, "to": replicas}),
                now,
            );
        }
        if replicas > original && replicas > before {
            self.remediate(
                service,
                FixKind::ScaleOut,
                json!({"from": before, "to": replicas, "original": original}),
                now,
            );
        } else if before != 0 {
            self.remediations.push(json!({
                "elapsed_ms": self.elapsed_ms(now),
                "at": rfc3339(now),
                "service": service,
                "action": "scale",
                "detail": {"from": before, "to": replicas},
                "right_fix": false,
                "will_recover": false,
            }));
        }
    }

    /// A rolling restart (the restartedAt annotation changed).
    pub fn rolling_restart(&mut self, service: &str, restarted_at: &Value, now: SystemTime) {
        if let Some(s) = self.services.get_mut(service) {
            s.restarts += 1;
            s.revision += 1;
        }
        self.remediate(
            service,
            FixKind::RollingRestart,
            json!({"restartedAt": restarted_at}),
            now,
        );
    }

    /// Deploys of a service, newest first.
    pub fn deploys_for(&self, service: Option<&str>) -> Vec<&DeployRecord> {
        let mut v: Vec<&DeployRecord> = self
            .deploys
            .iter()
            .filter(|d| service.is_none_or(|s| d.service == s))
            .collect();
        v.reverse();
        v
    }

    /// Rolls back deploy `id`: the service reverts to the version deployed before it.
    pub fn rollback(&mut self, id: &str, now: SystemTime) -> Result<Value, RollbackError> {
        let Some(idx) = self.deploys.iter().position(|d| d.id == id) else {
            return Err(RollbackError::NotFound);
        };
        let target = self.deploys[idx].clone();
        if target.status == "rolled_back" {
            return Err(RollbackError::Conflict(format!(
                "deployment {id} was already rolled back"
            )));
        }
        let previous = self.deploys[..idx]
            .iter()
            .rev()
            .find(|d| d.service == target.service && d.status == "succeeded")
            .cloned();
        let Some(previous) = previous else {
            return Err(RollbackError::Conflict(format!(
                "deployment {id} is the first deploy of {}; nothing to roll back to",
                target.service
            )));
        };
        self.deploys[idx].status = "rolled_back".into();
        let new_id = format!("dep-{}", 4101 + self.deploys.len());
        let record = DeployRecord {
            id: new_id.clone(),
            service: target.service.clone(),
            version: previous.version.clone(),
            deployed_at: now,
            author: "fm-sandbox (rollback)".into(),
            description: format!(
                "Rollback of {} ({}) to {}",
                target.id, target.version, previous.version
            ),
            status: "succeeded".into(),
        };
        self.deploys.push(record.clone());
        let rv = self.bump_rv();
        if let Some(s) = self.services.get_mut(&target.service) {
            s.version = previous.version.clone();
            s.revision += 1;
            s.generation += 1;
            s.resource_version = rv;
        }
        let rollback = json!({
            "id": new_id,
            "type": "rollback",
            "service": target.service,
            "rolled_back_deployment": target.id,
            "from_version": target.version,
            "to_version": previous.version,
            "status": "succeeded",
            "started_at": rfc3339(now),
            "deployment": record.to_json(now),
        });
        self.rollbacks.push(rollback.clone());
        self.remediate(
            &target.service,
            FixKind::Rollback,
            json!({"deployment": target.id, "version": target.version, "to_version": previous.version}),
            now,
        );
        Ok(rollback)
    }

    /// `GET /_sandbox/state`.
    pub fn to_json(&self, now: SystemTime) -> Value {
        let mut deployments = Map::new();
        let mut health = Map::new();
        for (name, s) in &self.services {
            let h = self.health(name, now);
            deployments.insert(
                name.clone(),
                json!({
                    "namespace": s.namespace,
                    "replicas": s.replicas,
                    "original_replicas": s.original_replicas,
                    "restarts": s.restarts,
                    "recreations": s.recreations,
                    "generation": s.generation,
                    "revision": s.revision,
                    "version": s.version,
                    "restarted_at": s.template_annotations.get(RESTARTED_AT).cloned().unwrap_or(Value::Null),
                    "fix": s.fix,
                    "recovers_at_ms": s.recovers_at.map(|t| self.elapsed_ms(t)),
                }),
            );
            health.insert(
                name.clone(),
                match h {
                    Ok(()) => json!({"healthy": true}),
                    Err(reason) => json!({"healthy": false, "reason": reason}),
                },
            );
        }
        let outages: Vec<Value> = self
            .outages
            .iter()
            .map(|o| {
                json!({
                    "service": o.service,
                    "started_ms": self.elapsed_ms(o.started),
                    "ended_ms": o.ended.map(|e| self.elapsed_ms(e)),
                    "duration_ms": o.ended.unwrap_or(now).duration_since(o.started).map(|d| d.as_millis() as u64).unwrap_or(0),
                })
            })
            .collect();
        let deploys: Vec<Value> = self
            .deploys_for(None)
            .iter()
            .map(|d| d.to_json(now))
            .collect();
        json!({
            "scenario": self.scenario.name(),
            "incident_service": self.scenario.incident_service(),
            "elapsed_ms": self.elapsed_ms(now),
            "recovery_delay_ms": self.recovery_delay.as_millis() as u64,
            "deployments": deployments,
            "health": health,
            "rollbacks": self.rollbacks,
            "remediations": self.remediations,
            "outages": outages,
            "deploy_history": deploys,
            "statuspage_incidents": self.statuspage_incidents,
            "pagerduty_events": self.pagerduty_events,
            "slack_messages": self.slack_messages,
            "model_calls": self.model_calls,
            "counters": self.counters,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn world(s: Scenario) -> (World, SystemTime) {
        let now = SystemTime::now();
        (World::new(s, Duration::from_secs(2), now), now)
    }

    #[test]
    fn restart_fixes_oom_after_the_delay() {
        let (mut w, now) = world(Scenario::Oom);
        assert!(w.health("payment-service", now).is_err());
        assert!(w.health("orders-service", now).is_ok());
        w.rolling_restart("payment-service", &json!("2024-01-01T00:00:00Z"), now);
        assert!(w.health("payment-service", now).is_err());
        assert!(w
            .health("payment-service", now + Duration::from_secs(3))
            .is_ok());
    }

    #[test]
    fn scale_to_zero_is_an_outage_and_scale_out_fixes_the_pool() {
        let (mut w, now) = world(Scenario::ConnectionPool);
        w.set_replicas("orders-service", 0, now);
        assert!(w
            .health("orders-service", now)
            .is_err_and(|e| e.contains("0 replicas")));
        assert_eq!(w.outages.len(), 1);
        w.set_replicas("orders-service", 6, now);
        assert!(w.outages[0].ended.is_some());
        assert!(w
            .health("orders-service", now + Duration::from_secs(3))
            .is_ok());
    }

    #[test]
    fn only_rolling_back_the_bad_deploy_fixes_it() {
        let (mut w, now) = world(Scenario::BadDeploy);
        let newest = w.deploys_for(Some("checkout-service"))[0].clone();
        assert_eq!(newest.version, BAD_DEPLOY_VERSION);
        let r = w.rollback(&newest.id, now).ok().unwrap_or_default();
        assert_eq!(r["to_version"], "v2.13.2");
        assert_eq!(w.services["checkout-service"].version, "v2.13.2");
        assert!(matches!(
            w.rollback(&newest.id, now),
            Err(RollbackError::Conflict(_))
        ));
        assert!(w
            .health("checkout-service", now + Duration::from_secs(3))
            .is_ok());
    }

    #[test]
    fn remediation_fails_never_recovers() {
        let (mut w, now) = world(Scenario::RemediationFails);
        w.rolling_restart("payment-service", &json!("x"), now);
        assert!(w
            .health("payment-service", now + Duration::from_secs(3600))
            .is_err());
    }
}
