//! The `jabberd` translator as a plugin library: `monitor-compile` loads it from its
//! translator directory (the `.deb` installs it as `jabberd.so`).

monitor_sdk::export_translator!(translator_jabberd::Jabberd);
