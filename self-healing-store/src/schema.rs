//! The schema, shared by both backends. It mirrors `migrations/{sqlite,postgres}`; the test
//! `schema_matches_migrations` compares it with the tables the migrations create on each backend.

diesel::table! {
    /// One failing call (or a folded family of them) and what healing did. Stored keyed by
    /// `(time_us, id)` on PostgreSQL (the rowid `id` on SQLite): look events up by both.
    healing_events (id) {
        id -> BigInt,
        time_us -> BigInt,
        instance -> Text,
        source -> Text,
        category -> Text,
        fingerprint -> Text,
        class -> Text,
        message -> Text,
        severity -> Text,
        strategy -> Nullable<Text>,
        outcome -> Text,
        attempts -> Integer,
        duration_us -> BigInt,
        count -> BigInt,
        analyzer -> Text,
        diagnosis -> Text,
        call_key -> Nullable<Text>,
    }
}

diesel::table! {
    /// Learned statistics per fingerprint × strategy, bumped with atomic increments.
    healing_patterns (fingerprint, strategy) {
        fingerprint -> Text,
        strategy -> Text,
        tried -> BigInt,
        healed -> BigInt,
        failed -> BigInt,
        total_duration_us -> BigInt,
        first_seen_us -> BigInt,
        last_seen_us -> BigInt,
        ai_diagnosis -> Nullable<Text>,
    }
}

diesel::table! {
    /// Results of periodic health checks.
    health_checks (id) {
        id -> BigInt,
        time_us -> BigInt,
        instance -> Text,
        name -> Text,
        status -> Text,
        latency_us -> BigInt,
        message -> Text,
        details -> Nullable<Text>,
    }
}

diesel::table! {
    /// Every wrapped function: the integration checklist.
    call_sites (source, module_path, function) {
        source -> Text,
        module_path -> Text,
        function -> Text,
        category -> Text,
        file -> Text,
        line -> Integer,
        options -> Text,
        instance -> Text,
        first_seen_us -> BigInt,
        last_seen_us -> BigInt,
    }
}

diesel::table! {
    /// Notifications sent (or throttled, or failed) to admins.
    notifications (id) {
        id -> BigInt,
        time_us -> BigInt,
        instance -> Text,
        channel -> Text,
        severity -> Text,
        source -> Nullable<Text>,
        fingerprint -> Nullable<Text>,
        title -> Text,
        body -> Text,
        status -> Text,
        error -> Nullable<Text>,
    }
}

diesel::table! {
    /// Ids of committed writer batches, so a retried batch is never written twice.
    store_batches (batch_id) {
        batch_id -> Text,
        time_us -> BigInt,
        records -> BigInt,
    }
}

diesel::table! {
    /// The fleet's circuit news: circuit changes of each instance and commands to all of them.
    circuit_notices (id) {
        id -> BigInt,
        time_us -> BigInt,
        instance -> Text,
        source -> Text,
        kind -> Text,
        state -> Nullable<Text>,
        held_open -> Bool,
        command -> Nullable<Text>,
        requested_by -> Nullable<Text>,
    }
}

diesel::table! {
    /// What people decided about a failure family: resolved or ignored, when, by whom.
    failure_families (fingerprint) {
        fingerprint -> Text,
        status -> Text,
        resolved_at_us -> Nullable<BigInt>,
        changed_by -> Text,
        changed_us -> BigInt,
    }
}

diesel::table! {
    /// The outbox of `queue_for_later` sites: one queued call per key, replayed until delivered
    /// or given up.
    outbox (id) {
        id -> BigInt,
        key -> Text,
        source -> Text,
        payload -> Text,
        status -> Text,
        attempts -> Integer,
        next_attempt_at_us -> BigInt,
        created_at_us -> BigInt,
        updated_at_us -> BigInt,
        last_error -> Nullable<Text>,
    }
}

diesel::table! {
    /// Which events of one committed batch share a fingerprint, source, category, outcome and
    /// severity: `entries` lists them as space-separated `time_us:id` pairs.
    event_postings (id) {
        id -> BigInt,
        fingerprint -> Text,
        source -> Text,
        category -> Text,
        outcome -> Text,
        severity -> Text,
        min_time_us -> BigInt,
        max_time_us -> BigInt,
        last_id -> BigInt,
        events -> BigInt,
        calls -> BigInt,
        entries -> Text,
    }
}

diesel::allow_tables_to_appear_in_same_query!(
    healing_events,
    event_postings,
    healing_patterns,
    health_checks,
    call_sites,
    notifications,
    store_batches,
    circuit_notices,
    failure_families,
    outbox,
);
