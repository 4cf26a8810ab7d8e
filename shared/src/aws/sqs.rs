//! SQS: sending an event back to a function's own queue to look at it again later.

use aws_sdk_sqs::Client;

use crate::error::{aws, Result};

/// SQS's longest delivery delay.
pub const MAX_DELAY_SECONDS: u32 = 900;

#[derive(Clone, Debug)]
pub struct Queue {
    client: Client,
    url: String,
}

impl Queue {
    pub fn new(client: Client, url: impl Into<String>) -> Self {
        Queue {
            client,
            url: url.into(),
        }
    }

    /// Sends `body`, delivered after `delay_seconds` (capped at SQS's 900).
    pub async fn send_later(&self, body: &str, delay_seconds: u32) -> Result<()> {
        self.client
            .send_message()
            .queue_url(&self.url)
            .message_body(body)
            .delay_seconds(delay_seconds.min(MAX_DELAY_SECONDS) as i32)
            .send()
            .await
            .map_err(|e| aws("sqs", "SendMessage", e))?;
        Ok(())
    }

    /// Sends `bodies` now, ten per SendMessageBatch (SQS's limit). A batch call that
    /// fails, or any entry SQS refuses, fails the whole send: the caller's event is
    /// retried, and a body sent twice is harmless to its receiver.
    pub async fn send_all(&self, bodies: &[String]) -> Result<()> {
        for chunk in bodies.chunks(10) {
            let mut req = self.client.send_message_batch().queue_url(&self.url);
            for (i, body) in chunk.iter().enumerate() {
                req = req.entries(
                    aws_sdk_sqs::types::SendMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .message_body(body)
                        .build()
                        .expect("id and body are set"),
                );
            }
            let out = req
                .send()
                .await
                .map_err(|e| aws("sqs", "SendMessageBatch", e))?;
            if let Some(f) = out.failed().first() {
                return Err(crate::Error::Aws {
                    service: "sqs",
                    operation: "SendMessageBatch",
                    code: f.code().to_string(),
                    message: format!(
                        "{} of {} messages refused: {}",
                        out.failed().len(),
                        chunk.len(),
                        f.message().unwrap_or_default()
                    ),
                    retryable: !f.sender_fault(),
                });
            }
        }
        Ok(())
    }
}
