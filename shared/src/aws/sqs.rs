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
}
