//! The cache's serialized form is deliberate: the persistent store keeps one JSON
//! [`Entry`] per profile file and the translators' [`PassOutput`]s, and reads them back
//! after a restart. A change that fails this test changes that form: bump
//! [`CACHE_FORMAT`] (and the snapshot name with it), then accept the new snapshot. A
//! store of another version is discarded and rebuilt, never misread.

use std::collections::BTreeMap;

use monitor_engine::cache::{
    CACHE_FORMAT, ComponentRecord, Entry, ErrorAt, FileStat, MachineRecord, PassOutput, Translated, TranslatorId,
};
use monitor_sdk::helpers::DEFAULT_SERVICE;
use monitor_sdk::nagios::{Bundle, CheckCommand, Service};
use monitor_sdk::translator::{Registration, ServiceRef};

fn bundle() -> Bundle {
    Bundle::new().with(
        Service::new(DEFAULT_SERVICE)
            .host_name("h1.example.org")
            .service_description("NTP")
            .check_command(CheckCommand::new("mc-check-ntp").arg("0.5")),
    )
}

fn samples() -> String {
    let id = TranslatorId {
        component: "ntp".into(),
        version: "1.0.0".into(),
        origin: "builtin".into(),
    };
    let good = Entry {
        hash: [7; 32],
        stat: Some(FileStat {
            size: 1234,
            mtime_ns: 1_700_000_000_123_456_789,
            ctime_ns: 1_700_000_000_223_456_789,
            ino: 42,
            dev: 2049,
        }),
        record: Some(MachineRecord {
            machine: "h1.example.org".into(),
            zone: Some("east".into()),
            components: vec![
                ComponentRecord {
                    component: "ntp".into(),
                    translator: Some(id.clone()),
                    good: Some(Translated {
                        fragments: bundle(),
                        rendered: bundle().render(),
                        registrations: vec![
                            Registration::ContactGroup { group: "ops".into() },
                            Registration::Cluster {
                                name: "ntp".into(),
                                service: ServiceRef {
                                    host: "h1.example.org".into(),
                                    description: "NTP".into(),
                                },
                                threshold: None,
                            },
                        ],
                        warnings: vec!["a warning".into()],
                    }),
                    error: Some("translator ntp: invalid value".into()),
                },
                ComponentRecord {
                    component: "unknown".into(),
                    translator: None,
                    good: None,
                    error: None,
                },
            ],
        }),
        profile_error: None,
        profile_error_at: None,
    };
    let broken = Entry {
        hash: [0; 32],
        stat: None,
        record: None,
        profile_error: Some("h2.xml: line 3, column 5: unexpected end of file".into()),
        profile_error_at: Some(ErrorAt {
            line: Some(3),
            column: Some(5),
            element: Some("lcfg/components/ntp".into()),
        }),
    };
    let outputs: BTreeMap<String, PassOutput> = [(
        "ntp".to_string(),
        PassOutput {
            start: Some(bundle()),
            finish: None,
        },
    )]
    .into();
    [
        serde_json::to_string(&good).unwrap(),
        serde_json::to_string(&broken).unwrap(),
        serde_json::to_string(&outputs).unwrap(),
    ]
    .join("\n")
}

#[test]
fn the_cache_format_2_is_unchanged() {
    assert_eq!(
        CACHE_FORMAT, "monitor-compile-cache-2",
        "a new cache format needs a new snapshot name"
    );
    insta::assert_snapshot!("cache_format_2", samples());
}

#[test]
fn every_record_reads_back_equal() {
    let text = samples();
    let mut lines = text.lines();
    for _ in 0..2 {
        let line = lines.next().unwrap();
        let e: Entry = serde_json::from_str(line).unwrap();
        assert_eq!(serde_json::to_string(&e).unwrap(), line);
    }
    let line = lines.next().unwrap();
    let o: BTreeMap<String, PassOutput> = serde_json::from_str(line).unwrap();
    assert_eq!(serde_json::to_string(&o).unwrap(), line);
}
