//! Change-notification subscriptions on print tasks, the validation handshake, and delivery of
//! change and lifecycle notifications.
//!
//! Rules (Graph's documented behaviour unless marked):
//! - Only `print/taskDefinitions/{id}/tasks` with changeType `created` is supported; the leading
//!   slash and letter case are tolerated as Graph does. The definition must be the caller's app's.
//! - `clientState` is required (the webhooks page says so) and at most 128 characters.
//! - `expirationDateTime` must be in the future and at most 4,230 minutes ahead, by the emulator's
//!   clock, on create and on renew (PATCH); otherwise 400.
//! - `notificationUrl` and `lifecycleNotificationUrl` are validated before the subscription exists:
//!   `POST {url}?validationToken=…` with `Content-Type: text/plain; charset=utf-8`, answered 200
//!   within 10 s with the decoded token as `text/plain`; otherwise 400 `ValidationError`.
//! - **The one deviation:** https is required *except* for loopback hosts (127.0.0.0/8, ::1,
//!   localhost), so tests and the demo can receive notifications without certificates.
//! - PATCH accepts only `expirationDateTime` [U: strict]; a lifecycle URL cannot be added later.
//! - Expired subscriptions are deleted (lazily, whenever subscriptions are consulted) and deliver
//!   nothing.
//! - Notifications are delivered in the background (never blocking job submission), with a 3 s
//!   client timeout like Graph's, retried on non-2xx or timeout a few times with a short back-off.
//!   Each attempt is recorded with its response time; > 2,900 ms is flagged slow as Graph does.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::Shared;
use super::graph_error::GraphError;
use super::state::{TaskCreated, graph_time};

/// Maximum subscription lifetime for print resources.
pub const MAX_LIFETIME_MINUTES: i64 = 4230;

/// A subscription in the emulated tenant.
#[derive(Debug, Clone)]
pub(crate) struct Subscription {
    pub id: String,
    pub resource: String,
    pub definition_id: String,
    pub change_type: String,
    pub client_state: String,
    pub notification_url: String,
    pub lifecycle_url: Option<String>,
    pub expiration: OffsetDateTime,
    pub app_id: String,
}

/// A subscription as the control API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionView {
    /// Subscription id.
    pub id: String,
    /// Resource, as the client sent it.
    pub resource: String,
    /// Where change notifications go.
    pub notification_url: String,
    /// Where lifecycle notifications go.
    pub lifecycle_notification_url: Option<String>,
    /// Expiry (RFC 3339).
    pub expiration_date_time: String,
    /// The client's shared secret.
    pub client_state: String,
}

/// One attempt to deliver a notification (or a notification dropped by a fault).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryRecord {
    /// Subscription it belongs to.
    pub subscription_id: String,
    /// `created` (a change notification) or `reauthorizationRequired` (lifecycle).
    pub kind: String,
    /// The task it announces (change notifications).
    pub task_id: Option<String>,
    /// Target URL.
    pub url: String,
    /// 1 for the first try.
    pub attempt: u32,
    /// HTTP status received, if any.
    pub status: Option<u16>,
    /// Transport error or timeout, if any.
    pub error: Option<String>,
    /// Response time in milliseconds.
    pub elapsed_ms: u64,
    /// Response time in microseconds (benchmarks: acknowledgements take well under a millisecond).
    #[serde(default)]
    pub elapsed_us: u64,
    /// Response slower than 2,900 ms (Graph's threshold).
    pub slow: bool,
    /// `delivered`, `failed` (this attempt) or `dropped` (fault injection: never sent).
    pub outcome: String,
    /// This is the second copy of a duplicated notification.
    pub duplicate: bool,
}

fn view(s: &Subscription) -> SubscriptionView {
    SubscriptionView {
        id: s.id.clone(),
        resource: s.resource.clone(),
        notification_url: s.notification_url.clone(),
        lifecycle_notification_url: s.lifecycle_url.clone(),
        expiration_date_time: graph_time(s.expiration),
        client_state: s.client_state.clone(),
    }
}

fn subscription_json(root: &str, s: &Subscription, creator: &str) -> Value {
    json!({
        "@odata.context": format!("{root}/$metadata#subscriptions/$entity"),
        "id": s.id,
        "resource": s.resource,
        "applicationId": s.app_id,
        "changeType": s.change_type,
        "clientState": s.client_state,
        "notificationUrl": s.notification_url,
        "notificationQueryOptions": null,
        "lifecycleNotificationUrl": s.lifecycle_url,
        "expirationDateTime": graph_time(s.expiration),
        "creatorId": creator,
        "includeResourceData": false,
        "latestSupportedTlsVersion": "v1_2",
        "encryptionCertificate": null,
        "encryptionCertificateId": null,
        "notificationUrlAppId": null,
    })
}

/// Deletes expired subscriptions; returns the live ones' snapshot.
pub(crate) fn purge_expired(shared: &Shared) -> Vec<Subscription> {
    let now = shared.now();
    let mut world = shared.world();
    world.subscriptions.retain(|_, s| s.expiration > now);
    world.subscriptions.values().cloned().collect()
}

/// Subscriptions as the control API shows them.
pub(crate) fn views(shared: &Shared) -> Vec<SubscriptionView> {
    purge_expired(shared).iter().map(view).collect()
}

fn check_url(field: &str, raw: &str) -> Result<url::Url, GraphError> {
    let url = url::Url::parse(raw).map_err(|e| {
        GraphError::invalid_request(format!("{field} '{raw}' is not a valid URL: {e}."))
    })?;
    let loopback = match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    if url.scheme() == "https" || (url.scheme() == "http" && loopback) {
        Ok(url)
    } else {
        Err(GraphError::invalid_request(format!(
            "{field} must be an https URL (the emulator also accepts http on loopback hosts)."
        )))
    }
}

fn check_expiry(shared: &Shared, raw: Option<&Value>) -> Result<OffsetDateTime, GraphError> {
    let Some(text) = raw.and_then(Value::as_str) else {
        return Err(GraphError::invalid_request(
            "expirationDateTime is required (DateTimeOffset, UTC).",
        ));
    };
    let at = OffsetDateTime::parse(text, &Rfc3339).map_err(|e| {
        GraphError::invalid_request(format!(
            "expirationDateTime '{text}' is not a valid DateTimeOffset: {e}."
        ))
    })?;
    let now = shared.now();
    if at <= now {
        return Err(GraphError::invalid_request(format!(
            "Subscription expiration date '{text}' must be in the future."
        )));
    }
    let max = now + time::Duration::minutes(MAX_LIFETIME_MINUTES);
    if at > max {
        return Err(GraphError::invalid_request(format!(
            "Subscription expiration can only be {MAX_LIFETIME_MINUTES} minutes in the future for this resource (latest allowed: {}).",
            graph_time(max)
        )));
    }
    Ok(at)
}

/// The definition id in `print/taskDefinitions/{id}/tasks` (leading slash and case tolerated).
fn definition_of(resource: &str) -> Option<String> {
    let trimmed = resource.trim_start_matches('/');
    let parts: Vec<&str> = trimmed.split('/').collect();
    match parts.as_slice() {
        [print, defs, id, tasks]
            if print.eq_ignore_ascii_case("print")
                && defs.eq_ignore_ascii_case("taskDefinitions")
                && tasks.eq_ignore_ascii_case("tasks")
                && !id.is_empty() =>
        {
            Some((*id).to_owned())
        }
        _ => None,
    }
}

/// The validation handshake against one URL.
async fn handshake(shared: &Shared, field: &str, url: &url::Url) -> Result<(), GraphError> {
    let token = format!(
        "Validation: Testing client application reachability for subscription Request-Id: {}",
        uuid::Uuid::new_v4()
    );
    let mut target = url.clone();
    target
        .query_pairs_mut()
        .append_pair("validationToken", &token);
    let fail = |why: String| {
        GraphError::new(
            axum::http::StatusCode::BAD_REQUEST,
            "ValidationError",
            format!(
                "Subscription validation request failed for {field} '{url}': {why}. The endpoint must answer 200 OK within 10 seconds with the decoded validationToken as text/plain."
            ),
        )
    };
    let response = shared
        .http
        .post(target)
        .header("Content-Type", "text/plain; charset=utf-8")
        .timeout(shared.validation_timeout)
        .send()
        .await
        .map_err(|e| fail(format!("request failed ({e})")))?;
    if response.status() != reqwest::StatusCode::OK {
        return Err(fail(format!("answered {}", response.status())));
    }
    let text_plain = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().starts_with("text/plain"));
    if !text_plain {
        return Err(fail("the answer is not text/plain".to_owned()));
    }
    let body = response
        .text()
        .await
        .map_err(|e| fail(format!("reading the answer failed ({e})")))?;
    if body != token {
        return Err(fail(
            "the answer does not exactly match the decoded validationToken".to_owned(),
        ));
    }
    Ok(())
}

/// `POST /subscriptions`.
pub(crate) async fn create(
    shared: &Arc<Shared>,
    app_id: &str,
    body: &Value,
) -> Result<Value, GraphError> {
    let Some(object) = body.as_object() else {
        return Err(GraphError::invalid_request(
            "The body must be a subscription object.",
        ));
    };
    const KNOWN: &[&str] = &[
        "changeType",
        "notificationUrl",
        "lifecycleNotificationUrl",
        "resource",
        "expirationDateTime",
        "clientState",
        "latestSupportedTlsVersion",
        "includeResourceData",
        "@odata.type",
    ];
    if let Some(key) = object.keys().find(|k| !KNOWN.contains(&k.as_str())) {
        return Err(GraphError::invalid_request(format!(
            "'{key}' is not supported on a print task subscription."
        )));
    }
    let resource = body["resource"].as_str().unwrap_or_default().to_owned();
    let Some(definition_id) = definition_of(&resource) else {
        return Err(GraphError::invalid_request(format!(
            "resource '{resource}' is not supported: use print/taskDefinitions/{{id}}/tasks."
        )));
    };
    if body["includeResourceData"].as_bool() == Some(true) {
        return Err(GraphError::invalid_request(
            "Rich notifications (includeResourceData) are not available for print resources.",
        ));
    }
    if body["changeType"].as_str() != Some("created") {
        return Err(GraphError::invalid_request(
            "changeType must be 'created' for print/taskDefinitions/{id}/tasks.",
        ));
    }
    let Some(client_state) = body["clientState"].as_str().filter(|s| !s.is_empty()) else {
        return Err(GraphError::invalid_request("clientState is required."));
    };
    if client_state.chars().count() > 128 {
        return Err(GraphError::invalid_request(
            "clientState can be at most 128 characters.",
        ));
    }
    let notification_url = check_url(
        "notificationUrl",
        body["notificationUrl"].as_str().unwrap_or_default(),
    )?;
    let lifecycle_url = match body.get("lifecycleNotificationUrl").and_then(Value::as_str) {
        Some(raw) => Some(check_url("lifecycleNotificationUrl", raw)?),
        None => None,
    };
    let expiration = check_expiry(shared, body.get("expirationDateTime"))?;
    {
        let world = shared.world();
        if world
            .definitions
            .get(&definition_id)
            .is_none_or(|d| d.app_id != app_id)
        {
            return Err(GraphError::not_found(format!(
                "The task definition '{definition_id}' of resource '{resource}' was not found for this app."
            )));
        }
    }
    handshake(shared, "notificationUrl", &notification_url).await?;
    if let Some(lifecycle) = &lifecycle_url {
        handshake(shared, "lifecycleNotificationUrl", lifecycle).await?;
    }
    let subscription = Subscription {
        id: uuid::Uuid::new_v4().to_string(),
        resource,
        definition_id,
        change_type: "created".to_owned(),
        client_state: client_state.to_owned(),
        notification_url: notification_url.to_string(),
        lifecycle_url: lifecycle_url.map(|u| u.to_string()),
        expiration,
        app_id: app_id.to_owned(),
    };
    let v = subscription_json(&shared.root(), &subscription, app_id);
    shared
        .world()
        .subscriptions
        .insert(subscription.id.clone(), subscription);
    Ok(v)
}

fn own(shared: &Shared, app_id: &str, id: &str) -> Result<Subscription, GraphError> {
    purge_expired(shared)
        .into_iter()
        .find(|s| s.id == id && s.app_id == app_id)
        .ok_or_else(|| {
            GraphError::not_found(format!(
                "The subscription '{id}' was not found (it may have expired)."
            ))
        })
}

/// `GET /subscriptions`.
pub(crate) fn list(shared: &Shared, app_id: &str) -> Value {
    let root = shared.root();
    let value: Vec<Value> = purge_expired(shared)
        .iter()
        .filter(|s| s.app_id == app_id)
        .map(|s| subscription_json(&root, s, app_id))
        .collect();
    json!({"@odata.context": format!("{root}/$metadata#subscriptions"), "value": value})
}

/// `GET /subscriptions/{id}`.
pub(crate) fn get(shared: &Shared, app_id: &str, id: &str) -> Result<Value, GraphError> {
    Ok(subscription_json(
        &shared.root(),
        &own(shared, app_id, id)?,
        app_id,
    ))
}

/// `PATCH /subscriptions/{id}`: renew.
pub(crate) fn renew(
    shared: &Shared,
    app_id: &str,
    id: &str,
    body: &Value,
) -> Result<Value, GraphError> {
    own(shared, app_id, id)?;
    let Some(object) = body.as_object() else {
        return Err(GraphError::invalid_request(
            "The body must be a subscription object.",
        ));
    };
    if let Some(key) = object.keys().find(|k| *k != "expirationDateTime") {
        return Err(GraphError::invalid_request(format!(
            "'{key}' cannot be updated; only expirationDateTime can (delete and recreate to change the rest)."
        )));
    }
    let expiration = check_expiry(shared, object.get("expirationDateTime"))?;
    let mut world = shared.world();
    let Some(s) = world.subscriptions.get_mut(id) else {
        return Err(GraphError::not_found(format!(
            "The subscription '{id}' was not found."
        )));
    };
    s.expiration = expiration;
    Ok(subscription_json(&shared.root(), s, app_id))
}

/// `DELETE /subscriptions/{id}`.
pub(crate) fn delete(shared: &Shared, app_id: &str, id: &str) -> Result<(), GraphError> {
    own(shared, app_id, id)?;
    shared.world().subscriptions.remove(id);
    Ok(())
}

/// `POST /subscriptions/{id}/reauthorize`.
pub(crate) fn reauthorize(shared: &Shared, app_id: &str, id: &str) -> Result<(), GraphError> {
    own(shared, app_id, id).map(|_| ())
}

/// Sends a change notification for a new task to every live matching subscription (in the background).
pub(crate) fn notify_task_created(shared: &Arc<Shared>, created: &TaskCreated) {
    let root = shared.root();
    for subscription in purge_expired(shared) {
        if !subscription
            .definition_id
            .eq_ignore_ascii_case(&created.definition_id)
        {
            continue;
        }
        let resource = format!(
            "print/taskDefinitions/{}/tasks/{}",
            created.definition_id, created.task_id
        );
        let mut resource_data = json!({
            "@odata.type": "#microsoft.graph.printTask",
            "@odata.id": resource,
            "id": created.task_id,
        });
        if shared.notification_parent_url {
            resource_data["parentUrl"] = json!(super::state::World::job_url(
                &root,
                &created.printer_id,
                &created.job_id
            ));
        }
        let payload = json!({"value": [{
            "subscriptionId": subscription.id,
            "subscriptionExpirationDateTime": graph_time(subscription.expiration),
            "changeType": "created",
            "clientState": subscription.client_state,
            "tenantId": shared.tenant_id,
            "resource": resource,
            "resourceData": resource_data,
        }]});
        dispatch(
            shared,
            &subscription,
            "created",
            Some(created.task_id.clone()),
            subscription.notification_url.clone(),
            payload,
        );
    }
}

/// Sends a `reauthorizationRequired` lifecycle notification for a subscription.
pub(crate) fn send_lifecycle(shared: &Arc<Shared>, id: &str) -> Result<(), String> {
    let Some(subscription) = purge_expired(shared).into_iter().find(|s| s.id == id) else {
        return Err(format!("no live subscription '{id}'"));
    };
    let Some(url) = subscription.lifecycle_url.clone() else {
        return Err(format!(
            "subscription '{id}' has no lifecycleNotificationUrl"
        ));
    };
    let payload = json!({"value": [{
        "subscriptionId": subscription.id,
        "subscriptionExpirationDateTime": graph_time(subscription.expiration),
        "tenantId": shared.tenant_id,
        "clientState": subscription.client_state,
        "lifecycleEvent": "reauthorizationRequired",
    }]});
    dispatch(
        shared,
        &subscription,
        "reauthorizationRequired",
        None,
        url,
        payload,
    );
    Ok(())
}

fn dispatch(
    shared: &Arc<Shared>,
    subscription: &Subscription,
    kind: &str,
    task_id: Option<String>,
    url: String,
    payload: Value,
) {
    let decision = shared.fault_engine().decide_notification();
    let record = DeliveryRecord {
        subscription_id: subscription.id.clone(),
        kind: kind.to_owned(),
        task_id,
        url,
        attempt: 0,
        status: None,
        error: None,
        elapsed_ms: 0,
        elapsed_us: 0,
        slow: false,
        outcome: "dropped".to_owned(),
        duplicate: false,
    };
    if decision.drop {
        shared.world().deliveries.push(record);
        return;
    }
    let shared = Arc::clone(shared);
    tokio::spawn(async move {
        if !decision.delay.is_zero() {
            tokio::time::sleep(decision.delay).await;
        }
        deliver(&shared, &record, &payload).await;
        if decision.duplicate {
            let copy = DeliveryRecord {
                duplicate: true,
                ..record
            };
            deliver(&shared, &copy, &payload).await;
        }
    });
}

async fn deliver(shared: &Shared, template: &DeliveryRecord, payload: &Value) {
    let mut delay = shared.notification_retry_delay;
    for attempt in 1..=shared.notification_attempts.max(1) {
        let started = Instant::now();
        let result = shared
            .http
            .post(&template.url)
            .json(payload)
            .timeout(shared.notification_timeout)
            .send()
            .await;
        let elapsed = started.elapsed();
        let (status, error) = match &result {
            Ok(r) => (Some(r.status().as_u16()), None),
            Err(e) if e.is_timeout() => (
                None,
                Some(format!(
                    "no answer within {:?}",
                    shared.notification_timeout
                )),
            ),
            Err(e) => (None, Some(e.to_string())),
        };
        let delivered = status.is_some_and(|s| (200..300).contains(&s));
        shared.world().deliveries.push(DeliveryRecord {
            attempt,
            status,
            error,
            elapsed_ms: u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
            elapsed_us: u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX),
            slow: elapsed > Duration::from_millis(2900),
            outcome: if delivered { "delivered" } else { "failed" }.to_owned(),
            ..template.clone()
        });
        if delivered {
            return;
        }
        tokio::time::sleep(delay).await;
        delay *= 2;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_resource_is_recognised_with_a_leading_slash_and_any_case() {
        assert_eq!(
            definition_of("/print/taskdefinitions/abc/tasks").as_deref(),
            Some("abc")
        );
        assert_eq!(
            definition_of("print/taskDefinitions/abc/tasks").as_deref(),
            Some("abc")
        );
        assert_eq!(definition_of("print/printers/abc/jobs"), None);
    }

    #[test]
    fn plain_http_is_refused_except_on_loopback() {
        assert!(check_url("notificationUrl", "http://example.org/n").is_err());
        assert!(check_url("notificationUrl", "http://127.0.0.1:9/n").is_ok());
        assert!(check_url("notificationUrl", "https://example.org/n").is_ok());
    }
}
