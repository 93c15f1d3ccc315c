//! The supervisor keeps what the plan started running: a small monitor process per
//! container holds its pipes, writes its logs, records its exit, and applies its
//! restart policy with backoff.
pub mod backoff;
pub mod logs;
