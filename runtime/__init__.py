"""What a process runs on, beside the domain logic of common/: configuration, the bus
(RabbitMQ and in memory, with its middleware), logging and secret redaction, the status API
and its telemetry, alerts to the admin, and the snapshot archive. common/ never imports it."""
