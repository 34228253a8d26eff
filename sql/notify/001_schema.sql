-- The notify schema: owned by backends/notify and read by nobody else.
comment on schema notify is 'email, SMS, push, webhooks, preferences, delivery log';
