//! The `apacheconf` translator as a plugin library: `monitor-compile` loads it from its
//! translator directory (the `.deb` installs it as `apacheconf.so`).

monitor_sdk::export_translator!(translator_apacheconf::Apacheconf);
