//! The `cosign` translator as a plugin library: `monitor-compile` loads it from its
//! translator directory (the `.deb` installs it as `cosign.so`).

monitor_sdk::export_translator!(translator_cosign::Cosign);
