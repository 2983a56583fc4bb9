//! Every reason the engine gives for assembling in full instead of patching the last
//! assembly (`Engine::full_assembly_reason`), each reached by a fixture of its own: the
//! pass must be a full assembly, name that reason, and give exactly what a new engine
//! assembles in full from the same files (so refusing the patch was safe). A positive
//! control shows that a harmless change is patched, with no reason, to the same result.
//!
//! The fixtures are small profiles in a temporary directory, monitored by the test
//! translator [`Probe`], whose resources make it emit extra services, a template, a
//! named command, a service dependency, a cluster registration, and so on.
//!
//! One reason has no test, because no input can reach it: "the engine's own objects for
//! a machine are unsafe" (see [`ENGINE_OBJECTS_UNSAFE`]).

use std::path::PathBuf;

use monitor_engine::Assembly;
use monitor_engine::managers::clusters::{CLUSTER_HOST, cluster_service_description};

// The reasons, as the engine spells them (core/engine/src/incremental.rs and pass.rs).
const NO_STATE: &str = "no incremental state: the last assembly had errors, or the state is off";
const NEW_MACHINE_OR_ERROR: &str = "a new machine, or a profile or translation error";
const ANOTHER_MACHINE: &str = "a file now describes another machine";
const MONITORED_OR_NOT: &str = "a machine is monitored now and was not, or the reverse";
const REGISTRATIONS_CHANGED: &str = "registrations, or named objects or templates, changed";
const REGISTERED_SERVICE_CHANGED: &str = "a service that a registration names changed";
const DUPLICATE: &str = "a duplicate definition";
const MAY_CLOSE_CYCLE: &str = "a new dependency may close a cycle";
const CLUSTER_DEFINITION: &str = "a definition the cluster manager makes";
const UNDEFINED_REFERENCE: &str = "an undefined reference";
const REMOVED_BUT_REFERRED: &str = "a removed service is still referred to";
const PASS_HAS_ERRORS: &str = "this pass has errors";
const OTHER_INPUT_CHANGED: &str =
    "an input besides the machine entries changed (files, translators, contacts or pass-level output)";
const NO_EARLIER_ASSEMBLY: &str = "there is no earlier assembly";
const STATE_OFF: &str = "the incremental state is off";

/// "the engine's own objects for a machine are unsafe" (`Engine::patch`, after
/// `render_machine`) is unreachable, so it has no test. `render_machine` reports an error
/// only for (1) a machine name that is not a host name, (2) an unsafe host object, whose
/// values are the machine name and the contact groups that are both registered by the
/// machine's components and defined, or (3) an unsafe status service, one per component
/// with a translator, whose values are the component name and those same contact groups.
/// When the patch gets that far, the machine is the same (else "a file now describes
/// another machine"), its components and their registrations are the same (`registrations`
/// compares (component, registrations) lists, else "registrations ... changed"; in a clean
/// record every component with a translator has a good translation), the named objects it
/// defines are the same (so no contact group of its own comes or goes), and the user
/// manager's groups come from registrations and contacts, which are unchanged (contacts
/// are in the fingerprint), as is the status services setting. So every value
/// `render_machine` checks is the one it checked for this machine in the last assembly,
/// which had no error, and the check cannot fail now.
#[allow(dead_code)]
const ENGINE_OBJECTS_UNSAFE: &str = "the engine's own objects for a machine are unsafe";

mod support;
use support::*;
#[test]
fn a_changed_check_argument_is_patched() {
    let mut f = Fixture::clean(&two_machines());
    let before = f.pass();
    assert_eq!(before.report.assembly, Assembly::Reused);
    assert_eq!(f.engine.full_assembly_reason(), None);
    f.edit("h1.xml", profile("h1", &[("port", "8080")]));
    let pass = f.patched("a check argument");
    assert!(text_of(&pass).contains("mc-check-tcp!8080"), "the change shows");
    let changed: Vec<&PathBuf> = pass
        .output
        .files
        .iter()
        .filter(|(f, t)| before.output.files.get(*f) != Some(*t))
        .map(|(f, _)| f)
        .collect();
    assert_eq!(changed, [&monitor_engine::machine_file("h1.example.org")]);
}

// The reasons given in `run_pass`.

#[test]
fn the_first_pass_has_no_earlier_assembly() {
    let mut f = Fixture::new(translators, &two_machines());
    let pass = f.refused(NO_EARLIER_ASSEMBLY);
    assert!(pass.report.errors.is_empty(), "{:#?}", pass.report.errors);
}

#[test]
fn without_incremental_state_the_first_pass_says_so_and_later_ones_find_no_state() {
    let mut f = Fixture::new(translators, &two_machines());
    f.engine.set_incremental(false);
    f.refused(STATE_OFF);
    // After that first pass there is an earlier assembly, kept without its incremental
    // state: a change reaches the patch, which finds none.
    f.edit("h1.xml", profile("h1", &[("port", "8080")]));
    f.refused(NO_STATE);
}

#[test]
fn a_pass_with_errors_of_its_own_is_not_patched() {
    // A finish_pass that fails on every pass: the same inputs each time (a failed
    // finish_pass leaves no output), and an error in the pass before its assembly. It is
    // marked broken only after MAX_FAILURES passes; this test runs two.
    const { assert!(monitor_engine::MAX_FAILURES > 2) };
    let mut f = Fixture::new(translators_with_failing_finish, &two_machines());
    let first = f.pass();
    assert!(
        first
            .report
            .errors
            .iter()
            .any(|e| e.message.contains("finish_pass failed")),
        "{:#?}",
        first.report.errors
    );
    f.edit("h1.xml", profile("h1", &[("port", "8080")]));
    let pass = f.refused(PASS_HAS_ERRORS);
    assert!(text_of(&pass).contains("mc-check-tcp!8080"));
}

#[test]
fn a_new_or_removed_file_is_an_input_besides_the_machine_entries() {
    let mut f = Fixture::clean(&two_machines());
    f.edit("h3.xml", profile("h3", &[]));
    let pass = f.refused(OTHER_INPUT_CHANGED);
    assert!(text_of(&pass).contains("# machine h3.example.org"));
    // And a file gone.
    f.files.retain(|p| !p.ends_with("h2.xml"));
    let pass = f.refused(OTHER_INPUT_CHANGED);
    assert!(!text_of(&pass).contains("# machine h2.example.org"));
}

// The reasons given in `Engine::patch`.

#[test]
fn after_an_assembly_with_errors_there_is_no_incremental_state() {
    // h2 monitors svc without its port: a translation error in the first pass.
    let mut f = Fixture::new(
        translators,
        &[
            ("h1.xml", profile("h1", &[])),
            ("h2.xml", profile("h2", &[("port", "")])),
        ],
    );
    let first = f.pass();
    assert!(has_error(&first, "h2.example.org", "missing resource port"));
    f.edit("h1.xml", profile("h1", &[("port", "8080")]));
    f.refused(NO_STATE);
}

#[test]
fn a_translation_error_is_left_to_the_full_assembly() {
    let mut f = Fixture::clean(&two_machines());
    // h1 now also monitors aux, whose port it lacks: aux fails, and had no last good
    // translation on h1 (so a new engine, which never saw h1 before, agrees). A failing
    // component with a last good translation, or a broken profile, takes the same refusal,
    // but then the long-lived engine keeps the last good configuration, which a new engine
    // never saw: its result is not a new engine's by design (tests/tests/fleet.rs).
    f.edit("h1.xml", profile_of("h1", "svc aux", &[]));
    let pass = f.refused(NEW_MACHINE_OR_ERROR);
    assert!(has_error(&pass, "h1.example.org", "missing resource port"));
}

#[test]
fn a_machine_entry_the_engine_had_not_seen_counts_as_a_new_machine() {
    // Every file and input is the same, but the cache was replaced by an empty one (a
    // persisted cache that was lost, say): each machine's entry is new to the engine.
    // (A new file is a new machine too, but a new file changes the files, an input
    // besides the machine entries, which `run_pass` sees before the patch.)
    let mut f = Fixture::clean(&two_machines());
    drop(f.engine.take_cache());
    let pass = f.refused(NEW_MACHINE_OR_ERROR);
    assert_eq!(pass.report.parsed, 2);
}

#[test]
fn a_file_that_now_describes_another_machine_is_left_to_the_full_assembly() {
    let mut f = Fixture::clean(&two_machines());
    f.edit("h2.xml", profile("h3", &[]));
    let pass = f.refused(ANOTHER_MACHINE);
    let text = text_of(&pass);
    assert!(text.contains("# machine h3.example.org") && !text.contains("# machine h2.example.org"));
}

#[test]
fn a_machine_monitored_now_and_not_before_or_the_reverse_is_left_to_the_full_assembly() {
    let mut f = Fixture::clean(&[
        ("h1.xml", profile("h1", &[])),
        ("h2.xml", profile("h2", &[])),
        ("h3.xml", profile_of("h3", "", &[])),
    ]);
    // h2 is no longer monitored.
    f.edit("h2.xml", profile_of("h2", "", &[]));
    let pass = f.refused(MONITORED_OR_NOT);
    assert!(!text_of(&pass).contains("# machine h2.example.org"));
    // h3 now is.
    f.edit("h3.xml", profile("h3", &[]));
    let pass = f.refused(MONITORED_OR_NOT);
    assert!(text_of(&pass).contains("# machine h3.example.org"));
}

#[test]
fn changed_registrations_named_objects_or_templates_are_left_to_the_full_assembly() {
    let mut f = Fixture::clean(&two_machines());
    // A new contact group: a new registration.
    f.edit("h1.xml", profile("h1", &[("nagios_groups", "ops dev")]));
    f.refused(REGISTRATIONS_CHANGED);
    // A new template.
    f.edit(
        "h1.xml",
        profile("h1", &[("nagios_groups", "ops dev"), ("template", "probe-template")]),
    );
    let pass = f.refused(REGISTRATIONS_CHANGED);
    assert!(text_of(&pass).contains("probe-template"));
    // A new named object (a command).
    f.edit(
        "h1.xml",
        profile(
            "h1",
            &[
                ("nagios_groups", "ops dev"),
                ("template", "probe-template"),
                ("named_command", "probe-check"),
            ],
        ),
    );
    let pass = f.refused(REGISTRATIONS_CHANGED);
    assert!(text_of(&pass).contains("probe-check"));
    // A new cluster membership.
    f.edit(
        "h1.xml",
        profile(
            "h1",
            &[
                ("nagios_groups", "ops dev"),
                ("template", "probe-template"),
                ("named_command", "probe-check"),
                ("cluster", "web"),
            ],
        ),
    );
    let pass = f.refused(REGISTRATIONS_CHANGED);
    assert!(text_of(&pass).contains(&cluster_service_description("web")));
}

#[test]
fn a_change_to_a_registered_service_that_the_managers_read_is_left_to_the_full_assembly() {
    let mut f = Fixture::clean(&[
        ("h1.xml", profile("h1", &[("cluster", "web")])),
        ("h2.xml", profile("h2", &[("cluster", "web")])),
    ]);
    // The same registrations; h1's Main, a cluster member, is now passive only.
    f.edit("h1.xml", profile("h1", &[("cluster", "web"), ("passive", "1")]));
    let pass = f.refused(REGISTERED_SERVICE_CHANGED);
    assert!(text_of(&pass).contains("active_checks_enabled"));
}

#[test]
fn a_duplicate_service_is_left_to_the_full_assembly() {
    let mut f = Fixture::clean(&two_machines());
    // h2 now also defines h1's Main.
    f.edit(
        "h2.xml",
        profile("h2", &[("also_host", "h1.example.org"), ("also_desc", "Main")]),
    );
    let pass = f.refused(DUPLICATE);
    assert!(has_error(&pass, "h2.example.org", "duplicate service 'Main'"));
}

#[test]
fn a_new_dependency_on_a_service_that_depends_on_another_is_left_to_the_full_assembly() {
    // h2's Main depends on h3's.
    let mut f = Fixture::clean(&[
        ("h1.xml", profile("h1", &[])),
        (
            "h2.xml",
            profile("h2", &[("after_host", "h3.example.org"), ("after_desc", "Main")]),
        ),
        ("h3.xml", profile("h3", &[])),
    ]);
    // A new edge to a master with no edge of its own (h3's Main) cannot close a cycle:
    // patched.
    f.edit(
        "h1.xml",
        profile("h1", &[("after_host", "h3.example.org"), ("after_desc", "Main")]),
    );
    f.patched("a dependency on a service that depends on nothing");
    // A new edge to h2's Main, which depends on h3's: it might close a cycle (it does
    // not, and the full assembly finds none).
    f.edit(
        "h1.xml",
        profile("h1", &[("after_host", "h2.example.org"), ("after_desc", "Main")]),
    );
    let pass = f.refused(MAY_CLOSE_CYCLE);
    assert!(pass.report.errors.is_empty(), "{:#?}", pass.report.errors);
}

#[test]
fn a_definition_of_the_cluster_manager_is_left_to_the_full_assembly() {
    let mut f = Fixture::clean(&[
        ("h1.xml", profile("h1", &[("cluster", "web")])),
        ("h2.xml", profile("h2", &[])),
    ]);
    // h2 defines the cluster's own service.
    let description = cluster_service_description("web");
    f.edit(
        "h2.xml",
        profile("h2", &[("also_host", CLUSTER_HOST), ("also_desc", &description)]),
    );
    let pass = f.refused(CLUSTER_DEFINITION);
    assert!(!pass.report.errors.is_empty(), "a full assembly refuses it too");
}

#[test]
fn an_undefined_reference_is_left_to_the_full_assembly() {
    let mut f = Fixture::clean(&two_machines());
    f.edit("h1.xml", profile("h1", &[("command", "mc-no-such-command")]));
    let pass = f.refused(UNDEFINED_REFERENCE);
    assert!(has_error(
        &pass,
        "h1.example.org",
        "undefined command 'mc-no-such-command'"
    ));
}

#[test]
fn a_removed_service_that_another_machine_refers_to_is_left_to_the_full_assembly() {
    // h2's Main depends on h1's `Extra a`.
    let mut f = Fixture::clean(&[
        ("h1.xml", profile("h1", &[("extra", "a")])),
        (
            "h2.xml",
            profile("h2", &[("after_host", "h1.example.org"), ("after_desc", "Extra a")]),
        ),
    ]);
    // h1 no longer has it.
    f.edit("h1.xml", profile("h1", &[]));
    let pass = f.refused(REMOVED_BUT_REFERRED);
    assert!(has_error(&pass, "h2.example.org", "undefined service 'Extra a'"));
}
