//! The `kerberos` translator as a plugin library: `monitor-compile` loads it from its
//! translator directory (the `.deb` installs it as `kerberos.so`).

monitor_sdk::export_translator!(translator_kerberos::Kerberos);
