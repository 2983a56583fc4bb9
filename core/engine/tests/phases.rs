//! A pass reports where its time went (`PassReport::phases`, for the benchmark's cold
//! column and `status.json`): its own phases, the files phase's CPU time by step, and a
//! full assembly's phases; a reused assembly reports none of the last full one's.

mod support;
use monitor_engine::Assembly;
use support::*;

fn names(pass: &monitor_engine::PassResult) -> Vec<&str> {
    pass.report.pass_phases.iter().map(|p| p.phase.as_str()).collect()
}

#[test]
fn a_cold_pass_splits_its_time_and_a_reused_one_reports_no_assembly() {
    let mut f = Fixture::new(translators, &two_machines());
    let cold = f.pass();
    assert_eq!(cold.report.assembly, Assembly::Full);
    let n = names(&cold);
    for want in [
        "start_pass",
        "files",
        "finish_pass",
        "assemble",
        "files cpu: read",
        "files cpu: hash",
        "files cpu: parse",
        "files cpu: translate",
        "assembly: managers",
        "assembly: render",
    ] {
        assert!(n.contains(&want), "{want} missing from {n:?}");
    }
    assert!(cold.report.pass_phases.iter().all(|p| p.ms >= 0.0 && p.ms.is_finite()));
    let warm = f.pass();
    assert_eq!(warm.report.assembly, Assembly::Reused);
    let n = names(&warm);
    assert!(n.contains(&"files"), "{n:?}");
    assert!(!n.iter().any(|p| p.starts_with("assembly: ")), "{n:?}");
    // Nothing parsed: no parse time.
    let parse = warm
        .report
        .pass_phases
        .iter()
        .find(|p| p.phase == "files cpu: parse")
        .unwrap();
    assert_eq!(parse.ms, 0.0);
}
