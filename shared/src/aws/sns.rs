//! SNS: publishing notifications. Each publish also logs the decision and writes its
//! metric line, so the three never drift apart.

use aws_sdk_sns::types::MessageAttributeValue;
use aws_sdk_sns::Client;

use crate::error::{aws, Result};
use crate::notify::Notification;

#[derive(Clone, Debug)]
pub struct Topic {
    client: Client,
    arn: String,
}

impl Topic {
    pub fn new(client: Client, arn: impl Into<String>) -> Self {
        Topic {
            client,
            arn: arn.into(),
        }
    }

    pub async fn publish(&self, n: &Notification) -> Result<()> {
        let r = &n.record;
        tracing::info!(
            event_id = %r.event_id,
            kind = %r.kind,
            action = %r.action,
            outcome = r.outcome.as_str(),
            dry_run = r.dry_run,
            cluster = r.about.cluster.as_deref().unwrap_or(""),
            group = r.about.group.as_deref().unwrap_or(""),
            instance = r.about.instance.as_deref().unwrap_or(""),
            task = r.about.task.as_deref().unwrap_or(""),
            details = %serde_json::to_string(&r.details).unwrap_or_default(),
            "{}", n.title
        );
        crate::metrics::emit(&r.function, &r.action, r.outcome.as_str());
        let mut req = self
            .client
            .publish()
            .topic_arn(&self.arn)
            .subject(n.subject())
            .message(n.message().to_string());
        for (name, value) in n.attributes() {
            let attr = MessageAttributeValue::builder()
                .data_type("String")
                .string_value(value)
                .build()
                .expect("data type is set");
            req = req.message_attributes(name, attr);
        }
        req.send().await.map_err(|e| aws("sns", "Publish", e))?;
        Ok(())
    }
}
