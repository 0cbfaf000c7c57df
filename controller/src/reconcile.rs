//! One pass of the controller over a snapshot: pure, returning what to write.
//!
//! Every pass looks at every LoadBalancer Service: first those that hold IPs (in memory, or in
//! their status after a restart), which keep them when still valid, then the others, each
//! group in name order. The result is compared with what the snapshot already shows, so an
//! unchanged cluster produces no writes.
use crate::allocator::{AllocationError, Allocator, Assignment, Outcome, PoolUsage, ServiceKey};
use crate::service;
use ferrolb_api::annotations::IP_ALLOCATED_FROM_POOL;
use ferrolb_api::config::{Config, ConfigError};
use ferrolb_api::event_reason::EventReason;
use ferrolb_api::kind::Kind;
use ferrolb_api::status_partial::StatusPartial;
use ferrolb_api::v1beta1::{ConfigurationResult, ConfigurationStateStatus, IPAddressPoolStatus};
use ferrolb_cluster::{Event, EventTarget, ObjectKey, Snapshot};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use serde_json::json;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::IpAddr;

/// What a pass decided.
#[derive(Debug, Default)]
pub struct Actions {
    /// Partial objects to apply (Service status and annotation, pool status, ConfigurationState).
    pub applies: Vec<serde_json::Value>,
    pub events: Vec<Event>,
    /// Per pool, for metrics.
    pub usage: BTreeMap<String, PoolUsage>,
    /// The configuration errors, when the current configuration is rejected.
    pub config_errors: Vec<ConfigError>,
}

pub struct Controller {
    namespace: String,
    lb_class: Option<String>,
    allocator: Allocator,
    /// The configuration in force: the last one that validated.
    config: Option<Config>,
    /// The last Event of each reason reported per Service, so a condition is reported once.
    reported: HashMap<(ServiceKey, EventReason), String>,
    deprecation_reported: HashSet<ServiceKey>,
    /// Objects that could not be read, with the reason already said in an Event.
    unreadable_reported: HashMap<ObjectKey, String>,
}

impl Controller {
    pub fn new(namespace: &str, lb_class: Option<&str>) -> Controller {
        Controller {
            namespace: namespace.to_string(),
            lb_class: lb_class.map(str::to_string),
            allocator: Allocator::default(),
            config: None,
            reported: HashMap::new(),
            deprecation_reported: HashSet::new(),
            unreadable_reported: HashMap::new(),
        }
    }

    /// The configuration in force (the last one that validated).
    pub fn config(&self) -> Option<&Config> {
        self.config.as_ref()
    }

    /// Who holds which IPs.
    pub fn allocator(&self) -> &Allocator {
        &self.allocator
    }

    /// One pass; `now` dates the conditions it writes.
    pub fn reconcile(&mut self, snapshot: &Snapshot, now: Timestamp) -> Actions {
        let mut actions = Actions::default();
        // Before the first complete listing, an empty snapshot would look like a cluster with
        // no pools, and clear every Service: never act on it.
        if !snapshot.synced {
            return actions;
        }
        match Config::build(&snapshot.config_objects(&self.namespace)) {
            Ok(config) => {
                if self.config.as_ref() != Some(&config) {
                    self.allocator.set_config(&config);
                    self.config = Some(config);
                }
            }
            Err(errors) => {
                if self.config.is_some() {
                    tracing::warn!(
                        errors = errors.len(),
                        "configuration rejected; the last valid one stays in force"
                    );
                }
                actions.config_errors = errors;
            }
        }
        self.report_unreadable(snapshot, &mut actions);
        self.configuration_state(snapshot, &mut actions, now);
        let Some(config) = self.config.clone() else {
            return actions;
        };

        let namespaces = snapshot.namespace_labels();
        let empty = BTreeMap::new();
        let services: BTreeMap<ServiceKey, &Service> = snapshot
            .services()
            .map(|s| (service::key_of(s), s))
            .collect();
        let ours: Vec<(&ServiceKey, &Service)> = services
            .iter()
            .filter(|(_, s)| service::is_ours(s, self.lb_class.as_deref()))
            .map(|(k, s)| (k, *s))
            .collect();

        // Services that left (deleted, no longer LoadBalancer, another class) free their IPs.
        let ours_keys: HashSet<&ServiceKey> = ours.iter().map(|(k, _)| *k).collect();
        let gone: Vec<ServiceKey> = self
            .allocator
            .assignments()
            .map(|(k, _)| k.clone())
            .filter(|k| !ours_keys.contains(k))
            .collect();
        for key in gone {
            self.allocator.release(&key);
            self.reported.retain(|(k, _), _| *k != key);
            self.deprecation_reported.remove(&key);
        }
        for (key, svc) in &services {
            let _span = service_span(key).entered();
            // A Service of our class that is no longer LoadBalancer loses what we wrote on it;
            // Services of another class are not ours to touch.
            if !ours_keys.contains(key)
                && service::in_our_class(svc, self.lb_class.as_deref())
                && (service::status_pool(svc).is_some() || !service::status_ips(svc).is_empty())
            {
                actions.applies.push(service_partial(svc, None));
                let message =
                    "The Service is not of type LoadBalancer any more: its IPs were freed"
                        .to_string();
                self.report_once(
                    &mut actions,
                    key,
                    svc,
                    EventReason::ClearAssignment,
                    message,
                );
            }
        }

        let mut requests = Vec::new();
        for (key, svc) in ours {
            let _span = service_span(key).entered();
            let labels = namespaces.get(&*key.namespace).unwrap_or(&empty);
            match service::request(svc, labels) {
                Ok((request, annotations)) => {
                    if !annotations.deprecated_keys.is_empty()
                        && self.deprecation_reported.insert(key.clone())
                    {
                        let message = format!(
                            "{} is deprecated, use the metallb.io/ prefix instead",
                            annotations.deprecated_keys.join(", ")
                        );
                        actions
                            .events
                            .push(event(svc, EventReason::DeprecatedAnnotation, message));
                    }
                    requests.push((key, svc, request));
                }
                Err(error) => {
                    // A bad annotation leaves this Service as it is, and no other: it keeps
                    // holding the IPs it shows, so nobody else is given them meanwhile.
                    self.allocator.reserve(key, &service::status_ips(svc));
                    let message = format!("Failed to read the Service's annotations: {error}");
                    self.report_once(
                        &mut actions,
                        key,
                        svc,
                        EventReason::AllocationFailed,
                        message,
                    );
                }
            }
        }

        // First every holder keeps what still fits, before anyone is given an address: a valid
        // assignment is never taken by a Service that sorts earlier.
        let mut to_allocate = Vec::new();
        for (key, svc, request) in &requests {
            let _span = service_span(key).entered();
            let holds =
                self.allocator.assignment(key).is_some() || !service::status_ips(svc).is_empty();
            match holds
                .then(|| {
                    self.allocator.keep(
                        request,
                        &service::status_ips(svc),
                        service::status_pool(svc),
                    )
                })
                .flatten()
            {
                Some(outcome) => self.apply_outcome(&mut actions, key, svc, Ok(outcome)),
                None => to_allocate.push((holds, *key, *svc, request)),
            }
        }
        // Then former holders whose IPs no longer fit, then newcomers, each in name order.
        to_allocate.sort_by_key(|(holds, key, _, _)| (!holds, *key));
        for (_, key, svc, request) in to_allocate {
            let _span = service_span(key).entered();
            let outcome = self.allocator.allocate(request).map(Outcome::Assigned);
            self.apply_outcome(&mut actions, key, svc, outcome);
        }

        let mut usages = self.allocator.usages();
        for pool in config.pools.values() {
            let Some(usage) = usages.remove(&pool.name) else {
                continue;
            };
            actions.usage.insert(pool.name.clone(), usage);
            let status = IPAddressPoolStatus {
                assigned_ipv4: i64::try_from(usage.in_use_v4).unwrap_or(i64::MAX),
                assigned_ipv6: i64::try_from(usage.in_use_v6).unwrap_or(i64::MAX),
                available_ipv4: usage
                    .capacity_v4
                    .saturating_sub(usage.in_use_v4)
                    .saturating_i64(),
                available_ipv6: usage
                    .capacity_v6
                    .saturating_sub(usage.in_use_v6)
                    .saturating_i64(),
            };
            let current = snapshot
                .pools()
                .find(|p| p.metadata.name.as_deref() == Some(&pool.name))
                .and_then(|p| p.status.clone());
            if current.as_ref() != Some(&status) {
                let metadata = ObjectMeta {
                    name: Some(pool.name.clone()),
                    namespace: Some(self.namespace.clone()),
                    ..ObjectMeta::default()
                };
                let partial = StatusPartial::new(Kind::IPAddressPool, metadata, status);
                actions.applies.push(partial.to_json());
            }
        }
        actions
    }

    fn apply_outcome(
        &mut self,
        actions: &mut Actions,
        key: &ServiceKey,
        svc: &Service,
        outcome: Result<Outcome, AllocationError>,
    ) {
        let assignment = match outcome {
            Ok(Outcome::Kept(assignment)) => assignment,
            Ok(Outcome::Assigned(assignment)) => {
                let ips: Vec<String> = assignment.ips.iter().map(ToString::to_string).collect();
                let message = format!("Assigned IP {ips:?} from pool {}", assignment.pool);
                actions
                    .events
                    .push(event(svc, EventReason::IpAllocated, message));
                self.reported.retain(|(k, _), _| k != key);
                assignment
            }
            Err(error) => {
                if !service::status_ips(svc).is_empty() || service::status_pool(svc).is_some() {
                    actions.applies.push(service_partial(svc, None));
                    let message = format!("Current IPs cleared: {error}");
                    self.report_once(actions, key, svc, EventReason::ClearAssignment, message);
                }
                let message = format!(
                    "Failed to allocate IP for {key:?}: {error}",
                    key = key.to_string()
                );
                self.report_once(actions, key, svc, EventReason::AllocationFailed, message);
                return;
            }
        };
        if !shows(svc, &assignment) {
            actions
                .applies
                .push(service_partial(svc, Some(&assignment)));
        }
        let unannounced = self
            .config
            .as_ref()
            .and_then(|c| c.pools.get(&*assignment.pool))
            .is_some_and(|pool| !pool.is_announced());
        if unannounced {
            let message = format!(
                "Pool {} is selected by no L2Advertisement and no BGPAdvertisement: nothing announces this Service's IPs",
                assignment.pool
            );
            self.report_once(actions, key, svc, EventReason::NotAnnounced, message);
        }
    }

    /// Publishes an Event unless the same one was already published for this Service: a
    /// condition that lasts is reported once, not at every pass.
    fn report_once(
        &mut self,
        actions: &mut Actions,
        key: &ServiceKey,
        svc: &Service,
        reason: EventReason,
        message: String,
    ) {
        if self.reported.get(&(key.clone(), reason)) != Some(&message) {
            if reason.warns() {
                tracing::warn!(service = %key, "{message}");
            }
            actions.events.push(event(svc, reason, message.clone()));
            self.reported.insert((key.clone(), reason), message);
        }
    }

    /// A Warning Event on each object the backend could not read (once per reason): the
    /// object is left out, and `kubectl describe` on it says why.
    fn report_unreadable(&mut self, snapshot: &Snapshot, actions: &mut Actions) {
        let current: HashMap<&ObjectKey, &str> = snapshot
            .problems
            .iter()
            .filter_map(|p| Some((p.object.as_ref()?, p.reason.as_str())))
            .collect();
        self.unreadable_reported
            .retain(|key, reason| current.get(key) == Some(&reason.as_str()));
        for (key, reason) in current {
            if self.unreadable_reported.contains_key(key) {
                continue;
            }
            let regarding = EventTarget {
                api_version: key.kind.api_version(),
                kind: key.kind.name().to_string(),
                namespace: key.namespace.clone(),
                name: key.name.clone(),
                uid: None,
            };
            let message = format!("Left out, everything else goes on: {reason}");
            actions
                .events
                .push(Event::new(regarding, EventReason::InvalidObject, message));
            self.unreadable_reported
                .insert(key.clone(), reason.to_string());
        }
    }

    /// The `controller` ConfigurationState: Valid, or Invalid with the configuration's errors
    /// and the objects that could not be read (left out while the rest is in force).
    ///
    /// Pools no advertisement selects are valid (MetalLB gives their IPs), but said in a
    /// `NotAnnounced` condition, since nothing will answer for those IPs.
    fn configuration_state(&self, snapshot: &Snapshot, actions: &mut Actions, now: Timestamp) {
        let lines: Vec<String> = actions
            .config_errors
            .iter()
            .map(ToString::to_string)
            .chain(snapshot.problems.iter().map(|p| format!("skipped: {p}")))
            .collect();
        let (result, summary) = if lines.is_empty() {
            (ConfigurationResult::Valid, String::new())
        } else {
            (ConfigurationResult::Invalid, lines.join("\n"))
        };
        let unannounced_pools: Vec<&str> = self
            .config
            .iter()
            .flat_map(|c| c.pools.values())
            .filter(|pool| !pool.is_announced())
            .map(|pool| pool.name.as_str())
            .collect();
        // A condition's message holds 32 KiB at most: the first pools by name, then a count.
        const NAMED: usize = 50;
        let mut unannounced: Vec<String> = unannounced_pools
            .iter()
            .take(NAMED)
            .map(|pool| {
                format!(
                    "IPAddressPool {pool:?} is selected by no L2Advertisement and no BGPAdvertisement: its IPs are given but never announced"
                )
            })
            .collect();
        if unannounced_pools.len() > NAMED {
            unannounced.push(format!(
                "and {} more pools like these",
                unannounced_pools.len() - NAMED
            ));
        }
        let current = snapshot.objects.values().find_map(|o| match o {
            ferrolb_api::objects::Object::ConfigurationState(s)
                if s.metadata.name.as_deref() == Some("controller")
                    && s.metadata.namespace.as_deref() == Some(&self.namespace) =>
            {
                s.status.clone()
            }
            _ => None,
        });
        let unannounced = unannounced.join("\n");
        let current_condition = current
            .as_ref()
            .and_then(|s| s.conditions.iter().find(|c| c.type_ == "NotAnnounced"));
        if current.as_ref().is_some_and(|s| {
            s.result == Some(result)
                && s.error_summary == summary
                && current_condition.map(|c| c.message.as_str())
                    == (!unannounced.is_empty()).then_some(unannounced.as_str())
        }) {
            return;
        }
        let conditions = if unannounced.is_empty() {
            Vec::new()
        } else {
            vec![Condition {
                type_: "NotAnnounced".into(),
                status: "True".into(),
                reason: "NoAdvertisement".into(),
                // Since when: kept while the message is unchanged.
                last_transition_time: current_condition
                    .filter(|c| c.message == unannounced)
                    .map_or(Time(now), |c| c.last_transition_time.clone()),
                message: unannounced,
                observed_generation: None,
            }]
        };
        let metadata = ObjectMeta {
            name: Some("controller".into()),
            namespace: Some(self.namespace.clone()),
            labels: Some(
                [("metallb.io/component-type".into(), "controller".into())]
                    .into_iter()
                    .collect(),
            ),
            ..ObjectMeta::default()
        };
        let status = ConfigurationStateStatus {
            result: Some(result),
            error_summary: summary,
            conditions,
        };
        let partial = StatusPartial::new(Kind::ConfigurationState, metadata, status);
        actions.applies.push(partial.to_json());
    }
}

/// Whether the Service's status and annotation already show `assignment`.
fn shows(svc: &Service, assignment: &Assignment) -> bool {
    service::status_ips(svc) == assignment.ips
        && service::status_pool(svc) == Some(&*assignment.pool)
}

/// The controller's share of a Service: the pool annotation and the ingress IPs; with no
/// assignment, both cleared.
fn service_partial(svc: &Service, assignment: Option<&Assignment>) -> serde_json::Value {
    let (annotations, load_balancer) = match assignment {
        Some(a) => {
            let ingress: Vec<serde_json::Value> = a
                .ips
                .iter()
                .map(|ip: &IpAddr| json!({"ip": ip.to_string()}))
                .collect();
            (
                json!({ IP_ALLOCATED_FROM_POOL: &*a.pool }),
                json!({ "ingress": ingress }),
            )
        }
        // Removing (null, as in a JSON merge patch) what we wrote, even if another manager
        // (MetalLB, before a migration) wrote it first.
        None => (
            json!({ IP_ALLOCATED_FROM_POOL: null }),
            json!({ "ingress": [] }),
        ),
    };
    json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": svc.metadata.name, "namespace": svc.metadata.namespace, "annotations": annotations},
        "status": {"loadBalancer": load_balancer},
    })
}

/// Every log line about one Service carries its name.
fn service_span(key: &ServiceKey) -> tracing::Span {
    tracing::info_span!("service", service = %key)
}

fn event(svc: &Service, reason: EventReason, message: String) -> Event {
    let regarding = EventTarget {
        api_version: "v1".into(),
        kind: "Service".into(),
        namespace: svc.metadata.namespace.clone(),
        name: svc.metadata.name.clone().unwrap_or_default(),
        uid: svc.metadata.uid.clone(),
    };
    Event::new(regarding, reason, message)
}
