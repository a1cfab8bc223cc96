//! Persistence for self-healing: a Diesel store for healing events, learned patterns, health checks,
//! call sites and notifications (SQLite embedded by default, PostgreSQL for fleets).
//!
//! This crate is being built; the runtime's in-memory store is used until it lands.
