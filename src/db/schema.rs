//! The one schema for both backends (portable types only). Kept in step with
//! `migrations/{sqlite,postgres}` by hand; the story tests catch drift.

diesel::table! {
    data_keys (id) {
        id -> Integer,
        wrapped -> Binary,
        created_at -> Timestamp,
    }
}

diesel::table! {
    patients (fhir_id) {
        fhir_id -> Text,
        name_enc -> Binary,
        given_enc -> Nullable<Binary>,
        phone_enc -> Nullable<Binary>,
        email_enc -> Nullable<Binary>,
        phone_index -> Nullable<Text>,
        email_index -> Nullable<Text>,
        language -> Nullable<Text>,
        timezone -> Nullable<Text>,
        key_id -> Integer,
        updated_at -> Timestamp,
        region -> Nullable<Text>,
        alt_phone_enc -> Nullable<Binary>,
        alt_phone_index -> Nullable<Text>,
    }
}

diesel::table! {
    tracked_resources (resource_type, fhir_id) {
        resource_type -> Text,
        fhir_id -> Text,
        version_id -> Nullable<Text>,
        status -> Text,
        patient_fhir_id -> Text,
        timezone -> Nullable<Text>,
        body_enc -> Binary,
        key_id -> Integer,
        updated_at -> Timestamp,
        last_updated -> Nullable<Timestamp>,
    }
}

diesel::table! {
    consents (id) {
        id -> Text,
        patient_fhir_id -> Text,
        channel -> Text,
        purpose -> Nullable<Text>,
        address_index -> Text,
        decision -> Text,
        source -> Text,
        recorded_at -> Timestamp,
        valid_until -> Nullable<Timestamp>,
        resource_enc -> Binary,
        key_id -> Integer,
        stated_at -> Nullable<Timestamp>,
        future_dated -> Bool,
        consent_id -> Text,
        part -> Integer,
        categories -> Nullable<Text>,
    }
}

diesel::table! {
    inbound_messages (dedupe_key) {
        dedupe_key -> Text,
        provider -> Text,
        message_ref -> Text,
        patient_fhir_id -> Nullable<Text>,
        reading -> Text,
        body_enc -> Nullable<Binary>,
        key_id -> Nullable<Integer>,
        received_at -> Timestamp,
        due_by -> Nullable<Timestamp>,
        handled_at -> Nullable<Timestamp>,
        handled_by -> Nullable<Text>,
    }
}

diesel::table! {
    outbox (id) {
        id -> Text,
        dedupe_key -> Text,
        patient_fhir_id -> Text,
        kind -> Text,
        purpose -> Text,
        about -> Text,
        due_at -> Timestamp,
        expires_at -> Nullable<Timestamp>,
        state -> Text,
        attempts -> Integer,
        lease_owner -> Nullable<Text>,
        lease_until -> Nullable<Timestamp>,
        channel -> Nullable<Text>,
        reason -> Nullable<Text>,
        provider_ref -> Nullable<Text>,
        body_enc -> Nullable<Binary>,
        key_id -> Nullable<Integer>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        first_claimed_at -> Nullable<Timestamp>,
        sent_at -> Nullable<Timestamp>,
        delivery_status -> Nullable<Text>,
        error_code -> Nullable<Text>,
        segments -> Nullable<Integer>,
    }
}

diesel::table! {
    audit_events (seq) {
        seq -> BigInt,
        id -> Text,
        recorded -> Timestamp,
        type_code -> Text,
        subtype_code -> Nullable<Text>,
        action -> Text,
        outcome -> Text,
        patient_ref -> Nullable<Text>,
        agent_who -> Nullable<Text>,
        entity_ref -> Nullable<Text>,
        resource -> Text,
        prev_hash -> Text,
        hash -> Text,
    }
}

diesel::table! {
    audit_head (id) {
        id -> Integer,
        seq -> BigInt,
        hash -> Text,
        prev_hash -> Nullable<Text>,
    }
}

diesel::table! {
    audit_verifications (id) {
        id -> Text,
        checked_at -> Timestamp,
        through_seq -> BigInt,
        through_hash -> Text,
        broken_seq -> Nullable<BigInt>,
        problem -> Nullable<Text>,
        duration_ms -> BigInt,
    }
}

diesel::table! {
    signing_keys (kid) {
        kid -> Text,
        alg -> Text,
        private_enc -> Binary,
        key_id -> Integer,
        public_jwk -> Text,
        created_at -> Timestamp,
        sign_from -> Timestamp,
        retired_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    ehr_subscriptions (id) {
        id -> Text,
        resource_type -> Text,
        style -> Text,
        ehr -> Text,
        remote_id -> Nullable<Text>,
        secret_enc -> Binary,
        key_id -> Integer,
        status -> Text,
        topic -> Nullable<Text>,
        last_event -> BigInt,
        last_seen_at -> Nullable<Timestamp>,
        heartbeat_secs -> Nullable<Integer>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    fhir_notifications (id) {
        id -> Text,
        subscription_id -> Text,
        received_at -> Timestamp,
        path -> Nullable<Text>,
        body_enc -> Binary,
        key_id -> Integer,
        state -> Text,
        attempts -> Integer,
        processed_at -> Nullable<Timestamp>,
        error -> Nullable<Text>,
    }
}

diesel::table! {
    poll_state (name) {
        name -> Text,
        checkpoint -> Nullable<Text>,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    leases (name) {
        name -> Text,
        holder -> Text,
        until_at -> Timestamp,
    }
}

diesel::table! {
    ehr_writes (id) {
        id -> Text,
        dedupe_key -> Text,
        kind -> Text,
        target -> Text,
        patient_fhir_id -> Text,
        inbound_key -> Nullable<Text>,
        state -> Text,
        attempts -> Integer,
        due_at -> Timestamp,
        created_at -> Timestamp,
        done_at -> Nullable<Timestamp>,
        remote_id -> Nullable<Text>,
        error -> Nullable<Text>,
    }
}

diesel::table! {
    smart_sessions (id_hash) {
        id_hash -> Text,
        phase -> Text,
        iss -> Text,
        secrets_enc -> Binary,
        key_id -> Integer,
        patient -> Nullable<Text>,
        encounter -> Nullable<Text>,
        fhir_user -> Nullable<Text>,
        need_banner -> Bool,
        style_url -> Nullable<Text>,
        scope -> Nullable<Text>,
        token_expires_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
        last_seen_at -> Timestamp,
    }
}

diesel::table! {
    staff_users (id) {
        id -> Text,
        name -> Text,
        role -> Text,
        password_hash -> Text,
        totp_secret_enc -> Binary,
        key_id -> Integer,
        failed_attempts -> Integer,
        locked_until -> Nullable<Timestamp>,
        last_totp_step -> Nullable<BigInt>,
        disabled -> Bool,
        created_at -> Timestamp,
    }
}

diesel::table! {
    staff_sessions (token_hash) {
        token_hash -> Text,
        user_id -> Text,
        csrf -> Text,
        created_at -> Timestamp,
        last_seen_at -> Timestamp,
    }
}

diesel::table! {
    staff_tokens (token_hash) {
        token_hash -> Text,
        user_id -> Text,
        created_at -> Timestamp,
        expires_at -> Timestamp,
    }
}

diesel::table! {
    break_glass (id) {
        id -> Text,
        user_id -> Text,
        patient_fhir_id -> Text,
        reason_enc -> Binary,
        key_id -> Integer,
        started_at -> Timestamp,
        ends_at -> Timestamp,
    }
}

diesel::table! {
    contact_codes (id) {
        id -> Text,
        patient_fhir_id -> Text,
        channel -> Text,
        address_enc -> Binary,
        address_index -> Text,
        key_id -> Integer,
        code_hash -> Text,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        attempts -> Integer,
        used_at -> Nullable<Timestamp>,
    }
}

diesel::joinable!(staff_sessions -> staff_users (user_id));
diesel::joinable!(staff_tokens -> staff_users (user_id));

diesel::allow_tables_to_appear_in_same_query!(
    data_keys,
    patients,
    tracked_resources,
    consents,
    outbox,
    audit_events,
    audit_head,
    staff_users,
    staff_sessions,
    staff_tokens,
    break_glass,
    contact_codes,
);
