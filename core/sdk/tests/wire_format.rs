//! The plugin wire format is deliberate: every message a host and a plugin exchange, in
//! its exact JSON, is a snapshot. A change that fails this test changes what crosses the
//! boundary: bump `PROTOCOL_VERSION` (and the snapshot name with it), then accept the new
//! snapshot. A plugin built for another protocol version is refused at load time.

use monitor_sdk::helpers::DEFAULT_SERVICE;
use monitor_sdk::nagios::{Bundle, CheckCommand, Command, Service};
use monitor_sdk::plugin::protocol::{Call, CallError, PROTOCOL_VERSION, Reply, Request, Response};
use monitor_sdk::profile::{Resource, ResourceType};
use monitor_sdk::translator::{Registration, ServiceRef, TranslateError};

fn service() -> ServiceRef {
    ServiceRef {
        host: "h1.example.org".into(),
        description: "NTP".into(),
    }
}

fn bundle() -> Bundle {
    Bundle::new()
        .with(Command::new(
            "mc-check-ntp",
            "$USER1$/check_ntp_time -H $HOSTADDRESS$ -w $ARG1$",
        ))
        .with(
            Service::new(DEFAULT_SERVICE)
                .host_name("h1.example.org")
                .service_description("NTP")
                .check_command(CheckCommand::new("mc-check-ntp").arg("0.5"))
                .contact_groups(["ops"]),
        )
}

fn every_message() -> String {
    let requests = [
        Call::StartPass,
        Call::Translate {
            machine: "h1.example.org".into(),
            component: "ntp".into(),
            resources: vec![Resource {
                name: "server".into(),
                value: "ntp1.example.org".into(),
                rtype: ResourceType::String,
                derivation: Some("/etc/lcfg/ntp.h:12".into()),
                path: vec!["server".into()],
            }],
        },
        Call::NotifyUnchanged {
            machine: "h1.example.org".into(),
        },
        Call::FinishPass,
        Call::AlwaysRun,
    ];
    let replies: Vec<Result<Reply, CallError>> = vec![
        Ok(Reply::Identity {
            component: "ntp".into(),
            version: "1.0.0".into(),
        }),
        Ok(Reply::Bundle(bundle())),
        Ok(Reply::Translated {
            bundle: bundle(),
            registrations: vec![
                Registration::ContactGroup { group: "ops".into() },
                Registration::Provides {
                    tag: "time".into(),
                    service: service(),
                },
                Registration::DependsOn {
                    tag: "dns".into(),
                    service: service(),
                },
                Registration::Cluster {
                    name: "ntp".into(),
                    service: service(),
                    threshold: Some(1),
                },
                Registration::PassiveCheck {
                    service: service(),
                    identity: "monitor@h1.example.org".into(),
                },
            ],
            warnings: vec!["server is not set: using the pool".into()],
        }),
        Ok(Reply::Done),
        Ok(Reply::AlwaysRun(false)),
        Err(CallError::Translate(TranslateError::MissingResource {
            resource: "server".into(),
        })),
        Err(CallError::Panic("index out of bounds".into())),
        Err(CallError::Protocol("unexpected message".into())),
    ];
    let mut out = String::new();
    for call in requests {
        let r = Request {
            protocol: PROTOCOL_VERSION,
            call,
        };
        out.push_str(&serde_json::to_string(&r).expect("a request serializes"));
        out.push('\n');
    }
    for result in replies {
        let r = Response {
            protocol: PROTOCOL_VERSION,
            result,
        };
        out.push_str(&serde_json::to_string(&r).expect("a response serializes"));
        out.push('\n');
    }
    out
}

#[test]
fn the_wire_format_of_protocol_1_is_unchanged() {
    assert_eq!(PROTOCOL_VERSION, 1, "a new protocol version needs a new snapshot name");
    insta::assert_snapshot!("protocol_v1", every_message());
}

#[test]
fn every_message_reads_back() {
    for line in every_message().lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        if v.get("call").is_some() {
            let r: Request = serde_json::from_str(line).unwrap();
            assert_eq!(serde_json::to_string(&r).unwrap(), line);
        } else {
            let r: Response = serde_json::from_str(line).unwrap();
            assert_eq!(serde_json::to_string(&r).unwrap(), line);
        }
    }
}
