//! Notifications: one SNS message per action, skip or failure. The body is the AWS chat
//! integrations' custom-notification JSON, so a chat channel subscribed to the topic
//! renders it; the same body carries the structured record for machines, and message
//! attributes let subscribers filter without parsing.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{json, Value};

/// What happened to one planned action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The action was carried out.
    Done,
    /// An earlier delivery (or someone else) already did it; nothing changed now.
    AlreadyDone,
    /// Dry run: the action would have been carried out.
    Planned,
    /// Decided not to act, with a reason.
    Skipped,
    /// Carried out, but something needs a person's attention.
    Warning,
    Failed,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Done => "done",
            Outcome::AlreadyDone => "already_done",
            Outcome::Planned => "planned",
            Outcome::Skipped => "skipped",
            Outcome::Warning => "warning",
            Outcome::Failed => "failed",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Warning,
    High,
    Critical,
}

/// The machine-readable part of a notification.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Record {
    pub function: String,
    pub event_id: String,
    /// The kind of event that led here (`lifecycle-terminate`, `spot-interruption`, ...).
    pub kind: String,
    /// The action taken or considered (`drain`, `complete-lifecycle`, ...).
    pub action: String,
    pub outcome: Outcome,
    pub dry_run: bool,
    /// The resources named (flattened: `cluster`, `group`, `instance`, `task`).
    #[serde(flatten)]
    pub about: About,
    /// The account and Region acted on (the event's scope, see `tenancy`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Figures and facts specific to the action (durations, counts, reasons).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub details: BTreeMap<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Notification {
    pub severity: Severity,
    pub title: String,
    /// Markdown for people; anything that came from an event must pass through [`escape`].
    pub description: String,
    pub next_steps: Vec<String>,
    pub record: Record,
}

/// SNS subjects are ASCII, one line, at most 100 characters.
const SUBJECT_MAX: usize = 100;

impl Notification {
    pub fn subject(&self) -> String {
        let prefix = match self.severity {
            Severity::Critical => "[CRITICAL] ",
            Severity::High => "[HIGH] ",
            Severity::Warning => "[WARNING] ",
            Severity::Info => "",
        };
        let dry = if self.record.dry_run {
            "[dry run] "
        } else {
            ""
        };
        let text: String = format!("ecs-autopilot: {prefix}{dry}{}", self.title)
            .chars()
            .map(|c| {
                if c.is_ascii_graphic() || c == ' ' {
                    c
                } else {
                    '?'
                }
            })
            .collect();
        text.chars().take(SUBJECT_MAX).collect()
    }

    /// The custom-notification body (`version` 1.0, `source` custom).
    pub fn message(&self) -> Value {
        let r = &self.record;
        let a = &r.about;
        let mut context: BTreeMap<String, String> = BTreeMap::new();
        let record = serde_json::to_value(r).expect("a record serializes");
        if let Value::Object(fields) = record {
            for (k, v) in fields {
                let text = match v {
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                context.insert(k, text);
            }
        }
        let related: Vec<&String> = [&a.cluster, &a.group, &a.instance, &a.task]
            .into_iter()
            .flatten()
            .collect();
        let thread = a
            .instance
            .as_ref()
            .or(a.group.as_ref())
            .or(a.task.as_ref())
            .or(a.cluster.as_ref())
            .cloned()
            .unwrap_or_else(|| r.event_id.clone());
        json!({
            "version": "1.0",
            "source": "custom",
            "id": r.event_id,
            "content": {
                "textType": "client-markdown",
                "title": self.title,
                "description": self.description,
                "nextSteps": self.next_steps,
                "keywords": [r.function, r.action, r.outcome.as_str()],
            },
            "metadata": {
                "threadId": thread,
                "summary": self.title,
                "eventType": r.kind,
                "relatedResources": related,
                "additionalContext": context,
            }
        })
    }

    /// SNS message attributes subscribers can filter on (empty values are not allowed).
    pub fn attributes(&self) -> Vec<(&'static str, String)> {
        let r = &self.record;
        [
            ("function", Some(r.function.clone())),
            ("kind", Some(r.kind.clone())),
            ("action", Some(r.action.clone())),
            ("outcome", Some(r.outcome.as_str().to_string())),
            (
                "severity",
                Some(format!("{:?}", self.severity).to_lowercase()),
            ),
            ("cluster", r.about.cluster.clone()),
            ("account", r.account.clone()),
            ("region", r.region.clone()),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.filter(|v| !v.is_empty()).map(|v| (k, v)))
        .collect()
    }
}

/// Makes text from an event safe to embed in markdown: control characters dropped,
/// markup characters escaped, length capped. Attacker-controlled strings (process names,
/// command lines) pass through here before a person reads them.
pub fn escape(text: &str, max_chars: usize) -> String {
    let mut out = String::new();
    for (n, c) in text.chars().enumerate() {
        if n == max_chars {
            out.push('…');
            break;
        }
        match c {
            '\\' | '`' | '*' | '_' | '{' | '}' | '[' | ']' | '(' | ')' | '#' | '+' | '!' | '|'
            | '~' | '>' | '<' | '&' | '@' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// Limits of one notification. SNS takes 256 KB and chat shows far less; an event that
/// carries 10 KB process names or thousands of tasks must not push a message past either.
const TITLE_MAX: usize = 250;
const DESCRIPTION_MAX: usize = 4000;
const NEXT_STEPS_MAX: usize = 10;
const NEXT_STEP_MAX: usize = 500;
/// Identifiers: cluster, group, instance, task, event id, kind, action.
const FIELD_MAX: usize = 300;
/// Each string inside `details`, and all of `details` once serialized.
const DETAIL_MAX: usize = 1000;
const DETAILS_MAX_BYTES: usize = 32 * 1024;

/// Text the function wrote around already [`escape`]d values: markup is kept, but control
/// characters go (newlines too unless `multiline`) and the length is capped.
pub(crate) fn clip(text: &str, max_chars: usize, multiline: bool) -> String {
    let mut out = String::new();
    for (n, c) in text.chars().enumerate() {
        if n == max_chars {
            out.push('…');
            break;
        }
        out.push(match c {
            '\n' if multiline => c,
            c if c.is_control() => ' ',
            c => c,
        });
    }
    out
}

fn clip_value(v: Value) -> Value {
    match v {
        Value::String(s) => Value::String(clip(&s, DETAIL_MAX, true)),
        Value::Array(items) => Value::Array(items.into_iter().map(clip_value).collect()),
        Value::Object(fields) => Value::Object(
            fields
                .into_iter()
                .map(|(k, v)| (clip(&k, 100, false), clip_value(v)))
                .collect(),
        ),
        other => other,
    }
}

/// The last line of defence before SNS and the logs: every field capped and free of
/// control characters, whatever an event put into it. Markdown escaping of event text is
/// the job of whoever formats it ([`escape`]); this only bounds and flattens.
pub fn bounded(mut n: Notification) -> Notification {
    let field = |s: &mut String| *s = clip(s, FIELD_MAX, false);
    let opt = |s: &mut Option<String>| {
        if let Some(s) = s {
            *s = clip(s, FIELD_MAX, false)
        }
    };
    n.title = clip(&n.title, TITLE_MAX, false);
    n.description = clip(&n.description, DESCRIPTION_MAX, true);
    n.next_steps.truncate(NEXT_STEPS_MAX);
    for step in &mut n.next_steps {
        *step = clip(step, NEXT_STEP_MAX, true);
    }
    let r = &mut n.record;
    field(&mut r.event_id);
    field(&mut r.kind);
    field(&mut r.action);
    let a = &mut r.about;
    for resource in [&mut a.cluster, &mut a.group, &mut a.instance, &mut a.task] {
        opt(resource);
    }
    let details = std::mem::take(&mut r.details);
    r.details = details
        .into_iter()
        .map(|(k, v)| (clip(&k, 100, false), clip_value(v)))
        .collect();
    let size = serde_json::to_string(&r.details).map_or(0, |s| s.len());
    if size > DETAILS_MAX_BYTES {
        r.details = BTreeMap::from([
            ("truncated".to_string(), Value::Bool(true)),
            ("bytes".to_string(), Value::from(size)),
        ]);
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Notification {
        Notification {
            severity: Severity::Warning,
            title: "Drain timed out on i-0abc ✓".into(),
            description: "text".into(),
            next_steps: vec!["look".into()],
            record: Record {
                function: "instance-drain".into(),
                event_id: "ev-1".into(),
                kind: "lifecycle-terminate".into(),
                action: "complete-lifecycle".into(),
                outcome: Outcome::Warning,
                dry_run: true,
                about: About {
                    cluster: Some("prod".into()),
                    instance: Some("i-0abc".into()),
                    ..About::default()
                },
                account: Some("111122223333".into()),
                region: Some("eu-west-1".into()),
                details: BTreeMap::from([("tasks_moved".into(), json!(3))]),
            },
        }
    }

    #[test]
    fn message_follows_the_chat_custom_notification_format() {
        let m = sample().message();
        assert_eq!(m["version"], "1.0");
        assert_eq!(m["source"], "custom");
        assert_eq!(m["content"]["title"], "Drain timed out on i-0abc ✓");
        assert_eq!(m["content"]["textType"], "client-markdown");
        let ctx = &m["metadata"]["additionalContext"];
        assert_eq!(ctx["event_id"], "ev-1");
        assert_eq!(ctx["dry_run"], "true");
        assert_eq!(ctx["outcome"], "warning");
        assert_eq!(ctx["details"], r#"{"tasks_moved":3}"#);
        assert_eq!(m["metadata"]["threadId"], "i-0abc");
    }

    #[test]
    fn subject_is_short_ascii_and_says_dry_run() {
        let mut n = sample();
        let s = n.subject();
        assert!(s.is_ascii());
        assert!(s.contains("[WARNING] [dry run]"));
        n.title = "x".repeat(500);
        assert_eq!(n.subject().chars().count(), 100);
    }

    #[test]
    fn attributes_leave_out_empty_values() {
        let mut n = sample();
        n.record.about.cluster = None;
        let keys: Vec<_> = n.attributes().into_iter().map(|(k, _)| k).collect();
        assert_eq!(
            keys,
            ["function", "kind", "action", "outcome", "severity", "account", "region"]
        );
    }

    fn reporter() -> Reporter {
        let sns = aws_sdk_sns::Client::from_conf(
            aws_sdk_sns::Config::builder()
                .behavior_version(aws_sdk_sns::config::BehaviorVersion::latest())
                .build(),
        );
        crate::testing::reporter(sns, "guardduty-responder")
    }

    #[tokio::test]
    async fn notifications_name_the_scope_and_in_hub_mode_say_it_in_words() {
        let subject = Subject::default();
        let outside = reporter().notification(&subject, "a", Outcome::Done, Notice::info("t", "d"));
        assert_eq!(
            (outside.record.account, outside.description.as_str()),
            (None, "d")
        );
        let scope = |hub| crate::tenancy::Scope {
            account: Some("222233334444".into()),
            region: Some("eu-west-1".into()),
            member: hub,
            hub,
        };
        let single = crate::tenancy::within(scope(false), async {
            reporter().notification(&subject, "a", Outcome::Done, Notice::info("t", "d"))
        })
        .await;
        assert_eq!(single.description, "d");
        assert!(single
            .attributes()
            .contains(&("account", "222233334444".to_string())));
        let hub = crate::tenancy::within(scope(true), async {
            reporter().notification(&subject, "a", Outcome::Done, Notice::info("t", "d"))
        })
        .await;
        assert!(hub
            .description
            .ends_with("Account 222233334444, Region eu-west-1."));
        assert!(hub
            .attributes()
            .contains(&("region", "eu-west-1".to_string())));
        let ctx = &hub.message()["metadata"]["additionalContext"];
        assert_eq!(
            (ctx["account"].as_str(), ctx["region"].as_str()),
            (Some("222233334444"), Some("eu-west-1"))
        );
    }

    /// What an attacker controls in a GuardDuty finding (process names, command lines)
    /// or a crafted resource name: markup, HTML, mentions, terminal escapes, 10 KB.
    fn hostile() -> String {
        format!(
            "**x** [click](https://evil.example) <img src=x onerror=alert(1)> `rm -rf` @channel \u{1b}[31m\r\n\u{0}{}",
            "A".repeat(10_000)
        )
    }

    const MARKUP: &[char] = &[
        '\\', '`', '*', '_', '{', '}', '[', ']', '(', ')', '#', '+', '!', '|', '~', '>', '<', '&',
        '@',
    ];

    #[test]
    fn escaped_event_text_has_no_live_markup_or_control_characters_and_is_capped() {
        let out = escape(&hostile(), 200);
        assert!(out.chars().count() <= 2 * 200 + 1, "{}", out.len());
        assert!(out.ends_with('…'));
        assert!(!out.chars().any(char::is_control));
        let chars: Vec<char> = out.chars().collect();
        let mut i = 0;
        while i < chars.len() {
            if chars[i] == '\\' {
                assert!(MARKUP.contains(&chars[i + 1]), "stray backslash in {out}");
                i += 2;
                continue;
            }
            assert!(
                !MARKUP.contains(&chars[i]),
                "unescaped {:?} in {out}",
                chars[i]
            );
            i += 1;
        }
    }

    fn strings(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::String(s) => out.push(s.clone()),
            Value::Array(a) => a.iter().for_each(|v| strings(v, out)),
            Value::Object(o) => o.iter().for_each(|(k, v)| {
                out.push(k.clone());
                strings(v, out)
            }),
            _ => {}
        }
    }

    #[test]
    fn a_notification_built_from_hostile_event_fields_is_bounded_everywhere() {
        let text = hostile();
        let client = aws_sdk_sns::Client::from_conf(
            aws_sdk_sns::Config::builder()
                .behavior_version(aws_sdk_sns::config::BehaviorVersion::latest())
                .region(aws_sdk_sns::config::Region::new("us-east-1"))
                .build(),
        );
        let reporter = crate::testing::reporter(client, "guardduty-responder");
        let subject = Subject {
            event_id: text.clone(),
            kind: "guardduty-finding".into(),
            about: About {
                cluster: Some(text.clone()),
                group: Some(text.clone()),
                instance: Some(text.clone()),
                task: Some(text.clone()),
            },
        };
        // A function escapes event text it formats; the title and details carry it raw
        // here to show the reporter still bounds them.
        let notice = Notice::warning(
            format!("Stopped task running {text}"),
            format!(
                "Process `{}` ran.\n{}",
                escape(&text, 200),
                escape(&text, 200)
            ),
        )
        .detail("process", &text)
        .detail("processes", vec![text.clone(); 50])
        .next_step(text.clone());
        let n = reporter.notification(&subject, "stop-task", Outcome::Done, notice);

        assert!(n.title.chars().count() <= TITLE_MAX + 1);
        assert!(n.description.contains("\\<img"));
        assert!(!n.description.replace("\\<", "").contains('<'));
        let body = n.message();
        assert!(
            body.to_string().len() < 24 * 1024,
            "{}",
            body.to_string().len()
        );
        let mut all = vec![];
        strings(&body, &mut all);
        for s in &all {
            assert!(s.chars().count() <= DESCRIPTION_MAX + 1);
            assert!(!s.chars().any(|c| c.is_control() && c != '\n'), "{s:?}");
        }
        assert!(body["metadata"]["additionalContext"]["details"]
            .as_str()
            .is_some_and(|d| d.contains("truncated")));
        let subject_line = n.subject();
        assert!(subject_line.is_ascii() && subject_line.chars().count() <= SUBJECT_MAX);
        for (_, value) in n.attributes() {
            assert!(value.chars().count() <= FIELD_MAX + 1);
            assert!(!value.chars().any(char::is_control));
        }
    }

    #[test]
    fn bounding_leaves_an_ordinary_notification_unchanged() {
        assert_eq!(bounded(sample()), sample());
    }

    #[test]
    fn escape_neutralises_markup_and_control_characters_and_caps_length() {
        assert_eq!(escape("a*b`c\n<script>", 100), r"a\*b\`c \<script\>");
        assert_eq!(escape("abcdef", 3), "abc…");
    }
}

/// What a notification is about: the event that led here and the resources it names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Subject {
    pub event_id: String,
    pub kind: String,
    pub about: About,
}

impl Subject {
    /// About `event`, of `kind`, before any resource is known.
    pub fn of(event_id: impl Into<String>, kind: impl Into<String>) -> Subject {
        Subject {
            event_id: event_id.into(),
            kind: kind.into(),
            about: About::default(),
        }
    }

    /// This subject about `about`'s resources instead (the event's id and kind stay).
    pub fn narrowed(&self, about: &About) -> Subject {
        Subject {
            about: about.clone(),
            ..self.clone()
        }
    }
}

/// The resources a notification names; one type for every function's reports.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct About {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task: Option<String>,
}

impl About {
    pub fn cluster(cluster: impl Into<String>) -> Self {
        About {
            cluster: Some(cluster.into()),
            ..About::default()
        }
    }

    pub fn group(group: impl Into<String>) -> Self {
        About {
            group: Some(group.into()),
            ..About::default()
        }
    }
}

/// The human part of a decision, written by a function's pure `decide` step; the
/// outcome is filled in once the action has been tried.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Notice {
    pub severity: Severity,
    pub title: String,
    pub description: String,
    pub next_steps: Vec<String>,
    pub details: BTreeMap<String, Value>,
}

impl Notice {
    pub fn new(
        severity: Severity,
        title: impl Into<String>,
        description: impl Into<String>,
    ) -> Self {
        Notice {
            severity,
            title: title.into(),
            description: description.into(),
            next_steps: vec![],
            details: BTreeMap::new(),
        }
    }

    pub fn info(title: impl Into<String>, description: impl Into<String>) -> Self {
        Self::new(Severity::Info, title, description)
    }

    pub fn warning(title: impl Into<String>, description: impl Into<String>) -> Self {
        Self::new(Severity::Warning, title, description)
    }

    pub fn detail(mut self, key: &str, value: impl Serialize) -> Self {
        self.details.insert(
            key.to_string(),
            serde_json::to_value(value).unwrap_or(Value::Null),
        );
        self
    }

    pub fn next_step(mut self, step: impl Into<String>) -> Self {
        self.next_steps.push(step.into());
        self
    }
}

/// Sends notifications for one function: logs the decision, writes its metric line and
/// publishes it to the topic.
#[derive(Clone, Debug)]
pub struct Reporter {
    topic: crate::aws::sns::Topic,
    function: &'static str,
    dry_run: bool,
}

impl Reporter {
    pub fn new(topic: crate::aws::sns::Topic, function: &'static str, dry_run: bool) -> Self {
        Reporter {
            topic,
            function,
            dry_run,
        }
    }

    pub fn dry_run(&self) -> bool {
        self.dry_run
    }

    /// Publishes a notification. One that can't be sent (SNS or KMS down, a throttle past
    /// the retries) is logged and counted (metric action `notify`, outcome `failed`), and
    /// that is all: the work it reports goes on, is not repeated for it, and the event
    /// does not fail (nor reach a dead-letter queue) because a chat message didn't go out.
    pub async fn report(&self, subject: &Subject, action: &str, outcome: Outcome, notice: Notice) {
        let n = self.notification(subject, action, outcome, notice);
        if let Err(e) = self.topic.publish(&n).await {
            tracing::error!(
                event_id = %subject.event_id,
                action,
                outcome = outcome.as_str(),
                error = %e,
                retryable = e.is_retryable(),
                "notification not sent; the work goes on"
            );
            crate::metrics::emit(self.function, "notify", "failed");
        }
    }

    /// The notification [`Reporter::report`] publishes (and logs), within [`bounded`]'s
    /// limits whatever the event carried.
    pub fn notification(
        &self,
        subject: &Subject,
        action: &str,
        outcome: Outcome,
        notice: Notice,
    ) -> Notification {
        let scope = crate::tenancy::current().unwrap_or_default();
        let description = match (&scope.account, &scope.region, scope.hub) {
            (Some(account), Some(region), true) => format!(
                "{}\n\nAccount {}, Region {}.",
                notice.description,
                escape(account, 20),
                escape(region, 30)
            ),
            _ => notice.description,
        };
        bounded(Notification {
            severity: notice.severity,
            title: notice.title,
            description,
            next_steps: notice.next_steps,
            record: Record {
                function: self.function.to_string(),
                event_id: subject.event_id.clone(),
                kind: subject.kind.clone(),
                action: action.to_string(),
                outcome,
                dry_run: self.dry_run,
                about: subject.about.clone(),
                account: scope.account,
                region: scope.region,
                details: notice.details,
            },
        })
    }

    /// Reports an action that failed; the error itself still fails the event.
    pub async fn failure(&self, subject: &Subject, action: &str, error: &crate::Error) {
        let notice = Notice::warning(
            format!("{action} failed"),
            format!(
                "`{action}` failed: {}. The event will be retried and, if it keeps failing, dead-lettered.",
                escape(&error.to_string(), 500)
            ),
        )
        .detail("error", error.to_string())
        .detail("retryable", error.is_retryable());
        self.report(subject, action, Outcome::Failed, notice).await;
    }

    /// Passes `result` on, reporting it first if it failed (as [`Reporter::failure`]):
    /// `reporter.failing(&subject, "observe", observe(..).await).await?`.
    pub async fn failing<T>(
        &self,
        subject: &Subject,
        action: &str,
        result: crate::Result<T>,
    ) -> crate::Result<T> {
        if let Err(e) = &result {
            self.failure(subject, action, e).await;
        }
        result
    }
}
