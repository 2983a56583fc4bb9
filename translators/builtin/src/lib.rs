//! The translators built into monitor-compile, in one list: the CLI, the daemon, the
//! benchmark and the tests all take it from here. A plugin for the same component, once
//! loaded, replaces its built-in translator.

use monitor_sdk::translator::Translator;

/// A fresh instance of every built-in translator.
pub fn builtin() -> Vec<Box<dyn Translator>> {
    vec![
        Box::new(translator_kerberos::Kerberos),
        Box::new(translator_jabberd::Jabberd),
        Box::new(translator_cosign::Cosign),
        Box::new(translator_apacheconf::Apacheconf),
        Box::new(translator_monitoring_info::MonitoringInfo),
    ]
}

#[cfg(test)]
mod tests {
    #[test]
    fn one_translator_per_component() {
        let mut names: Vec<String> = super::builtin().iter().map(|t| t.component().to_string()).collect();
        names.sort();
        assert_eq!(
            names,
            ["apacheconf", "cosign", "jabberd", "kerberos", "monitoring_info"]
        );
    }
}
