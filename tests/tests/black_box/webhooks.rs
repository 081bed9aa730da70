//! Webhooks as an app receives them (the event tests follow once the event sources are wired).

use std::time::Duration;

use herald_tests::process::HeraldProcess;

async fn refuses(test: &str, hooks: &str, needle: &str) {
    let mut process = HeraldProcess::spawn(
        test,
        "hub",
        &[
            "hub",
            "--http-listen",
            "127.0.0.1:0",
            "--link-listen",
            "127.0.0.1:0",
        ],
        &[
            ("HERALD_CLUSTER__KEY", "test-cluster-key-0123456789"),
            ("HERALD_APP__ID", "1"),
            ("HERALD_APP__KEY", "k"),
            ("HERALD_APP__SECRET", "s"),
            ("HERALD_APP__WEBHOOKS", hooks),
        ],
    );
    assert_eq!(
        process.exit_code(Duration::from_secs(20)).await,
        Some(64),
        "{}",
        process.stderr()
    );
    let stderr = process.stderr();
    assert!(
        stderr.contains(needle),
        "stderr does not say {needle:?}:\n{stderr}"
    );
}

#[tokio::test]
async fn bad_webhook_config_stops_the_hub_naming_the_key() {
    let test = "bad_webhook_config_stops_the_hub_naming_the_key";
    refuses(
        test,
        r#"[{"event_types": ["channel_occupied"]}]"#,
        "app.webhooks[0].url (from HERALD_APP__WEBHOOKS): is required",
    )
    .await;
    refuses(
        test,
        r#"[{"url": "https://example.com/hooks", "event_types": ["channel_ocupied"]}]"#,
        "app.webhooks[0].event_types (from HERALD_APP__WEBHOOKS): \"channel_ocupied\" is not a webhook event type",
    )
    .await;
    refuses(
        test,
        r#"[{"url": "ftp://example.com/hooks"}]"#,
        "app.webhooks[0].url (from HERALD_APP__WEBHOOKS): \"ftp://example.com/hooks\" is not an http:// or https:// URL",
    )
    .await;
}
