//! Durable state in SQLite: held jobs, the action queue, intake dedupe, subscription state, audit log.
